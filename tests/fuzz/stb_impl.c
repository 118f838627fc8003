/* stb_impl.c - stb_image and stb_image_resize compiled into the fuzz_image
 * target (with coverage and AddressSanitizer), from the same headers that
 * Debian's libstb.so is built from. The executable's definitions take
 * precedence over libstb.so's, so nn_image_decode calls these. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
