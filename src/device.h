/* device.h - the OpenCL runtime: device choice, one context and one in-order
 * queue, the program built from the embedded sources of cl/ (with an on-disk
 * binary cache), buffers and kernel launches. */
#ifndef NN_DEVICE_H
#define NN_DEVICE_H

#include <stddef.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "err.h"

typedef struct nn_cl_source {
    const char *name;
    const char *text;
    size_t len;
} nn_cl_source;

/* Generated at build time from the files in cl/ (src/tools/embedcl.c); NULL-terminated. */
extern const nn_cl_source nn_cl_sources[];

typedef struct nn_kernel_slot {
    char name[64];
    cl_kernel k;
} nn_kernel_slot;

typedef struct nn_dev {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    char name[256], vendor[256], version[256], driver[256], platform_name[256];
    cl_device_type type;
    size_t max_wg;         /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    cl_uint units;         /* CL_DEVICE_MAX_COMPUTE_UNITS (cores of a CPU, SMs/CUs of a GPU) */
    cl_ulong global_mem, max_alloc;
    cl_uint align;         /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes */
    int profiling;         /* queue created with profiling enabled */
    int index;             /* global index in `nnrun devices` order */
    int from_cache;        /* program loaded from the binary cache */
    nn_kernel_slot kernels[128];
    int nkernels;
    /* profiling (nnrun bench): every kernel and GEMM enqueued while
     * prof_on records an event; flops are those of the GEMMs */
    int prof_on;
    cl_event *prof_ev;
    double *prof_flops;
    const char **prof_name; /* the kernel (or "GEMM"): static strings */
    size_t prof_n, prof_cap;
    /* the GEMM seam's state: created by nn_blas_open, released by
     * nn_blas_close (blas.c); device.c never looks inside */
    struct nn_blas *blas;
} nn_dev;

/* One device as listed by `nnrun devices`. */
typedef struct nn_dev_info {
    int index;
    cl_platform_id platform;
    cl_device_id device;
    char platform_name[256], name[256], vendor[256], version[256], driver[256];
    cl_device_type type;
    cl_ulong global_mem;
    cl_uint compute_units;
} nn_dev_info;

/* Lists every device of every platform (at most max). 69 when there is none. */
int nn_dev_list(nn_dev_info *out, int max, int *n, nn_err *e);

/* Picks the device named by `sel` (NULL: $NNRUN_DEVICE, else the first GPU,
 * else the first device). sel: global index ("0"), "gpu", "cpu", or a
 * case-insensitive substring of the device or platform name. */
int nn_dev_select(const char *sel, nn_dev_info *out, nn_err *e);

/* Creates context, queue and program for the selected device. */
int nn_dev_open(nn_dev *d, const char *sel, int profiling, nn_err *e);
void nn_dev_close(nn_dev *d);

/* Returns the kernel named `name` (created once, then cached). */
int nn_dev_kernel(nn_dev *d, const char *name, cl_kernel *k, nn_err *e);

/* A kernel argument: size and pointer to the value. */
typedef struct nn_karg {
    size_t size;
    const void *ptr;
} nn_karg;
#define KMEM(m) ((nn_karg){sizeof(cl_mem), &(cl_mem){(m)}})
#define KINT(v) ((nn_karg){sizeof(cl_int), &(cl_int){(cl_int)(v)}})
#define KUINT(v) ((nn_karg){sizeof(cl_uint), &(cl_uint){(cl_uint)(v)}})
#define KULONG(v) ((nn_karg){sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(v)}})
#define KFLT(v) ((nn_karg){sizeof(cl_float), &(cl_float){(cl_float)(v)}})
#define KLOCAL(bytes) ((nn_karg){(bytes), NULL})

/* Enqueues `name` over a 1-D range of `n` work items (rounded up to the
 * local size; kernels guard their index) with the arguments given. local = 0
 * lets the implementation choose. Nothing waits. */
int nn_launch(nn_dev *d, const char *name, size_t n, size_t local, nn_err *e, int nargs, ...);
/* 2-D variant: global n0 x n1 (each rounded up to l0/l1 when non-zero). */
int nn_launch2(nn_dev *d, const char *name, size_t n0, size_t n1, size_t l0, size_t l1, nn_err *e,
               int nargs, ...);
/* Same, for a GEMM kernel: `flops` is recorded in its profile (bench). */
int nn_launch2f(nn_dev *d, const char *name, size_t n0, size_t n1, size_t l0, size_t l1, double flops, nn_err *e,
                int nargs, ...);

/* Buffers. `what` names the tensor in the out-of-memory message. */
int nn_buf_alloc(nn_dev *d, size_t bytes, const char *what, cl_mem *out, nn_err *e);
/* Sub-buffer of `parent` at byte offset `off` (must be a multiple of d->align). */
int nn_buf_sub(nn_dev *d, cl_mem parent, size_t off, size_t bytes, cl_mem *out, nn_err *e);
int nn_buf_write(nn_dev *d, cl_mem m, size_t off, size_t bytes, const void *src, int blocking, nn_err *e);
int nn_buf_read(nn_dev *d, cl_mem m, size_t off, size_t bytes, void *dst, nn_err *e); /* blocking */
/* Non-blocking read (flushed, so it runs in queue order without a wait);
 * *ev completes when dst holds the data: poll it with nn_event_done, then
 * clReleaseEvent it. */
int nn_buf_read_async(nn_dev *d, cl_mem m, size_t off, size_t bytes, void *dst, cl_event *ev, nn_err *e);
/* *done = 1 once the command of ev has completed (an error: its code). */
int nn_event_done(cl_event ev, int *done, nn_err *e);
int nn_buf_zero(nn_dev *d, cl_mem m, size_t off, size_t bytes, nn_err *e);
/* The first `bytes` of src into dst, on the queue (nothing waits). */
int nn_buf_copy(nn_dev *d, cl_mem src, cl_mem dst, size_t bytes, nn_err *e);
int nn_buf_fill(nn_dev *d, cl_mem m, size_t off, size_t nfloats, float v, nn_err *e);
void nn_buf_free(cl_mem *m);

/* Rounds bytes up to the device's sub-buffer alignment. */
size_t nn_dev_align(const nn_dev *d, size_t bytes);

int nn_dev_finish(nn_dev *d, nn_err *e);

/* Profiling: returns the event slot to pass to an enqueue (NULL when not
 * profiling); `name` names the kernel (a string that outlives the device);
 * `flops` > 0 marks a GEMM. */
cl_event *nn_prof_slot(nn_dev *d, const char *name, double flops);
/* Device time (seconds) of event i, or -1 when it has none. */
double nn_prof_time(nn_dev *d, size_t i);
/* Sum of device times (seconds) of events [from, to); GEMM time and flops too. */
double nn_prof_sum(nn_dev *d, size_t from, size_t to, double *gemm_s, double *gemm_flops);
void nn_prof_clear(nn_dev *d);

/* Turns an OpenCL status into an error message "what: CL_OUT_OF_RESOURCES (-5)". */
int nn_cl_fail(nn_err *e, cl_int st, const char *what);
const char *nn_cl_strerror(cl_int st);

#endif
