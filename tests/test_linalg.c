/* tests/test_linalg.c - linalg.c: sgemm against a double-precision
 * reference for all three products, every edge shape 1..70, alpha/beta
 * cases, strides, SIMD vs scalar, bit-identical across thread counts; the
 * one-sided Jacobi SVD battery (GSL-style plus orthogonality), symmetric
 * eigen, random orthonormal matrices, effective rank; token
 * indistinguishability (cos_mean and indist@theta) against a direct O(N^2)
 * double computation on random rows and planted near-duplicates (pairs just
 * above and below each threshold), with and without token ids, invariance
 * to row order, zero rows, the same bits for every thread count.
 * SVD accuracy unit: eps_f = FLT_EPSILON (2^-23). The SVD computes in double
 * and rounds U, S, V to float, so a correct result has
 *   residual ‖A-USVᵀ‖_F/‖A‖_F <= 8 sqrt(k) eps_f   and   max|QᵀQ-I| <= 8 sqrt(len) eps_f
 * (float rounding of k-term sums with random-sign errors, with a factor 8 margin). */
#include <criterion/criterion.h>
#include <float.h>
#include <stdio.h>

#include "testutil.h"

static red_pool *pool;
static void setup(void) { pool = red_pool_create(2); }
static void teardown(void) { red_pool_destroy(pool); }

typedef struct {
    double resid, orth_u, orth_v;
} svd_check;

/* Runs the SVD and asserts the contract: status, sorted non-negative S, the
 * residual and both orthogonality errors within the bounds above. */
static svd_check run_svd(int m, int n, const float *A, float *S_out, const char *what) {
    int k = m < n ? m : n, j;
    float *U = malloc((size_t)m * k * 4 + 4), *S = malloc((size_t)k * 4 + 4), *V = malloc((size_t)n * k * 4 + 4);
    red_svd_info info;
    svd_check c;
    double len = m > n ? m : n;
    cr_assert_eq(red_svd(pool, m, n, A, n, U, S, V, &info), RED_OK, "%s: svd failed", what);
    for (j = 0; j < k; j++) {
        cr_assert(S[j] >= 0.0f, "%s: S[%d] = %g < 0", what, j, S[j]);
        if (j) cr_assert(S[j] <= S[j - 1], "%s: S not sorted at %d", what, j);
    }
    c.resid = tu_svd_resid(m, n, A, U, S, V);
    c.orth_u = tu_orth_err(U, m, k);
    c.orth_v = tu_orth_err(V, n, k);
    cr_assert(c.resid <= 8.0 * sqrt((double)k) * FLT_EPSILON, "%s: residual %.3g", what, c.resid);
    cr_assert(c.orth_u <= 8.0 * sqrt(len) * FLT_EPSILON, "%s: |UᵀU-I| %.3g", what, c.orth_u);
    cr_assert(c.orth_v <= 8.0 * sqrt(len) * FLT_EPSILON, "%s: |VᵀV-I| %.3g", what, c.orth_v);
    if (S_out) memcpy(S_out, S, (size_t)k * 4);
    free(U); free(S); free(V);
    return c;
}

Test(linalg, svd_random_square_tall_wide, .init = setup, .fini = teardown) {
    const int shapes[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {8, 8}, {17, 17}, {64, 64}, {100, 100},
                             {100, 7}, {64, 33}, {7, 100}, {33, 64}, {1, 9}, {9, 1}, {130, 129}};
    int s;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int m = shapes[s][0], n = shapes[s][1];
        red_rng r;
        float *A = malloc((size_t)m * n * 4);
        char what[64];
        red_rng_seed(&r, 100 + s);
        red_rng_fill_normal(&r, A, (size_t)m * n, 0.0f, 1.0f);
        snprintf(what, sizeof what, "random %dx%d", m, n);
        run_svd(m, n, A, NULL, what);
        free(A);
    }
}

Test(linalg, svd_one_by_one_and_zero, .init = setup, .fini = teardown) {
    float a = -3.0f, U, S, V, Z[12] = {0}, S4[4];
    cr_assert_eq(red_svd(pool, 1, 1, &a, 1, &U, &S, &V, NULL), RED_OK);
    cr_assert_eq(S, 3.0f);
    cr_assert_eq(U * S * V, -3.0f, "U S V = %g", U * S * V);
    /* zero matrix: all singular values 0, U and V still orthonormal */
    run_svd(4, 3, Z, S4, "zero 4x3");
    cr_assert(S4[0] == 0 && S4[1] == 0 && S4[2] == 0);
    run_svd(3, 4, Z, S4, "zero 3x4");
}

Test(linalg, svd_diagonal_gives_sorted_absolute_values, .init = setup, .fini = teardown) {
    float A[25] = {0}, S[5];
    const float d[5] = {0.5f, -4.0f, 2.0f, 0.0f, -1.0f}, want[5] = {4.0f, 2.0f, 1.0f, 0.5f, 0.0f};
    int i;
    for (i = 0; i < 5; i++) A[i * 5 + i] = d[i];
    run_svd(5, 5, A, S, "diagonal");
    for (i = 0; i < 5; i++) cr_assert_eq(S[i], want[i], "S[%d] = %g, want %g", i, S[i], want[i]);
}

Test(linalg, svd_rank_one_and_rank_deficient, .init = setup, .fini = teardown) {
    int m = 40, n = 30, r = 5, i, j, p;
    float *A = calloc((size_t)m * n, 4), *X, *Y, S[30];
    double nu = 0, nv = 0;
    red_rng g;
    red_rng_seed(&g, 9);
    X = tu_rand(&g, (size_t)m * r, -1, 1);
    Y = tu_rand(&g, (size_t)n * r, -1, 1);
    /* rank 1: A = x yᵀ, sigma_1 = |x||y| exactly, the rest ~ rounding */
    for (i = 0; i < m; i++) nu += (double)X[i * r] * X[i * r];
    for (j = 0; j < n; j++) nv += (double)Y[j * r] * Y[j * r];
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) A[i * n + j] = X[i * r] * Y[j * r];
    run_svd(m, n, A, S, "rank 1");
    cr_assert(fabs(S[0] - sqrt(nu * nv)) <= 4 * FLT_EPSILON * S[0], "sigma1 %.9g want %.9g", S[0], sqrt(nu * nv));
    cr_assert(S[1] <= 4 * FLT_EPSILON * S[0], "sigma2 %.3g for rank 1", S[1]);
    /* rank 5: sigma_6.. at rounding level; U, V still orthonormal */
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0;
            for (p = 0; p < r; p++) s += (double)X[i * r + p] * Y[j * r + p];
            A[i * n + j] = (float)s;
        }
    run_svd(m, n, A, S, "rank 5");
    cr_assert(S[4] > 1e-3 * S[0]);
    cr_assert(S[5] <= 8 * FLT_EPSILON * S[0], "sigma6 %.3g for rank 5", S[5]);
    /* repeated columns: the rotation cancels exactly, leaving zero columns that
     * must be completed to an orthonormal U */
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) A[i * n + j] = X[i * r + (j % 2)];
    run_svd(m, n, A, S, "two distinct columns repeated");
    cr_assert(S[2] <= 8 * FLT_EPSILON * S[0]);
    free(A);
    /* tall and rank 3: after three steps the pivoted QR is left with rounding
     * residue, which must end as zero rows of R, not be reduced until sums of
     * squares underflow (then the reflectors, so U, stop being orthogonal) */
    m = 200;
    A = malloc((size_t)m * n * 4);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) A[i * n + j] = X[(i % 40) * r + j % 3] * (float)(1 + i / 40);
    run_svd(m, n, A, S, "tall rank 3");
    cr_assert(S[3] <= 8 * FLT_EPSILON * S[0]);
    free(A); free(X); free(Y);
}

/* Every 2x2 matrix with entries in {-2..2}: sigma^2 = (f ± sqrt(f^2 - 4 det^2)) / 2
 * with f = ‖A‖_F^2; |sigma - exact| <= 4 eps_f ‖A‖_F. */
Test(linalg, svd_all_2x2_integer_matrices, .init = setup, .fini = teardown) {
    int a, b, c, d;
    for (a = -2; a <= 2; a++)
        for (b = -2; b <= 2; b++)
            for (c = -2; c <= 2; c++)
                for (d = -2; d <= 2; d++) {
                    float A[4] = {(float)a, (float)b, (float)c, (float)d}, S[2];
                    double f = a * a + b * b + c * c + d * d, det = a * d - b * c;
                    double disc = sqrt(fmax(f * f - 4 * det * det, 0.0));
                    double s1 = sqrt((f + disc) / 2), s2 = sqrt(fmax((f - disc) / 2, 0.0));
                    char what[64];
                    snprintf(what, sizeof what, "[[%d %d][%d %d]]", a, b, c, d);
                    run_svd(2, 2, A, S, what);
                    cr_assert(fabs(S[0] - s1) <= 4 * FLT_EPSILON * sqrt(f) + 1e-30, "%s: s1 %.9g want %.9g", what, S[0], s1);
                    cr_assert(fabs(S[1] - s2) <= 4 * FLT_EPSILON * sqrt(f) + 1e-30, "%s: s2 %.9g want %.9g", what, S[1], s2);
                }
}

/* Against LAPACK (numpy, float64) on the same float32 matrices. One-sided
 * Jacobi in double has high relative accuracy on graded matrices (Demmel &
 * Veselić 1992), so each sigma_i is checked relative to itself:
 * |s - ref| <= 4 eps_f s_ref + 64 eps_d cond-scaled slack (s_1 * 1e-14). */
static void check_fixture(const char *name, int relative) {
    char pa[128], ps[128];
    red_tensor A, Sref;
    red_error err;
    float *S;
    int m, n, k, j;
    snprintf(pa, sizeof pa, FIXTURE("svd_%s_A.npy"), name);
    snprintf(ps, sizeof ps, FIXTURE("svd_%s_S.npy"), name);
    cr_assert_eq(red_npy_load(pa, &A, &err), RED_OK, "%s", err.msg);
    cr_assert_eq(red_npy_load(ps, &Sref, &err), RED_OK, "%s", err.msg);
    m = (int)A.shape[0];
    n = (int)A.shape[1];
    k = m < n ? m : n;
    cr_assert_eq(Sref.shape[0], k);
    S = malloc((size_t)k * 4);
    run_svd(m, n, A.data, S, name);
    for (j = 0; j < k; j++) {
        double ref = Sref.data[j];
        double tol = relative ? 4 * FLT_EPSILON * ref + 1e-14 * Sref.data[0]
                              : 4 * sqrt((double)k) * FLT_EPSILON * Sref.data[0];
        cr_assert(fabs(S[j] - ref) <= tol, "%s: sigma_%d = %.9g, LAPACK %.9g (tol %.3g)", name, j, S[j], ref, tol);
    }
    free(S);
    red_tensor_free(&A);
    red_tensor_free(&Sref);
}

Test(linalg, svd_matches_lapack_fixtures, .init = setup, .fini = teardown) {
    check_fixture("random_20x13", 0);
    check_fixture("random_13x20", 0);
    check_fixture("hilbert_12", 0);   /* cond ~ 1e16: absolute accuracy only */
    check_fixture("vandermonde_8", 0);
    check_fixture("graded_10", 1);    /* sigma over ~10 decades: relative accuracy */
    check_fixture("graded_tall_60x8", 1);  /* both sides graded, rows shuffled: the QR before Jacobi keeps it */
}

Test(linalg, svd_values_only_and_threads_agree, .init = setup, .fini = teardown) {
    int m = 90, n = 70, j;
    float *A = malloc((size_t)m * n * 4), S1[70], S2[70], S3[70], *U = malloc((size_t)m * n * 4), *V = malloc((size_t)n * n * 4);
    red_pool *p1 = red_pool_create(1), *p3 = red_pool_create(3);
    red_rng r;
    red_rng_seed(&r, 4);
    red_rng_fill_normal(&r, A, (size_t)m * n, 0, 1);
    cr_assert_eq(red_svd(pool, m, n, A, n, NULL, S1, NULL, NULL), RED_OK);
    cr_assert_eq(red_svd(p1, m, n, A, n, U, S2, V, NULL), RED_OK);
    cr_assert_eq(red_svd(p3, m, n, A, n, U, S3, V, NULL), RED_OK);
    for (j = 0; j < n; j++) cr_assert_eq(S1[j], S2[j], "values-only differs at %d", j);
    cr_assert(memcmp(S2, S3, sizeof S2) == 0, "1 vs 3 threads differ");
    free(A); free(U); free(V);
    red_pool_destroy(p1);
    red_pool_destroy(p3);
}

/* The long singular vectors come from a triangular solve when cond(A) <= 1e6
 * and from accumulated rotations above: A = Q1 diag(sigma) Q2ᵀ with sigma
 * geometric from 1 to 1/cond. Either way the vectors stay orthonormal to well
 * below float rounding of the sums (a solve past its range loses ~cond eps_d). */
Test(linalg, svd_long_vectors_by_solve_or_rotations, .init = setup, .fini = teardown) {
    const double conds[5] = {10.0, 1e5, 9e5, 1e8, 1e12};
    const int m = 96, n = 64;
    float *A = malloc((size_t)m * n * 4), *Q1 = malloc((size_t)m * n * 4), *Q2 = malloc((size_t)n * n * 4),
          *U = malloc((size_t)m * n * 4), *V = malloc((size_t)n * n * 4), S[64];
    int c, i, j, l;
    for (c = 0; c < 5; c++) {
        red_rng r;
        red_svd_info info;
        double ou, ov, res;
        red_rng_seed(&r, 40 + c);
        cr_assert_eq(red_random_orthonormal(&r, m, n, Q1), RED_OK);
        cr_assert_eq(red_random_orthonormal(&r, n, n, Q2), RED_OK);
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) {
                double a = 0;
                for (l = 0; l < n; l++) a += Q1[i * n + l] * pow(conds[c], -(double)l / (n - 1)) * Q2[j * n + l];
                A[i * n + j] = (float)a;
            }
        cr_assert_eq(red_svd(pool, m, n, A, n, U, S, V, &info), RED_OK);
        cr_assert_eq(info.solved, conds[c] < 1e6 ? 1 : 0, "cond %g: solved = %d", conds[c], info.solved);
        ou = tu_orth_err(U, m, n);
        ov = tu_orth_err(V, n, n);
        res = tu_svd_resid(m, n, A, U, S, V);
        cr_assert(ou <= 2e-7 && ov <= 2e-7, "cond %g: |UᵀU-I| %.3g |VᵀV-I| %.3g", conds[c], ou, ov);
        cr_assert(res <= 2e-7, "cond %g: residual %.3g", conds[c], res);
    }
    free(A); free(Q1); free(Q2); free(U); free(V);
}

/* Large enough for several column blocks per round and for threads to be used
 * (red_svd splits a round's block pairs): 1 and 3 threads give the same bits. */
Test(linalg, svd_tiled_rounds_bit_identical_across_threads) {
    int m = 520, n = 460, k = 460;
    float *A = malloc((size_t)m * n * 4), *U1 = malloc((size_t)m * k * 4), *U3 = malloc((size_t)m * k * 4),
          *V1 = malloc((size_t)n * k * 4), *V3 = malloc((size_t)n * k * 4), *S1 = malloc((size_t)k * 4),
          *S3 = malloc((size_t)k * 4);
    red_pool *p1 = red_pool_create(1), *p3 = red_pool_create(3);
    red_svd_info i1, i3;
    red_rng r;
    red_rng_seed(&r, 12);
    red_rng_fill_normal(&r, A, (size_t)m * n, 0, 1);
    cr_assert_eq(red_svd(p1, m, n, A, n, U1, S1, V1, &i1), RED_OK);
    cr_assert_eq(red_svd(p3, m, n, A, n, U3, S3, V3, &i3), RED_OK);
    cr_assert_eq(i1.rotations, i3.rotations);
    cr_assert(memcmp(S1, S3, (size_t)k * 4) == 0, "S differs between 1 and 3 threads");
    cr_assert(memcmp(U1, U3, (size_t)m * k * 4) == 0, "U differs between 1 and 3 threads");
    cr_assert(memcmp(V1, V3, (size_t)n * k * 4) == 0, "V differs between 1 and 3 threads");
    cr_assert(tu_svd_resid(m, n, A, U1, S1, V1) <= 8.0 * sqrt((double)k) * FLT_EPSILON);
    free(A); free(U1); free(U3); free(V1); free(V3); free(S1); free(S3);
    red_pool_destroy(p1);
    red_pool_destroy(p3);
}

Test(linalg, svd_rejects_bad_input, .init = setup, .fini = teardown) {
    float A[4] = {1, 2, NAN, 4}, S[2];
    cr_assert_eq(red_svd(pool, 2, 2, A, 2, NULL, S, NULL, NULL), RED_E_ARG);
    A[2] = INFINITY;
    cr_assert_eq(red_svd(pool, 2, 2, A, 2, NULL, S, NULL, NULL), RED_E_ARG);
    cr_assert_eq(red_svd(pool, 2, 2, A, 1, NULL, S, NULL, NULL), RED_E_ARG);
}

/* tiny and huge scales: the double internals must neither underflow nor overflow */
Test(linalg, svd_extreme_scales, .init = setup, .fini = teardown) {
    const float scale[3] = {1e-40f, 1e-30f, 1e30f};
    int s, i;
    for (s = 0; s < 3; s++) {
        float A[20], S[4];
        red_rng r;
        char what[32];
        red_rng_seed(&r, 3);
        for (i = 0; i < 20; i++) A[i] = (float)(red_rng_normal(&r) * scale[s]);
        snprintf(what, sizeof what, "5x4 scaled %g", scale[s]);
        run_svd(5, 4, A, S, what);
        cr_assert(S[0] > 0 && isfinite(S[0]));
    }
}

/* ------------------------------------------------------------------ eigen */

Test(linalg, eig_symmetric_random_and_closed_forms, .init = setup, .fini = teardown) {
    int n = 30, i, j, p;
    float *A = malloc((size_t)n * n * 4), *Q = malloc((size_t)n * n * 4), w[30], B[4] = {2, 1, 1, 2}, w2[2], Q2[4];
    red_rng r;
    double worst = 0, norm = 0;
    red_rng_seed(&r, 12);
    for (i = 0; i < n; i++)
        for (j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = (float)red_rng_normal(&r);
    cr_assert_eq(red_eig_sym(n, A, n, w, Q), RED_OK);
    for (i = 1; i < n; i++) cr_assert(w[i] <= w[i - 1], "eigenvalues not descending at %d", i);
    /* ‖A Q - Q diag(w)‖_max <= 8 n eps_f ‖A‖_F */
    for (i = 0; i < n * n; i++) norm += (double)A[i] * A[i];
    norm = sqrt(norm);
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            double s = 0;
            for (p = 0; p < n; p++) s += (double)A[i * n + p] * Q[p * n + j];
            s -= (double)Q[i * n + j] * w[j];
            if (fabs(s) > worst) worst = fabs(s);
        }
    cr_assert(worst <= 8 * n * FLT_EPSILON * norm, "residual %.3g", worst);
    cr_assert(tu_orth_err(Q, n, n) <= 8 * sqrt((double)n) * FLT_EPSILON, "QᵀQ-I %.3g", tu_orth_err(Q, n, n));
    /* [[2 1][1 2]]: eigenvalues 3, 1 with eigenvectors (1,1)/√2, (1,-1)/√2 */
    cr_assert_eq(red_eig_sym(2, B, 2, w2, Q2), RED_OK);
    cr_assert(fabs(w2[0] - 3) <= 4 * FLT_EPSILON && fabs(w2[1] - 1) <= 4 * FLT_EPSILON);
    cr_assert(fabs(fabs(Q2[0]) - 0.70710678f) <= 4 * FLT_EPSILON);
    cr_assert(Q2[0] * Q2[2] > 0, "first eigenvector is (1,1)/sqrt2 up to sign");
    free(A); free(Q);
}

/* The eigenvalues of a Gram matrix XᵀX are the squared singular values of X. */
Test(linalg, eig_gram_matches_svd, .init = setup, .fini = teardown) {
    int m = 50, n = 12, i, j, p;
    float *X = malloc((size_t)m * n * 4), G[144], w[12], S[12];
    red_rng r;
    red_rng_seed(&r, 8);
    red_rng_fill_normal(&r, X, (size_t)m * n, 0, 1);
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            double s = 0;
            for (p = 0; p < m; p++) s += (double)X[p * n + i] * X[p * n + j];
            G[i * n + j] = (float)s;
        }
    cr_assert_eq(red_eig_sym(n, G, n, w, NULL), RED_OK);
    cr_assert_eq(red_svd(pool, m, n, X, n, NULL, S, NULL, NULL), RED_OK);
    for (j = 0; j < n; j++)
        cr_assert(fabs(w[j] - (double)S[j] * S[j]) <= 16 * n * FLT_EPSILON * w[0], "%d: %g vs %g", j, w[j], S[j] * S[j]);
    free(X);
}

/* ------------------------------------------------------------------ orthonormal */

Test(linalg, orthonormal_columns_orthonormal_and_seeded) {
    int n = 64, k = 20, i;
    float *Q = malloc((size_t)n * k * 4), *Q2 = malloc((size_t)n * k * 4);
    double mean = 0, sq = 0;
    red_rng r;
    red_rng_seed(&r, 77);
    cr_assert_eq(red_random_orthonormal(&r, n, k, Q), RED_OK);
    cr_assert(tu_orth_err(Q, n, k) <= 8 * sqrt((double)n) * FLT_EPSILON, "QᵀQ-I %.3g", tu_orth_err(Q, n, k));
    red_rng_seed(&r, 77);
    red_random_orthonormal(&r, n, k, Q2);
    cr_assert(memcmp(Q, Q2, (size_t)n * k * 4) == 0, "same seed, different matrix");
    /* Haar columns are uniform on the sphere: E[q]=0, E[q^2]=1/n. With n*k=1280
     * entries the sample mean has sd ~ 0.0035 and the mean square ~ 1/64 exactly
     * (each column has unit norm), so these bounds are 5 sd wide. */
    for (i = 0; i < n * k; i++) {
        mean += Q[i];
        sq += (double)Q[i] * Q[i];
    }
    mean /= n * k;
    sq /= n * k;
    cr_assert(fabs(mean) < 0.0175, "mean %g", mean);
    cr_assert(fabs(sq - 1.0 / n) < 1e-6, "mean square %g", sq);
    cr_assert_eq(red_random_orthonormal(&r, 3, 4, Q), RED_E_ARG);
    free(Q); free(Q2);
}

/* ------------------------------------------------------------------ eRank */

Test(linalg, erank_closed_forms, .init = setup, .fini = teardown) {
    int n = 16, i, j;
    float *I = calloc((size_t)n * n, 4), *R1 = malloc(40 * 8 * 4), sv[6] = {2, 2, 2, 0, 0, 0}, *Q;
    double e;
    red_rng r;
    for (i = 0; i < n; i++) I[i * n + i] = 1.0f;
    cr_assert_eq(red_erank(pool, n, n, I, n, 0, &e), RED_OK);
    cr_assert(fabs(e - n) <= 1e-6 * n, "identity: eRank %.9g, want %d", e, n);
    /* rank 1: one nonzero singular value */
    for (i = 0; i < 40; i++)
        for (j = 0; j < 8; j++) R1[i * 8 + j] = (float)(i + 1) * (float)(j - 3);
    cr_assert_eq(red_erank(pool, 40, 8, R1, 8, 0, &e), RED_OK);
    cr_assert(fabs(e - 1.0) <= 1e-5, "rank 1: eRank %.9g", e);
    /* k equal singular values (zeros contribute nothing) -> k */
    cr_assert(fabs(red_erank_from_sv(sv, 6) - 3.0) <= 1e-12);
    cr_assert_eq(red_erank_from_sv(sv + 3, 3), 0.0);
    /* 5 orthonormal rows scaled by 7: five equal singular values */
    Q = malloc(32 * 5 * 4);
    red_rng_seed(&r, 1);
    red_random_orthonormal(&r, 32, 5, Q);
    {
        float X[5 * 32];
        for (i = 0; i < 5; i++)
            for (j = 0; j < 32; j++) X[i * 32 + j] = 7.0f * Q[j * 5 + i];
        cr_assert_eq(red_erank(pool, 5, 32, X, 32, 0, &e), RED_OK);
        cr_assert(fabs(e - 5.0) <= 1e-5, "5 equal: %.9g", e);
    }
    /* centring: identical rows are rank 1 uncentred, all-zero (eRank 0) centred */
    for (i = 0; i < 40; i++)
        for (j = 0; j < 8; j++) R1[i * 8 + j] = (float)(j + 1);
    cr_assert_eq(red_erank(pool, 40, 8, R1, 8, 0, &e), RED_OK);
    cr_assert(fabs(e - 1.0) <= 1e-5);
    cr_assert_eq(red_erank(pool, 40, 8, R1, 8, 1, &e), RED_OK);
    cr_assert_eq(e, 0.0, "centred identical rows: eRank %g", e);
    free(I); free(R1); free(Q);
}

/* ------------------------------------------------------------------ gemm */

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

/* Same inputs on pools of 1, 2 and 3 threads: results must be bitwise equal.
 * 800x300x500: row slabs of more than 256 rows on 2 and 3 threads, which pack
 * B where smaller slabs read it in place (a ragged last panel, two k blocks). */
Test(linalg, gemm_bit_identical_across_thread_counts) {
    const int shapes[][3] = {{300, 200, 150}, {64, 700, 90}, {1000, 40, 600}, {37, 2500, 70}, {800, 300, 500}};
    red_pool *pools[3];
    int ti, s, p;
    for (p = 0; p < 3; p++) pools[p] = red_pool_create(p + 1);
    for (ti = 0; ti < 3; ti++)
        for (s = 0; s < 5; s++) {
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

/* ------------------------------------------------------------------ token indistinguishability */

/* Direct reference: every pair's cosine as a double dot product of double-normalised rows. */
static void reference(int m, int n, const float *X, const int64_t *ids, red_indist *out) {
    double *u = calloc((size_t)m * n, sizeof(double)), sum = 0.0;
    int64_t pairs = 0, distinct = 0, hit[RED_INDIST_N] = {0};
    int i, j, k, t;
    for (i = 0; i < m; i++) {
        double nr = 0.0;
        for (k = 0; k < n; k++) nr += (double)X[i * n + k] * X[i * n + k];
        nr = sqrt(nr);
        for (k = 0; k < n; k++) u[i * n + k] = nr > 0 ? X[i * n + k] / nr : 0.0;
    }
    for (i = 0; i < m; i++)
        for (j = i + 1; j < m; j++) {
            double c = 0.0;
            for (k = 0; k < n; k++) c += u[i * n + k] * u[j * n + k];
            sum += c;
            pairs++;
            if (!ids || ids[i] != ids[j]) {
                distinct++;
                for (t = 0; t < RED_INDIST_N; t++) hit[t] += c >= red_indist_theta[t];
            }
        }
    out->pairs = pairs;
    out->distinct_pairs = distinct;
    out->cos_mean = pairs ? sum / pairs : NAN;
    for (t = 0; t < RED_INDIST_N; t++) out->indist[t] = distinct ? (double)hit[t] / distinct : NAN;
    free(u);
}

static void expect_same(const red_indist *a, const red_indist *r, const char *what) {
    int t;
    cr_expect_eq(a->pairs, r->pairs, "%s: pairs %lld vs %lld", what, (long long)a->pairs, (long long)r->pairs);
    cr_expect_eq(a->distinct_pairs, r->distinct_pairs, "%s: distinct pairs", what);
    /* the sum of ~1e4 cosines in another order: |error| <= pairs * n * 2^-52 per term, far below 1e-12 */
    cr_expect(fabs(a->cos_mean - r->cos_mean) <= 1e-12 || (isnan(a->cos_mean) && isnan(r->cos_mean)),
              "%s: cos_mean %.17g vs %.17g", what, a->cos_mean, r->cos_mean);
    for (t = 0; t < RED_INDIST_N; t++)  /* counts: exact unless a cosine is within rounding of theta (none planted there) */
        cr_expect(a->indist[t] == r->indist[t] || (isnan(a->indist[t]) && isnan(r->indist[t])),
                  "%s: indist@%g %.17g vs %.17g", what, red_indist_theta[t], a->indist[t], r->indist[t]);
}

/* m rows of n: random directions, and planted pairs of rows at a chosen cosine to an earlier row. */
static float *planted_rows(red_rng *r, int m, int n, int64_t *ids) {
    float *X = malloc((size_t)m * n * sizeof(float));
    static const double cosines[] = {0.999, 0.995, 0.985, 0.97, 0.9, 0.5};
    int i, k;
    red_rng_fill_normal(r, X, (size_t)m * n, 0.0f, 1.0f);
    for (i = 0; i < m; i++) ids[i] = (int64_t)red_rng_below(r, 7);
    for (i = 1; i < m; i += 3) {  /* row i = c * unit(row base) + sqrt(1 - c^2) * unit(orthogonal part of noise) */
        int base = (int)red_rng_below(r, (uint64_t)i);
        double c = cosines[i % 6], nb = 0.0, dot = 0.0, no = 0.0, scale = 0.5 + red_rng_uniform(r) * 3.0;
        double *o = malloc((size_t)n * sizeof(double));
        for (k = 0; k < n; k++) nb += (double)X[base * n + k] * X[base * n + k];
        nb = sqrt(nb);
        for (k = 0; k < n; k++) dot += X[i * n + k] * (X[base * n + k] / nb);
        for (k = 0; k < n; k++) { o[k] = X[i * n + k] - dot * X[base * n + k] / nb; no += o[k] * o[k]; }
        no = sqrt(no);
        for (k = 0; k < n; k++) X[i * n + k] = (float)(scale * (c * X[base * n + k] / nb + sqrt(1 - c * c) * o[k] / no));
        free(o);
    }
    return X;
}

Test(linalg, indist_matches_direct_pairs_on_random_rows) {
    red_rng r;
    red_pool *pool = red_pool_create(2);
    int sizes[][2] = {{1, 3}, {2, 5}, {5, 1}, {63, 7}, {64, 16}, {65, 9}, {130, 33}, {201, 4}};
    int s;
    red_rng_seed(&r, 20261130);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
        int m = sizes[s][0], n = sizes[s][1];
        float *X = malloc((size_t)m * n * sizeof(float));
        int64_t *ids = malloc((size_t)m * sizeof(int64_t));
        red_indist a, ref;
        char what[64];
        int i;
        red_rng_fill_normal(&r, X, (size_t)m * n, 0.3f, 1.0f);  /* a common mean: cosines spread around 0.1 */
        for (i = 0; i < m; i++) ids[i] = (int64_t)red_rng_below(&r, 5);
        snprintf(what, sizeof what, "%dx%d ids", m, n);
        cr_assert_eq(red_token_indist(pool, m, n, X, n, ids, &a), RED_OK);
        reference(m, n, X, ids, &ref);
        expect_same(&a, &ref, what);
        snprintf(what, sizeof what, "%dx%d no ids", m, n);
        cr_assert_eq(red_token_indist(pool, m, n, X, n, NULL, &a), RED_OK);
        reference(m, n, X, NULL, &ref);
        expect_same(&a, &ref, what);
        if (m < 2) cr_expect(isnan(a.cos_mean) && isnan(a.indist[0]), "no pair: NaN");
        free(X);
        free(ids);
    }
    red_pool_destroy(pool);
}

Test(linalg, indist_counts_planted_near_duplicates_exactly) {
    red_rng r;
    red_pool *pool = red_pool_create(2);
    int m = 150, n = 24, i;
    int64_t ids[150], same[150];
    float *X;
    red_indist a, ref;
    red_rng_seed(&r, 77);
    X = planted_rows(&r, m, n, ids);
    reference(m, n, X, ids, &ref);
    cr_assert_eq(red_token_indist(pool, m, n, X, n, ids, &a), RED_OK);
    expect_same(&a, &ref, "planted, ids");
    cr_expect(ref.indist[0] > ref.indist[1] && ref.indist[1] > 0, "the plant lands on both sides of each threshold");
    /* same ids everywhere: no distinct pair, indist undefined; cos_mean unaffected */
    for (i = 0; i < m; i++) same[i] = 42;
    cr_assert_eq(red_token_indist(pool, m, n, X, n, same, &a), RED_OK);
    cr_expect_eq(a.distinct_pairs, 0);
    cr_expect(isnan(a.indist[0]) && isnan(a.indist[1]), "no distinct pair: NaN");
    cr_expect(fabs(a.cos_mean - ref.cos_mean) <= 1e-12, "cos_mean does not depend on ids");
    /* identical rows with distinct ids are all indistinguishable; scaled copies too */
    for (i = 0; i < m; i++) {
        int k;
        for (k = 0; k < n; k++) X[i * n + k] = (float)((1 + i % 4) * (k + 1));
        same[i] = i;
    }
    cr_assert_eq(red_token_indist(pool, m, n, X, n, same, &a), RED_OK);
    cr_expect(a.indist[0] == 1.0 && a.indist[1] == 1.0, "copies: indist 1 (got %g, %g)", a.indist[0], a.indist[1]);
    cr_expect(fabs(a.cos_mean - 1.0) < 1e-14, "copies: cos_mean 1 (got %.17g)", a.cos_mean);
    free(X);
    red_pool_destroy(pool);
}

Test(linalg, indist_zero_rows_have_cosine_zero) {
    float X[4 * 3] = {1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0};  /* rows 1 and 3 are zero */
    red_indist a;
    cr_assert_eq(red_token_indist(NULL, 4, 3, X, 3, NULL, &a), RED_OK);
    /* pairs: (0,2) cos 1, the other five 0 */
    cr_expect(fabs(a.cos_mean - 1.0 / 6.0) < 1e-15, "cos_mean %.17g", a.cos_mean);
    cr_expect(fabs(a.indist[0] - 1.0 / 6.0) < 1e-15 && fabs(a.indist[1] - 1.0 / 6.0) < 1e-15, "only the parallel pair");
    X[4] = NAN;
    cr_expect_eq(red_token_indist(NULL, 4, 3, X, 3, NULL, &a), RED_E_ARG, "non-finite rows are refused");
    cr_expect_eq(red_token_indist(NULL, 4, 0, X, 3, NULL, &a), RED_E_ARG);
}

Test(linalg, indist_invariant_to_row_order_and_thread_count) {
    red_rng r;
    int m = 333, n = 40, i, th;
    int64_t ids[333], pids[333];
    float *X, *Y = malloc((size_t)333 * 40 * sizeof(float));
    int perm[333];
    red_indist a, b, one;
    red_rng_seed(&r, 5);
    X = planted_rows(&r, m, n, ids);
    for (i = 0; i < m; i++) perm[i] = i;
    for (i = m - 1; i > 0; i--) {
        int j = (int)red_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j]; perm[j] = t;
    }
    for (i = 0; i < m; i++) {
        memcpy(Y + (size_t)i * n, X + (size_t)perm[i] * n, (size_t)n * sizeof(float));
        pids[i] = ids[perm[i]];
    }
    cr_assert_eq(red_token_indist(NULL, m, n, X, n, ids, &one), RED_OK);
    cr_assert_eq(red_token_indist(NULL, m, n, Y, n, pids, &b), RED_OK);
    cr_expect_eq(b.pairs, one.pairs);
    cr_expect_eq(b.indist[0], one.indist[0], "indist@0.95 is a count: exactly order-free");
    cr_expect_eq(b.indist[1], one.indist[1]);
    cr_expect(fabs(b.cos_mean - one.cos_mean) < 1e-13, "cos_mean up to summation order: %.17g vs %.17g", b.cos_mean,
              one.cos_mean);
    for (th = 2; th <= 4; th++) {  /* bit-identical for every thread count (21 tile pairs, split differently) */
        red_pool *pool = red_pool_create(th);
        cr_assert_eq(red_token_indist(pool, m, n, X, n, ids, &a), RED_OK);
        cr_expect(memcmp(&a.cos_mean, &one.cos_mean, sizeof(double)) == 0, "%d threads: cos_mean %.17g vs %.17g", th,
                  a.cos_mean, one.cos_mean);
        cr_expect(a.indist[0] == one.indist[0] && a.indist[1] == one.indist[1], "%d threads: counts", th);
        red_pool_destroy(pool);
    }
    free(X);
    free(Y);
}

/* red_sgemm_nt_parts (q/k/v, gate/up from one input) gives every part the
 * bits of its own red_sgemm, whatever the tiling: parts on and off register
 * tiles (the fallback), a ragged last part, k over several blocks, beta 1,
 * row strides past the width, 1 and 2 threads. */
Test(linalg, gemm_nt_parts_bit_identical_to_separate_products, .init = setup, .fini = teardown) {
    const int cases[][5] = {/* m, k, n0, n1, n2 */ {256, 128, 128, 64, 64}, {70, 41, 96, 32, 37},
                            {33, 500, 32, 45, 64}, {5, 20, 64, 64, 8}, {300, 64, 192, 192, 0}};
    red_pool *p1 = red_pool_create(1);
    int c, t, p;
    for (c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++)
        for (t = 0; t < 2; t++) {
            int m = cases[c][0], k = cases[c][1], parts = cases[c][4] ? 3 : 2, n[3], ld[3], ldc[3];
            float *B[3], *C[3], *R[3], *A;
            red_rng r;
            red_rng_seed(&r, 900 + c);
            A = tu_rand(&r, (size_t)m * k, -1, 1);
            for (p = 0; p < parts; p++) {
                n[p] = cases[c][2 + p];
                ld[p] = k;
                ldc[p] = n[p] + p;  /* a stride past the width */
                B[p] = tu_rand(&r, (size_t)n[p] * k, -1, 1);
                C[p] = tu_rand(&r, (size_t)m * ldc[p], -1, 1);
                R[p] = malloc((size_t)m * ldc[p] * 4);
                memcpy(R[p], C[p], (size_t)m * ldc[p] * 4);
                cr_assert(red_sgemm(p1, RED_NT, m, n[p], k, 0.5f, A, k, B[p], k, 1.0f, R[p], ldc[p]) == RED_OK);
            }
            cr_assert(red_sgemm_nt_parts(t ? pool : p1, m, k, 0.5f, A, k, parts, n, (const float *const *)B, ld, NULL,
                                         1.0f, C, ldc) == RED_OK);
            for (p = 0; p < parts; p++) {
                cr_expect(memcmp(C[p], R[p], (size_t)m * ldc[p] * 4) == 0, "case %d part %d threads %d differs", c,
                          p, t + 1);
                free(B[p]); free(C[p]); free(R[p]);
            }
            free(A);
        }
    red_pool_destroy(p1);
}

/* red_sgemm_nt_packed against red_sgemm(RED_NT) bit for bit: B packed once,
 * multiplied by prefixes of its columns (attention's row chunks), k over
 * several k blocks, on a pool and on the calling thread. */
Test(linalg, gemm_nt_packed_bit_identical_to_red_sgemm, .init = setup, .fini = teardown) {
    const int cases[][3] = {/* m, packed n, k */ {64, 256, 32}, {70, 70, 8}, {33, 100, 900}, {1, 5, 3}};
    int c, n, t;
    for (c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        int m = cases[c][0], pn = cases[c][1], k = cases[c][2];
        float *packed = malloc(red_gemm_nt_packed_floats(pn, k) * 4), *A, *B, *C, *R;
        void *ws = red_malloc_aligned(RED_POOL_SCRATCH_BYTES);  /* a thread's GEMM scratch */
        red_rng r;
        red_rng_seed(&r, 950 + c);
        A = tu_rand(&r, (size_t)m * k, -1, 1);
        B = tu_rand(&r, (size_t)pn * k, -1, 1);
        C = malloc((size_t)m * pn * 4);
        R = malloc((size_t)m * pn * 4);
        red_gemm_nt_pack(B, k, pn, k, packed);
        for (n = 1; n <= pn; n += n < 8 ? 1 : 29)
            for (t = 0; t < 2; t++) {
                memset(C, 0x7f, (size_t)m * pn * 4);
                memset(R, 0x7f, (size_t)m * pn * 4);
                cr_assert(red_sgemm(pool, RED_NT, m, n, k, 0.75f, A, k, B, k, 0.0f, R, pn) == RED_OK);
                cr_assert(red_sgemm_nt_packed(t ? NULL : pool, t ? ws : NULL, m, n, k, 0.75f, A, k, packed, pn, 0.0f,
                                              C, pn) == RED_OK);
                cr_expect(memcmp(C, R, (size_t)m * pn * 4) == 0, "m=%d n=%d of %d k=%d %s differs", m, n, pn, k,
                          t ? "serial" : "pool");
            }
        cr_expect(red_sgemm_nt_packed(pool, NULL, m, pn + 1, k, 1.0f, A, k, packed, pn, 0.0f, C, pn + 1) == RED_E_ARG,
                  "more columns than were packed");
        free(packed); free(A); free(B); free(C); free(R);
        red_free_aligned(ws);
    }
}

/* A read in place by the micro-kernel (nn and nt: rows lda apart; tn: its
 * columns) does the arithmetic of a packed A: the same bits. Rows more than
 * 768 floats apart are always packed, so the same A at a wide stride is the
 * packed reference. Row counts end on a whole tile, a short kernel's rows
 * and neither; k spans one and two k blocks. */
Test(linalg, gemm_a_in_place_bit_identical_to_packed, .init = setup, .fini = teardown) {
    const int ms[] = {12, 24, 28, 32, 41, 256}, ks[] = {7, 64, 384, 500}, wide = 1000;
    int ti, mi, ki;
    for (ti = 0; ti < 3; ti++)
        for (mi = 0; mi < (int)(sizeof ms / sizeof ms[0]); mi++)
            for (ki = 0; ki < (int)(sizeof ks / sizeof ks[0]); ki++) {
                red_trans t = all_trans[ti];
                int m = ms[mi], k = ks[ki], n = 70, arows = t == RED_TN ? k : m, acols = t == RED_TN ? m : k,
                    ldb = t == RED_NT ? k : n, i;
                red_rng r;
                float *A, *Aw, *B, *C, *Cw;
                red_rng_seed(&r, 4000 + 10 * mi + ki);
                A = tu_rand(&r, (size_t)arows * acols, -1, 1);
                B = tu_rand(&r, (size_t)(t == RED_NT ? n : k) * ldb, -1, 1);
                Aw = calloc((size_t)arows * wide, 4);
                for (i = 0; i < arows; i++) memcpy(Aw + (size_t)i * wide, A + (size_t)i * acols, (size_t)acols * 4);
                C = malloc((size_t)m * n * 4);
                Cw = malloc((size_t)m * n * 4);
                cr_assert(red_sgemm(pool, t, m, n, k, 0.75f, A, acols, B, ldb, 0.0f, C, n) == RED_OK);
                cr_assert(red_sgemm(pool, t, m, n, k, 0.75f, Aw, wide, B, ldb, 0.0f, Cw, n) == RED_OK);
                cr_expect(memcmp(C, Cw, (size_t)m * n * 4) == 0, "%s m=%d k=%d: A in place differs from packed",
                          red_trans_name(t), m, k);
                free(A); free(Aw); free(B); free(C); free(Cw);
            }
}
