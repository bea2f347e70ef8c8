/* tests/test_gemm.c - sgemm against a double-precision reference for all three
 * products, every edge shape 1..70, alpha/beta cases, strides, SIMD vs scalar,
 * and bit-identical results across thread counts. */
#include <criterion/criterion.h>
#include <float.h>
#include <stdio.h>

#include "testutil.h"

static red_pool *pool;
static void setup(void) { pool = red_pool_create(2); }
static void teardown(void) { red_pool_destroy(pool); }

typedef red_status (*gemm_fn)(red_pool *, red_trans, int, int, int, float, const float *, int,
                              const float *, int, float, float *, int);

/* Runs one product with leading dimensions padded by `pad` and checks every
 * element: |c - ref| <= (k + 2) * eps_f * (|alpha| sum|a b| + |beta c0|), the
 * standard bound for a length-k fp32 dot product plus the alpha/beta rounding.
 * Returns the worst error ratio (<= 1 passes). */
static double check_gemm(gemm_fn fn, red_trans t, int m, int n, int k, float alpha, float beta,
                         int pad, uint64_t seed) {
    red_rng r;
    int arows = t == RED_TN ? k : m, acols = t == RED_TN ? m : k;
    int brows = t == RED_NT ? n : k, bcols = t == RED_NT ? k : n;
    int lda = acols + pad, ldb = bcols + pad, ldc = n + pad, i, j;
    float *A, *B, *C, *C0;
    double *ref = malloc((size_t)m * n * sizeof *ref + 8), *mag = malloc((size_t)m * n * sizeof *mag + 8);
    double worst = 0.0, tol_unit = (k + 2) * (double)FLT_EPSILON;
    red_rng_seed(&r, seed);
    A = tu_rand(&r, (size_t)arows * lda, -1, 1);
    B = tu_rand(&r, (size_t)brows * ldb, -1, 1);
    C0 = tu_rand(&r, (size_t)m * ldc, -1, 1);
    C = malloc(((size_t)m * ldc + 1) * sizeof *C);
    memcpy(C, C0, (size_t)m * ldc * sizeof *C);
    if (beta == 0.0f)  /* beta = 0 must not read C: poison it */
        for (i = 0; i < m * ldc; i++) C[i] = NAN;
    cr_assert_eq(fn(pool, t, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), RED_OK);
    tu_gemm_ref(t, m, n, k, alpha, A, lda, B, ldb, beta, C0, ldc, ref, mag);
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            double e = fabs(C[(size_t)i * ldc + j] - ref[(size_t)i * n + j]);
            double bound = tol_unit * mag[(size_t)i * n + j] + 1e-30;
            if (!(e / bound <= worst)) worst = e / bound;
        }
        for (j = n; j < ldc; j++)  /* padding columns of C are untouched */
            if (beta != 0.0f) cr_assert_eq(C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
    }
    free(A); free(B); free(C); free(C0); free(ref); free(mag);
    return worst;
}

static const red_trans all_trans[3] = {RED_NN, RED_NT, RED_TN};

Test(linalg, gemm_edge_shapes_1_to_70, .init = setup, .fini = teardown) {
    int ti, d, v;
    for (ti = 0; ti < 3; ti++)
        for (d = 1; d <= 70; d++) {
            int shapes[4][3] = {{d, 37, 41}, {37, d, 41}, {37, 41, d}, {d, d, d}};
            for (v = 0; v < 4; v++) {
                double w = check_gemm(red_sgemm, all_trans[ti], shapes[v][0], shapes[v][1],
                                      shapes[v][2], 1.0f, 0.0f, 0, 1000 + d);
                cr_assert(w <= 1.0, "%s m=%d n=%d k=%d: error %.3g x bound", red_trans_name(all_trans[ti]),
                          shapes[v][0], shapes[v][1], shapes[v][2], w);
            }
        }
}

Test(linalg, gemm_alpha_beta_and_strides, .init = setup, .fini = teardown) {
    const float ab[6][2] = {{1, 0}, {1, 1}, {-0.5f, 2}, {2, -1}, {0.25f, 0.5f}, {-1, 0}};
    int ti, c, pad;
    for (ti = 0; ti < 3; ti++)
        for (c = 0; c < 6; c++)
            for (pad = 0; pad <= 3; pad += 3) {
                double w = check_gemm(red_sgemm, all_trans[ti], 29, 53, 31, ab[c][0], ab[c][1], pad, 77 + c);
                cr_assert(w <= 1.0, "%s alpha=%g beta=%g pad=%d: error %.3g x bound",
                          red_trans_name(all_trans[ti]), ab[c][0], ab[c][1], pad, w);
            }
}

Test(linalg, gemm_large_and_odd_shapes, .init = setup, .fini = teardown) {
    /* k > KC (several k blocks), n > NC (several column blocks), thin shapes */
    const int shapes[][3] = {{257, 263, 301}, {1000, 3, 517}, {3, 1000, 517}, {129, 131, 1025},
                             {70, 2100, 40}, {401, 50, 800}, {1, 1, 3000}, {500, 1, 1}};
    int ti, s;
    for (ti = 0; ti < 3; ti++)
        for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
            double w = check_gemm(red_sgemm, all_trans[ti], shapes[s][0], shapes[s][1], shapes[s][2],
                                  1.0f, s % 2 ? 1.0f : 0.0f, s % 3, 500 + s);
            cr_assert(w <= 1.0, "%s m=%d n=%d k=%d: error %.3g x bound", red_trans_name(all_trans[ti]),
                      shapes[s][0], shapes[s][1], shapes[s][2], w);
        }
}

Test(linalg, gemm_scalar_path_meets_the_same_bound, .init = setup, .fini = teardown) {
    int ti, d;
    for (ti = 0; ti < 3; ti++)
        for (d = 1; d <= 70; d += 3) {
            double w = check_gemm(red_sgemm_scalar, all_trans[ti], d, 71 - d, 33 + d, 1.5f, -0.5f, 1, d);
            cr_assert(w <= 1.0, "scalar %s d=%d: error %.3g x bound", red_trans_name(all_trans[ti]), d, w);
        }
}

/* The SIMD path against the scalar path: both within (k+2) eps of the exact
 * value, so they differ by at most twice that bound. */
Test(linalg, gemm_simd_matches_scalar, .init = setup, .fini = teardown) {
    const int shapes[][3] = {{67, 45, 33}, {128, 96, 256}, {13, 300, 129}, {300, 13, 700}};
    int ti, s, i;
    for (ti = 0; ti < 3; ti++)
        for (s = 0; s < 4; s++) {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            int lda = all_trans[ti] == RED_TN ? m : k, ldb = all_trans[ti] == RED_NT ? k : n;
            red_rng r;
            float *A, *B, *C1 = calloc((size_t)m * n, 4), *C2 = calloc((size_t)m * n, 4);
            double *ref = malloc((size_t)m * n * 8), *mag = malloc((size_t)m * n * 8);
            red_rng_seed(&r, 31 + s);
            A = tu_rand(&r, (size_t)m * k, -1, 1);
            B = tu_rand(&r, (size_t)k * n, -1, 1);
            red_sgemm(pool, all_trans[ti], m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C1, n);
            red_sgemm_scalar(pool, all_trans[ti], m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C2, n);
            tu_gemm_ref(all_trans[ti], m, n, k, 1.0, A, lda, B, ldb, 0.0, NULL, n, ref, mag);
            for (i = 0; i < m * n; i++)
                cr_assert(fabs((double)C1[i] - C2[i]) <= 2.0 * (k + 2) * FLT_EPSILON * mag[i] + 1e-30,
                          "%s %dx%dx%d element %d: simd %.9g scalar %.9g", red_trans_name(all_trans[ti]),
                          m, n, k, i, C1[i], C2[i]);
            free(A); free(B); free(C1); free(C2); free(ref); free(mag);
        }
}

/* Same inputs on pools of 1, 2 and 3 threads: results must be bitwise equal. */
Test(linalg, gemm_bit_identical_across_thread_counts) {
    const int shapes[][3] = {{300, 200, 150}, {64, 700, 90}, {1000, 40, 600}, {37, 2500, 70}};
    red_pool *pools[3];
    int ti, s, p;
    for (p = 0; p < 3; p++) pools[p] = red_pool_create(p + 1);
    for (ti = 0; ti < 3; ti++)
        for (s = 0; s < 4; s++) {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            int lda = all_trans[ti] == RED_TN ? m : k, ldb = all_trans[ti] == RED_NT ? k : n;
            red_rng r;
            float *A, *B, *C0, *C[3];
            red_rng_seed(&r, 5 + s);
            A = tu_rand(&r, (size_t)m * k, -1, 1);
            B = tu_rand(&r, (size_t)k * n, -1, 1);
            C0 = tu_rand(&r, (size_t)m * n, -1, 1);
            for (p = 0; p < 3; p++) {
                C[p] = malloc((size_t)m * n * 4);
                memcpy(C[p], C0, (size_t)m * n * 4);
                red_sgemm(pools[p], all_trans[ti], m, n, k, 0.75f, A, lda, B, ldb, 1.0f, C[p], n);
            }
            cr_assert(memcmp(C[0], C[1], (size_t)m * n * 4) == 0, "%s %dx%dx%d: 1 vs 2 threads differ",
                      red_trans_name(all_trans[ti]), m, n, k);
            cr_assert(memcmp(C[0], C[2], (size_t)m * n * 4) == 0, "%s %dx%dx%d: 1 vs 3 threads differ",
                      red_trans_name(all_trans[ti]), m, n, k);
            free(A); free(B); free(C0);
            for (p = 0; p < 3; p++) free(C[p]);
        }
    for (p = 0; p < 3; p++) red_pool_destroy(pools[p]);
}

Test(linalg, gemm_degenerate_sizes_and_bad_arguments, .init = setup, .fini = teardown) {
    float A[6] = {1, 2, 3, 4, 5, 6}, C[4] = {1, 2, 3, 4};
    /* k = 0: C = beta C without touching A or B */
    cr_assert_eq(red_sgemm(pool, RED_NN, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 2.0f, C, 2), RED_OK);
    cr_assert(C[0] == 2 && C[3] == 8);
    /* alpha = 0, beta = 0: zeros */
    cr_assert_eq(red_sgemm(pool, RED_NN, 2, 2, 3, 0.0f, A, 3, A, 2, 0.0f, C, 2), RED_OK);
    cr_assert(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0);
    cr_assert_eq(red_sgemm(pool, RED_NN, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, NULL, 5), RED_OK);
    cr_assert_eq(red_sgemm(pool, RED_NN, 2, 2, 3, 1.0f, A, 2, A, 2, 0.0f, C, 2), RED_E_ARG);  /* lda < k */
    cr_assert_eq(red_sgemm(pool, RED_NT, 2, 2, 3, 1.0f, A, 3, A, 2, 0.0f, C, 2), RED_E_ARG);  /* ldb < k */
    cr_assert_eq(red_sgemm(pool, RED_TN, 2, 2, 3, 1.0f, A, 1, A, 2, 0.0f, C, 2), RED_E_ARG);  /* lda < m */
    cr_assert_eq(red_sgemm(pool, RED_NN, -1, 2, 3, 1.0f, A, 3, A, 2, 0.0f, C, 2), RED_E_ARG);
    cr_assert_eq(red_sgemm(NULL, RED_NN, 2, 2, 3, 1.0f, A, 3, A, 2, 0.0f, C, 2), RED_E_ARG);
}
