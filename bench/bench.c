/* bench/bench.c - `red bench`: timed, validated measurements printed as one
 * line of key=value pairs each (BLIS/ggml style), so sweeps can be parsed.
 *
 *   red bench matmul --m M --n N --k K [--trans nn|nt|tn] [--threads T] [--reps R] [--scalar]
 *   red bench svd --m M --n N [--threads T] [--reps R]
 *   red bench peak [--threads T]
 *   red bench exp [--n N] [--reps R]
 *
 * Every measurement validates its result against an independent double-
 * precision reference before timing and prints pass=1/0 (exit status 1 on a
 * failure), so a cross-compiled binary run under qemu is a real check.
 *
 * Built a second time with -DRED_BENCH_PEER (and OpenBLAS) as bench/red-bench-peer:
 * then every matmul/svd line is followed by the same measurement of OpenBLAS
 * cblas_sgemm or LAPACK sgesvj/sgesdd and a ratio line, in the same process.
 * ./red itself never links a peer library.
 */
#define _POSIX_C_SOURCE 200809L
#include "../red_internal.h"
#include "../simd.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef RED_BENCH_PEER
#include <cblas.h>
/* LAPACK (Fortran ABI, hidden string lengths last) */
extern void sgesvj_(const char *joba, const char *jobu, const char *jobv, const int *m, const int *n,
                    float *a, const int *lda, float *sva, const int *mv, float *v, const int *ldv,
                    float *work, const int *lwork, int *info, size_t, size_t, size_t);
extern void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s,
                    float *u, const int *ldu, float *vt, const int *ldvt, float *work,
                    const int *lwork, int *iwork, int *info, size_t);
extern void sgejsv_(const char *joba, const char *jobu, const char *jobv, const char *jobr, const char *jobt,
                    const char *jobp, const int *m, const int *n, float *a, const int *lda, float *sva,
                    float *u, const int *ldu, float *v, const int *ldv, float *work, const int *lwork,
                    int *iwork, int *info, size_t, size_t, size_t, size_t, size_t, size_t);
extern void openblas_set_num_threads(int);
#endif


static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int parse_int(const char *opt, const char *s, int lo, int hi) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "red bench: %s: expected an integer in %d..%d, got '%s'\n", opt, lo, hi, s);
        exit(2);
    }
    return (int)v;
}

static void *bench_alloc(size_t bytes) {
    void *p = red_malloc_aligned(bytes);
    if (!p) {
        fprintf(stderr, "red bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

typedef struct {
    int m, n, k, threads, reps, scalar, svd_peer_sdd;
    red_trans trans;
    double alpha, beta;
    const char *teacher_config;  /* distill: a config.json shape instead of a preset */
    int width, seq, batch;       /* distill: 0 = the preset's / half width */
    int chain_each;              /* distill: each sequence chained (red_distill_opts.chain_each) */
} bench_opts;

/* Peak resident set of this process in MB (getrusage reports kilobytes on Linux). */
static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return ru.ru_maxrss / 1024.0;
}

/* ------------------------------------------------------------------ matmul */

typedef void (*sgemm_impl)(red_pool *pool, const bench_opts *o, const float *A, const float *B, float *C);

static void run_red(red_pool *pool, const bench_opts *o, const float *A, const float *B, float *C) {
    int lda = o->trans == RED_TN ? o->m : o->k, ldb = o->trans == RED_NT ? o->k : o->n;
    red_status st = (o->scalar ? red_sgemm_scalar : red_sgemm)(pool, o->trans, o->m, o->n, o->k,
                                                              (float)o->alpha, A, lda, B, ldb,
                                                              (float)o->beta, C, o->n);
    if (st != RED_OK) {
        fprintf(stderr, "red bench: sgemm failed: %s\n", red_status_name(st));
        exit(1);
    }
}

#ifdef RED_BENCH_PEER
static void run_openblas(red_pool *pool, const bench_opts *o, const float *A, const float *B, float *C) {
    int lda = o->trans == RED_TN ? o->m : o->k, ldb = o->trans == RED_NT ? o->k : o->n;
    (void)pool;
    cblas_sgemm(CblasRowMajor, o->trans == RED_TN ? CblasTrans : CblasNoTrans,
                o->trans == RED_NT ? CblasTrans : CblasNoTrans, o->m, o->n, o->k, (float)o->alpha, A,
                lda, B, ldb, (float)o->beta, C, o->n);
}
#endif

/* Relative error at sampled entries against a double reference:
 * |c - ref| / (|alpha| sum_k |a b| + |beta c0|), which a correct fp32 GEMM keeps
 * below about k * 2^-24. */
static double matmul_check(const bench_opts *o, const float *A, const float *B, const float *C0,
                           const float *C) {
    red_rng r;
    int s, nsamples = 512, p;
    double worst = 0.0;
    red_rng_seed(&r, 7);
    for (s = 0; s < nsamples; s++) {
        int i = (int)red_rng_below(&r, (uint64_t)o->m), j = (int)red_rng_below(&r, (uint64_t)o->n);
        double ref = 0.0, mag = 0.0, err;
        for (p = 0; p < o->k; p++) {
            double a = o->trans == RED_TN ? A[(size_t)p * o->m + i] : A[(size_t)i * o->k + p];
            double b = o->trans == RED_NT ? B[(size_t)j * o->k + p] : B[(size_t)p * o->n + j];
            ref += a * b;
            mag += fabs(a * b);
        }
        ref = o->alpha * ref;
        mag = fabs(o->alpha) * mag;
        if (o->beta != 0.0) {
            ref += o->beta * C0[(size_t)i * o->n + j];
            mag += fabs(o->beta * C0[(size_t)i * o->n + j]);
        }
        err = fabs(C[(size_t)i * o->n + j] - ref) / (mag > 0 ? mag : 1.0);
        if (!(err <= worst)) worst = err;  /* NaN-propagating max */
    }
    return worst;
}

static int reps_for(double flops, int requested) {
    /* about 2 GFLOP of work per measurement, 5..50 repetitions (with 3, one
     * slow repetition on this VM moved a median by 5%) */
    int r = (int)(2.0e9 / (flops > 1 ? flops : 1));
    if (requested > 0) return requested;
    return r < 5 ? 5 : r > 50 ? 50 : r;
}

static double time_matmul(sgemm_impl impl, red_pool *pool, const bench_opts *o, const float *A,
                          const float *B, const float *C0, float *C, int reps, double *err) {
    double *t = bench_alloc((size_t)reps * sizeof *t), med, t0;
    size_t csz = (size_t)o->m * o->n * sizeof *C;
    int r;
    memcpy(C, C0, csz);
    impl(pool, o, A, B, C);  /* the validated result */
    *err = matmul_check(o, A, B, C0, C);
    /* 0.1 s of warm-up: in about one process in three OpenBLAS's new second
     * thread ran no faster than one thread for the first tens of ms (256^3,
     * 2 threads: 124 against 246 GFLOPS); after 0.1 s, 16 processes of 16 ran
     * at full speed. red gets the same. */
    t0 = red_time_seconds();
    do impl(pool, o, A, B, C); while (red_time_seconds() - t0 < 0.1);
    for (r = 0; r < reps; r++) {
        memcpy(C, C0, csz);
        t0 = red_time_seconds();
        impl(pool, o, A, B, C);
        t[r] = red_time_seconds() - t0;
    }
    med = median(t, reps);
    red_free_aligned(t);
    return med;
}

static int bench_matmul(const bench_opts *o) {
    size_t asz = (size_t)o->m * o->k, bsz = (size_t)o->k * o->n, csz = (size_t)o->m * o->n;
    float *A = bench_alloc(asz * 4), *B = bench_alloc(bsz * 4), *C0 = bench_alloc(csz * 4),
          *C = bench_alloc(csz * 4);
    double flops = 2.0 * o->m * (double)o->n * o->k, sec, err, tol;
    int reps = reps_for(flops, o->reps), pass;
    red_pool *pool = red_pool_create(o->threads);
    int nth = red_pool_size(pool);
    red_rng r;
    if (!pool) {
        fprintf(stderr, "red bench: cannot start %d threads\n", o->threads);
        return 1;
    }
    red_rng_seed(&r, 1234);
    red_rng_fill_uniform(&r, A, asz, -1.0f, 1.0f);
    red_rng_fill_uniform(&r, B, bsz, -1.0f, 1.0f);
    red_rng_fill_uniform(&r, C0, csz, -1.0f, 1.0f);
    tol = (o->k + 4.0) * FLT_EPSILON;
    sec = time_matmul(run_red, pool, o, A, B, C0, C, reps, &err);
    /* red's workers spin for a while after each task; gone, they cannot take
     * the core the peer's second thread runs on */
    red_pool_destroy(pool);
    pass = err <= tol;
    printf("op=matmul impl=red trans=%s m=%d n=%d k=%d threads=%d simd=%s reps=%d seconds=%.6g "
           "gflops=%.2f max_err=%.3g pass=%d\n",
           red_trans_name(o->trans), o->m, o->n, o->k, nth,
           o->scalar ? "scalar" : red_simd_name(), reps, sec, flops / sec * 1e-9, err, pass);
#ifdef RED_BENCH_PEER
    {
        double psec, perr;
        openblas_set_num_threads(nth);
        psec = time_matmul(run_openblas, NULL, o, A, B, C0, C, reps, &perr);
        printf("op=matmul impl=openblas trans=%s m=%d n=%d k=%d threads=%d simd=%s reps=%d "
               "seconds=%.6g gflops=%.2f max_err=%.3g pass=%d\n",
               red_trans_name(o->trans), o->m, o->n, o->k, nth, red_simd_name(),
               reps, psec, flops / psec * 1e-9, perr, perr <= tol);
        printf("op=matmul_ratio trans=%s m=%d n=%d k=%d threads=%d simd=%s red_gflops=%.2f "
               "peer_gflops=%.2f ratio=%.3f\n",
               red_trans_name(o->trans), o->m, o->n, o->k, nth, red_simd_name(),
               flops / sec * 1e-9, flops / psec * 1e-9, psec / sec);
    }
#endif
    fflush(stdout);
    red_free_aligned(A);
    red_free_aligned(B);
    red_free_aligned(C0);
    red_free_aligned(C);
    return pass ? 0 : 1;
}

/* ------------------------------------------------------------------ svd */

/* Residual ‖A - U S Vᵀ‖_F / ‖A‖_F and max |UᵀU - I|, |VᵀV - I|, all in double. */
static void svd_errors(int m, int n, const float *A, const float *U, const float *S, const float *V,
                       double *resid, double *orth_u, double *orth_v) {
    int k = m < n ? m : n, i, j, p;
    double num = 0.0, den = 0.0;
    double *row = malloc((size_t)n * sizeof *row);
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) row[j] = 0.0;
        for (p = 0; p < k; p++) {
            double us = (double)U[(size_t)i * k + p] * S[p];
            const float *vrow = V + p;  /* V[j*k + p] */
            for (j = 0; j < n; j++) row[j] += us * vrow[(size_t)j * k];
        }
        for (j = 0; j < n; j++) {
            double d = A[(size_t)i * n + j] - row[j];
            num += d * d;
            den += (double)A[(size_t)i * n + j] * A[(size_t)i * n + j];
        }
    }
    free(row);
    *resid = den > 0 ? sqrt(num / den) : sqrt(num);
    *orth_u = *orth_v = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        const float *Q = pass ? V : U;
        int rows = pass ? n : m;
        double worst = 0.0;
        for (i = 0; i < k; i++)
            for (j = i; j < k; j++) {
                double s = 0.0, e;
                for (p = 0; p < rows; p++) s += (double)Q[(size_t)p * k + i] * Q[(size_t)p * k + j];
                e = fabs(s - (i == j ? 1.0 : 0.0));
                if (!(e <= worst)) worst = e;
            }
        if (pass) *orth_v = worst;
        else *orth_u = worst;
    }
}

/* Nominal SVD flop count (Golub & Van Loan, R-SVD with U and V) so that GFLOPS
 * compare across implementations; it is a convention, not a count of ours. */
static double svd_nominal_flops(int m, int n) {
    double M = m > n ? m : n, N = m > n ? n : m;
    return 4.0 * M * M * N + 8.0 * M * N * N + 9.0 * N * N * N;
}

#ifdef RED_BENCH_PEER
/* LAPACK is column-major: a row-major m x n matrix is its n x m transpose, so
 * hand LAPACK an explicit column-major copy and convert the results back. */
enum { PEER_SGESVJ, PEER_SGESDD, PEER_SGEJSV, N_SVD_PEERS };
static const char *const svd_peer_name[N_SVD_PEERS] = {"lapack_sgesvj", "lapack_sgesdd", "lapack_sgejsv"};

static int lapack_svd(int m, int n, const float *A, float *U, float *S, float *V, int peer, int *sweeps) {
    int k = m < n ? m : n, info = 0, i, j;
    float *a = malloc((size_t)m * n * sizeof *a);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) a[i + (size_t)j * m] = A[(size_t)i * n + j];
    if (peer == PEER_SGESVJ) {  /* sgesvj: needs m >= n; U overwrites a, V is n x n */
        int lwork = m + n > 6 ? m + n : 6, mv = 0, ldv = n;
        float *v = malloc((size_t)n * n * sizeof *v), *work = malloc((size_t)lwork * sizeof *work);
        sgesvj_("G", "U", "V", &m, &n, a, &m, S, &mv, v, &ldv, work, &lwork, &info, 1, 1, 1);
        *sweeps = (int)work[3];  /* WORK(4): the sweeps sgesvj made */
        if (work[0] != 1.0f)
            for (j = 0; j < n; j++) S[j] *= work[0];
        for (i = 0; i < m; i++)
            for (j = 0; j < k; j++) U[(size_t)i * k + j] = a[i + (size_t)j * m];
        for (i = 0; i < n; i++)
            for (j = 0; j < k; j++) V[(size_t)i * k + j] = v[i + (size_t)j * n];
        free(v);
        free(work);
    } else if (peer == PEER_SGEJSV) {
        /* sgejsv (Drmač & Veselić): pivoted QR, then Jacobi on the triangular
         * factor; needs m >= n. JOBA='C' (high relative accuracy for column-
         * graded A), full U (m x n) and V (n x n), no range restriction, no
         * transposition heuristics or perturbation: the driver's plain form. */
        int lwork = 2 * m + n, ldu = m, ldv = n;
        float *u = malloc((size_t)m * n * sizeof *u), *v = malloc((size_t)n * n * sizeof *v), *work;
        int *iwork = malloc((size_t)(m + 3 * n) * sizeof *iwork);
        if (lwork < 6 * n + 2 * n * n) lwork = 6 * n + 2 * n * n;
        if (lwork < m + 3 * n + n * n) lwork = m + 3 * n + n * n;
        lwork += 64;
        work = malloc((size_t)lwork * sizeof *work);
        sgejsv_("C", "U", "V", "N", "N", "N", &m, &n, a, &m, S, u, &ldu, v, &ldv, work, &lwork, iwork, &info,
                1, 1, 1, 1, 1, 1);
        if (work[0] != work[1])  /* sigma = (WORK(1)/WORK(2)) SVA */
            for (j = 0; j < n; j++) S[j] *= work[0] / work[1];
        *sweeps = 0;  /* sgejsv does not report its sweeps */
        for (i = 0; i < m; i++)
            for (j = 0; j < k; j++) U[(size_t)i * k + j] = u[i + (size_t)j * m];
        for (i = 0; i < n; i++)
            for (j = 0; j < k; j++) V[(size_t)i * k + j] = v[i + (size_t)j * n];
        free(u);
        free(v);
        free(work);
        free(iwork);
    } else {  /* sgesdd JOBZ='S': U m x k, VT k x n */
        int lwork = -1, ldvt = k;
        float wq, *u = malloc((size_t)m * k * sizeof *u), *vt = malloc((size_t)k * n * sizeof *vt), *work;
        int *iwork = malloc((size_t)8 * k * sizeof *iwork);
        sgesdd_("S", &m, &n, a, &m, S, u, &m, vt, &ldvt, &wq, &lwork, iwork, &info, 1);
        lwork = (int)wq + 1;
        work = malloc((size_t)lwork * sizeof *work);
        sgesdd_("S", &m, &n, a, &m, S, u, &m, vt, &ldvt, work, &lwork, iwork, &info, 1);
        for (i = 0; i < m; i++)
            for (j = 0; j < k; j++) U[(size_t)i * k + j] = u[i + (size_t)j * m];
        for (i = 0; i < n; i++)
            for (j = 0; j < k; j++) V[(size_t)i * k + j] = vt[j + (size_t)i * k];
        free(u);
        free(vt);
        free(work);
        free(iwork);
    }
    free(a);
    return info;
}
#endif

static int bench_svd(const bench_opts *o) {
    int m = o->m, n = o->n, k = m < n ? m : n, reps = o->reps > 0 ? o->reps : 3, r, pass;
    float *A = bench_alloc((size_t)m * n * 4), *U = bench_alloc((size_t)m * k * 4),
          *S = bench_alloc((size_t)k * 4), *V = bench_alloc((size_t)n * k * 4);
    double *t = bench_alloc((size_t)reps * sizeof *t), sec, resid, ou, ov, err,
           flops = svd_nominal_flops(m, n);
    red_pool *pool = red_pool_create(o->threads);
    int nth = red_pool_size(pool);
    red_svd_info info = {0, 0, 0};
    red_rng rng;
    red_status st = RED_OK;
    if (!pool) {
        fprintf(stderr, "red bench: cannot start %d threads\n", o->threads);
        return 1;
    }
    red_rng_seed(&rng, 99);
    red_rng_fill_normal(&rng, A, (size_t)m * n, 0.0f, 1.0f);
    for (r = 0; r < reps; r++) {
        double t0 = red_time_seconds();
        st = red_svd(pool, m, n, A, n, U, S, V, &info);
        t[r] = red_time_seconds() - t0;
        if (st != RED_OK) break;
    }
    sec = median(t, r > 0 ? r : 1);
    red_pool_destroy(pool);  /* its spinning workers would take the peer's cores */
    svd_errors(m, n, A, U, S, V, &resid, &ou, &ov);
    err = resid > ou ? resid : ou;
    err = err > ov ? err : ov;
    pass = st == RED_OK && err <= 1e-5;  /* the accuracy target */
    printf("op=svd impl=red m=%d n=%d k=%d threads=%d simd=%s reps=%d seconds=%.6g gflops=%.2f "
           "sweeps=%d rotations=%d long_vectors=%s resid=%.3g orth_u=%.3g orth_v=%.3g max_err=%.3g pass=%d\n",
           m, n, k, nth, red_simd_name(), reps, sec, flops / sec * 1e-9, info.sweeps, info.rotations,
           info.solved ? "solve" : "rotations", resid, ou, ov, err, pass);
#ifdef RED_BENCH_PEER
    {
        int which;
        openblas_set_num_threads(nth);
        for (which = 0; which < N_SVD_PEERS; which++) {
            double psec, pr, pu, pv, perr;
            int info_l = 0, psweeps = 0;
            char sweeps_kv[32];
            if (which != PEER_SGESDD && m < n) continue;  /* sgesvj and sgejsv need m >= n */
            for (r = 0; r < reps; r++) {
                double t0 = red_time_seconds();
                info_l = lapack_svd(m, n, A, U, S, V, which, &psweeps);
                t[r] = red_time_seconds() - t0;
            }
            psec = median(t, reps);
            if (which == PEER_SGESVJ) snprintf(sweeps_kv, sizeof sweeps_kv, " sweeps=%d", psweeps);
            else sweeps_kv[0] = 0;
            svd_errors(m, n, A, U, S, V, &pr, &pu, &pv);
            perr = pr > pu ? pr : pu;
            perr = perr > pv ? perr : pv;
            printf("op=svd impl=%s m=%d n=%d k=%d threads=%d simd=%s reps=%d seconds=%.6g "
                   "gflops=%.2f info=%d%s resid=%.3g orth_u=%.3g orth_v=%.3g max_err=%.3g\n",
                   svd_peer_name[which], m, n, k, nth,
                   red_simd_name(), reps, psec, flops / psec * 1e-9, info_l, sweeps_kv, pr, pu, pv, perr);
            printf("op=svd_ratio peer=%s m=%d n=%d threads=%d simd=%s red_seconds=%.6g "
                   "peer_seconds=%.6g ratio=%.3f\n",
                   svd_peer_name[which], m, n, nth,
                   red_simd_name(), sec, psec, psec / sec);
        }
    }
#endif
    fflush(stdout);
    red_free_aligned(A);
    red_free_aligned(U);
    red_free_aligned(S);
    red_free_aligned(V);
    red_free_aligned(t);
    return pass ? 0 : 1;
}

/* ------------------------------------------------------------------ peak */

typedef struct {
    long iters;
    double *seconds;  /* per thread */
    float sink[64];
} peak_task;

/* Independent FMA chains held in registers: the machine's FMA throughput for
 * this SIMD path (12 chains hide a 4-cycle latency on two FMA pipes). */
static void peak_thread(void *arg, int ith, int nth) {
    peak_task *pt = arg;
    long i;
    double t0 = red_time_seconds();
    (void)nth;
#ifndef RED_SIMD_SCALAR
    {
        vec_t x0 = VSET1(1.0f), x1 = VSET1(1.1f), x2 = VSET1(1.2f), x3 = VSET1(1.3f), x4 = VSET1(1.4f),
              x5 = VSET1(1.5f), x6 = VSET1(1.6f), x7 = VSET1(1.7f), x8 = VSET1(1.8f),
              x9 = VSET1(1.9f), x10 = VSET1(2.0f), x11 = VSET1(2.1f);
        vec_t a = VSET1(0.999999f), b = VSET1(1e-7f);
        for (i = 0; i < pt->iters; i++) {
            x0 = VFMA(x0, a, b); x1 = VFMA(x1, a, b); x2 = VFMA(x2, a, b); x3 = VFMA(x3, a, b);
            x4 = VFMA(x4, a, b); x5 = VFMA(x5, a, b); x6 = VFMA(x6, a, b); x7 = VFMA(x7, a, b);
            x8 = VFMA(x8, a, b); x9 = VFMA(x9, a, b); x10 = VFMA(x10, a, b); x11 = VFMA(x11, a, b);
        }
        x0 = VADD(VADD(VADD(x0, x1), VADD(x2, x3)), VADD(VADD(x4, x5), VADD(x6, x7)));
        x0 = VADD(x0, VADD(VADD(x8, x9), VADD(x10, x11)));
        pt->sink[ith % 64] = VREDUCE(x0);
    }
#else
    {
        float x[12];
        int j;
        for (j = 0; j < 12; j++) x[j] = 1.0f + 0.1f * j;
        for (i = 0; i < pt->iters; i++)
            for (j = 0; j < 12; j++) x[j] = x[j] * 0.999999f + 1e-7f;
        pt->sink[ith % 64] = x[0] + x[11];
    }
#endif
    pt->seconds[ith] = red_time_seconds() - t0;
}

static int bench_peak(const bench_opts *o) {
    red_pool *pool = red_pool_create(o->threads);
    peak_task pt;
    int nth, i;
    double worst = 0.0, flops;
    if (!pool) return 1;
    nth = red_pool_size(pool);
    pt.iters = 200000000L / VEC_LANES;
    pt.seconds = bench_alloc((size_t)nth * sizeof *pt.seconds);
    red_pool_run(pool, nth, peak_thread, &pt);  /* warm-up: clocks ramp, pages fault */
    red_pool_run(pool, nth, peak_thread, &pt);
    for (i = 0; i < nth; i++)
        if (pt.seconds[i] > worst) worst = pt.seconds[i];
    flops = 2.0 * 12.0 * VEC_LANES * (double)pt.iters * nth;
    printf("op=peak threads=%d simd=%s seconds=%.6g gflops=%.2f gflops_per_thread=%.2f\n", nth,
           red_simd_name(), worst, flops / worst * 1e-9, flops / worst * 1e-9 / nth);
    red_free_aligned(pt.seconds);
    red_pool_destroy(pool);
    return 0;
}

/* ------------------------------------------------------------------ exp */

typedef struct {
    const char *impl;
    int kind;  /* 0 red_vec_exp, 1 red_expf per element, 2 libm expf, 3 libm exp (double) */
} exp_impl;

static volatile double exp_sink;  /* keeps the timed loops' results live */

static void exp_run(int kind, float *y, const float *x, size_t n) {
    size_t i;
    if (kind == 0) red_vec_exp(y, x, n);
    else if (kind == 1) for (i = 0; i < n; i++) y[i] = red_expf(x[i]);
    else if (kind == 2) for (i = 0; i < n; i++) y[i] = expf(x[i]);
    else for (i = 0; i < n; i++) y[i] = (float)exp((double)x[i]);
}

/* ns per element of exp over a softmax-like row (n floats in [-20, 5], L1
 * resident), red's vector routine and its scalar form against libm; max_ulp
 * against double exp over the same values (red's stated bound: 2). */
static int bench_exp(const bench_opts *o) {
    static const exp_impl impls[] = {{"red", 0}, {"red_scalar", 1}, {"libm_expf", 2}, {"libm_exp_double", 3}};
    int n = o->n ? o->n : 4096, reps = o->reps ? o->reps : 5, r, k, ok = 1;
    long it, iters = 20000000L / n + 1;
    float *x = bench_alloc((size_t)n * sizeof *x), *y = bench_alloc((size_t)n * sizeof *y);
    double *t = bench_alloc((size_t)reps * sizeof *t);
    red_rng rng;
    red_rng_seed(&rng, 1);
    red_rng_fill_uniform(&rng, x, (size_t)n, -20.0f, 5.0f);
    for (k = 0; k < 4; k++) {
        double worst = 0.0, sink = 0.0;
        int i, pass;
        exp_run(impls[k].kind, y, x, (size_t)n);
        for (i = 0; i < n; i++) {
            double want = exp((double)x[i]);
            int e;
            frexp(want, &e);
            if (fabs(y[i] - want) / ldexp(1.0, e - 24) > worst) worst = fabs(y[i] - want) / ldexp(1.0, e - 24);
        }
        for (r = 0; r < reps; r++) {
            double t0 = red_time_seconds();
            for (it = 0; it < iters; it++) {
                exp_run(impls[k].kind, y, x, (size_t)n);
                sink += y[it % n];
            }
            t[r] = red_time_seconds() - t0;
        }
        pass = worst <= 2.0 || impls[k].kind >= 2;  /* libm is measured, not held to red's bound */
        ok &= pass;
        printf("op=exp impl=%s n=%d simd=%s reps=%d seconds=%.6g ns_per_elem=%.3f max_ulp=%.3f pass=%d\n",
               impls[k].impl, n, red_simd_name(), reps, median(t, reps), median(t, reps) / ((double)iters * n) * 1e9,
               worst, pass);
        exp_sink = sink;
    }
    red_free_aligned(x);
    red_free_aligned(y);
    red_free_aligned(t);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ model: train / infer */

typedef struct {
    char name;
    int dim, layers, heads, ffn, seq, batch, vocab;
} model_preset;

/* The configurations (a), (b), (c); head_dim = dim / heads, n_kv = heads. */
static const model_preset model_presets[] = {
    {'a', 128, 4, 4, 384, 256, 16, 512},
    {'b', 256, 6, 8, 768, 256, 16, 512},
    {'c', 512, 8, 8, 1536, 512, 8, 512},
};

static void preset_config(const model_preset *p, red_config *c) {
    red_config_default(c);
    c->dim = p->dim;
    c->n_layers = p->layers;
    c->n_heads = c->n_kv_heads = p->heads;
    c->head_dim = p->dim / p->heads;
    c->ffn = p->ffn;
    c->vocab = p->vocab;
    c->max_pos = p->seq > 2048 ? p->seq : 2048;
    c->tied = 1;
}

/* Learnable data: each row repeats a random 32-token motif, so a working
 * trainer must drive the loss down (the pass criterion). */
static void motif_tokens(red_rng *r, int *tok, int *tgt, int B, int T, int V) {
    int b, t, motif[32];
    for (b = 0; b < B; b++) {
        for (t = 0; t < 32; t++) motif[t] = (int)red_rng_below(r, (uint64_t)V);
        for (t = 0; t < T; t++) tok[b * T + t] = motif[t % 32];
        for (t = 0; t < T; t++) tgt[b * T + t] = t + 1 < T ? tok[b * T + t + 1] : -1;
    }
}

/* A model of preset p with random weights on its own pool of o->threads. */
static int bench_model_open(const char *what, const bench_opts *o, const model_preset *p, red_model *m,
                            red_config *c, red_rng *r) {
    red_pool *pool = red_pool_create(o->threads ? o->threads : 1);
    red_error err;
    preset_config(p, c);
    if (!pool || red_model_alloc(m, c, pool, &err)) {
        fprintf(stderr, "red bench %s: %s\n", what, pool ? err.msg : "cannot create threads");
        if (pool) red_pool_destroy(pool);
        return 1;
    }
    red_rng_seed(r, 1);
    red_model_init_random(m, r, 0.02f, 0.02f / sqrtf(2.0f * c->n_layers));
    return 0;
}

static void bench_model_close(red_model *m) {
    red_pool *pool = m->pool;
    red_model_free(m);
    red_pool_destroy(pool);
}

/* `red train`'s step on the motif task: per-sequence gradients joined by the batch tree, clip, AdamW. */
static int bench_train(const bench_opts *o, const model_preset *p, int steps) {
    red_config c;
    red_model m;
    red_error err;
    red_rng r;
    red_batch_grad bg;
    red_adamw_cfg opt = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f};
    double t0, best = 1e30, total = 0.0;
    float first = 0.0f, last = 0.0f;
    int *tok, *tgt, s, ok;
    if (bench_model_open("train", o, p, &m, &c, &r)) return 1;
    if (red_model_run_alloc(&m, 1, p->seq, RED_RUN_BACKWARD | RED_RUN_ADAM, &err) ||  /* as red train */
        red_batch_grad_alloc(&bg, &m, p->batch, p->seq, &err)) {
        fprintf(stderr, "red bench train: %s\n", err.msg);
        bench_model_close(&m);
        return 1;
    }
    tok = bench_alloc(sizeof(int) * (size_t)p->batch * p->seq);
    tgt = bench_alloc(sizeof(int) * (size_t)p->batch * p->seq);
    motif_tokens(&r, tok, tgt, p->batch, p->seq, c.vocab);
    for (s = 0; s <= steps; s++) {  /* step 0 is warm-up, not timed */
        float loss = NAN;
        t0 = red_time_seconds();
        if (red_batch_grad_run(&bg, tok, tgt, 0, 1, &loss, &err)) {
            fprintf(stderr, "red bench train: %s\n", err.msg);
            return 1;
        }
        red_clip_grad_norm(m.pool, m.grads, m.n_params, 1.0);
        red_model_adamw(&m, &opt);
        t0 = red_time_seconds() - t0;
        if (s == 0) first = loss;
        else {
            total += t0;
            if (t0 < best) best = t0;
        }
        last = loss;
    }
    ok = isfinite(last) && last < first;
    printf("op=train config=%c dim=%d layers=%d heads=%d ffn=%d seq=%d batch=%d vocab=%d params=%zu "
           "threads=%d simd=%s steps=%d ms_per_step=%.2f best_ms=%.2f tok_per_s=%.0f loss_first=%.4f "
           "loss_last=%.4f pass=%d\n",
           p->name, c.dim, c.n_layers, c.n_heads, c.ffn, p->seq, p->batch, c.vocab, m.n_params,
           red_pool_size(m.pool), red_simd_name(), steps, 1e3 * total / steps, 1e3 * best,
           (double)p->batch * p->seq * steps / total, first, last, ok);
    red_batch_grad_free(&bg);
    free(tok);
    free(tgt);
    bench_model_close(&m);
    return ok ? 0 : 1;
}

/* KV-cache decoding: prefill a prompt of seq/2 tokens per sequence, then
 * decode `gen` tokens greedily for `batch` sequences at once. One untimed
 * round, then `reps` timed rounds over the same cache; medians are printed
 * (one round of config (a) is a few ms, and timed once it moved by more than
 * 2x from run to run on this VM). */
static int bench_infer(const bench_opts *o, const model_preset *p, int gen, int B) {
    red_config c;
    red_model m;
    red_error err;
    red_rng r;
    red_kv_state kv;
    red_sampler greedy = {0.0f, 0, 1.0f};
    int P = p->seq / 2, reps = o->reps ? o->reps : 5, rep, i, j, s, ok = 1, *tok, *tgt, *seqv, *posv, *cur;
    int idx[2 * 512];
    double *t_prefill, *t_decode, t0;
    if (bench_model_open("infer", o, p, &m, &c, &r)) return 1;
    if (red_kv_alloc(&kv, &m, B, P + gen, P > B ? P : B, &err)) {
        fprintf(stderr, "red bench infer: %s\n", err.msg);
        bench_model_close(&m);
        return 1;
    }
    tok = bench_alloc(sizeof(int) * (size_t)p->seq);
    tgt = bench_alloc(sizeof(int) * (size_t)p->seq);
    seqv = bench_alloc(sizeof(int) * (size_t)(P > B ? P : B));
    posv = bench_alloc(sizeof(int) * (size_t)(P > B ? P : B));
    cur = bench_alloc(sizeof(int) * (size_t)B);
    t_prefill = bench_alloc(sizeof(double) * (size_t)reps);
    t_decode = bench_alloc(sizeof(double) * (size_t)reps);
    motif_tokens(&r, tok, tgt, 1, p->seq, c.vocab);
    for (rep = -1; rep < reps; rep++) {  /* round -1 warms up */
        t0 = red_time_seconds();
        for (i = 0; i < B; i++) {
            for (j = 0; j < P; j++) { seqv[j] = i; posv[j] = j; }
            ok &= red_kv_forward(&m, &kv, P, tok, seqv, posv) == RED_OK;
            cur[i] = red_sample(kv.logits + (size_t)(P - 1) * c.vocab, c.vocab, &greedy, &r, idx);
        }
        if (rep >= 0) t_prefill[rep] = red_time_seconds() - t0;
        t0 = red_time_seconds();
        for (s = 0; s < gen; s++) {
            for (i = 0; i < B; i++) { seqv[i] = i; posv[i] = P + s; }
            ok &= red_kv_forward(&m, &kv, B, cur, seqv, posv) == RED_OK;
            for (i = 0; i < B; i++) cur[i] = red_sample(kv.logits + (size_t)i * c.vocab, c.vocab, &greedy, &r, idx);
        }
        if (rep >= 0) t_decode[rep] = red_time_seconds() - t0;
    }
    ok &= cur[0] >= 0 && cur[0] < c.vocab;
    {
        double tp = median(t_prefill, reps), td = median(t_decode, reps);
        printf("op=infer config=%c dim=%d layers=%d heads=%d ffn=%d vocab=%d threads=%d simd=%s batch=%d "
               "prompt=%d gen=%d reps=%d prefill_tok_per_s=%.0f decode_tok_per_s=%.0f decode_ms_per_step=%.3f "
               "pass=%d\n",
               p->name, c.dim, c.n_layers, c.n_heads, c.ffn, c.vocab, red_pool_size(m.pool), red_simd_name(), B, P,
               gen, reps, (double)B * P / tp, (double)B * gen / td, 1e3 * td / gen, ok);
    }
    red_kv_free(&kv);
    free(tok); free(tgt); free(seqv); free(posv); free(cur); free(t_prefill); free(t_decode);
    bench_model_close(&m);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ distill */

/* One distillation step (teacher forward, merge, student forward, CE + KL +
 * clone losses and their backward into the projections, clip, AdamW) of a
 * random teacher of the preset to half width, on the motif task. */
static int bench_distill(const bench_opts *o, const model_preset *p, int steps) {
    red_pool *pool = red_pool_create(o->threads ? o->threads : 1);
    red_config c;
    red_model t;
    red_student s;
    red_error err;
    red_rng r;
    red_init_opts io;
    red_loss_cfg lc = {10.0f, 0.2f, RED_KL_SEQUENCE};
    red_adamw_cfg opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    red_losses L;
    red_distill_batch db;  /* the distillation loop's step: per-sequence gradients joined by the batch tree */
    int *tok, *tgt, k, ok, seq = o->seq ? o->seq : p->seq, batch = o->batch ? o->batch : p->batch, width;
    double t0, t1, best = 1e30, total = 0.0, first = 0.0, last = 0.0;
    red_step_times ph = {0.0, 0.0, 0.0, 0.0, 0.0};
    double optim = 0.0;
    preset_config(p, &c);
    if (o->teacher_config && red_config_read(&c, o->teacher_config, &err) != RED_OK) {
        fprintf(stderr, "red bench distill: %s\n", err.msg);
        return 1;
    }
    if (c.max_pos < seq) c.max_pos = seq;
    width = o->width ? o->width : c.dim / 2;
    if (!pool || red_model_alloc(&t, &c, pool, &err)) {
        fprintf(stderr, "red bench distill: %s\n", pool ? err.msg : "cannot create threads");
        return 1;
    }
    red_rng_seed(&r, 1);
    red_model_init_random(&t, &r, 0.02f, 0.02f / sqrtf(2.0f * c.n_layers));
    red_init_opts_default(&io);
    io.kind = RED_INIT_ORTHOGONAL;
    io.seed = 1;
    if (red_student_alloc(&s, &t, width, &err) || red_student_train_alloc(&s, batch, seq, &err) ||
        red_student_initialize(&s, &io, NULL, 0, &err) || red_distill_batch_alloc(&db, &s, &lc, o->chain_each, &err)) {
        fprintf(stderr, "red bench distill: %s\n", err.msg);
        return 1;
    }
    tok = bench_alloc(sizeof(int) * (size_t)batch * seq);
    tgt = bench_alloc(sizeof(int) * (size_t)batch * seq);
    motif_tokens(&r, tok, tgt, batch, seq, c.vocab);
    for (k = 0; k <= steps; k++) {  /* step 0 is warm-up, not timed */
        t0 = red_time_seconds();
        if (red_distill_batch_run(&db, tok, tgt, 0, 1, &L, &err)) {
            fprintf(stderr, "red bench distill: %s\n", err.msg);
            return 1;
        }
        t1 = red_time_seconds();
        red_clip_grad_norm(pool, s.grads, s.n, 1.0);
        s.adam_t++;
        red_adamw_update(s.params, s.grads, s.adam_m, s.adam_v, s.n, &opt, 0.0f, s.adam_t);
        t1 = red_time_seconds() - t1;
        t0 = red_time_seconds() - t0;
        fprintf(stderr, "red bench distill: step %d of %d (%s) %.0f ms, peak_rss_mb=%.0f so far\n", k, steps,
                k ? "timed" : "warm-up", 1e3 * t0, peak_rss_mb());
        if (k == 0) first = L.total;
        else {
            total += t0;
            if (t0 < best) best = t0;
            ph.merge += s.times_sum.merge;
            ph.teacher += s.times_sum.teacher;
            ph.student += s.times_sum.student;
            ph.head += s.times_sum.head;
            ph.backward += s.times_sum.backward;
            optim += t1;
        }
        last = L.total;
    }
    ok = isfinite(last) && last < first;
    printf("op=distill config=%s teacher_dim=%d student_dim=%d layers=%d heads=%d kv_heads=%d ffn=%d seq=%d batch=%d "
           "vocab=%d teacher_params=%zu trainable=%zu threads=%d simd=%s steps=%d ms_per_step=%.2f best_ms=%.2f "
           "tok_per_s=%.0f peak_rss_mb=%.0f loss_first=%.4f loss_last=%.4f pass=%d "
           "merge_ms=%.0f teacher_fwd_ms=%.0f student_fwd_ms=%.0f vocab_loss_ms=%.0f clone_backward_ms=%.0f "
           "optimizer_ms=%.0f chain=%s\n",
           o->teacher_config ? o->teacher_config : (p->name == 'a' ? "a" : p->name == 'b' ? "b" : "c"), c.dim, s.d_s,
           c.n_layers, c.n_heads, c.n_kv_heads, c.ffn, seq, batch, c.vocab, t.n_params, s.n, red_pool_size(pool),
           red_simd_name(), steps, 1e3 * total / steps, 1e3 * best, (double)batch * seq * steps / total, peak_rss_mb(),
           first, last, ok, 1e3 * ph.merge / steps, 1e3 * ph.teacher / steps, 1e3 * ph.student / steps,
           1e3 * ph.head / steps, 1e3 * ph.backward / steps, 1e3 * optim / steps, o->chain_each ? "each" : "once");
    free(tok);
    free(tgt);
    red_distill_batch_free(&db);
    red_student_free(&s);
    red_model_free(&t);
    red_pool_destroy(pool);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ entry */

static const char *usage_bench =
    "usage: red bench matmul --m M --n N --k K [--trans nn|nt|tn] [--threads T] [--reps R] [--scalar]\n"
    "                        [--alpha A] [--beta B]\n"
    "       red bench svd --m M --n N [--threads T] [--reps R]\n"
    "       red bench peak [--threads T]\n"
    "       red bench exp [--n N] [--reps R]\n"
    "       red bench train [--config a|b|c] [--threads T] [--steps S]\n"
    "       red bench infer [--config a|b|c] [--threads T] [--batch B] [--gen N] [--reps R]\n"
    "       red bench distill [--config a|b|c | --teacher-config CONFIG.json] [--width D] [--seq T]\n"
    "                         [--batch B] [--threads T] [--steps S] [--chain-each-sequence]\n"
    "       red bench tokenize --tokenizer PATH --data FILE [--reps R]\n"
    "\n"
    "One line of key=value pairs per measurement: op, impl, m, n, k, threads, simd,\n"
    "reps, seconds (median; matmul after 0.1 s of warm-up), gflops,\n"
    "max_err (relative, against a double reference),\n"
    "pass. matmul: C = alpha op(A) op(B) + beta C with nn: A·B, nt: A·Bᵀ, tn: Aᵀ·B.\n"
    "svd: full thin U, S, V; max_err is the largest of ‖A-USVᵀ‖/‖A‖, max|UᵀU-I|,\n"
    "max|VᵀV-I|; gflops uses the nominal R-SVD count 4m²n+8mn²+9n³.\n"
    "peak: register-only FMA throughput of this build's SIMD path.\n"
    "exp: ns per element of red's exp (vector and scalar form) and libm's expf and\n"
    "double exp over N (4096) floats in [-20, 5]; max_ulp against double exp.\n"
    "train: tokens/s of `red train`'s step (forward, CE, backward per sequence,\n"
    "one per thread on workers, joined by the batch tree; clip, AdamW)\n"
    "on configs a (d128 L4 h4 ffn384 seq256 b16), b (d256 L6 h8 ffn768 seq256 b16),\n"
    "c (d512 L8 h8 ffn1536 seq512 b8), vocab 512; pass = loss decreased on a\n"
    "learnable motif task. infer: KV-cache greedy decoding tokens/s after a\n"
    "prompt of seq/2 tokens (default batch 1, 64 new tokens); medians of R (5)\n"
    "rounds of prefill and decode after one untimed round.\n"
    "distill: tokens/s of an LRC distillation step (teacher forward, merged\n"
    "student forward and backward through the projections with CE + KL + clone\n"
    "losses, clip, AdamW) from the config's teacher to half width (default b),\n"
    "or a random teacher of CONFIG.json's shape (a Hugging Face config) to width\n"
    "D at T x B; the step `red distill` runs (a sequence at a time, one per\n"
    "thread on workers, joined by the batch tree); prints peak_rss_mb (getrusage)\n"
    "beside tok_per_s, and each phase's mean ms per step, summed over the step's\n"
    "sequences (thread time: merge, teacher and student forward, the vocabulary\n"
    "chunks' logits + CE + KL + head backward, clone terms + backward, optimizer).\n"
    "bench/torch_distill.py is the PyTorch peer.\n"
    "tokenize: encode MB/s and tokens/s over FILE's documents (one per line: JSON\n"
    "string, \"text\", or GSM8K question + answer), best of R (3), one thread; then\n"
    "Hugging Face's tokenizers on the same text (bench/tokenize_hf.js; needs node and\n"
    "the npm package tokenizers, e.g. through NODE_PATH).\n"
    "Exit status 1 if any check fails.\n";

int red_bench_main(int argc, char **argv) {
    bench_opts o;
    const char *what;
    int i, steps = 5, gen = 64, infer_batch = 1;
    const model_preset *preset = &model_presets[0];
    int preset_given = 0;
    const char *tok_path = NULL, *tok_data = NULL;
    memset(&o, 0, sizeof o);
    o.alpha = 1.0;
    o.beta = 0.0;
    o.trans = RED_NN;
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(usage_bench, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    what = argv[0];
    for (i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            fputs(usage_bench, stdout);
            return 0;
        }
        if (!strcmp(opt, "--scalar")) {
            o.scalar = 1;
            continue;
        }
        if (!strcmp(opt, "--chain-each-sequence")) {
            o.chain_each = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "red bench: %s needs a value (see red bench --help)\n", opt);
            return 2;
        }
        if (!strcmp(opt, "--m")) o.m = parse_int(opt, argv[++i], 1, 1 << 20);
        else if (!strcmp(opt, "--n")) o.n = parse_int(opt, argv[++i], 1, 1 << 20);
        else if (!strcmp(opt, "--k")) o.k = parse_int(opt, argv[++i], 1, 1 << 20);
        else if (!strcmp(opt, "--threads")) o.threads = parse_int(opt, argv[++i], 1, 1024);
        else if (!strcmp(opt, "--reps")) o.reps = parse_int(opt, argv[++i], 1, 100000);
        else if (!strcmp(opt, "--alpha")) o.alpha = atof(argv[++i]);
        else if (!strcmp(opt, "--steps")) steps = parse_int(opt, argv[++i], 1, 100000);
        else if (!strcmp(opt, "--gen")) gen = parse_int(opt, argv[++i], 1, 100000);
        else if (!strcmp(opt, "--batch")) o.batch = infer_batch = parse_int(opt, argv[++i], 1, 4096);
        else if (!strcmp(opt, "--seq")) o.seq = parse_int(opt, argv[++i], 2, 1 << 20);
        else if (!strcmp(opt, "--width")) o.width = parse_int(opt, argv[++i], 1, 1 << 20);
        else if (!strcmp(opt, "--teacher-config")) o.teacher_config = argv[++i];
        else if (!strcmp(opt, "--config")) {
            const char *cf = argv[++i];
            if (strlen(cf) != 1 || cf[0] < 'a' || cf[0] > 'c') {
                fprintf(stderr, "red bench: --config: expected a, b or c, got '%s'\n", cf);
                return 2;
            }
            preset = &model_presets[cf[0] - 'a'];
            preset_given = 1;
        }
        else if (!strcmp(opt, "--beta")) o.beta = atof(argv[++i]);
        else if (!strcmp(opt, "--tokenizer")) tok_path = argv[++i];
        else if (!strcmp(opt, "--data")) tok_data = argv[++i];
        else if (!strcmp(opt, "--trans")) {
            const char *t = argv[++i];
            if (!strcmp(t, "nn")) o.trans = RED_NN;
            else if (!strcmp(t, "nt")) o.trans = RED_NT;
            else if (!strcmp(t, "tn")) o.trans = RED_TN;
            else {
                fprintf(stderr, "red bench: --trans: expected nn, nt or tn, got '%s'\n", t);
                return 2;
            }
        } else {
            fprintf(stderr, "red bench: unknown option '%s' (see red bench --help)\n", opt);
            return 2;
        }
    }
    if (!strcmp(what, "peak")) return bench_peak(&o);
    if (!strcmp(what, "exp")) return bench_exp(&o);
    if (!strcmp(what, "tokenize")) return red_bench_tokenize(tok_path, tok_data, o.reps);
    if (!strcmp(what, "train")) return bench_train(&o, preset, steps);
    if (!strcmp(what, "infer")) return bench_infer(&o, preset, gen, infer_batch);
    if (!strcmp(what, "distill")) return bench_distill(&o, preset_given ? preset : &model_presets[1], steps);
    if (!strcmp(what, "matmul") || !strcmp(what, "svd")) {
        if (!o.m || !o.n || (!strcmp(what, "matmul") && !o.k)) {
            fprintf(stderr, "red bench %s: --m, --n%s are required\n", what,
                    !strcmp(what, "matmul") ? " and --k" : "");
            return 2;
        }
        return !strcmp(what, "matmul") ? bench_matmul(&o) : bench_svd(&o);
    }
    fprintf(stderr, "red bench: unknown benchmark '%s' (matmul, svd, peak, exp, train, infer, distill, tokenize)\n", what);
    return 2;
}

#ifdef RED_BENCH_PEER
/* accepts the same arguments as `red bench ...`, with or without the word bench */
int main(int argc, char **argv) {
    int skip = argc > 1 && !strcmp(argv[1], "bench") ? 2 : 1;
    return red_bench_main(argc - skip, argv + skip);
}
#endif
