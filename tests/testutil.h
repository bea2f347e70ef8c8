/* tests/testutil.h - shared helpers for the Criterion suites: seeded data,
 * double-precision references and error measures. Every tolerance is stated
 * at its check, in the test files. Tests run from the repository root. */
#ifndef RED_TESTUTIL_H
#define RED_TESTUTIL_H

#include "../red_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif

#if defined(_POSIX_C_SOURCE)
#include <sys/resource.h>
#include <unistd.h>

/* Caps the address space at what the process maps now plus 256 MB, so code
 * that allocates before it validates fails the test instead of succeeding on
 * a large machine. Not under AddressSanitizer, which reserves terabytes. */
static inline void tu_cap_address_space(void) {
#ifndef TU_ASAN
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    struct rlimit lim;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    if (pages) {
        lim.rlim_cur = lim.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        cr_assert(setrlimit(RLIMIT_AS, &lim) == 0);
    }
#endif
}
#endif

#define FIXTURE(name) "tests/fixtures/" name

static inline float *tu_rand(red_rng *r, size_t n, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    red_rng_fill_uniform(r, x, n, lo, hi);
    return x;
}

/* C_ref = alpha op(A) op(B) + beta C0 in double, and the magnitude
 * |alpha| sum|a b| + |beta c0| per element, which bounds the rounding error. */
static inline void tu_gemm_ref(red_trans t, int m, int n, int k, double alpha, const float *A, int lda,
                               const float *B, int ldb, double beta, const float *C0, int ldc,
                               double *ref, double *mag) {
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0.0, g = 0.0;
            for (p = 0; p < k; p++) {
                double a = t == RED_TN ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = t == RED_NT ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
                g += fabs(a * b);
            }
            ref[(size_t)i * n + j] = alpha * s + (beta != 0.0 ? beta * C0[(size_t)i * ldc + j] : 0.0);
            mag[(size_t)i * n + j] = fabs(alpha) * g + (beta != 0.0 ? fabs(beta * C0[(size_t)i * ldc + j]) : 0.0);
        }
}

/* max over i of |U_iᵀU_j - δ_ij| for Q (rows x k) */
static inline double tu_orth_err(const float *Q, int rows, int k) {
    double worst = 0.0;
    int i, j, p;
    for (i = 0; i < k; i++)
        for (j = i; j < k; j++) {
            double s = 0.0, e;
            for (p = 0; p < rows; p++) s += (double)Q[(size_t)p * k + i] * Q[(size_t)p * k + j];
            e = fabs(s - (i == j));
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

/* ‖A - U diag(S) Vᵀ‖_F / ‖A‖_F (or the absolute error when A = 0) */
static inline double tu_svd_resid(int m, int n, const float *A, const float *U, const float *S,
                                  const float *V) {
    int k = m < n ? m : n, i, j, p;
    double num = 0.0, den = 0.0;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0.0, d;
            for (p = 0; p < k; p++) s += (double)U[(size_t)i * k + p] * S[p] * V[(size_t)j * k + p];
            d = A[(size_t)i * n + j] - s;
            num += d * d;
            den += (double)A[(size_t)i * n + j] * A[(size_t)i * n + j];
        }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Criterion helpers */

/* |a - b| <= atol + rtol |b| for every element; reports the worst index. */
static inline void expect_close(const char *what, const float *a, const float *b, size_t n, double atol, double rtol) {
    size_t i, worst = 0;
    double wr = 0.0, maxabs = 0.0;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), r = d / (atol + rtol * fabs((double)b[i]));
        if (!(r <= wr)) { wr = r; worst = i; }
        if (d > maxabs) maxabs = d;
    }
    cr_expect(wr <= 1.0, "%s: worst element %zu: got %.9g, reference %.9g (max abs diff %.3g, atol %.1g rtol %.1g)",
              what, worst, a[worst], b[worst], maxabs, atol, rtol);
}

/* 4-point central stencil, error O(h^4) truncation + ~1.5*delta/h rounding. */
#define FD_H 1e-2

/* A scalar loss sum_i c_i out_i for a random weight vector c, in double. */
static inline double weighted(const float *out, const float *c, size_t n) {
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)out[i] * c[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Checks analytic gradient g (of x[0..n)) against FD of loss(ctx), perturbing x. */
static inline void fd_check(const char *what, loss_fn f, void *ctx, float *x, const float *g, size_t n, double atol,
                     double rtol) {
    size_t i;
    for (i = 0; i < n; i++) {
        float x0 = x[i];
        double fp1, fm1, fp2, fm2, fd;
        x[i] = x0 + (float)FD_H; fp1 = f(ctx);
        x[i] = x0 - (float)FD_H; fm1 = f(ctx);
        x[i] = x0 + (float)(2 * FD_H); fp2 = f(ctx);
        x[i] = x0 - (float)(2 * FD_H); fm2 = f(ctx);
        x[i] = x0;
        fd = (8.0 * (fp1 - fm1) - (fp2 - fm2)) / (12.0 * FD_H);
        cr_expect(fabs(fd - g[i]) <= atol + rtol * fabs(fd), "%s[%zu]: analytic %.7g, finite difference %.7g", what, i,
                  g[i], fd);
        if (fabs(fd - g[i]) > atol + rtol * fabs(fd)) return;  /* one message per tensor */
    }
}

/* 300 reasoning problems (train split, seed 3, 1-2 steps, numbers to 50,
 * + and -) as JSONL at path: a small learnable stream for the trainers. */
/* sum over j >= from of log p(ids[j] | ids[<j]), from a full training
 * forward of a fresh copy of m, log-softmax in double: the brute-force
 * reference for the harnesses' loglikelihoods. */
static inline double tu_sum_logprob(const red_model *m, red_pool *pool, const int *ids, int n, int from) {
    red_model ref;
    red_error err;
    double sum = 0.0;
    int j, k;
    cr_assert(red_model_alloc(&ref, &m->cfg, pool, &err) == RED_OK);
    memcpy(ref.params, m->params, m->n_params * 4);
    cr_assert(red_model_train_alloc(&ref, 1, n, &err) == RED_OK);
    red_model_forward(&ref, ids, 1, n);
    for (j = from; j < n; j++) {
        const float *z = red_model_logits(&ref) + (size_t)(j - 1) * m->cfg.vocab;
        double mx = -1e300, se = 0.0;
        for (k = 0; k < m->cfg.vocab; k++) mx = z[k] > mx ? z[k] : mx;
        for (k = 0; k < m->cfg.vocab; k++) se += exp(z[k] - mx);
        sum += z[ids[j]] - mx - log(se);
    }
    red_model_free(&ref);
    return sum;
}

static inline void tu_write_reasoning(const char *path) {
    red_reasoning_opts o;
    red_sbuf s;
    red_error err;
    o.split = RED_SPLIT_TRAIN; o.n = 300; o.seed = 3; o.min_steps = 1; o.max_steps = 2; o.max_number = 50; o.ops = "+-"; o.restate = 0; o.keyed = 0;
    red_sbuf_init(&s);
    red_sbuf_puts(&s, "");
    cr_assert(red_tasks_reasoning(&o, &s, &err) == RED_OK);
    cr_assert(red_write_file_atomic(path, s.p, s.len, &err) == RED_OK);
    red_sbuf_free(&s);
}

#endif
