/* FMA peak of this machine for `make bench` (tests/bench/run.sh): every online
 * CPU runs one thread of 12 independent FMA chains (enough to hide the FMA
 * latency on both FMA pipes), in the widest vectors the CPU has: AVX-512 zmm,
 * else AVX2+FMA ymm, else SSE (separate mul and add, no FMA). The best of a
 * few timed rounds is printed as one JSON line:
 *   {"peak_gflops": 190.3, "threads": 2, "isa": "avx2", "cpu_share": 0.99}
 * cpu_share: the CPU time the threads got in that round over threads x wall
 * time; well below 1 means other processes took cores and the peak is low.
 * Usage: peak [avx512|avx2|sse] (forces a narrower ISA; default: the widest
 * supported). Takes about 1 s. Build: cc -O2 -pthread -o peak peak.c */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CHAINS 12
#define ROUNDS 5
#define ROUND_SECONDS 0.15

/* Each kernel runs n iterations of CHAINS independent acc = acc * m + a and
 * returns a value depending on every chain, so nothing is optimised away. m
 * and a keep the values bounded (acc converges to a / (1 - m)). */
#define FMA_KERNEL(name, isa_flags, vec, set1, fma, add, store, lanes)                                    \
    __attribute__((target(isa_flags))) static float name(long n, float seed)                               \
    {                                                                                                   \
        vec acc[CHAINS];                                                                                \
        vec m = set1(0.999f), a = set1(1e-3f);                                                          \
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++)                                       \
            acc[i] = set1(seed + (float)i);                                                             \
        for (long it = 0; it < n; it++) {                                                               \
            _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++)                                   \
                acc[i] = fma(acc[i], m, a);                                                             \
        }                                                                                               \
        _Pragma("GCC unroll 12") for (int i = 1; i < CHAINS; i++)                                       \
            acc[0] = add(acc[0], acc[i]);                                                               \
        float out[lanes];                                                                               \
        store(out, acc[0]);                                                                             \
        return out[0];                                                                                  \
    }

#define SSE_FMA(x, y, z) _mm_add_ps(_mm_mul_ps(x, y), z)
FMA_KERNEL(kernel_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps,
           16)
FMA_KERNEL(kernel_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
FMA_KERNEL(kernel_sse, "sse2", __m128, _mm_set1_ps, SSE_FMA, _mm_add_ps, _mm_storeu_ps, 4)

static const struct isa {
    const char *name;
    float (*kernel)(long, float);
    int lanes;
} isas[] = {{"avx512", kernel_avx512, 16}, {"avx2", kernel_avx2, 8}, {"sse", kernel_sse, 4}};

static int isa_supported(int i)
{
    __builtin_cpu_init();
    if (i == 0)
        return __builtin_cpu_supports("avx512f");
    if (i == 1)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return 1;
}

static const struct isa *isa;
static pthread_barrier_t start, done;
static volatile long iters; /* per thread and round; 0 ends the workers */
static volatile float sink;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *worker(void *arg)
{
    float seed = (float)(long)arg;
    for (;;) {
        pthread_barrier_wait(&start);
        long n = iters;
        if (!n)
            return NULL;
        sink = isa->kernel(n, seed);
        pthread_barrier_wait(&done);
    }
}

/* CPU seconds this process has used so far, all threads. */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

/* One round on all threads (the caller is thread 0): seconds of wall time;
 * *cpu: the CPU seconds it took. */
static double round_seconds(long n, double *cpu)
{
    iters = n;
    double c = cpu_seconds();
    pthread_barrier_wait(&start);
    double t = now();
    sink = isa->kernel(n, 0.0f);
    pthread_barrier_wait(&done);
    t = now() - t;
    *cpu = cpu_seconds() - c;
    return t;
}

int main(int argc, char **argv)
{
    int first = 0;
    if (argc > 1) {
        for (first = 0; first < 3 && strcmp(argv[1], isas[first].name); first++)
            ;
        if (first == 3) {
            fprintf(stderr, "usage: %s [avx512|avx2|sse]\n", argv[0]);
            return 2;
        }
    }
    while (!isa_supported(first))
        first++;
    isa = &isas[first];
    long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_barrier_init(&done, NULL, (unsigned)nthreads);
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    for (long i = 1; i < nthreads; i++)
        if (!tid || pthread_create(&tid[i], NULL, worker, (void *)i)) {
            fprintf(stderr, "peak: cannot start thread %ld\n", i);
            return 1;
        }
    /* calibrate: grow n until a round takes >= 20 ms, then size the rounds */
    long n = 1 << 14;
    double s, cpu;
    while ((s = round_seconds(n, &cpu)) < 0.02)
        n *= 2;
    n = (long)(n * ROUND_SECONDS / s) + 1;
    double best = 0, share = 0;
    for (int r = 0; r < ROUNDS; r++) {
        s = round_seconds(n, &cpu);
        double gflops = 2.0 * CHAINS * isa->lanes * (double)n * nthreads / s * 1e-9;
        if (gflops > best) {
            best = gflops;
            share = cpu / (s * nthreads);
        }
    }
    iters = 0;
    pthread_barrier_wait(&start);
    for (long i = 1; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    printf("{\"peak_gflops\": %.1f, \"threads\": %ld, \"isa\": \"%s\", \"cpu_share\": %.2f}\n", best, nthreads,
           isa->name, share);
    return 0;
}
