/* tests/test_distill.c - the method (distill.c): at full width a RED student is the
 * teacher exactly; finite differences for every projection and student norm
 * (including the FFN-out target path into P_d) on Llama- and Qwen2-shaped
 * teachers; the materialised model equals the projection-form student; each
 * initialisation's defining property; kill-and-resume equals one run;
 * thread-count determinism; eRank per layer.
 * And the evidence: `red inspect` (red_inspect) against closed
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

/* A random teacher: matrices N(0, 0.3^2), norms and biases away from 1/0. */
static void make_teacher(red_model *t, const red_config *c, uint64_t seed) {
    red_rng r;
    red_error err;
    int k, i;
    cr_assert(red_model_alloc(t, c, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(t, &r, 0.3f, 0.0f);
    for (k = 0; k < t->n_tensors; k++)
        if (t->table[k].ndim == 1)
            for (i = 0; i < (int)t->table[k].numel; i++) t->params[t->table[k].offset + i] += 0.2f * (float)red_rng_normal(&r);
}

static void llama_cfg(red_config *c, int vocab) {
    red_config_default(c);
    c->dim = 16; c->ffn = 24; c->n_heads = 2; c->n_kv_heads = 1; c->head_dim = 8; c->vocab = vocab; c->tied = 1;
}

static void qwen2_cfg(red_config *c, int vocab) {
    red_config_default(c);
    c->arch = RED_ARCH_QWEN2; c->qkv_bias = 1; c->tied = 0;
    c->dim = 16; c->ffn = 20; c->n_heads = 4; c->n_kv_heads = 2; c->head_dim = 6; c->vocab = vocab;
}

/* Calibration text through the byte tokenizer (vocab 259). */
static void make_calib(red_train_data *d, const char *path) {
    static const char *lines[] = {"The cat is red. The dog lives in the barn.", "Mia has 3 more stickers than Zoe: 5 + 3 = 8.",
                                  "A small grey owl weighs 2 kilograms.", "Question: what is 7 + 6?\nAnswer: 13",
                                  "Tom picks 12 apples and gives away 5.", "All foxes are orange; the fox lives in the forest."};
    FILE *f = fopen(path, "w");
    red_tokenizer *tok;
    red_error err;
    int i;
    cr_assert(f);
    for (i = 0; i < 60; i++) fprintf(f, "%s %d\n", lines[i % 6], i);
    fclose(f);
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    memset(d, 0, sizeof *d);
    cr_assert(red_train_data_add_file(d, tok, path, &err) == RED_OK, "%s", err.msg);
    red_tokenizer_free(tok);
}

static red_init_opts init_opts(red_init_kind k) {
    red_init_opts o;
    o.kind = k;
    o.std = 0.3f;
    o.orth_scale = 1.0f;
    o.score = RED_SCORE_ENERGY;
    o.norms = RED_NORMS_DEFAULT;
    o.seed = 7;
    return o;
}

static void random_tokens(red_rng *r, int *tok, int *tgt, int n, int V) {
    int i;
    for (i = 0; i < n; i++) {
        tok[i] = (int)red_rng_below(r, (uint64_t)V);
        tgt[i] = i % 5 == 2 ? -1 : (int)red_rng_below(r, (uint64_t)V);
    }
}

/* ------------------------------------------------------------------ exactness at full width */

static void full_width_is_teacher(red_config *c) {
    red_model t;
    red_student s;
    red_train_data calib;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_RED);
    red_loss_cfg lc = {4.0f, 0.5f, RED_KL_SEQUENCE};
    red_losses L;
    red_rng r;
    int tok[2 * 8], tgt[2 * 8], k;
    char path[] = "/tmp/red_test_calib_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    make_teacher(&t, c, 11);
    make_calib(&calib, path);
    cr_assert(red_student_alloc(&s, &t, c->dim, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_train_alloc(&s, 2, 8, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_initialize(&s, &io, &calib, 64, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, 5);
    random_tokens(&r, tok, tgt, 16, c->vocab);
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 1, &L) == RED_OK);
    cr_expect(memcmp(red_model_logits(&t), red_model_logits(&s.model), (size_t)16 * c->vocab * sizeof(float)) == 0,
              "student logits equal the teacher's bit for bit");
    cr_expect(L.kl == 0.0, "KL is exactly 0 (got %g)", L.kl);
    for (k = 0; k < RED_N_SITES; k++) cr_expect(L.clone_site[k] == 0.0, "clone %d is exactly 0 (got %g)", k, L.clone_site[k]);
    red_student_free(&s);
    red_model_free(&t);
    red_train_data_free(&calib);
    unlink(path);
}

Test(distill, full_width_red_student_is_the_teacher_llama_tied, .init = setup, .fini = teardown) {
    red_config c;
    llama_cfg(&c, 259);
    full_width_is_teacher(&c);
}

Test(distill, full_width_red_student_is_the_teacher_qwen2_bias_untied, .init = setup, .fini = teardown) {
    red_config c;
    qwen2_cfg(&c, 259);
    full_width_is_teacher(&c);
}

/* ------------------------------------------------------------------ finite differences */

typedef struct {
    red_student *s;
    int *tok, *tgt;
    red_loss_cfg lc;
} student_fd;

static double student_loss(void *v) {
    student_fd *f = v;
    red_losses L;
    red_student_loss(f->s, f->tok, f->tgt, &f->lc, 0, &L);
    return L.total;
}

static void projection_fd(red_config *c, red_kl_reduction red, uint64_t seed) {
    red_model t;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_LRC);
    student_fd f;
    red_losses L;
    red_rng r;
    int tok[2 * 7], tgt[2 * 7], i, np;
    size_t k;
    float *g;
    make_teacher(&t, c, seed);
    cr_assert(red_student_alloc(&s, &t, 10, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_train_alloc(&s, 2, 7, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed + 1);
    np = red_student_n_proj(&s);
    /* norms away from 1 */
    for (k = (size_t)0; k < s.n; k++) {
        int is_proj = 0;
        for (i = 0; i < np; i++) {
            const float *p = red_student_proj(&s, i, NULL, 0);
            if (s.params + k >= p && s.params + k < p + (size_t)s.d_t * s.d_s) is_proj = 1;
        }
        if (!is_proj) s.params[k] = 1.0f + 0.3f * (float)red_rng_normal(&r);
    }
    random_tokens(&r, tok, tgt, 14, c->vocab);
    f.s = &s; f.tok = tok; f.tgt = tgt;
    f.lc.tau = 2.0f; f.lc.alpha = 0.7f; f.lc.kl_reduction = red;
    cr_assert(red_student_loss(&s, tok, tgt, &f.lc, 1, &L) == RED_OK);
    cr_assert(L.clone_site[RED_SITE_D] > 0.0 && L.kl > 0.0 && L.ce > 0.0, "every term is active");
    g = malloc(s.n * sizeof(float));
    memcpy(g, s.grads, s.n * sizeof(float));
    for (i = 0; i < np; i++) {  /* 6 elements of every projection */
        char name[64];
        float *p = (float *)red_student_proj(&s, i, name, sizeof name);
        size_t off = (size_t)red_rng_below(&r, (uint64_t)s.d_t * s.d_s - 6);
        fd_check(name, student_loss, &f, p + off, g + (p - s.params) + off, 6, 5e-4, 2e-2);
    }
    for (i = 0; i < c->n_layers; i++) {
        fd_check("attn_norm", student_loss, &f, s.w.layers[i].attn_norm, g + (s.w.layers[i].attn_norm - s.params), 4, 5e-4, 2e-2);
        fd_check("mlp_norm", student_loss, &f, s.w.layers[i].mlp_norm, g + (s.w.layers[i].mlp_norm - s.params), 4, 5e-4, 2e-2);
    }
    fd_check("final norm", student_loss, &f, s.w.norm, g + (s.w.norm - s.params), 4, 5e-4, 2e-2);
    free(g);
    red_student_free(&s);
    red_model_free(&t);
}

Test(distill, fd_every_projection_and_norm_llama_tied, .init = setup, .fini = teardown) {
    red_config c;
    llama_cfg(&c, 23);
    projection_fd(&c, RED_KL_SEQUENCE, 21);
}

Test(distill, fd_every_projection_and_norm_qwen2_untied_token_kl, .init = setup, .fini = teardown) {
    red_config c;
    qwen2_cfg(&c, 19);
    projection_fd(&c, RED_KL_TOKEN, 22);
}

/* The FFN-out target y_T P_d alone: with only that clone term, dP_d must
 * include the target's path (checked against FD of the down projection). */
Test(distill, fd_ffn_out_target_path_into_pd, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_LRC);
    student_fd f;
    red_losses L;
    red_rng r;
    int tok[2 * 7], tgt[2 * 7], l;
    llama_cfg(&c, 23);
    make_teacher(&t, &c, 31);
    cr_assert(red_student_alloc(&s, &t, 8, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 7, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK);
    red_rng_seed(&r, 3);
    random_tokens(&r, tok, tgt, 14, c.vocab);
    f.s = &s; f.tok = tok; f.tgt = tgt;
    f.lc.tau = 1.0f; f.lc.alpha = 50.0f; f.lc.kl_reduction = RED_KL_SEQUENCE;  /* clone terms dominate */
    cr_assert(red_student_loss(&s, tok, tgt, &f.lc, 1, &L) == RED_OK);
    for (l = 0; l < c.n_layers; l++) {
        float *p = s.w.layers[l].p[RED_SITE_D], *g = s.gw.layers[l].p[RED_SITE_D];
        float *gc = malloc((size_t)s.d_t * s.d_s * sizeof(float));
        memcpy(gc, g, (size_t)s.d_t * s.d_s * sizeof(float));
        fd_check("P_d", student_loss, &f, p, gc, 24, 2e-3, 2e-2);
        free(gc);
    }
    red_student_free(&s);
    red_model_free(&t);
}

/* ------------------------------------------------------------------ materialisation */

Test(distill, materialized_model_equals_projection_form, .init = setup, .fini = teardown) {
    red_config c;
    red_model t, back;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_ORTHOGONAL);
    red_losses L;
    red_loss_cfg lc = {2.0f, 0.2f, RED_KL_SEQUENCE};
    red_rng r;
    int tok[2 * 7], tgt[2 * 7];
    char dir[] = "/tmp/red_test_student_XXXXXX";
    float *logits;
    size_t k;
    cr_assert(mkdtemp(dir));
    qwen2_cfg(&c, 19);
    make_teacher(&t, &c, 41);
    cr_assert(red_student_alloc(&s, &t, 6, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 7, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK);
    red_rng_seed(&r, 9);
    for (k = 0; k < s.n; k++) s.params[k] += 0.05f * (float)red_rng_normal(&r);
    random_tokens(&r, tok, tgt, 14, c.vocab);
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 0, &L) == RED_OK);
    logits = malloc((size_t)14 * c.vocab * sizeof(float));
    memcpy(logits, red_model_logits(&s.model), (size_t)14 * c.vocab * sizeof(float));
    cr_assert(red_model_save(&s.model, dir, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_load(&back, dir, pool, &err) == RED_OK, "%s", err.msg);
    cr_expect(back.cfg.dim == 6 && back.cfg.head_dim == 6 && back.cfg.n_heads == 4 && back.cfg.qkv_bias && !back.cfg.tied,
              "config: hidden 6, head_dim kept, biases, untied");
    cr_assert(red_model_train_alloc(&back, 2, 7, &err) == RED_OK);
    cr_assert(red_model_forward(&back, tok, 2, 7) == RED_OK);
    cr_expect(memcmp(red_model_logits(&back), logits, (size_t)14 * c.vocab * sizeof(float)) == 0,
              "the loaded student's logits equal the projection-form forward");
    /* and the merged weights are the products the spec names (A2) */
    {
        double worst = 0.0;
        int i, j, p;
        const float *W = t.w.layers[1].wq, *P = s.w.layers[1].p[RED_SITE_Q], *Ws = back.w.layers[1].wq;
        const float *Wo = t.w.layers[1].wo, *Po = s.w.layers[1].p[RED_SITE_O], *Wos = back.w.layers[1].wo;
        int QD = 24;
        for (i = 0; i < QD; i++)
            for (j = 0; j < 6; j++) {
                double a = 0.0;
                for (p = 0; p < 16; p++) a += (double)W[i * 16 + p] * P[p * 6 + j];
                if (fabs(a - Ws[i * 6 + j]) > worst) worst = fabs(a - Ws[i * 6 + j]);
            }
        for (i = 0; i < 6; i++)
            for (j = 0; j < QD; j++) {
                double a = 0.0;
                for (p = 0; p < 16; p++) a += (double)Po[p * 6 + i] * Wo[p * QD + j];
                if (fabs(a - Wos[i * QD + j]) > worst) worst = fabs(a - Wos[i * QD + j]);
            }
        cr_expect(worst < 1e-5, "W_q P and P_oᵀ W_o (worst %g)", worst);
    }
    free(logits);
    red_model_free(&back);
    red_student_free(&s);
    red_model_free(&t);
    {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        cr_assert(system(cmd) == 0);
    }
}

/* ------------------------------------------------------------------ initialisations */

/* Every projection is the same selection matrix; returns its index set. */
static void expect_shared_selection(const red_student *s, int *sel) {
    int i, r, k, np = red_student_n_proj(s);
    const float *P0 = red_student_proj(s, 0, NULL, 0);
    for (k = 0; k < s->d_s; k++) {
        int ones = 0;
        for (r = 0; r < s->d_t; r++) {
            float v = P0[r * s->d_s + k];
            cr_assert(v == 0.0f || v == 1.0f, "entries are 0 or 1");
            if (v == 1.0f) { ones++; sel[k] = r; }
        }
        cr_assert(ones == 1, "column %d has a single 1", k);
        if (k) cr_expect(sel[k] > sel[k - 1], "indices ascending");
    }
    for (i = 1; i < np; i++)
        cr_expect(memcmp(red_student_proj(s, i, NULL, 0), P0, (size_t)s->d_t * s->d_s * sizeof(float)) == 0,
                  "projection %d shares the selection", i);
}

/* Independent energy score (B2) over the same calibration rows. */
static void reference_energy_top(red_model *t, red_train_data *calib, int B, int T, int64_t tokens, int ds, int *sel,
                                 double *gram) {
    int L = t->cfg.n_layers, d = t->cfg.dim, site, j, k, n;
    double *e = calloc((size_t)(2 * L + 1) * d, sizeof(double)), *score = calloc((size_t)d, sizeof(double));
    int *in = malloc((size_t)B * T * sizeof(int)), *tgt = malloc((size_t)B * T * sizeof(int));
    unsigned char *taken = calloc((size_t)d, 1);
    uint64_t epoch = 0, off = 0;
    int64_t done = 0;
    red_error err;
    if (gram) memset(gram, 0, (size_t)d * d * sizeof(double));
    while (done < tokens) {
        cr_assert(red_train_data_batch(calib, RED_CALIB_SEED, &epoch, &off, B, T, in, tgt, &err) == RED_OK);
        if (epoch > 0 && done > 0) break;
        red_model_forward(t, in, B, T);
        for (site = 0; site <= 2 * L; site++) {
            red_layer_acts la;
            const float *x;
            if (site == 2 * L) x = red_model_final_normed(t);
            else {
                red_model_layer_acts(t, site / 2, &la);
                x = site % 2 ? la.xn_m : la.xn_a;
            }
            for (n = 0; n < B * T; n++)
                for (j = 0; j < d; j++) {
                    e[site * d + j] += (double)x[n * d + j] * x[n * d + j];
                    if (gram)
                        for (k = 0; k < d; k++) gram[j * d + k] += (double)x[n * d + j] * x[n * d + k];
                }
        }
        done += B * T;
    }
    for (site = 0; site <= 2 * L; site++) {
        double tot = 0.0;
        for (j = 0; j < d; j++) tot += e[site * d + j];
        for (j = 0; j < d; j++) score[j] += e[site * d + j] / tot;
    }
    for (k = 0; k < ds; k++) {
        int best = -1;
        for (j = 0; j < d; j++)
            if (!taken[j] && (best < 0 || score[j] > score[best])) best = j;
        cr_assert(best >= 0);
        taken[best] = 1;
    }
    for (j = 0, k = 0; j < d; j++)
        if (taken[j]) sel[k++] = j;
    free(e); free(score); free(in); free(tgt); free(taken);
}

Test(distill, init_red_selects_top_energy_channels_with_rms_corrected_norms, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_train_data calib;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_RED);
    int sel[8], ref[8], k, l;
    char path[] = "/tmp/red_test_calib_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    llama_cfg(&c, 259);
    make_teacher(&t, &c, 51);
    make_calib(&calib, path);
    cr_assert(red_student_alloc(&s, &t, 8, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 16, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, &calib, 128, &err) == RED_OK, "%s", err.msg);
    expect_shared_selection(&s, sel);
    reference_energy_top(&t, &calib, 2, 16, 128, 8, ref, NULL);
    for (k = 0; k < 8; k++) cr_expect(sel[k] == ref[k], "channel %d: %d, reference %d", k, sel[k], ref[k]);
    /* gamma_s = c * gamma_t[I] with one c per site */
    for (l = 0; l < c.n_layers; l++) {
        double c0 = s.w.layers[l].attn_norm[0] / t.w.layers[l].attn_norm[sel[0]];
        cr_expect(c0 > 0.2 && c0 < 5.0, "plausible RMS correction %g", c0);
        for (k = 1; k < 8; k++)
            cr_expect(fabs(s.w.layers[l].attn_norm[k] / t.w.layers[l].attn_norm[sel[k]] - c0) < 1e-5 * c0,
                      "one correction per site");
    }
    red_student_free(&s);
    red_model_free(&t);
    red_train_data_free(&calib);
    unlink(path);
}

Test(distill, init_magnitude_is_a_shared_selection_of_heavy_columns, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_MAGNITUDE);
    int sel[6], k, j;
    llama_cfg(&c, 23);
    make_teacher(&t, &c, 52);
    /* make channel 5 and 11 dominant in every weight that touches them */
    for (j = 0; j < t.n_tensors; j++)
        if (t.table[j].ndim == 2) {
            float *W = t.params + t.table[j].offset;
            int rows = (int)t.table[j].shape[0], cols = (int)t.table[j].shape[1], r;
            for (r = 0; r < rows; r++)
                for (k = 0; k < cols; k++)
                    if ((cols == 16 && (k == 5 || k == 11)) || (rows == 16 && cols != 16 && (r == 5 || r == 11)))
                        W[r * cols + k] *= 10.0f;
        }
    cr_assert(red_student_alloc(&s, &t, 6, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 4, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK, "%s", err.msg);
    expect_shared_selection(&s, sel);
    {
        int has5 = 0, has11 = 0;
        for (k = 0; k < 6; k++) { has5 |= sel[k] == 5; has11 |= sel[k] == 11; }
        cr_expect(has5 && has11, "the heavy channels are selected");
    }
    for (k = 0; k < 6; k++) cr_expect(s.w.norm[k] == t.w.norm[sel[k]], "norms are gamma_t[I] (no calibration)");
    red_student_free(&s);
    red_model_free(&t);
}

Test(distill, init_orthogonal_has_orthonormal_independent_columns, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_ORTHOGONAL);
    int i, np;
    llama_cfg(&c, 23);
    make_teacher(&t, &c, 53);
    cr_assert(red_student_alloc(&s, &t, 7, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK, "%s", err.msg);
    np = red_student_n_proj(&s);
    for (i = 0; i < np; i++) cr_expect(tu_orth_err(red_student_proj(&s, i, NULL, 0), 16, 7) < 1e-5, "PᵀP = I");
    cr_expect(memcmp(red_student_proj(&s, 0, NULL, 0), red_student_proj(&s, 1, NULL, 0), 16 * 7 * sizeof(float)) != 0,
              "independent draws per site");
    cr_expect(s.w.norm[0] == 1.0f && s.w.layers[0].mlp_norm[3] == 1.0f, "norms 1 (LRC)");
    red_student_free(&s);
    red_model_free(&t);
}

Test(distill, init_lrc_is_gaussian_with_the_given_std, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_LRC);
    int i, np;
    size_t k, n = 0;
    double sum = 0.0, sq = 0.0, sd, m4 = 0.0;
    llama_cfg(&c, 23);
    c.dim = 64; c.ffn = 32; c.head_dim = 32;
    make_teacher(&t, &c, 54);
    io.std = 0.02f;
    cr_assert(red_student_alloc(&s, &t, 32, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK, "%s", err.msg);
    np = red_student_n_proj(&s);
    for (i = 0; i < np; i++) {
        const float *p = red_student_proj(&s, i, NULL, 0);
        for (k = 0; k < 64 * 32; k++, n++) {
            sum += p[k];
            sq += (double)p[k] * p[k];
            m4 += pow(p[k], 4);
        }
    }
    sd = sqrt(sq / n);
    /* n = 30720: the mean's std is 0.02/sqrt(n) = 1.1e-4; the std's relative std is 1/sqrt(2n) = 0.4% */
    cr_expect(fabs(sum / n) < 5 * 0.02 / sqrt((double)n), "mean %g", sum / n);
    cr_expect(fabs(sd / 0.02 - 1.0) < 0.02, "std %g", sd);
    cr_expect(fabs(m4 / n / pow(sd, 4) - 3.0) < 0.15, "kurtosis %g (Gaussian 3)", m4 / n / pow(sd, 4));
    red_student_free(&s);
    red_model_free(&t);
}

Test(distill, init_pca_spans_the_top_principal_subspace, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_train_data calib;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_PCA);
    int sel[6], i, j, k, d = 16, ds = 6;
    double *G = malloc((size_t)d * d * sizeof(double)), cap = 0.0, top = 0.0, res = 0.0, gn = 0.0;
    float *Gf = malloc((size_t)d * d * sizeof(float)), w[16];
    const float *P;
    char path[] = "/tmp/red_test_calib_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    llama_cfg(&c, 259);
    make_teacher(&t, &c, 55);
    make_calib(&calib, path);
    cr_assert(red_student_alloc(&s, &t, ds, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 16, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, &calib, 256, &err) == RED_OK, "%s", err.msg);
    reference_energy_top(&t, &calib, 2, 16, 256, ds, sel, G);
    P = red_student_proj(&s, 0, NULL, 0);
    cr_expect(tu_orth_err(P, d, ds) < 1e-5, "orthonormal");
    for (i = 1; i < red_student_n_proj(&s); i++)
        cr_expect(memcmp(red_student_proj(&s, i, NULL, 0), P, (size_t)d * ds * sizeof(float)) == 0, "shared basis");
    /* captured energy tr(PᵀGP) equals the sum of the top ds eigenvalues, and GP stays in span(P) */
    for (i = 0; i < d * d; i++) { Gf[i] = (float)G[i]; gn += G[i] * G[i]; }
    cr_assert(red_eig_sym(d, Gf, d, w, NULL) == RED_OK);
    for (k = 0; k < ds; k++) top += w[k];
    for (k = 0; k < ds; k++)
        for (i = 0; i < d; i++)
            for (j = 0; j < d; j++) cap += P[i * ds + k] * G[i * d + j] * P[j * ds + k];
    cr_expect(fabs(cap - top) < 1e-4 * top, "captured %g, top eigenvalues %g", cap, top);
    for (i = 0; i < d; i++)
        for (k = 0; k < ds; k++) {  /* (I - PPᵀ) G P */
            double gp = 0.0, proj = 0.0;
            int m;
            for (j = 0; j < d; j++) gp += G[i * d + j] * P[j * ds + k];
            for (m = 0; m < ds; m++) {
                double pg = 0.0;
                for (j = 0; j < d; j++) {
                    double gpj = 0.0;
                    int q;
                    for (q = 0; q < d; q++) gpj += G[j * d + q] * P[q * ds + k];
                    pg += P[j * ds + m] * gpj;
                }
                proj += P[i * ds + m] * pg;
            }
            res += (gp - proj) * (gp - proj);
        }
    cr_expect(sqrt(res / gn) < 1e-4, "span(P) is invariant under G (residual %g)", sqrt(res / gn));
    free(G); free(Gf);
    red_student_free(&s);
    red_model_free(&t);
    red_train_data_free(&calib);
    unlink(path);
}

/* ------------------------------------------------------------------ the loop: resume and threads */

static int run_chain_each;  /* red_distill_opts.chain_each of run_distill */

static void run_distill(red_pool *p, const char *dir, const char *calib_path, uint64_t stop, int resume, float *params,
                        float *m) {
    red_config c;
    red_model t;
    red_student s;
    red_train_data calib;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_RED);
    red_distill_opts o;
    red_pool *keep = pool;
    pool = p;
    llama_cfg(&c, 259);
    make_teacher(&t, &c, 61);
    make_calib(&calib, calib_path);
    cr_assert(red_student_alloc(&s, &t, 8, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, 2, 16, &err) == RED_OK);
    cr_assert(red_student_initialize(&s, &io, &calib, 64, &err) == RED_OK, "%s", err.msg);
    memset(&o, 0, sizeof o);
    o.loop.out = dir; o.loop.tokens = 6 * 2 * 16; o.loop.batch = 2; o.loop.seq = 16; o.loop.seed = 3;
    o.loop.lr = 1e-2f; o.loop.min_lr = 0.0f; o.loop.beta1 = 0.9f; o.loop.beta2 = 0.999f; o.loop.clip = 1.0; o.loop.warmup_steps = 1;
    o.loop.schedule = RED_SCHED_LINEAR; o.loss.tau = 4.0f; o.loss.alpha = 0.2f; o.loss.kl_reduction = RED_KL_SEQUENCE;
    o.loop.save_every = 3; o.loop.resume = resume; o.loop.stop_after = stop; o.chain_each = run_chain_each;
    cr_assert(red_distill(&o, &s, &calib, NULL, &err) == RED_OK, "%s", err.msg);
    memcpy(params, s.params, s.n * sizeof(float));
    memcpy(m, s.adam_m, s.n * sizeof(float));
    red_student_free(&s);
    red_model_free(&t);
    red_train_data_free(&calib);
    pool = keep;
}

/* Batch 2: on 2 threads the sequences run on two workers at once, on 1
 * thread one after another; the projections must be the same bits. */
Test(distill, kill_and_resume_equals_one_run_and_threads_agree, .init = setup, .fini = teardown) {
    char d1[] = "/tmp/red_test_dist_XXXXXX", d2[] = "/tmp/red_test_dist_XXXXXX", cp[] = "/tmp/red_test_calib_XXXXXX";
    size_t n = 100000;
    float *a = calloc(n, 4), *am = calloc(n, 4), *b = calloc(n, 4), *bm = calloc(n, 4), *c1 = calloc(n, 4),
          *cm = calloc(n, 4);
    red_pool *one = red_pool_create(1);
    int fd = mkstemp(cp);
    char cmd[256];
    close(fd);
    cr_assert(mkdtemp(d1) && mkdtemp(d2));
    run_distill(pool, d1, cp, 0, 0, a, am);
    run_distill(pool, d2, cp, 3, 0, b, bm);   /* "killed" after the step-3 checkpoint */
    run_distill(pool, d2, cp, 0, 1, b, bm);   /* resumed */
    cr_expect(memcmp(a, b, n * 4) == 0 && memcmp(am, bm, n * 4) == 0, "resumed run is bit-identical");
    run_distill(one, d1, cp, 0, 0, c1, cm);
    cr_expect(memcmp(a, c1, n * 4) == 0, "1 and 2 threads give bit-identical projections");
    cr_expect(memcmp(a, b, 4 * 16 * 8) == 0 && a[0] != 0.0f, "sanity");
    red_pool_destroy(one);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", d1, d2, cp);
    cr_assert(system(cmd) == 0);
    free(a); free(am); free(b); free(bm); free(c1); free(cm);
}

/* A batch's gradient is each sequence's merged-model gradient (with its
 * FFN-out targets' terms), summed by the tree and chained into the
 * projections once, or each sequence chained and the projections' gradients
 * summed; the whole batch at once chains its own. They differ only in
 * rounding. 3 sequences on 2 threads: workers and a lone leaf. */
Test(distill, batch_gradient_equals_the_whole_batch_gradient, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_student s;
    red_distill_batch d;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_LRC);
    red_loss_cfg lc = {2.0f, 0.7f, RED_KL_SEQUENCE};
    red_losses whole, batch;
    red_rng r;
    int tok[3 * 7], tgt[3 * 7], each;
    size_t k;
    float *g;
    double worst, scale;
    llama_cfg(&c, 23);
    make_teacher(&t, &c, 71);
    cr_assert(red_student_alloc(&s, &t, 10, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_train_alloc(&s, 3, 7, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, 72);
    random_tokens(&r, tok, tgt, 21, c.vocab);
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 1, &whole) == RED_OK);
    cr_assert(whole.clone_site[RED_SITE_D] > 0.0, "the FFN-out target's term is active");
    g = malloc(s.n * sizeof(float));
    memcpy(g, s.grads, s.n * sizeof(float));
    for (each = 0; each < 2; each++) {
        cr_assert(red_distill_batch_alloc(&d, &s, &lc, each, &err) == RED_OK, "%s", err.msg);
        for (k = 0; k < s.n; k++) s.grads[k] = NAN;
        cr_assert(red_distill_batch_run(&d, tok, tgt, 0, 1, &batch, &err) == RED_OK, "%s", err.msg);
        worst = scale = 0.0;
        for (k = 0; k < s.n; k++) {
            double e = fabs((double)s.grads[k] - g[k]);
            if (!(e <= worst)) worst = e;
            if (fabs(g[k]) > scale) scale = fabs(g[k]);
        }
        cr_expect(worst <= 1e-5 * scale, "batch gradient (%s) off by %g (largest element %g)",
                  each ? "each sequence chained" : "chained once", worst, scale);
        cr_expect(fabs(batch.total - whole.total) <= 1e-6 * fabs(whole.total), "losses %.9g and %.9g", batch.total,
                  whole.total);
        red_distill_batch_free(&d);
    }
    free(g);
    red_student_free(&s);
    red_model_free(&t);
}

/* Chaining each sequence: 1 and 2 threads agree bit for bit too, and the
 * projections differ from chaining once only in rounding. */
Test(distill, chain_each_sequence_threads_agree, .init = setup, .fini = teardown) {
    char d1[] = "/tmp/red_test_dist_XXXXXX", cp[] = "/tmp/red_test_calib_XXXXXX";
    size_t n = 100000, k;
    float *a = calloc(n, 4), *am = calloc(n, 4), *c1 = calloc(n, 4), *cm = calloc(n, 4), *o = calloc(n, 4),
          *om = calloc(n, 4);
    red_pool *one = red_pool_create(1);
    int fd = mkstemp(cp), differ = 0;
    char cmd[256];
    close(fd);
    cr_assert(mkdtemp(d1));
    run_distill(pool, d1, cp, 0, 0, o, om);
    run_chain_each = 1;
    run_distill(pool, d1, cp, 0, 0, a, am);
    run_distill(one, d1, cp, 0, 0, c1, cm);
    run_chain_each = 0;
    cr_expect(memcmp(a, c1, n * 4) == 0, "1 and 2 threads give bit-identical projections");
    for (k = 0; k < n; k++) {
        differ |= a[k] != o[k];
        cr_assert(fabsf(a[k] - o[k]) <= 1e-4f * (1.0f + fabsf(o[k])), "element %zu: %g chained each, %g once", k,
                  a[k], o[k]);
    }
    cr_expect(differ, "the two orders differ in rounding (else the option does nothing)");
    red_pool_destroy(one);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", d1, cp);
    cr_assert(system(cmd) == 0);
    free(a); free(am); free(c1); free(cm); free(o); free(om);
}

/* ------------------------------------------------------------------ eRank */

Test(distill, erank_layers_matches_direct_svd_of_each_layer, .init = setup, .fini = teardown) {
    red_config c;
    red_model t;
    red_error err;
    red_rng r;
    int tok[3 * 8], tgt[3 * 8], l;
    double er[3], direct;
    float *H = malloc(3 * 8 * 16 * sizeof(float));
    llama_cfg(&c, 23);
    make_teacher(&t, &c, 71);
    red_rng_seed(&r, 4);
    random_tokens(&r, tok, tgt, 24, 23);
    cr_assert(red_model_train_alloc(&t, 2, 8, &err) == RED_OK);  /* 3 rows in chunks of 2 */
    cr_assert(red_erank_layers(&t, tok, 3, 8, 0, er, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_train_alloc(&t, 3, 8, &err) == RED_OK);
    red_model_forward(&t, tok, 3, 8);
    for (l = 0; l <= c.n_layers; l++) {
        red_layer_acts la;
        if (l < c.n_layers) {
            red_model_layer_acts(&t, l, &la);
            memcpy(H, la.out, 24 * 16 * sizeof(float));
        } else memcpy(H, red_model_final_normed(&t), 24 * 16 * sizeof(float));
        cr_assert(red_erank(pool, 24, 16, H, 16, 0, &direct) == RED_OK);
        cr_expect(fabs(er[l] - direct) < 1e-4 * direct, "layer %d: %g vs %g", l, er[l], direct);
        cr_expect(er[l] > 1.0 && er[l] <= 16.0, "eRank in (1, d]");
    }
    free(H);
    red_model_free(&t);
}

/* One name, one meaning: the same init name gives the same init everywhere. */
Test(distill, init_names_have_one_meaning) {
    red_init_opts io;
    red_error err;
    red_init_opts_default(&io);
    cr_assert(red_init_by_name("lrc", 768, &io, &err) == RED_OK);
    cr_assert(io.kind == RED_INIT_LRC);
    cr_assert_float_eq(io.std, (float)(0.02 * sqrt(3072.0 / 768)), 0, "lrc keeps LRC's column norm: 0.04 at d_t 768");
    cr_assert(red_init_by_name("lrc-literal", 768, &io, &err) == RED_OK);
    cr_assert(io.kind == RED_INIT_LRC && io.std == 0.02f);
    cr_assert(red_init_by_name("red", 768, &io, &err) == RED_OK && io.kind == RED_INIT_RED);
    cr_assert(red_init_by_name("lcr", 768, &io, &err) == RED_E_ARG);
    cr_assert(strstr(err.msg, "lrc, lrc-literal, orthogonal, pca, magnitude, red"), "%s", err.msg);
}

/* ------------------------------------------------------------------ vocabulary chunks, bit for bit */

/* 2 x 200 = 400 rows: more than one GEMM k block (384 AVX-512, 256 otherwise)
 * and not a multiple of it, so the chunked head crosses a chunk edge. */
#define CHUNK_B 2
#define CHUNK_T 200

/* The model's head in row chunks gives the unchunked logits, CE and
 * gradients bit for bit. */
Test(distill, chunked_head_equals_unchunked, .init = setup, .fini = teardown) {
    red_config c;
    red_model full, ch;
    red_error err;
    red_rng r;
    int tok[CHUNK_B * CHUNK_T], tgt[CHUNK_B * CHUNK_T];
    int64_t N = CHUNK_B * CHUNK_T, R, r0, n, count = 0;
    double rows_ce[CHUNK_B * CHUNK_T], sum = 0.0;
    float ce;
    llama_cfg(&c, 300);
    c.n_layers = 2;
    make_teacher(&full, &c, 3);
    cr_assert(red_model_share(&ch, &full, pool, &err) == RED_OK);
    red_rng_seed(&r, 8);
    random_tokens(&r, tok, tgt, (int)N, c.vocab);
    cr_assert(red_model_run_alloc(&full, CHUNK_B, CHUNK_T, RED_RUN_BACKWARD, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_run_alloc(&ch, CHUNK_B, CHUNK_T, RED_RUN_BACKWARD | RED_RUN_HEAD_CHUNKS, &err) == RED_OK);
    R = red_model_head_rows(&ch);
    cr_assert(R == red_sgemm_k_block() && R < N && N % R != 0, "rows %lld cross a chunk edge of %lld", (long long)N,
              (long long)R);
    cr_assert(red_model_forward(&full, tok, CHUNK_B, CHUNK_T) == RED_OK);
    ce = red_model_cross_entropy(&full, tgt, 1, NULL);
    cr_assert(red_model_backward(&full) == RED_OK);
    cr_assert(red_model_forward(&ch, tok, CHUNK_B, CHUNK_T) == RED_OK);
    cr_expect(red_model_cross_entropy(&ch, tgt, 1, NULL) != red_model_cross_entropy(&ch, tgt, 1, NULL),
              "the whole-batch CE refuses a chunked run state (NaN)");
    cr_expect(red_model_head_forward(&ch, 1, 8) == RED_E_ARG, "a chunk starts on a chunk edge");
    cr_expect(red_model_head_forward(&ch, 0, R + 1) == RED_E_ARG, "a chunk fits the buffer");
    cr_expect(red_model_head_forward(&full, 0, 8) == RED_E_ARG, "an unchunked run state has no chunks");
    for (n = 0; n < N; n++) count += tgt[n] >= 0;
    for (r0 = 0; r0 < N; r0 += R) {
        int64_t rows = N - r0 < R ? N - r0 : R;
        cr_assert(red_model_head_forward(&ch, r0, rows) == RED_OK);
        cr_expect(memcmp(red_model_logits(&ch), red_model_logits(&full) + (size_t)r0 * c.vocab,
                         (size_t)rows * c.vocab * sizeof(float)) == 0, "logits of rows %lld.. equal", (long long)r0);
        red_cross_entropy_rows(pool, rows_ce + r0, red_model_dlogits(&ch), red_model_logits(&ch), tgt + r0, rows, c.vocab,
                               1.0f / (float)count);
        if (r0 == 0) cr_expect(red_model_backward(&ch) == RED_E_ARG, "backward needs every row's head backward");
        cr_assert(red_model_head_backward(&ch, r0, rows) == RED_OK);
    }
    for (n = 0; n < N; n++) sum += rows_ce[n];
    cr_expect((float)(sum / count) == ce, "CE %.9g vs %.9g", (float)(sum / count), ce);
    cr_assert(red_model_backward(&ch) == RED_OK);
    cr_expect(memcmp(ch.grads, full.grads, full.n_params * sizeof(float)) == 0, "every gradient equals bit for bit");
    red_model_free(&ch);
    red_model_free(&full);
}

/* Forward KL(p_T || p_S) at tau over [N, V] logits, unchunked, distill.c's
 * formula: per-row values summed in row order; dz += scale * dKL/dz_S. */
static double kl_unchunked(const float *zt_all, const float *zs_all, float *dz, int64_t N, int V, double tau, float scale) {
    double total = 0.0, inv = 1.0 / tau;
    int64_t n;
    int j;
    for (n = 0; n < N; n++) {
        const float *zt = zt_all + (size_t)n * V, *zs = zs_all + (size_t)n * V;
        double mt = zt[0], ms = zs[0], st = 0.0, ss = 0.0, kl = 0.0, lt, ls, rt, rs;
        for (j = 1; j < V; j++) {
            if (zt[j] > mt) mt = zt[j];
            if (zs[j] > ms) ms = zs[j];
        }
        for (j = 0; j < V; j++) {  /* exponents rounded once to float, red_expf, double sums */
            st += red_expf((float)((zt[j] - mt) * inv));
            ss += red_expf((float)((zs[j] - ms) * inv));
        }
        lt = log(st);
        ls = log(ss);
        rt = 1.0 / st;
        rs = 1.0 / ss;
        for (j = 0; j < V; j++) {
            float at = (float)((zt[j] - mt) * inv), as = (float)((zs[j] - ms) * inv);
            double pt = red_expf(at) * rt, lpt = at - lt, lps = as - ls;
            kl += pt * (lpt - lps);
            dz[(size_t)n * V + j] += (float)(scale * (red_expf(as) * rs - pt) * inv);
        }
        total += kl;
    }
    return total;
}

/* The student's loss over vocabulary chunks equals the unchunked CE + KL
 * computed on full [N, V] logits, and so do the merged model's gradients
 * (alpha 0: the clone terms add exact zeros). */
static void student_chunks_equal_unchunked(red_config *c) {
    red_model t, tf, sf;
    red_student s;
    red_error err;
    red_init_opts io = init_opts(RED_INIT_ORTHOGONAL);
    red_loss_cfg lc = {2.0f, 0.0f, RED_KL_SEQUENCE};
    red_losses L, L0;
    red_rng r;
    int tok[CHUNK_B * CHUNK_T], tgt[CHUNK_B * CHUNK_T];
    int64_t N = CHUNK_B * CHUNK_T;
    double kl;
    float ce;
    size_t k;
    make_teacher(&t, c, 12);
    cr_assert(red_student_alloc(&s, &t, 6, &err) == RED_OK);
    cr_assert(red_student_train_alloc(&s, CHUNK_B, CHUNK_T, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_student_initialize(&s, &io, NULL, 0, &err) == RED_OK);
    cr_assert(red_model_head_rows(&s.model) < N, "the loss runs in more than one chunk");
    red_rng_seed(&r, 2);
    for (k = 0; k < s.n; k++) s.params[k] += 0.05f * (float)red_rng_normal(&r);
    random_tokens(&r, tok, tgt, (int)N, c->vocab);
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 1, &L) == RED_OK);
    /* unchunked: the teacher and the merged student on full run states */
    cr_assert(red_model_share(&tf, &t, pool, &err) == RED_OK && red_model_share(&sf, &s.model, pool, &err) == RED_OK);
    cr_assert(red_model_run_alloc(&tf, CHUNK_B, CHUNK_T, RED_RUN_FORWARD, &err) == RED_OK);
    cr_assert(red_model_run_alloc(&sf, CHUNK_B, CHUNK_T, RED_RUN_BACKWARD, &err) == RED_OK);
    cr_assert(red_model_forward(&tf, tok, CHUNK_B, CHUNK_T) == RED_OK && red_model_forward(&sf, tok, CHUNK_B, CHUNK_T) == RED_OK);
    ce = red_model_cross_entropy(&sf, tgt, 1, NULL);
    kl = kl_unchunked(red_model_logits(&tf), red_model_logits(&sf), red_model_dlogits(&sf), N, c->vocab, lc.tau,
                      (float)(1.0 / CHUNK_B)) / CHUNK_B;
    cr_assert(red_model_backward(&sf) == RED_OK);
    cr_expect(L.ce == ce, "CE %.17g vs unchunked %.17g", L.ce, (double)ce);
    cr_expect(L.kl == kl, "KL %.17g vs unchunked %.17g", L.kl, kl);
    for (k = 0; k < sf.n_params; k++)  /* == : a clone gradient of 0 may turn a -0 into +0 */
        if (s.model.grads[k] != sf.grads[k]) break;
    cr_expect(k == sf.n_params, "the merged model's gradients equal the unchunked ones (first difference at %zu)", k);
    /* clone terms summed in layer order whether computed inside backward or not */
    lc.alpha = 0.5f;
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 1, &L) == RED_OK);
    cr_assert(red_student_loss(&s, tok, tgt, &lc, 0, &L0) == RED_OK);
    cr_expect(memcmp(&L, &L0, sizeof L) == 0 && L.clone > 0.0, "the same losses with and without gradients");
    red_model_free(&sf);
    red_model_free(&tf);
    red_student_free(&s);
    red_model_free(&t);
}

Test(distill, student_vocab_chunks_equal_unchunked_llama_tied, .init = setup, .fini = teardown) {
    red_config c;
    llama_cfg(&c, 300);
    student_chunks_equal_unchunked(&c);
}

Test(distill, student_vocab_chunks_equal_unchunked_qwen2_untied, .init = setup, .fini = teardown) {
    red_config c;
    qwen2_cfg(&c, 300);
    student_chunks_equal_unchunked(&c);
}

/* ------------------------------------------------------------------ red inspect */

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
    cr_assert(red_model_alloc(t, &c, pool, &err) == RED_OK, "%s", err.msg);
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

Test(distill, inspect_rank_one_planted_outliers_match_closed_forms, .init = setup, .fini = teardown) {
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

Test(distill, inspect_gaussian_planted_outliers_match_direct_energies_and_the_init, .init = setup, .fini = teardown) {
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
    cr_assert(red_student_alloc(&s, &t, DS, &err) == RED_OK);
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

Test(distill, inspect_random_teacher_respects_the_bounds_and_threads_agree, .init = setup, .fini = teardown) {
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
    cr_assert(red_model_alloc(&t, &c, pool, &err) == RED_OK);
    red_rng_seed(&g, 9);
    red_model_init_random(&t, &g, 0.3f, 0.0f);
    calib_file(&calib, path);
    cr_assert(red_inspect(&t, 7, &calib, 256, 2, 16, &r, &err) == RED_OK, "%s", err.msg);
    check_bounds(&r);
    red_model_free(&t);
    pool = one;  /* the same teacher on one thread: bit-identical fractions */
    cr_assert(red_model_alloc(&t, &c, pool, &err) == RED_OK);
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

Test(distill, inspect_hidden_metrics_are_erank_layers_plus_indist_of_each_layer, .init = setup, .fini = teardown) {
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
