/* tests/test_tensor.c - arena, tensors, thread pool, RNG, vector kernels. */
#include <criterion/criterion.h>
#include <float.h>
#include <stdio.h>

#include "testutil.h"

Test(tensor, arena_aligned_bounded_and_resettable) {
    red_arena a;
    void *p, *q;
    size_t mark;
    cr_assert_eq(red_arena_reserve(&a, 1000), RED_OK);
    p = red_arena_alloc(&a, 10);
    q = red_arena_alloc(&a, 10);
    cr_assert(p && q);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq((uintptr_t)q % 64, 0);
    cr_assert_eq((char *)q - (char *)p, 64, "second block starts on the next line");
    mark = red_arena_mark(&a);
    cr_assert_null(red_arena_alloc(&a, 2000), "over-capacity request must fail, not grow");
    cr_assert_not_null(red_arena_alloc(&a, 800));
    cr_assert_null(red_arena_alloc(&a, 100), "arena is full");
    red_arena_reset(&a, mark);
    cr_assert_not_null(red_arena_alloc(&a, 100));
    red_arena_free(&a);
}

Test(tensor, shapes_and_numel) {
    red_arena a;
    red_tensor t;
    int64_t s4[4] = {2, 3, 4, 5}, bad[2] = {3, -1};
    red_arena_reserve(&a, 1 << 16);
    cr_assert_eq(red_tensor_arena(&t, &a, 4, s4), RED_OK);
    cr_assert_eq(red_tensor_numel(&t), 120);
    cr_assert_eq(red_tensor_arena(&t, &a, 2, bad), RED_E_ARG);
    cr_assert_eq(red_tensor_arena(&t, &a, 5, s4), RED_E_ARG);
    cr_assert_eq(red_tensor_heap(&t, 0, NULL), RED_OK);
    cr_assert_eq(red_tensor_numel(&t), 1, "0-D tensor is a scalar");
    red_tensor_free(&t);
    red_arena_free(&a);
}

/* ------------------------------------------------------------------ pool */

typedef struct {
    int hits[8];
    int nth_seen[8];
} pool_probe;

static void probe_task(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    p->hits[ith]++;  /* each ith is one thread: no sharing */
    p->nth_seen[ith] = nth;
}

Test(tensor, pool_every_thread_runs_each_task_once) {
    int sizes[3] = {1, 2, 5}, s, run, i;
    for (s = 0; s < 3; s++) {
        red_pool *p = red_pool_create(sizes[s]);
        pool_probe pr;
        cr_assert_not_null(p);
        cr_assert_eq(red_pool_size(p), sizes[s]);
        memset(&pr, 0, sizeof pr);
        for (run = 0; run < 2000; run++) red_pool_run(p, 0, probe_task, &pr);
        for (i = 0; i < sizes[s]; i++) {
            cr_assert_eq(pr.hits[i], 2000, "pool %d: thread %d ran %d times", sizes[s], i, pr.hits[i]);
            cr_assert_eq(pr.nth_seen[i], sizes[s]);
        }
        /* a task on fewer threads than the pool has */
        memset(&pr, 0, sizeof pr);
        red_pool_run(p, 1, probe_task, &pr);
        cr_assert_eq(pr.hits[0], 1);
        for (i = 1; i < sizes[s]; i++) cr_assert_eq(pr.hits[i], 0);
        red_pool_destroy(p);
    }
}

/* Polls red_pool_awake for up to `seconds`; returns the last value read. */
static int pool_awake_within(const red_pool *p, int want, double seconds) {
    double t0 = red_time_seconds();
    int awake;
    while ((awake = red_pool_awake(p)) != want && red_time_seconds() - t0 < seconds) continue;
    return awake;
}

/* Workers spin for a few ms after a task, then sleep; red_pool_wake sends
 * them back to spinning without running anything. */
Test(tensor, pool_wake_sends_sleepers_back_to_spinning_without_a_task) {
    red_pool *p = red_pool_create(3);
    pool_probe pr;
    int run, i, tries, awake = 0;
    cr_assert_not_null(p);
    memset(&pr, 0, sizeof pr);
    red_pool_run(p, 0, probe_task, &pr);
    cr_assert_eq(pool_awake_within(p, 0, 5.0), 0, "workers never fell asleep");
    /* A worker spins for ~4 ms and then sleeps again; on a loaded machine one
     * may not be scheduled until another is back asleep, so wake again until
     * all are seen awake at once (without red_pool_wake they never are). */
    for (tries = 0; tries < 100 && !awake; tries++) {
        red_pool_wake(p);
        awake = pool_awake_within(p, 1, 0.05);
    }
    cr_assert_eq(awake, 1, "red_pool_wake left the workers asleep");
    for (i = 0; i < 3; i++) cr_assert_eq(pr.hits[i], 1, "a wake ran a task on thread %d", i);
    /* wakes between tasks, asleep or not, never lose or repeat one */
    for (run = 0; run < 2000; run++) {
        if (run % 3 == 0) red_pool_wake(p);
        red_pool_run(p, 0, probe_task, &pr);
    }
    for (i = 0; i < 3; i++) cr_assert_eq(pr.hits[i], 2001, "thread %d ran %d tasks", i, pr.hits[i]);
    red_pool_destroy(p);
}

Test(tensor, pool_split_range_partitions_exactly) {
    int64_t n, lo, hi, prev;
    int nth, ith;
    for (n = 0; n < 50; n++)
        for (nth = 1; nth <= 7; nth++) {
            prev = 0;
            for (ith = 0; ith < nth; ith++) {
                red_split_range(n, ith, nth, &lo, &hi);
                cr_assert_eq(lo, prev, "gap or overlap at n=%lld nth=%d", (long long)n, nth);
                cr_assert(hi - lo <= n / nth + 1, "unbalanced");
                prev = hi;
            }
            cr_assert_eq(prev, n);
        }
}

/* ------------------------------------------------------------------ RNG */

/* Golden values from tests/fixtures/make_fixtures.py, a Python implementation
 * of splitmix64 + xoshiro256** + the polar method written from the papers. */
Test(tensor, rng_matches_independent_python_implementation) {
    FILE *f = fopen(FIXTURE("rng_golden.txt"), "r");
    char kind[16];
    char val[64];
    red_rng r42, r7, r2026;
    int lines = 0;
    cr_assert_not_null(f, "missing tests/fixtures/rng_golden.txt");
    red_rng_seed(&r42, 42);
    red_rng_seed(&r7, 7);
    red_rng_seed(&r2026, 2026);
    while (fscanf(f, "%15s %63s", kind, val) == 2) {
        lines++;
        if (!strcmp(kind, "u64")) {
            unsigned long long want = strtoull(val, NULL, 10);
            cr_assert_eq(red_rng_u64(&r42), want, "u64 line %d", lines);
        } else if (!strcmp(kind, "uniform")) {
            cr_assert_eq(red_rng_uniform(&r7), strtod(val, NULL), "uniform line %d", lines);
        } else {
            /* Python used libm's log; red uses its own: allow 4 ulp of the value */
            double want = strtod(val, NULL), got = red_rng_normal(&r2026);
            cr_assert(fabs(got - want) <= 4 * DBL_EPSILON * fabs(want), "normal line %d: %.17g vs %.17g",
                      lines, got, want);
        }
    }
    fclose(f);
    cr_assert_eq(lines, 25);
}

/* red_log against libm: within 2 ulp over 30 decades, subnormals and powers of 2. */
Test(tensor, rng_log_is_accurate) {
    double x, worst = 0;
    int i;
    for (x = 1e-310; x < 1e300; x *= 1.37) {
        double a = red_log(x), b = log(x), ulp = nextafter(fabs(b), INFINITY) - fabs(b);
        double e = b == 0 ? fabs(a) : fabs(a - b) / ulp;
        if (e > worst) worst = e;
    }
    for (i = -1074; i < 1024; i++) cr_assert(fabs(red_log(ldexp(1.0, i)) - i * 0.6931471805599453) <= 1e-12 * (abs(i) + 1));
    cr_assert(worst <= 2.0, "red_log error %.2f ulp", worst);
    cr_assert_eq(red_log(1.0), 0.0);
    cr_assert(isinf(red_log(0.0)) && red_log(0.0) < 0);
    cr_assert(isnan(red_log(-1.0)));
}

Test(tensor, rng_moments_and_ranges) {
    red_rng r;
    int i, n = 200000, below[10] = {0};
    double s = 0, s2 = 0;
    red_rng_seed(&r, 3);
    for (i = 0; i < n; i++) {
        double z = red_rng_normal(&r), u = red_rng_uniform(&r);
        float uf = red_rng_uniformf(&r);
        s += z;
        s2 += z * z;
        cr_assert(u >= 0.0 && u < 1.0);
        cr_assert(uf >= 0.0f && uf < 1.0f);
        below[red_rng_below(&r, 10)]++;
    }
    /* mean: sd 1/sqrt(n) = 0.0022; variance: sd sqrt(2/n) = 0.0032; 5 sd bounds */
    cr_assert(fabs(s / n) < 0.011, "normal mean %g", s / n);
    cr_assert(fabs(s2 / n - 1.0) < 0.016, "normal variance %g", s2 / n);
    /* each bucket ~ Binomial(n, 0.1): sd 134; 5 sd = 670 */
    for (i = 0; i < 10; i++) cr_assert(abs(below[i] - n / 10) < 670, "bucket %d: %d", i, below[i]);
}

Test(tensor, rng_same_seed_same_stream_different_seed_differs) {
    red_rng a, b, c;
    int i, differ = 0;
    red_rng_seed(&a, 123);
    red_rng_seed(&b, 123);
    red_rng_seed(&c, 124);
    for (i = 0; i < 100; i++) {
        uint64_t x = red_rng_u64(&a);
        cr_assert_eq(x, red_rng_u64(&b));
        differ += x != red_rng_u64(&c);
    }
    cr_assert_eq(differ, 100);
}

/* ------------------------------------------------------------------ vector kernels */

/* SIMD vs the always-built scalar versions, on every length 0..100 (all
 * remainders of every vector width). Elementwise ops are exact; reductions
 * differ only by summation order: |a - b| <= 2 n eps_f sum|x_i y_i|. */
Test(tensor, vec_simd_matches_scalar_all_lengths) {
    red_rng r;
    size_t n, i;
    red_rng_seed(&r, 5);
    for (n = 0; n <= 100; n++) {
        float *a = tu_rand(&r, n, -2, 2), *b = tu_rand(&r, n, -2, 2), *y = malloc(n * 4 + 4),
              *y2 = malloc(n * 4 + 4);
        double mag = 0, sabs = 0;
        for (i = 0; i < n; i++) {
            mag += fabs((double)a[i] * b[i]);
            sabs += fabs(a[i]);
        }
        cr_assert(fabs(red_vec_dot(a, b, n) - red_vec_dot_scalar(a, b, n)) <= 2 * (n + 1) * FLT_EPSILON * mag + 1e-30, "dot n=%zu", n);
        cr_assert(fabs(red_vec_sum(a, n) - red_vec_sum_scalar(a, n)) <= 2 * (n + 1) * FLT_EPSILON * sabs + 1e-30, "sum n=%zu", n);
        cr_assert(fabs(red_vec_sumsq(a, n) - red_vec_sumsq_scalar(a, n)) <= 2 * (n + 1) * FLT_EPSILON * red_vec_sumsq_scalar(a, n) + 1e-30);
        red_vec_add(y, a, b, n);
        for (i = 0; i < n; i++) cr_assert_eq(y[i], a[i] + b[i]);
        red_vec_mul(y, a, b, n);
        for (i = 0; i < n; i++) cr_assert_eq(y[i], a[i] * b[i]);
        memcpy(y, a, n * 4);
        red_vec_scale(y, 0.5f, n);
        for (i = 0; i < n; i++) cr_assert_eq(y[i], a[i] * 0.5f);
        memcpy(y, a, n * 4);
        memcpy(y2, a, n * 4);
        red_vec_axpy(y, 0.3f, b, n);
        red_vec_axpy_scalar(y2, 0.3f, b, n);
        for (i = 0; i < n; i++) cr_assert(fabs(y[i] - y2[i]) <= FLT_EPSILON * (fabs(y2[i]) + fabs(0.3 * b[i])), "axpy");
        if (n) {
            float mx = a[0];
            for (i = 1; i < n; i++) mx = a[i] > mx ? a[i] : mx;
            cr_assert_eq(red_vec_max(a, n), mx, "max n=%zu", n);
        }
        free(a); free(b); free(y); free(y2);
    }
    cr_assert(isinf(red_vec_max(NULL, 0)));
}

/* The decode's blocked dots and axpys must keep red_vec_dot's and
 * red_vec_axpy's bits exactly (the KV cache must agree with the full forward
 * and across builds of one ISA), on every edge of the register blocks: rows
 * and columns past a block, lengths past each vector width, padded strides.
 * And the dots must be dots: near a double reference. */
Test(tensor, vec_dot_grid_and_axpy_rows_keep_the_single_kernels_bits) {
    static const size_t lens[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129, 200};
    red_rng r;
    size_t li, rows, cols, i, j;
    red_rng_seed(&r, 17);
    for (li = 0; li < sizeof lens / sizeof *lens; li++)
        for (rows = 1; rows <= 5; rows++)
            for (cols = 1; cols <= 8; cols++) {
                size_t n = lens[li], ld = n + 3, ldc = cols + 2;
                float *X = tu_rand(&r, rows * ld + 1, -2, 2), *W = tu_rand(&r, cols * ld + 1, -2, 2);
                float *C = malloc(sizeof(float) * rows * ldc), *y = tu_rand(&r, n + 1, -1, 1), *y2 = malloc(sizeof(float) * (n + 1));
                float *coef;
                red_vec_dot_grid(C, ldc, X, ld, rows, W, ld, cols, n);
                for (i = 0; i < rows; i++)
                    for (j = 0; j < cols; j++) {
                        float d = red_vec_dot(X + i * ld, W + j * ld, n);
                        double ref = 0, mag = 0;
                        size_t k;
                        for (k = 0; k < n; k++) {
                            ref += (double)X[i * ld + k] * W[j * ld + k];
                            mag += fabs((double)X[i * ld + k] * W[j * ld + k]);
                        }
                        cr_assert(!memcmp(&C[i * ldc + j], &d, 4), "dot grid n=%zu rows=%zu cols=%zu (%zu,%zu): %.9g vs %.9g",
                                  n, rows, cols, i, j, C[i * ldc + j], d);
                        cr_assert(fabs(C[i * ldc + j] - ref) <= 2 * (n + 1) * FLT_EPSILON * mag + 1e-30);
                    }
                /* axpy rows: X's rows (stride ld), each scaled by its coefficient */
                coef = tu_rand(&r, rows, -1, 1);
                memcpy(y2, y, sizeof(float) * (n + 1));
                red_vec_axpy_rows(y, coef, X, ld, rows, n);
                for (i = 0; i < rows; i++) red_vec_axpy(y2, coef[i], X + i * ld, n);
                cr_assert(!memcmp(y, y2, sizeof(float) * (n + 1)), "axpy rows n=%zu rows=%zu", n, rows);
                free(X); free(W); free(C); free(y); free(y2); free(coef);
            }
}

Test(tensor, vec_softmax_is_normalised_and_shift_safe) {
    float x[5] = {1000.0f, 1001.0f, 1002.0f, -1e30f, 1000.5f};
    double s = 0;
    int i;
    red_softmax(x, 5);
    for (i = 0; i < 5; i++) {
        cr_assert(isfinite(x[i]) && x[i] >= 0);
        s += x[i];
    }
    cr_assert(fabs(s - 1.0) <= 5 * FLT_EPSILON);
    /* softmax(1000,1001,1002) ratios are e^-1 */
    cr_assert(fabs(x[1] / x[2] - exp(-1.0)) <= 4 * FLT_EPSILON);
    cr_assert_eq(x[3], 0.0f);
}

/* Every thread reserves RED_POOL_SCRATCH_BYTES up front: --threads 1024 took
 * 8 GB of address space (and wrapped size_t past 512 threads on 32-bit
 * hosts). Pools beyond the cap are refused before anything is allocated. */
Test(tensor, pool_thread_count_is_capped_before_allocating) {
    red_pool *p = red_pool_create(RED_POOL_MAX_THREADS + 1);
    cr_expect(p == NULL, "a pool of %d threads was created", RED_POOL_MAX_THREADS + 1);
    red_pool_destroy(p);
    p = red_pool_create(1024);
    cr_expect(p == NULL, "a pool of 1024 threads was created");
    red_pool_destroy(p);
    p = red_pool_create(3);
    cr_assert(p != NULL);
    cr_expect(red_pool_size(p) == 3);
    red_pool_destroy(p);
}

/* red_expf's stated bound: <= 2 ulp against double exp on every 31st float
 * of [EXP_LO, EXP_HI] (about 70M values), and every float near both ends. */
static double exp_ulp_err(float x) {
    double want = exp((double)x), got = red_expf(x);
    int e;
    frexp(want, &e);  /* want in [2^(e-1), 2^e): one float ulp is 2^(e-24) */
    return fabs(got - want) / ldexp(1.0, e - 24);
}

Test(tensor, expf_within_2ulp_over_the_finite_range) {
    const float lo = -87.33654022216797f, hi = 88.72283172607422f;
    double worst = 0.0, err;
    float x, worst_x = 0.0f;
    uint32_t u, step = 31;
    int pass;
    for (pass = 0; pass < 2; pass++) {  /* negatives (bits descending to lo), then positives */
        uint32_t first = pass ? 0x00000000u : 0x80000000u, last;
        memcpy(&last, pass ? &hi : &lo, 4);
        for (u = first; u <= last; u += step) {
            memcpy(&x, &u, 4);
            if ((err = exp_ulp_err(x)) > worst) worst = err, worst_x = x;
        }
        for (u = last - 5000; u <= last; u++) {  /* every float at the ends */
            memcpy(&x, &u, 4);
            if ((err = exp_ulp_err(x)) > worst) worst = err, worst_x = x;
        }
    }
    cr_assert(worst <= 2.0, "max error %.3f ulp at x=%.9g", worst, worst_x);
    cr_log_info("red_expf: max error %.3f ulp at x=%.9g\n", worst, worst_x);
}

Test(tensor, expf_special_values) {
    float nan = NAN, y;
    cr_assert_eq(red_expf(0.0f), 1.0f);
    cr_assert_eq(red_expf(-0.0f), 1.0f);
    cr_assert_eq(red_expf(-HUGE_VALF), 0.0f, "softmax of a masked logit");
    cr_assert(!signbit(red_expf(-HUGE_VALF)));
    cr_assert(isinf(red_expf(HUGE_VALF)) && red_expf(HUGE_VALF) > 0);
    cr_assert(isnan(red_expf(nan)));
    cr_assert(isinf(red_expf(88.72283935546875f)), "first float whose exp exceeds FLT_MAX");
    cr_assert(isfinite(red_expf(88.72283172607422f)));
    cr_assert_eq(red_expf(-87.3365478515625f), 0.0f, "exp below FLT_MIN flushes to 0, no subnormals");
    cr_assert_eq(red_expf(-100.0f), 0.0f);
    cr_assert_eq(red_expf(-1e30f), 0.0f);
    cr_assert(isinf(red_expf(1e30f)));
    y = red_expf(-87.33654022216797f);
    cr_assert(y >= FLT_MIN && fpclassify(y) == FP_NORMAL);
    cr_assert(red_expf(1e-30f) == 1.0f && red_expf(FLT_MIN) == 1.0f);  /* tiny and denormal inputs */
    cr_assert(fabs(red_expf(1.0f) - exp(1.0)) <= 2 * FLT_EPSILON * exp(1.0));
}

/* The vector routine against red_expf bit for bit on every length 0..70
 * (SIMD body plus masked or scalar tail), including specials inside the
 * vector body and in the tail; nothing past n is written. */
Test(tensor, vec_exp_matches_scalar_bitwise) {
    float x[70], y[86], z[70];
    red_rng r;
    size_t n, i;
    red_rng_seed(&r, 7);
    for (n = 0; n <= 70; n++) {
        red_rng_fill_uniform(&r, x, n, -100.0f, 100.0f);
        if (n > 20) x[3] = -HUGE_VALF, x[5] = HUGE_VALF, x[7] = NAN, x[11] = -0.0f, x[13] = 88.72284f, x[17] = -87.3366f;
        if (n > 1) x[n - 1] = NAN, x[n - 2] = -HUGE_VALF;
        for (i = 0; i < 86; i++) y[i] = 12345.0f;
        red_vec_exp(y, x, n);
        for (i = n; i < 86; i++) cr_assert(y[i] == 12345.0f, "n=%zu: y[%zu] past the end was written", n, i);
        memcpy(z, x, n * sizeof *x);
        red_vec_exp(z, z, n);  /* in place */
        for (i = 0; i < n; i++) {
            float s = red_expf(x[i]);
            cr_assert(!memcmp(&y[i], &s, 4) && !memcmp(&z[i], &s, 4), "n=%zu i=%zu x=%.9g: %.9g vs %.9g", n, i, x[i],
                      y[i], s);
        }
    }
    for (i = 0; i < 70; i++) x[i] = 0.01f * (float)i - 0.3f;
    cr_assert_eq(red_vec_sum_exp(x, 0.2f, 0), 0.0);
    {
        double s = 0.0, want = red_vec_sum_exp(x, 0.2f, 70);
        for (i = 0; i < 70; i++) s += red_expf(x[i] - 0.2f);
        cr_assert_eq(s, want, "sum_exp is the in-order double sum of red_expf");
    }
}
