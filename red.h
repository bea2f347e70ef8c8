/* red.h - the one public header of red, grouped by module.
 *
 * red: Reasoning-preserved Efficient Distillation in freestanding C99.
 * Conventions: row-major storage; a matrix "m x n" has m rows of n floats,
 * element (i,j) at i*ld + j. Linear weights are [out, in] as in PyTorch.
 * The library never exits or prints; it returns a red_status, and functions
 * that can fail for reasons a user must see (files, formats) also fill a
 * red_error with the file, byte offset and what was expected.
 */
#ifndef RED_H
#define RED_H

#include <stddef.h>
#include <stdint.h>

#define RED_VERSION "0.1.0"

/* ------------------------------------------------------------------ status */

typedef enum {
    RED_OK = 0,
    RED_E_ARG,         /* invalid argument (shape, pointer, range)           */
    RED_E_NOMEM,       /* allocation failed or arena exhausted               */
    RED_E_IO,          /* open/read/write/rename failed                      */
    RED_E_FORMAT,      /* malformed or unsupported file contents             */
    RED_E_NOCONV,      /* iterative method hit its iteration cap             */
    RED_E_UNSUPPORTED  /* valid input that this build does not handle (yet)  */
} red_status;

/* A status with a human-readable message; filled by I/O and parsing code. */
typedef struct {
    red_status code;
    char msg[512];
} red_error;

const char *red_status_name(red_status s);
/* Sets err->code and formats err->msg (printf-style); returns the code.
 * err may be NULL (then only the code is returned). */
red_status red_error_set(red_error *err, red_status code, const char *fmt, ...);

/* ------------------------------------------------------------------ tensor.c */

/* Aligned (64-byte) heap block, freed with red_free_aligned. */
void *red_malloc_aligned(size_t bytes);
void red_free_aligned(void *p);

/* Arena: one block, bump allocation, 64-byte aligned; reset to a mark.
 * Size it before the hot loop; red_arena_alloc never calls malloc. */
typedef struct {
    unsigned char *base;
    size_t cap;   /* bytes */
    size_t used;  /* bytes */
} red_arena;

red_status red_arena_init(red_arena *a, size_t cap_bytes);
void *red_arena_alloc(red_arena *a, size_t bytes);  /* NULL when exhausted */
size_t red_arena_mark(const red_arena *a);
void red_arena_reset(red_arena *a, size_t mark);
void red_arena_free(red_arena *a);

/* fp32 tensor, up to 4-D, contiguous row-major. */
#define RED_MAX_DIMS 4
typedef struct {
    float *data;
    int ndim;
    int64_t shape[RED_MAX_DIMS];  /* unused trailing entries are 1 */
} red_tensor;

int64_t red_tensor_numel(const red_tensor *t);
/* Shape check + allocation from an arena (data NULL and RED_E_NOMEM if full). */
red_status red_tensor_arena(red_tensor *t, red_arena *a, int ndim, const int64_t *shape);
/* Heap-backed tensor (aligned); free with red_tensor_free. */
red_status red_tensor_heap(red_tensor *t, int ndim, const int64_t *shape);
void red_tensor_free(red_tensor *t);

/* Thread pool: persistent workers; a task runs as fn(arg, ith, nth) on every
 * thread at once (the caller is ith 0) and red_pool_run returns when all are
 * done. Work is split statically by ith/nth, so results never depend on
 * scheduling. Each thread owns a scratch block (for GEMM packing). */
typedef struct red_pool red_pool;
typedef void (*red_task_fn)(void *arg, int ith, int nth);

#define RED_POOL_SCRATCH_BYTES ((size_t)8 << 20) /* per thread */
/* nthreads <= 0: red_default_threads(). NULL on failure. */
red_pool *red_pool_create(int nthreads);
void red_pool_destroy(red_pool *p);
int red_pool_size(const red_pool *p);
/* Runs fn on the first nth threads of the pool (1 <= nth <= size; else size). */
void red_pool_run(red_pool *p, int nth, red_task_fn fn, void *arg);
void *red_pool_scratch(red_pool *p, int ith);  /* RED_POOL_SCRATCH_BYTES, 64-aligned */
/* RED_THREADS if set and valid, else online cores (at least 1). */
int red_default_threads(void);
/* Static partition of [0,n) into nth nearly equal ranges: this thread's [lo,hi). */
void red_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi);

/* RNG: xoshiro256** seeded through splitmix64; normals by Marsaglia's polar
 * method with a log built from + - * / only, so every platform and libm give
 * bit-identical streams. One generator type for the whole project. */
typedef struct {
    uint64_t s[4];
    double spare;     /* second normal from the last polar draw */
    int has_spare;
} red_rng;

void red_rng_seed(red_rng *r, uint64_t seed);
uint64_t red_rng_u64(red_rng *r);
double red_rng_uniform(red_rng *r);            /* [0, 1), 53 bits */
float red_rng_uniformf(red_rng *r);            /* [0, 1), 24 bits */
double red_rng_normal(red_rng *r);             /* N(0, 1) */
uint64_t red_rng_below(red_rng *r, uint64_t n);/* uniform in [0, n), unbiased */
void red_rng_fill_uniform(red_rng *r, float *x, size_t n, float lo, float hi);
void red_rng_fill_normal(red_rng *r, float *x, size_t n, float mean, float std);
/* Natural log from IEEE basic operations only (correctly rounded +,-,*,/), so
 * it is the same on every platform; error < 2 ulp. x <= 0 gives -inf/NaN. */
double red_log(double x);

/* Elementwise and reduction kernels (SIMD where built, scalar otherwise).
 * Reductions use a fixed order, so a given build is deterministic. */
void red_vec_fill(float *y, float v, size_t n);
void red_vec_copy(float *y, const float *x, size_t n);
void red_vec_add(float *y, const float *a, const float *b, size_t n); /* y = a + b  */
void red_vec_mul(float *y, const float *a, const float *b, size_t n); /* y = a * b  */
void red_vec_scale(float *y, float s, size_t n);                      /* y *= s     */
void red_vec_axpy(float *y, float a, const float *x, size_t n);       /* y += a * x */
float red_vec_dot(const float *a, const float *b, size_t n);
float red_vec_sum(const float *x, size_t n);
float red_vec_max(const float *x, size_t n);                          /* -inf if n=0 */
float red_vec_sumsq(const float *x, size_t n);
/* Numerically safe in-place softmax of one row (max-subtracted). */
void red_softmax(float *x, size_t n);
/* The scalar versions, always built: the reference the SIMD paths are tested against. */
float red_vec_dot_scalar(const float *a, const float *b, size_t n);
float red_vec_sum_scalar(const float *x, size_t n);
float red_vec_sumsq_scalar(const float *x, size_t n);
void red_vec_axpy_scalar(float *y, float a, const float *x, size_t n);

/* The SIMD path this build was compiled for: "avx512", "avx2", "neon", "scalar". */
const char *red_simd_name(void);

/* ------------------------------------------------------------------ linalg.c */

/* C = alpha * op(A) * op(B) + beta * C, row-major, C is m x n, inner size k.
 *   RED_NN: A m x k, B k x n      (Y = X W  with W [in,out])
 *   RED_NT: A m x k, B n x k      (Y = X Wᵀ, the linear forward; dX = dY W is NN)
 *   RED_TN: A k x m, B k x n      (dW = dYᵀ X)
 * beta == 0 never reads C (NaN in C is overwritten). Threads split the output
 * into tiles; every element is reduced by one thread in a fixed order, so the
 * result is bit-identical for any thread count. Not reentrant on one pool. */
typedef enum { RED_NN = 0, RED_NT = 1, RED_TN = 2 } red_trans;

red_status red_sgemm(red_pool *pool, red_trans trans, int m, int n, int k,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);
/* Same contract, portable scalar micro-kernel (always built; tests/bench). */
red_status red_sgemm_scalar(red_pool *pool, red_trans trans, int m, int n, int k,
                            float alpha, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc);
const char *red_trans_name(red_trans t);  /* "nn", "nt", "tn" */

/* Thin SVD by one-sided Jacobi (double internally): A (m x n, lda) = U S Vᵀ,
 * k = min(m,n); U m x k, S k (descending, >= 0), V n x k, all row-major.
 * U and/or V may be NULL (values only is much cheaper). Returns RED_E_NOCONV
 * when the sweep cap is reached (outputs then hold the last iterate). */
typedef struct {
    int sweeps;      /* sweeps performed */
    int rotations;   /* rotations applied in total */
} red_svd_info;

red_status red_svd(red_pool *pool, int m, int n, const float *A, int lda,
                   float *U, float *S, float *V, red_svd_info *info);

/* Symmetric eigendecomposition by cyclic Jacobi (double internally):
 * A (n x n, symmetric; only this contract is assumed, the lower triangle is
 * read) = Q diag(w) Qᵀ, w descending, Q's columns the eigenvectors (n x n
 * row-major); Q may be NULL. */
red_status red_eig_sym(int n, const float *A, int lda, float *w, float *Q);

/* Q (n x k, k <= n): orthonormal columns, Haar-distributed (QR of a Gaussian
 * with R's diagonal made positive), from the given RNG. */
red_status red_random_orthonormal(red_rng *rng, int n, int k, float *Q);

/* Effective rank (Roy & Vetterli 2007): p_j = s_j / sum s, exp(-sum p ln p).
 * Zero singular values contribute nothing; all-zero gives 0. */
double red_erank_from_sv(const float *s, int k);
/* eRank of the rows of X (m x n); center != 0 subtracts column means first. */
red_status red_erank(red_pool *pool, int m, int n, const float *X, int ldx, int center,
                     double *erank);

/* ------------------------------------------------------------------ io.c */

/* .npy: reads versions 1.0-3.0, dtype '<f4' or '<f8' (converted to fp32),
 * C order, up to 4 dims; anything else is a clear RED_E_FORMAT/UNSUPPORTED.
 * t->data is heap memory: release with red_tensor_free. */
red_status red_npy_load(const char *path, red_tensor *t, red_error *err);
/* Parses an in-memory file image (name is used in messages). */
red_status red_npy_parse(const unsigned char *buf, size_t len, const char *name,
                         red_tensor *t, red_error *err);
/* Writes '<f4' v1.0 atomically (temp file in the same directory, then rename). */
red_status red_npy_save(const char *path, const red_tensor *t, red_error *err);

/* Reads a whole file into a heap buffer (free with free()). */
red_status red_read_file(const char *path, unsigned char **buf, size_t *len, red_error *err);
/* Writes a buffer atomically: path.tmp.<pid> then rename over path. */
red_status red_write_file_atomic(const char *path, const void *buf, size_t len, red_error *err);

/* ------------------------------------------------------------------ bench/ */

/* `red bench ...`: returns the process exit status. */
int red_bench_main(int argc, char **argv);

#endif /* RED_H */
