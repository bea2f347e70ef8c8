/* tests/test_indist.c - token indistinguishability (linalg.c): cos_mean and
 * indist@theta against a direct O(N^2) double computation on random rows and
 * on planted near-duplicates (pairs placed just above and below each
 * threshold), with and without token ids; invariance to row order; zero rows;
 * the same bits for every thread count. */
#include "testutil.h"

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
