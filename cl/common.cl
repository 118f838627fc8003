/* common.cl - included first in the one program nnrun builds.
 * The build prepends NN_GPU and other #defines (src/device.c). */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_LEAKY_RELU 4
#define ACT_ELU 5
#define ACT_GELU 6 /* exact: 0.5 x (1 + erf(x / sqrt 2)) */

/* alpha: slope of leaky_relu for x < 0 / scale of elu; ignored by the others.
 * Fused activations (dense, conv) use the defaults of act_apply. */
inline float act_apply_alpha(float v, int act, float alpha)
{
    switch (act) {
    case ACT_RELU: return v > 0.0f ? v : 0.0f;
    case ACT_SIGMOID: return 1.0f / (1.0f + exp(-v));
    case ACT_TANH: return tanh(v);
    case ACT_LEAKY_RELU: return v > 0.0f ? v : alpha * v;
    case ACT_ELU: return v > 0.0f ? v : alpha * expm1(v);
    case ACT_GELU: return 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
    default: return v;
    }
}

inline float act_default_alpha(int act) { return act == ACT_ELU ? 1.0f : 0.01f; }

inline float act_apply(float v, int act) { return act_apply_alpha(v, act, act_default_alpha(act)); }

/* Derivative expressed through the activation's OUTPUT y (leaky_relu and elu
 * need alpha >= 0). GELU's derivative is not a function of y: use gelu_grad(x)
 * with the input (NaN here so that a misuse cannot go unnoticed). */
inline float act_grad_from_y_alpha(float y, int act, float alpha)
{
    switch (act) {
    case ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case ACT_SIGMOID: return y * (1.0f - y);
    case ACT_TANH: return 1.0f - y * y;
    case ACT_LEAKY_RELU: return y > 0.0f ? 1.0f : alpha;
    case ACT_ELU: return y > 0.0f ? 1.0f : y + alpha; /* alpha e^x = y + alpha */
    case ACT_GELU: return NAN;
    default: return 1.0f;
    }
}

inline float act_grad_from_y(float y, int act) { return act_grad_from_y_alpha(y, act, act_default_alpha(act)); }

/* d/dx of the exact GELU: Phi(x) + x phi(x). */
inline float gelu_grad(float x)
{
    return 0.5f * (1.0f + erf(x * M_SQRT1_2_F)) + x * 0.3989422804014327f * exp(-0.5f * x * x);
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

/* A software prefetch of the cache line at p where the compiler has one for
 * a CPU (PoCL: prefetcht0; OpenCL's prefetch() compiles to nothing there),
 * nothing elsewhere. */
#if NN_CPU_DEVICE && defined(__clang__)
#define NN_PREFETCH(p) __builtin_prefetch(p)
#else
#define NN_PREFETCH(p) ((void)0)
#endif

/* The outputs o in [0, O) whose input position base + o*stride lies in
 * [0, len): o in [.x, .y), .x <= .y. Divides only for strides above 1. */
inline int2 out_range(int base, int stride, int len, int O)
{
    int a, b;
    if (stride == 1) {
        a = -base;
        b = len - base;
    } else {
        a = base >= 0 ? 0 : (stride - 1 - base) / stride;
        b = len > base ? (len - base + stride - 1) / stride : 0;
    }
    a = clamp(a, 0, O);
    return (int2)(a, clamp(b, a, O));
}
