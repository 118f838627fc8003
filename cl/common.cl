/* common.cl - included first in the one program nnrun builds.
 * The build prepends NN_GPU and other #defines (src/device.c). */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3

inline float act_apply(float v, int act)
{
    switch (act) {
    case ACT_RELU: return v > 0.0f ? v : 0.0f;
    case ACT_SIGMOID: return 1.0f / (1.0f + exp(-v));
    case ACT_TANH: return tanh(v);
    default: return v;
    }
}

/* Derivative expressed through the activation's OUTPUT y. */
inline float act_grad_from_y(float y, int act)
{
    switch (act) {
    case ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case ACT_SIGMOID: return y * (1.0f - y);
    case ACT_TANH: return 1.0f - y * y;
    default: return 1.0f;
    }
}

/* Counter-based hash -> uniform [0,1): the same (seed, stream, index) always
 * gives the same number, so backward recomputes dropout masks. */
inline float hash_uniform(uint seed_lo, uint seed_hi, uint stream, uint idx)
{
    uint h = idx * 0x9E3779B1u ^ seed_lo;
    h ^= stream * 0x85EBCA77u + seed_hi;
    h ^= h >> 16; h *= 0x7FEB352Du;
    h ^= h >> 15; h *= 0x846CA68Bu;
    h ^= h >> 16;
    h ^= idx + 0x68E31DA4u;
    h *= 0xB5297A4Du;
    h ^= h >> 13;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}
