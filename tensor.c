/* tensor.c - arenas, tensors, the thread pool, the RNG and the
 * elementwise/reduction kernels. Everything later stands on this file.
 * Legend: n = element count, ith/nth = this thread / number of threads.
 */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (glibc, musl); POSIX 2008 otherwise */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"
#include "simd.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

const char *red_simd_name(void) { return RED_SIMD_NAME; }

/* ------------------------------------------------------------------ memory */

/* From this size up, buffers start on a 2 MB boundary and ask Linux for
 * transparent huge pages (granted in its default "madvise" mode). On 4 KB
 * pages a walk over a few MB in strides misses the TLB on every column: the
 * Jacobi sweeps of a 1024^2 SVD took 1.29 s, on 2 MB pages 0.93 s. Advice
 * only: where it is refused or absent, the pages stay 4 KB. */
#define RED_HUGE_BYTES ((size_t)8 << 20)
#define RED_HUGE_ALIGN ((size_t)2 << 20)

void *red_malloc_aligned(size_t bytes) {
    void *p = NULL;
    size_t align = 64;  /* one cache line, and the widest vector (AVX-512) */
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= RED_HUGE_BYTES) {
        align = RED_HUGE_ALIGN;
        bytes = (bytes + RED_HUGE_ALIGN - 1) & ~(RED_HUGE_ALIGN - 1);
    }
#endif
    if (posix_memalign(&p, align, bytes ? bytes : 64) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == RED_HUGE_ALIGN) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void red_free_aligned(void *p) { free(p); }

red_status red_arena_reserve(red_arena *a, size_t cap_bytes) {
    a->base = red_malloc_aligned(cap_bytes);
    a->cap = a->base ? cap_bytes : 0;
    a->used = 0;
    return a->base ? RED_OK : RED_E_NOMEM;
}

void *red_arena_alloc(red_arena *a, size_t bytes) {
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start > a->cap || bytes > a->cap - start) return NULL;
    a->used = start + bytes;
    return a->base + start;
}

size_t red_arena_mark(const red_arena *a) { return a->used; }

void red_arena_reset(red_arena *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}

void red_arena_free(red_arena *a) {
    red_free_aligned(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

int64_t red_tensor_numel(const red_tensor *t) {
    int64_t n = 1;
    int i;
    for (i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Validates ndim/shape, fills t's shape and returns the byte size (or -1). */
static int64_t tensor_shape_bytes(red_tensor *t, int ndim, const int64_t *shape) {
    int64_t n = 1;
    int i;
    if (ndim < 0 || ndim > RED_MAX_DIMS) return -1;
    t->ndim = ndim;
    for (i = 0; i < RED_MAX_DIMS; i++) t->shape[i] = 1;
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] > 0 && n > (INT64_MAX / 4) / shape[i]) return -1;
        t->shape[i] = shape[i];
        n *= shape[i];
    }
    return n * (int64_t)sizeof(float);
}

red_status red_tensor_arena(red_tensor *t, red_arena *a, int ndim, const int64_t *shape) {
    int64_t bytes = tensor_shape_bytes(t, ndim, shape);
    t->data = NULL;
    if (bytes < 0 || (uint64_t)bytes > (uint64_t)SIZE_MAX) return RED_E_ARG;
    t->data = red_arena_alloc(a, (size_t)bytes);
    return t->data ? RED_OK : RED_E_NOMEM;
}

red_status red_tensor_heap(red_tensor *t, int ndim, const int64_t *shape) {
    int64_t bytes = tensor_shape_bytes(t, ndim, shape);
    t->data = NULL;
    if (bytes < 0 || (uint64_t)bytes > (uint64_t)SIZE_MAX) return RED_E_ARG;
    t->data = red_malloc_aligned((size_t)bytes);
    return t->data ? RED_OK : RED_E_NOMEM;
}

void red_tensor_free(red_tensor *t) {
    red_free_aligned(t->data);
    t->data = NULL;
}

/* ------------------------------------------------------------------ thread pool */

/* Workers wait for a task by bumping `generation`; each runs it once and
 * counts itself done. Waking a sleeping thread through a condition variable
 * costs ~100 us on a VM, which a training step (hundreds of tasks) cannot
 * afford, so with GCC/Clang both sides first spin briefly on the counters and
 * only then sleep. C99 has no atomics: the counters read outside the mutex
 * go through the compilers' __atomic builtins (acquire loads, release stores),
 * which order the task's data and which ThreadSanitizer understands. Without
 * those builtins every access is under the mutex. */
#if defined(__GNUC__) || defined(__clang__)
#define POOL_SPIN 1
#define POOL_LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define POOL_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define POOL_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define POOL_PAUSE() __asm__ __volatile__("yield" ::: "memory")
#else
#define POOL_PAUSE() ((void)0)
#endif
/* One pause per 256 reads: with a pause per read, 64^3 GEMMs on 2 threads ran
 * no faster than on one (a task is ~1 us; the pauses are ~23 ns each on Zen 5
 * and a VM may deschedule a vCPU that runs many); with one per 256, 1.6x. */
#define POOL_RELAX(spin) do { if (((spin) & 255) == 255) POOL_PAUSE(); } while (0)
#define POOL_SPIN_READS 10000000L  /* ~4 ms on Zen 5 */
#else
#define POOL_SPIN 0
#define POOL_LOAD(x) (x)
#define POOL_STORE(x, v) ((x) = (v))
#endif

struct red_pool {
    int nthreads;
    pthread_t *threads;        /* nthreads - 1 workers; the caller is ith 0 */
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    unsigned long generation;  /* bumped to start a task */
    int pending;               /* workers still running the current task */
    int sleeping;              /* workers waiting on start_cv */
    unsigned long nudges;      /* bumped by red_pool_wake */
    int task_nth;
    red_task_fn fn;
    void *arg;
    int quit;
    unsigned char *scratch;    /* nthreads * RED_POOL_SCRATCH_BYTES */
};

typedef struct {
    red_pool *pool;
    int ith;
} pool_worker;

static void *pool_worker_main(void *vp) {
    pool_worker *w = vp;
    red_pool *p = w->pool;
    int ith = w->ith;
    unsigned long seen = 0;
    free(w);
    for (;;) {
        red_task_fn fn;
        void *arg;
        int nth;
#if POOL_SPIN
        long spin;
        for (spin = 0; spin < POOL_SPIN_READS && POOL_LOAD(p->generation) == seen && !POOL_LOAD(p->quit); spin++)
            POOL_RELAX(spin);
#endif
        pthread_mutex_lock(&p->mu);
        if (p->generation == seen && !p->quit) {
            unsigned long nudges = p->nudges;
            POOL_STORE(p->sleeping, p->sleeping + 1);
            while (p->generation == seen && !p->quit && p->nudges == nudges)
                pthread_cond_wait(&p->start_cv, &p->mu);
            POOL_STORE(p->sleeping, p->sleeping - 1);
            if (p->generation == seen && !p->quit) {  /* red_pool_wake: spin again */
                pthread_mutex_unlock(&p->mu);
                continue;
            }
        }
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        fn = p->fn;
        arg = p->arg;
        nth = p->task_nth;
        pthread_mutex_unlock(&p->mu);

        if (ith < nth) fn(arg, ith, nth);

#if POOL_SPIN
        /* the last one out signals under the mutex, so a sleeping caller
         * cannot miss it (it re-checks pending under the same mutex) */
        if (__sync_sub_and_fetch(&p->pending, 1) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
#else
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
#endif
    }
}

int red_default_threads(void) {
    const char *env = getenv("RED_THREADS");
    long n;
    if (env && *env) {
        char *end;
        errno = 0;
        n = strtol(env, &end, 10);
        if (errno == 0 && *end == '\0' && n >= 1 && n <= 1024) return (int)n;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)(n > RED_POOL_MAX_THREADS ? RED_POOL_MAX_THREADS : n) : 1;
}

red_pool *red_pool_create(int nthreads) {
    red_pool *p;
    int i;
    if (nthreads <= 0) nthreads = red_default_threads();
    if (nthreads > RED_POOL_MAX_THREADS || (uint64_t)nthreads * RED_POOL_SCRATCH_BYTES > SIZE_MAX / 4) return NULL;
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    p->scratch = red_malloc_aligned((size_t)nthreads * RED_POOL_SCRATCH_BYTES);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->scratch || !p->threads) goto fail;
    if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail;
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (i = 1; i < nthreads; i++) {
        pool_worker *w = malloc(sizeof *w);
        if (!w) break;
        w->pool = p;
        w->ith = i;
        if (pthread_create(&p->threads[i], NULL, pool_worker_main, w) != 0) {
            free(w);
            break;
        }
    }
    if (i < nthreads) {  /* could not start every worker: shut down the ones we have */
        p->nthreads = i;
        red_pool_destroy(p);
        return NULL;
    }
    return p;
fail:
    red_free_aligned(p->scratch);
    free(p->threads);
    free(p);
    return NULL;
}

void red_pool_destroy(red_pool *p) {
    int i;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    POOL_STORE(p->quit, 1);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    for (i = 1; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start_cv);
    pthread_cond_destroy(&p->done_cv);
    red_free_aligned(p->scratch);
    free(p->threads);
    free(p);
}

int red_pool_size(const red_pool *p) { return p ? p->nthreads : 1; }

/* A read without the mutex: a worker may fall asleep just after, which costs
 * the caller one slow wake, never a wrong result. */
int red_pool_awake(const red_pool *p) { return POOL_SPIN && p && p->nthreads > 1 && POOL_LOAD(p->sleeping) == 0; }

void red_pool_wake(red_pool *p) {
    if (!POOL_SPIN || !p || p->nthreads == 1) return;
    pthread_mutex_lock(&p->mu);
    p->nudges++;
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
}

void *red_pool_scratch(red_pool *p, int ith) {
    return p->scratch + (size_t)ith * RED_POOL_SCRATCH_BYTES;
}

void red_pool_run(red_pool *p, int nth, red_task_fn fn, void *arg) {
    if (nth < 1 || nth > p->nthreads) nth = p->nthreads;
    if (nth == 1 || p->nthreads == 1) {  /* nothing to wake */
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->task_nth = nth;
    POOL_STORE(p->pending, p->nthreads - 1);
    POOL_STORE(p->generation, p->generation + 1);  /* publishes the task */
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, nth);

#if POOL_SPIN
    {
        long spin;
        /* the acquire load that reads 0 makes the workers' results visible */
        for (spin = 0; spin < POOL_SPIN_READS && POOL_LOAD(p->pending) > 0; spin++) POOL_RELAX(spin);
    }
#endif
    pthread_mutex_lock(&p->mu);
    while (POOL_LOAD(p->pending) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void red_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

/* ------------------------------------------------------------------ RNG */

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void red_rng_seed(red_rng *r, uint64_t seed) {
    uint64_t x = seed;
    int i;
    for (i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

uint64_t red_rng_u64(red_rng *r) {  /* xoshiro256** (Blackman & Vigna) */
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double red_rng_uniform(red_rng *r) {
    return (double)(red_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float red_rng_uniformf(red_rng *r) {
    return (float)(red_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

uint64_t red_rng_below(red_rng *r, uint64_t n) {
    /* rejection from the top of the range: no modulo bias */
    uint64_t limit, x;
    if (n == 0) return 0;
    limit = UINT64_MAX - UINT64_MAX % n;
    do x = red_rng_u64(r); while (x >= limit);
    return x % n;
}

double red_log(double x) {
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z), z = (m-1)/(m+1),
     * |z| <= 0.1716, so the odd series to z^29 leaves < 1e-23 relative error.
     * frexp/ldexp are exact, and only + - * / are used after them. */
    static const double ln2 = 0.6931471805599453094;
    double m, z, z2, term, sum;
    int e, k;
    if (x != x) return x;
    if (x < 0) return (x - x) / (x - x);  /* NaN */
    if (x == 0) return -HUGE_VAL;
    if (x > 1.79769313486231570815e308) return x;  /* +inf */
    m = frexp(x, &e);  /* m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    z = (m - 1.0) / (m + 1.0);
    z2 = z * z;
    /* Horner in z2 from the top term down: sum_{k=0}^{14} z2^k / (2k+1) */
    sum = 0.0;
    for (k = 14; k >= 0; k--) sum = sum * z2 + 1.0 / (double)(2 * k + 1);
    term = 2.0 * z * sum;
    return term + (double)e * ln2;
}

double red_rng_normal(red_rng *r) {
    double u, v, s, f;
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    do {
        u = 2.0 * red_rng_uniform(r) - 1.0;
        v = 2.0 * red_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    f = sqrt(-2.0 * red_log(s) / s);  /* sqrt is correctly rounded by IEEE 754 */
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

void red_rng_fill_uniform(red_rng *r, float *x, size_t n, float lo, float hi) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * red_rng_uniformf(r);
}

void red_rng_fill_normal(red_rng *r, float *x, size_t n, float mean, float std) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)((double)mean + (double)std * red_rng_normal(r));
}

/* ------------------------------------------------------------------ vector kernels */

/* Reductions keep RED_ACC independent partial sums (indices i mod RED_ACC*lanes)
 * so that the loop is not latency-bound, then add them in a fixed order. */
#define RED_ACC 4

void red_vec_fill(float *y, float v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = v;
}

void red_vec_add(float *y, const float *a, const float *b, size_t n) {
    size_t i = 0;
#ifndef RED_SIMD_SCALAR
    for (; i + VEC_LANES <= n; i += VEC_LANES) VSTORE(y + i, VADD(VLOAD(a + i), VLOAD(b + i)));
#endif
    for (; i < n; i++) y[i] = a[i] + b[i];
}

typedef struct {
    float *y;
    const float *a, *b;
} add_ctx;

static void add_chunks(void *vc, int64_t lo, int64_t hi) {
    const add_ctx *c = vc;
    red_vec_add(c->y + lo, c->a + lo, c->b + lo, (size_t)(hi - lo));
}

/* y = a + b over the pool (exact per element: any split gives the same bits). */
void red_vec_add_par(red_pool *pool, float *y, const float *a, const float *b, size_t n) {
    add_ctx c;
    c.y = y;
    c.a = a;
    c.b = b;
    red_par_range(pool, (int64_t)n, 1.0, add_chunks, &c);
}

void red_vec_mul(float *y, const float *a, const float *b, size_t n) {
    size_t i = 0;
#ifndef RED_SIMD_SCALAR
    for (; i + VEC_LANES <= n; i += VEC_LANES) VSTORE(y + i, VMUL(VLOAD(a + i), VLOAD(b + i)));
#endif
    for (; i < n; i++) y[i] = a[i] * b[i];
}

void red_vec_scale(float *y, float s, size_t n) {
    size_t i = 0;
#ifndef RED_SIMD_SCALAR
    vec_t vs = VSET1(s);
    for (; i + VEC_LANES <= n; i += VEC_LANES) VSTORE(y + i, VMUL(VLOAD(y + i), vs));
#endif
    for (; i < n; i++) y[i] *= s;
}

void red_vec_axpy_scalar(float *y, float a, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

void red_vec_axpy(float *y, float a, const float *x, size_t n) {
#ifndef RED_SIMD_SCALAR
    size_t i = 0;
    vec_t va = VSET1(a);
    for (; i + VEC_LANES <= n; i += VEC_LANES) VSTORE(y + i, VFMA(va, VLOAD(x + i), VLOAD(y + i)));
    red_vec_axpy_scalar(y + i, a, x + i, n - i);
#else
    red_vec_axpy_scalar(y, a, x, n);
#endif
}

float red_vec_dot_scalar(const float *a, const float *b, size_t n) {
    float s[RED_ACC] = {0};
    size_t i = 0;
    int j;
    for (; i + RED_ACC <= n; i += RED_ACC)
        for (j = 0; j < RED_ACC; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

float red_vec_dot(const float *a, const float *b, size_t n) {
#ifndef RED_SIMD_SCALAR
    vec_t s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
    size_t i = 0;
    float tail;
    for (; i + 4 * VEC_LANES <= n; i += 4 * VEC_LANES) {
        s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
        s1 = VFMA(VLOAD(a + i + VEC_LANES), VLOAD(b + i + VEC_LANES), s1);
        s2 = VFMA(VLOAD(a + i + 2 * VEC_LANES), VLOAD(b + i + 2 * VEC_LANES), s2);
        s3 = VFMA(VLOAD(a + i + 3 * VEC_LANES), VLOAD(b + i + 3 * VEC_LANES), s3);
    }
    for (; i + VEC_LANES <= n; i += VEC_LANES) s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
    tail = red_vec_dot_scalar(a + i, b + i, n - i);
    return VREDUCE(VADD(VADD(s0, s1), VADD(s2, s3))) + tail;
#else
    return red_vec_dot_scalar(a, b, n);
#endif
}

/* Many dots and axpys at once, for the KV-cache decode (a query against
 * every cached key; a weight row against a few input rows). Each dot has
 * red_vec_dot's exact arithmetic (its four accumulators, its tail, its
 * reduction) and each axpy red_vec_axpy's, so results keep their bits; what
 * changes is that a block of dots shares its loads and stays in registers,
 * and nothing is called per dot (red_vec_dot's empty scalar tail is +0.0f,
 * which is added as a constant). DOT_RB x DOT_CB sets of four accumulators
 * fill the registers: 24 of AVX-512's and NEON's 32, 12 of AVX2's 16. */
#ifndef RED_SIMD_SCALAR
#  if VEC_LANES == 8
#    define DOT_RB 1
#  else
#    define DOT_RB 2
#  endif
#  define DOT_CB 3

/* C[r*ldc + c] = red_vec_dot(X + r*ldx, W + c*ldw, n) for r < RB, c < CB. */
#  define DEFINE_DOT_BLOCK(name, RB, CB)                                                                      \
    static void name(float *C, size_t ldc, const float *X, size_t ldx, const float *W, size_t ldw, size_t n) { \
        vec_t s[RB][CB][4], w[CB], x;                                                                         \
        size_t i = 0;                                                                                         \
        int r, c, a;                                                                                          \
        for (r = 0; r < RB; r++)                                                                              \
            for (c = 0; c < CB; c++)                                                                          \
                for (a = 0; a < 4; a++) s[r][c][a] = VZERO();                                                 \
        for (; i + 4 * VEC_LANES <= n; i += 4 * VEC_LANES)                                                    \
            for (a = 0; a < 4; a++) {                                                                         \
                for (c = 0; c < CB; c++) w[c] = VLOAD(W + c * ldw + i + a * VEC_LANES);                       \
                for (r = 0; r < RB; r++) {                                                                    \
                    x = VLOAD(X + r * ldx + i + a * VEC_LANES);                                               \
                    for (c = 0; c < CB; c++) s[r][c][a] = VFMA(x, w[c], s[r][c][a]);                          \
                }                                                                                             \
            }                                                                                                 \
        for (; i + VEC_LANES <= n; i += VEC_LANES) {                                                          \
            for (c = 0; c < CB; c++) w[c] = VLOAD(W + c * ldw + i);                                           \
            for (r = 0; r < RB; r++) {                                                                        \
                x = VLOAD(X + r * ldx + i);                                                                   \
                for (c = 0; c < CB; c++) s[r][c][0] = VFMA(x, w[c], s[r][c][0]);                              \
            }                                                                                                 \
        }                                                                                                     \
        for (r = 0; r < RB; r++)                                                                              \
            for (c = 0; c < CB; c++)                                                                          \
                C[r * ldc + c] = VREDUCE(VADD(VADD(s[r][c][0], s[r][c][1]), VADD(s[r][c][2], s[r][c][3]))) +  \
                                 (i < n ? red_vec_dot_scalar(X + r * ldx + i, W + c * ldw + i, n - i) : 0.0f); \
    }
DEFINE_DOT_BLOCK(dot_block_full, DOT_RB, DOT_CB)
#  if DOT_RB > 1
DEFINE_DOT_BLOCK(dot_block_row, 1, DOT_CB)
#  else
#    define dot_block_row dot_block_full
#  endif
#endif

void red_vec_dot_grid(float *C, size_t ldc, const float *X, size_t ldx, size_t rows, const float *W, size_t ldw,
                      size_t cols, size_t n) {
    size_t r, c = 0;
#ifndef RED_SIMD_SCALAR
    /* W's rows outermost: each is read from memory once, X's few rows stay in cache */
    for (; c + DOT_CB <= cols; c += DOT_CB) {
        for (r = 0; r + DOT_RB <= rows; r += DOT_RB)
            dot_block_full(C + r * ldc + c, ldc, X + r * ldx, ldx, W + c * ldw, ldw, n);
        for (; r < rows; r++) dot_block_row(C + r * ldc + c, ldc, X + r * ldx, ldx, W + c * ldw, ldw, n);
    }
#endif
    for (; c < cols; c++)
        for (r = 0; r < rows; r++) C[r * ldc + c] = red_vec_dot(X + r * ldx, W + c * ldw, n);
}

/* Up to AXPY_REGS vectors of y stay in registers while every row is added. */
#define AXPY_REGS 8

void red_vec_axpy_rows(float *y, const float *a, const float *rows, size_t ld, size_t m, size_t n) {
    size_t i = 0, j;
#ifndef RED_SIMD_SCALAR
    for (; i + VEC_LANES <= n; i += AXPY_REGS * VEC_LANES) {
        vec_t acc[AXPY_REGS];
        int v, nv = (int)((n - i) / VEC_LANES < AXPY_REGS ? (n - i) / VEC_LANES : AXPY_REGS);
        for (v = 0; v < nv; v++) acc[v] = VLOAD(y + i + (size_t)v * VEC_LANES);
        for (j = 0; j < m; j++) {
            vec_t va = VSET1(a[j]);
            const float *x = rows + j * ld + i;
            for (v = 0; v < nv; v++) acc[v] = VFMA(va, VLOAD(x + (size_t)v * VEC_LANES), acc[v]);
        }
        for (v = 0; v < nv; v++) VSTORE(y + i + (size_t)v * VEC_LANES, acc[v]);
        if (nv < AXPY_REGS) { i += (size_t)nv * VEC_LANES; break; }
    }
#endif
    if (i < n)
        for (j = 0; j < m; j++) red_vec_axpy_scalar(y + i, a[j], rows + j * ld + i, n - i);
}

float red_vec_sum_scalar(const float *x, size_t n) {
    float s[RED_ACC] = {0};
    size_t i = 0;
    int j;
    for (; i + RED_ACC <= n; i += RED_ACC)
        for (j = 0; j < RED_ACC; j++) s[j] += x[i + j];
    for (; i < n; i++) s[0] += x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

float red_vec_sum(const float *x, size_t n) {
#ifndef RED_SIMD_SCALAR
    vec_t s0 = VZERO(), s1 = VZERO();
    size_t i = 0;
    float tail;
    for (; i + 2 * VEC_LANES <= n; i += 2 * VEC_LANES) {
        s0 = VADD(s0, VLOAD(x + i));
        s1 = VADD(s1, VLOAD(x + i + VEC_LANES));
    }
    for (; i + VEC_LANES <= n; i += VEC_LANES) s0 = VADD(s0, VLOAD(x + i));
    tail = red_vec_sum_scalar(x + i, n - i);
    return VREDUCE(VADD(s0, s1)) + tail;
#else
    return red_vec_sum_scalar(x, n);
#endif
}

float red_vec_sumsq_scalar(const float *x, size_t n) { return red_vec_dot_scalar(x, x, n); }

float red_vec_sumsq(const float *x, size_t n) { return red_vec_dot(x, x, n); }

float red_vec_max(const float *x, size_t n) {
    float m = -HUGE_VALF;
    size_t i = 0;
#ifndef RED_SIMD_SCALAR
    if (n >= VEC_LANES) {
        vec_t vm = VLOAD(x);
        for (i = VEC_LANES; i + VEC_LANES <= n; i += VEC_LANES) vm = VMAX(vm, VLOAD(x + i));
        m = VREDUCE_MAX(vm);
    }
#endif
    for (; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

/* ------------------------------------------------------------------ exp */

/* exp(x) in float, the same IEEE operations on every path (scalar fmaf,
 * AVX2, AVX-512, NEON), so every build and lane gives the same bits:
 *   n = round(x log2 e)        1.5*2^23 magic add inside one FMA (ties to even)
 *   r = x - n ln2_hi - n ln2_lo  Cody-Waite, two FMAs; the first is exact
 *   p = Taylor series to r^7, Horner with FMAs (|r| <= ln2/2: truncation 7e-9)
 *   result = p * 2^n by adding n to p's exponent bits (exact; n << 23 is the
 *   low bits of the magic sum shifted, so no float-to-int conversion).
 * Error bound: <= 2 ulp for x in [EXP_LO, EXP_HI] (measured max 0.91 ulp on a
 * strided sweep against double exp; tests/test_tensor.c asserts 2).
 * Outside: x < EXP_LO (where exp(x) < FLT_MIN, including -inf) gives +0, no
 * subnormals; x > EXP_HI (exp(x) > FLT_MAX, including +inf) gives +inf; NaN
 * gives the input NaN. exp(+-0) = 1 exactly. */
#define EXP_LOG2E 1.44269502163f          /* 0x3FB8AA3B */
#define EXP_MAGIC 12582912.0f              /* 1.5 * 2^23 */
#define EXP_LN2_HI 0.693147182464599609375f /* float(ln 2), 0x3F317218 */
#define EXP_LN2_LO -1.90465421e-09f         /* ln 2 - EXP_LN2_HI */
#define EXP_LO -87.33654022216797f          /* smallest float with exp(x) >= FLT_MIN */
#define EXP_HI 88.72283172607422f           /* largest float with exp(x) <= FLT_MAX */
#define EXP_C2 0.5f
#define EXP_C3 0.16666667163f
#define EXP_C4 0.041666667908f
#define EXP_C5 0.0083333337680f
#define EXP_C6 0.0013888889225f
#define EXP_C7 0.00019841270114f

float red_expf(float x) {
    float k = fmaf(x, EXP_LOG2E, EXP_MAGIC), n = k - EXP_MAGIC, r, p, y;
    uint32_t kb, pb;
    r = fmaf(n, -EXP_LN2_HI, x);
    r = fmaf(n, -EXP_LN2_LO, r);
    p = fmaf(EXP_C7, r, EXP_C6);
    p = fmaf(p, r, EXP_C5);
    p = fmaf(p, r, EXP_C4);
    p = fmaf(p, r, EXP_C3);
    p = fmaf(p, r, EXP_C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    memcpy(&kb, &k, 4);
    memcpy(&pb, &p, 4);
    pb += kb << 23;  /* wraps mod 2^32: adds n to the exponent field */
    memcpy(&y, &pb, 4);
    if (x > EXP_HI) y = HUGE_VALF;
    if (x < EXP_LO) y = 0.0f;
    if (x != x) y = x;
    return y;
}

#if defined(RED_SIMD_AVX512)
static inline vec_t vec_exp(vec_t x) {
    vec_t k = _mm512_fmadd_ps(x, VSET1(EXP_LOG2E), VSET1(EXP_MAGIC)), n = _mm512_sub_ps(k, VSET1(EXP_MAGIC));
    vec_t r = _mm512_fmadd_ps(n, VSET1(-EXP_LN2_HI), x), p;
    __m512i e;
    r = _mm512_fmadd_ps(n, VSET1(-EXP_LN2_LO), r);
    p = _mm512_fmadd_ps(VSET1(EXP_C7), r, VSET1(EXP_C6));
    p = _mm512_fmadd_ps(p, r, VSET1(EXP_C5));
    p = _mm512_fmadd_ps(p, r, VSET1(EXP_C4));
    p = _mm512_fmadd_ps(p, r, VSET1(EXP_C3));
    p = _mm512_fmadd_ps(p, r, VSET1(EXP_C2));
    p = _mm512_fmadd_ps(p, r, VSET1(1.0f));
    p = _mm512_fmadd_ps(p, r, VSET1(1.0f));
    e = _mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(_mm512_castps_si512(k), 23));
    p = _mm512_castsi512_ps(e);
    p = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, VSET1(EXP_HI), _CMP_GT_OQ), p, VSET1(HUGE_VALF));
    p = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, VSET1(EXP_LO), _CMP_LT_OQ), p, VZERO());
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), p, x);
}
#elif defined(RED_SIMD_AVX2)
static inline vec_t vec_exp(vec_t x) {
    vec_t k = _mm256_fmadd_ps(x, VSET1(EXP_LOG2E), VSET1(EXP_MAGIC)), n = _mm256_sub_ps(k, VSET1(EXP_MAGIC));
    vec_t r = _mm256_fmadd_ps(n, VSET1(-EXP_LN2_HI), x), p;
    __m256i e;
    r = _mm256_fmadd_ps(n, VSET1(-EXP_LN2_LO), r);
    p = _mm256_fmadd_ps(VSET1(EXP_C7), r, VSET1(EXP_C6));
    p = _mm256_fmadd_ps(p, r, VSET1(EXP_C5));
    p = _mm256_fmadd_ps(p, r, VSET1(EXP_C4));
    p = _mm256_fmadd_ps(p, r, VSET1(EXP_C3));
    p = _mm256_fmadd_ps(p, r, VSET1(EXP_C2));
    p = _mm256_fmadd_ps(p, r, VSET1(1.0f));
    p = _mm256_fmadd_ps(p, r, VSET1(1.0f));
    e = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(k), 23));
    p = _mm256_castsi256_ps(e);
    p = _mm256_blendv_ps(p, VSET1(HUGE_VALF), _mm256_cmp_ps(x, VSET1(EXP_HI), _CMP_GT_OQ));
    p = _mm256_blendv_ps(p, VZERO(), _mm256_cmp_ps(x, VSET1(EXP_LO), _CMP_LT_OQ));
    return _mm256_blendv_ps(p, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#elif defined(RED_SIMD_NEON)
static inline vec_t vec_exp(vec_t x) {
    vec_t k = vfmaq_f32(VSET1(EXP_MAGIC), x, VSET1(EXP_LOG2E)), n = vsubq_f32(k, VSET1(EXP_MAGIC));
    vec_t r = vfmaq_f32(x, n, VSET1(-EXP_LN2_HI)), p;
    uint32x4_t e;
    r = vfmaq_f32(r, n, VSET1(-EXP_LN2_LO));
    p = vfmaq_f32(VSET1(EXP_C6), VSET1(EXP_C7), r);
    p = vfmaq_f32(VSET1(EXP_C5), p, r);
    p = vfmaq_f32(VSET1(EXP_C4), p, r);
    p = vfmaq_f32(VSET1(EXP_C3), p, r);
    p = vfmaq_f32(VSET1(EXP_C2), p, r);
    p = vfmaq_f32(VSET1(1.0f), p, r);
    p = vfmaq_f32(VSET1(1.0f), p, r);
    e = vaddq_u32(vreinterpretq_u32_f32(p), vshlq_n_u32(vreinterpretq_u32_f32(k), 23));
    p = vreinterpretq_f32_u32(e);
    p = vbslq_f32(vcgtq_f32(x, VSET1(EXP_HI)), VSET1(HUGE_VALF), p);
    p = vbslq_f32(vcltq_f32(x, VSET1(EXP_LO)), VZERO(), p);
    return vbslq_f32(vceqq_f32(x, x), p, x);
}
#endif

/* y = exp(x) elementwise (y == x allowed); bit-identical to red_expf per element.
 * The x86 paths take the ragged end with masked loads and stores (softmax rows
 * of causal attention are mostly ragged: their scalar tails cost 0.7% of a step). */
void red_vec_exp(float *y, const float *x, size_t n) {
    size_t i = 0;
#ifndef RED_SIMD_SCALAR
    for (; i + VEC_LANES <= n; i += VEC_LANES) VSTORE(y + i, vec_exp(VLOAD(x + i)));
#endif
#if defined(RED_SIMD_AVX512)
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, k, vec_exp(_mm512_maskz_loadu_ps(k, x + i)));
    }
    return;
#elif defined(RED_SIMD_AVX2)
    if (i < n) {
        static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
        __m256i k = _mm256_loadu_si256((const __m256i *)(ones + 8 - (n - i)));
        _mm256_maskstore_ps(y + i, k, vec_exp(_mm256_maskload_ps(x + i, k)));
    }
    return;
#endif
    for (; i < n; i++) y[i] = red_expf(x[i]);
}

/* sum_i exp(x_i - shift) in double, summed in index order on every path. */
double red_vec_sum_exp(const float *x, float shift, size_t n) {
    float buf[256];
    double s = 0.0;
    size_t i0, i, m;
    for (i0 = 0; i0 < n; i0 += m) {
        m = n - i0 < 256 ? n - i0 : 256;
        for (i = 0; i < m; i++) buf[i] = x[i0 + i] - shift;
        red_vec_exp(buf, buf, m);
        for (i = 0; i < m; i++) s += buf[i];
    }
    return s;
}

/* x -= max(x); x = exp(x): a softmax row before its normalisation. */
static void softmax_exp(float *x, size_t n) {
    float mx = red_vec_max(x, n);
    size_t i;
    for (i = 0; i < n; i++) x[i] -= mx;
    red_vec_exp(x, x, n);
}

void red_softmax(float *x, size_t n) {
    float sum = 0.0f;
    size_t i;
    if (n == 0) return;
    softmax_exp(x, n);
    for (i = 0; i < n; i++) sum += x[i];
    red_vec_scale(x, 1.0f / sum, n);
}

/* Row i of x (stride ld) over its first n0 + i*step entries, each row the
 * very operations of red_softmax. A row's sum is one chain of dependent adds
 * in index order, bound by the add's latency; eight rows' chains run side by
 * side here, each still in its own order, so the bits are red_softmax's. */
#define SOFTMAX_GROUP 8
void red_softmax_rows(float *x, size_t ld, int rows, size_t n0, size_t step) {
    int i0, i;
    for (i0 = 0; i0 < rows; i0 += SOFTMAX_GROUP) {
        int g = rows - i0 < SOFTMAX_GROUP ? rows - i0 : SOFTMAX_GROUP;
        float *p[SOFTMAX_GROUP], sum[SOFTMAX_GROUP] = {0};
        size_t n[SOFTMAX_GROUP], common = n0 + (size_t)i0 * step, j;  /* row i0 is the shortest */
        for (i = 0; i < g; i++) {
            p[i] = x + (size_t)(i0 + i) * ld;
            n[i] = common + (size_t)i * step;
            if (n[i]) softmax_exp(p[i], n[i]);
        }
        if (g == SOFTMAX_GROUP) {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
            for (j = 0; j < common; j++) {
                s0 += p[0][j]; s1 += p[1][j]; s2 += p[2][j]; s3 += p[3][j];
                s4 += p[4][j]; s5 += p[5][j]; s6 += p[6][j]; s7 += p[7][j];
            }
            sum[0] = s0; sum[1] = s1; sum[2] = s2; sum[3] = s3;
            sum[4] = s4; sum[5] = s5; sum[6] = s6; sum[7] = s7;
        } else {
            for (i = 0; i < g; i++)
                for (j = 0; j < common; j++) sum[i] += p[i][j];
        }
        for (i = 0; i < g; i++) {
            for (j = common; j < n[i]; j++) sum[i] += p[i][j];
            if (n[i]) red_vec_scale(p[i], 1.0f / sum[i], n[i]);
        }
    }
}

/* ------------------------------------------------------------------ parallel helpers */

typedef struct {
    red_range_fn fn;
    void *ctx;
    int64_t n;
} range_task;

static void range_thread(void *arg, int ith, int nth) {
    range_task *t = arg;
    int64_t lo, hi;
    red_split_range(t->n, ith, nth, &lo, &hi);
    if (lo < hi) t->fn(t->ctx, lo, hi);
}

/* Runs fn over [0,n) in static slices; one thread per `grain` units of work
 * (waking a worker costs ~100 us on a VM, so small ops stay serial). */
void red_par_range(red_pool *pool, int64_t n, double work_per_unit, red_range_fn fn, void *ctx) {
    range_task t;
    int64_t nth = (int64_t)(n * work_per_unit / 5.0e4);
    if (nth > red_pool_size(pool)) nth = red_pool_size(pool);
    if (nth > n) nth = n;
    if (nth <= 1 || !pool) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    t.fn = fn;
    t.ctx = ctx;
    t.n = n;
    red_pool_run(pool, (int)nth, range_thread, &t);
}

double red_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
