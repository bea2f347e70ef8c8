/* tests/test_svd.c - one-sided Jacobi SVD battery (GSL-style plus orthogonality),
 * symmetric eigen, random orthonormal matrices, effective rank.
 * Accuracy unit: eps_f = FLT_EPSILON (2^-23). The SVD computes in double and
 * rounds U, S, V to float, so a correct result has
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
