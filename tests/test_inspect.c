/* tests/test_inspect.c - red.c's evidence: `red inspect` (red_inspect) against closed
 * forms. A teacher whose attention and FFN outputs are zero leaves the
 * residual stream equal to the embedding, so every norm site sees
 * x̂ = E[tok] / rms(E[tok]) (norm weights 1). With embedding rows s_v * a
 * (one direction a, planted outlier channels in a) the shares are known
 * exactly; with rows a ⊙ z_v (Gaussian z) they are computed here in double
 * over the same calibration rows. Also: the selection is the one
 * red_student_initialize makes, and PCA >= selection everywhere. And
 * red_hidden_metrics: red_erank_layers' eRank bits plus red_token_indist of
 * each layer's hidden states, ids = input tokens. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

static red_pool *pool;
static void setup(void) { pool = red_pool_create(2); }
static void teardown(void) { red_pool_destroy(pool); }

#define D 16
#define DS 6

/* channel pattern: outliers 3 and 9 (x8), the rest 1 + 0.01 j (no ties) */
static double pattern(int j) { return j == 3 || j == 9 ? 8.0 : 1.0 + 0.01 * j; }

static void calib_file(red_train_data *d, char *path) {
    static const char *lines[] = {"The cat is red. The dog lives in the barn.", "Mia has 3 more stickers than Zoe: 5 + 3 = 8.",
                                  "A small grey owl weighs 2 kilograms.", "Question: what is 7 + 6?\nAnswer: 13"};
    FILE *f;
    red_tokenizer *tok;
    red_error err;
    int i, fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    f = fopen(path, "w");
    cr_assert(f);
    for (i = 0; i < 40; i++) fprintf(f, "%s %d\n", lines[i % 4], i);
    fclose(f);
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    memset(d, 0, sizeof *d);
    cr_assert(red_train_data_add_file(d, tok, path, &err) == RED_OK, "%s", err.msg);
    red_tokenizer_free(tok);
}

/* Llama dim 16, 2 layers; o and down projections zero, norms 1; embedding rows
 * s_v * pattern (rank1) or pattern ⊙ z_v. */
static void planted_teacher(red_model *t, int rank1, uint64_t seed) {
    red_config c;
    red_rng r;
    red_error err;
    int l, v, j;
    red_config_default(&c);
    c.dim = D; c.ffn = 24; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 8; c.vocab = 259; c.tied = 1;
    cr_assert(red_model_init(t, &c, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(t, &r, 0.3f, 0.0f);
    for (l = 0; l < c.n_layers; l++) {
        red_layer_weights *w = &t->w.layers[l];
        memset(w->wo, 0, (size_t)D * c.n_heads * c.head_dim * sizeof(float));
        memset(w->wd, 0, (size_t)D * c.ffn * sizeof(float));
        red_vec_fill(w->attn_norm, 1.0f, D);
        red_vec_fill(w->mlp_norm, 1.0f, D);
    }
    red_vec_fill(t->w.norm, 1.0f, D);
    for (v = 0; v < c.vocab; v++) {
        double s = 0.5 + red_rng_uniform(&r);
        for (j = 0; j < D; j++)
            t->w.embed[v * D + j] = (float)(rank1 ? (v % 2 ? -s : s) * pattern(j) : pattern(j) * red_rng_normal(&r));
    }
}

static void check_bounds(const red_inspect_result *r) {
    int i;
    for (i = 0; i < r->n_sites; i++) {
        const red_site_energy *e = &r->site[i];
        /* fractions of a non-negative sum; eigenvalues in float: 1e-5 slack */
        cr_expect(e->kept_red >= 0 && e->kept_red <= 1 && e->kept_magnitude >= 0 && e->kept_magnitude <= 1, "site %d", i);
        cr_expect(e->kept_pca_shared >= -1e-6 && e->kept_pca_shared <= 1 + 1e-6, "site %d: %g", i, e->kept_pca_shared);
        cr_expect(e->kept_pca >= 0 && e->kept_pca <= 1 + 1e-6, "site %d: pca %g", i, e->kept_pca);
        cr_expect(e->kept_pca >= e->kept_red - 1e-5, "site %d: pca %g >= red %g (Ky Fan)", i, e->kept_pca, e->kept_red);
        cr_expect(e->kept_pca >= e->kept_magnitude - 1e-5, "site %d: pca >= magnitude", i);
        cr_expect(e->kept_pca >= e->kept_pca_shared - 1e-5, "site %d: own pca >= shared basis", i);
        cr_expect(e->top1_share <= e->top10_share && e->top10_share <= 1, "site %d: shares", i);
    }
}

Test(red, inspect_rank_one_planted_outliers_match_closed_forms, .init = setup, .fini = teardown) {
    red_model t;
    red_train_data calib;
    red_inspect_result r;
    red_error err;
    char path[] = "/tmp/red_test_inspect_XXXXXX";
    double tot = 0.0, kept = 0.0, mag = 0.0, rms[D], med, mean = 0.0, m2 = 0.0, m4 = 0.0;
    int want[DS] = {3, 9, 12, 13, 14, 15}, i, j, k;
    planted_teacher(&t, 1, 3);
    calib_file(&calib, path);
    cr_assert(red_inspect(&t, DS, &calib, 256, 2, 16, &r, &err) == RED_OK, "%s", err.msg);
    cr_assert_eq(r.n_sites, 5);
    for (k = 0; k < DS; k++) cr_expect_eq(r.sel_red[k], want[k], "red channel %d: %d (want %d)", k, r.sel_red[k], want[k]);
    for (j = 0; j < D; j++) tot += pattern(j) * pattern(j);
    for (k = 0; k < DS; k++) kept += pattern(want[k]) * pattern(want[k]);
    for (k = 0; k < DS; k++) mag += pattern(r.sel_magnitude[k]) * pattern(r.sel_magnitude[k]);
    /* x̂ = ±a / rms: energy share a_j² / ||a||² exactly; the float forward costs ~1e-6 */
    for (j = 0; j < D; j++) rms[j] = pattern(j);
    for (j = 1; j < D; j++)
        for (k = j; k > 0 && rms[k - 1] > rms[k]; k--) { double x = rms[k]; rms[k] = rms[k - 1]; rms[k - 1] = x; }
    med = 0.5 * (rms[D / 2 - 1] + rms[D / 2]);
    for (j = 0; j < D; j++) mean += rms[j] / D;
    for (j = 0; j < D; j++) { m2 += pow(rms[j] - mean, 2) / D; m4 += pow(rms[j] - mean, 4) / D; }
    for (i = 0; i < r.n_sites; i++) {
        const red_site_energy *e = &r.site[i];
        cr_expect(fabs(e->kept_red - kept / tot) < 1e-5, "site %d: red keeps %.8f, closed form %.8f", i, e->kept_red, kept / tot);
        cr_expect(fabs(e->kept_magnitude - mag / tot) < 1e-5, "site %d: magnitude %.8f vs %.8f", i, e->kept_magnitude, mag / tot);
        cr_expect(fabs(e->kept_pca - 1.0) < 1e-5, "site %d: rank one, own pca keeps all (%.8f)", i, e->kept_pca);
        cr_expect(fabs(e->kept_pca_shared - 1.0) < 1e-5, "site %d: so does the shared basis (%.8f)", i, e->kept_pca_shared);
        cr_expect(fabs(e->top1_share - 64.0 / tot) < 1e-5, "site %d: top 1%% = one outlier channel: %.8f", i, e->top1_share);
        cr_expect(fabs(e->top10_share - 128.0 / tot) < 1e-5, "site %d: top 10%% = both outliers: %.8f", i, e->top10_share);
        cr_expect(fabs(e->rms_max_over_median - 8.0 / med) < 1e-4, "site %d: max/median %.6f vs %.6f", i,
                  e->rms_max_over_median, 8.0 / med);
        cr_expect(fabs(e->rms_kurtosis - m4 / (m2 * m2)) < 1e-3, "site %d: kurtosis %.6f vs %.6f", i, e->rms_kurtosis,
                  m4 / (m2 * m2));
    }
    check_bounds(&r);
    red_inspect_free(&r);
    red_model_free(&t);
    red_train_data_free(&calib);
    unlink(path);
}

Test(red, inspect_gaussian_planted_outliers_match_direct_energies_and_the_init, .init = setup, .fini = teardown) {
    red_model t;
    red_train_data calib;
    red_inspect_result r;
    red_student s;
    red_init_opts io;
    red_error err;
    char path[] = "/tmp/red_test_inspect_XXXXXX";
    double e[D] = {0}, tot = 0.0, kept = 0.0, out = 0.0;
    int B = 2, T = 16, in[32], tgt[32], n, j, k, outl3 = 0, outl9 = 0;
    uint64_t epoch = 0, off = 0;
    int64_t done = 0;
    planted_teacher(&t, 0, 4);
    calib_file(&calib, path);
    cr_assert(red_inspect(&t, DS, &calib, 320, B, T, &r, &err) == RED_OK, "%s", err.msg);
    cr_expect_eq(r.rows, 320);
    /* the same rows, normalised here in double */
    while (done < 320) {
        cr_assert(red_train_data_batch(&calib, RED_CALIB_SEED, &epoch, &off, B, T, in, tgt, &err) == RED_OK);
        if (epoch > 0 && done > 0) break;
        for (n = 0; n < B * T; n++) {
            const float *x = t.w.embed + (size_t)in[n] * D;
            double ms = 0.0;
            for (j = 0; j < D; j++) ms += (double)x[j] * x[j] / D;
            for (j = 0; j < D; j++) e[j] += (double)x[j] * x[j] / (ms + t.cfg.norm_eps);
        }
        done += B * T;
    }
    for (j = 0; j < D; j++) tot += e[j];
    for (k = 0; k < DS; k++) {
        kept += e[r.sel_red[k]];
        outl3 |= r.sel_red[k] == 3;
        outl9 |= r.sel_red[k] == 9;
        cr_expect(!k || r.sel_red[k] > r.sel_red[k - 1], "selection ascending");
    }
    cr_expect(outl3 && outl9, "both outlier channels are selected");
    for (k = 0; k < DS; k++) {  /* the selection is the top DS by energy (every site is the same) */
        int j2, better = 0;
        for (j2 = 0; j2 < D; j2++) better += e[j2] > e[r.sel_red[k]];
        cr_expect(better < DS, "channel %d is among the top %d by energy", r.sel_red[k], DS);
    }
    out = e[3] + e[9];
    for (k = 0; k < r.n_sites; k++) {
        cr_expect(fabs(r.site[k].kept_red - kept / tot) < 1e-5, "site %d: red keeps %.8f, direct %.8f", k,
                  r.site[k].kept_red, kept / tot);
        cr_expect(r.site[k].kept_red >= out / tot - 1e-6, "the outliers' energy %.6f is kept", out / tot);
        cr_expect(fabs(r.site[k].top10_share - out / tot) < 1e-5, "top 10%% (two channels) = the outliers: %.8f vs %.8f",
                  r.site[k].top10_share, out / tot);
        /* all sites see the same x̂: the shared basis is each site's own principal subspace */
        cr_expect(fabs(r.site[k].kept_pca_shared - r.site[k].kept_pca) < 1e-4, "site %d: shared %.6f vs own %.6f", k,
                  r.site[k].kept_pca_shared, r.site[k].kept_pca);
    }
    check_bounds(&r);
    /* the red init selects exactly these channels (the same code path) */
    memset(&io, 0, sizeof io);
    io.kind = RED_INIT_RED; io.score = RED_SCORE_ENERGY; io.norms = RED_NORMS_DEFAULT; io.orth_scale = 1.0f;
    cr_assert(red_student_init(&s, &t, DS, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, B, T, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, &calib, 320, &err) == RED_OK, "%s", err.msg);
    for (k = 0; k < DS; k++)
        cr_expect(s.w.p_embed[(size_t)r.sel_red[k] * DS + k] == 1.0f, "init column %d selects channel %d", k, r.sel_red[k]);
    red_student_free(&s);
    red_inspect_free(&r);
    red_model_free(&t);
    red_train_data_free(&calib);
    unlink(path);
}

Test(red, inspect_random_teacher_respects_the_bounds_and_threads_agree, .init = setup, .fini = teardown) {
    red_model t;
    red_train_data calib;
    red_inspect_result r, r1;
    red_error err;
    red_config c;
    red_rng g;
    red_pool *one = red_pool_create(1), *keep = pool;
    char path[] = "/tmp/red_test_inspect_XXXXXX";
    red_config_default(&c);
    c.dim = 24; c.ffn = 40; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 8; c.vocab = 259; c.tied = 0;
    cr_assert(red_model_init(&t, &c, pool, &err) == RED_OK);
    red_rng_seed(&g, 9);
    red_model_init_random(&t, &g, 0.3f, 0.0f);
    calib_file(&calib, path);
    cr_assert(red_inspect(&t, 7, &calib, 256, 2, 16, &r, &err) == RED_OK, "%s", err.msg);
    check_bounds(&r);
    red_model_free(&t);
    pool = one;  /* the same teacher on one thread: bit-identical fractions */
    cr_assert(red_model_init(&t, &c, pool, &err) == RED_OK);
    red_rng_seed(&g, 9);
    red_model_init_random(&t, &g, 0.3f, 0.0f);
    cr_assert(red_inspect(&t, 7, &calib, 256, 2, 16, &r1, &err) == RED_OK, "%s", err.msg);
    cr_expect(memcmp(r.site, r1.site, (size_t)r.n_sites * sizeof *r.site) == 0, "1 and 2 threads agree");
    red_inspect_free(&r1);  /* the refused calls below clear r1 */
    cr_expect(red_inspect(&t, 0, &calib, 256, 2, 16, &r1, &err) != RED_OK, "width 0 is refused");
    cr_expect(red_inspect(&t, 7, NULL, 256, 2, 16, &r1, &err) == RED_E_ARG, "no data is refused");
    pool = keep;
    red_inspect_free(&r);
    red_model_free(&t);
    red_pool_destroy(one);
    red_train_data_free(&calib);
    unlink(path);
}

/* ------------------------------------------------------------------ eRank and indistinguishability per layer */

Test(red, inspect_hidden_metrics_are_erank_layers_plus_indist_of_each_layer, .init = setup, .fini = teardown) {
    red_model t;
    red_error err;
    red_rng g;
    int L, l, n_rows = 3, T = 40, tok[120], i;
    double er[8];
    red_layer_metrics met[8], fin[8];
    planted_teacher(&t, 0, 11);
    /* a random teacher instead of the planted one, so that the layers differ */
    red_rng_seed(&g, 12);
    red_model_init_random(&t, &g, 0.3f, 0.0f);
    L = t.cfg.n_layers;
    for (i = 0; i < n_rows * T; i++) tok[i] = (int)red_rng_below(&g, 40);  /* repeats: some pairs share an id */
    cr_assert(red_model_train_alloc(&t, 2, T, &err) == RED_OK);
    cr_assert(red_erank_layers(&t, tok, n_rows, T, 0, er, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_hidden_metrics(&t, tok, n_rows, T, 0, 0, met, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_hidden_metrics(&t, tok, n_rows, T, 0, 1, fin, &err) == RED_OK, "%s", err.msg);
    for (l = 0; l <= L; l++) {
        red_layer_acts la;
        int64_t ids[120];
        red_indist ref;
        float *H = malloc((size_t)n_rows * T * D * sizeof(float));
        cr_expect(memcmp(&met[l].erank, &er[l], sizeof(double)) == 0, "layer %d: the same eRank bits (%.17g vs %.17g)", l,
                  met[l].erank, er[l]);
        red_model_forward(&t, tok, 2, T);  /* rows 0-1, then row 2: the hidden states of layer l by hand */
        if (l < L) { red_model_layer_acts(&t, l, &la); memcpy(H, la.out, (size_t)2 * T * D * sizeof(float)); }
        else memcpy(H, red_model_final_normed(&t), (size_t)2 * T * D * sizeof(float));
        red_model_forward(&t, tok + 2 * T, 1, T);
        if (l < L) { red_model_layer_acts(&t, l, &la); memcpy(H + 2 * T * D, la.out, (size_t)T * D * sizeof(float)); }
        else memcpy(H + 2 * T * D, red_model_final_normed(&t), (size_t)T * D * sizeof(float));
        for (i = 0; i < n_rows * T; i++) ids[i] = tok[i];
        cr_assert(red_token_indist(NULL, n_rows * T, D, H, D, ids, &ref) == RED_OK);
        cr_expect(ref.distinct_pairs < ref.pairs, "some positions share a token");
        cr_expect(met[l].ind.cos_mean == ref.cos_mean && met[l].ind.indist[0] == ref.indist[0] &&
                  met[l].ind.indist[1] == ref.indist[1], "layer %d: indistinguishability of its hidden states", l);
        if (l < L) cr_expect(isnan(fin[l].erank) && isnan(fin[l].ind.cos_mean), "final_only leaves layer %d NaN", l);
        free(H);
    }
    cr_expect(memcmp(&fin[L], &met[L], sizeof fin[L]) == 0, "final_only measures the final norm the same way");
    red_model_free(&t);
}
