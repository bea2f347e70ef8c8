/* tests/test_model.c - the transformer against an independent float64
 * PyTorch implementation (tests/fixtures/make_model_fixtures.py), finite
 * differences for every op's backward and for the whole model w.r.t. every
 * parameter tensor, KV-cache decoding vs the full forward, determinism
 * across runs and thread counts, optimizer and schedule closed forms, and
 * the sampler. */
#include <criterion/criterion.h>
#include <float.h>
#include <stdio.h>

#include "testutil.h"

static red_pool *pool;
static void setup(void) { pool = red_pool_create(2); }
static void teardown(void) { red_pool_destroy(pool); }

static float *st_tensor(const red_safetensors *st, const char *name, size_t *n) {
    const red_st_entry *e = red_st_find(st, name);
    float *x;
    red_error err;
    cr_assert(e, "reference tensor %s missing", name);
    *n = (e->end - e->begin) / 4;
    x = malloc(*n * sizeof(float) + 4);
    cr_assert(red_st_read_f32(st, e, x, &err) == RED_OK, "%s", err.msg);
    return x;
}

/* ------------------------------------------------------------------ PyTorch fixture */

static void check_fixture(const char *dir) {
    red_model m;
    red_safetensors ref;
    red_error err;
    char path[512];
    size_t n, nt, i;
    float *tokf, *tgtf, *logits, *loss, *losses;
    int tokens[64], targets[64], B = 2, T, k, step;
    red_adamw_cfg opt = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
    cr_assert(red_model_load(&m, dir, pool, &err) == RED_OK, "%s", err.msg);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    cr_assert(red_st_open(&ref, path, &err) == RED_OK, "%s", err.msg);
    tokf = st_tensor(&ref, "tokens", &nt);
    tgtf = st_tensor(&ref, "targets", &n);
    T = (int)nt / B;
    for (i = 0; i < nt; i++) {
        tokens[i] = (int)tokf[i];
        targets[i] = (int)tgtf[i];
    }
    cr_assert(red_model_train_alloc(&m, B, T, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_forward(&m, tokens, B, T) == RED_OK);
    logits = st_tensor(&ref, "logits", &n);
    cr_assert_eq(n, nt * (size_t)m.cfg.vocab);
    /* fp32 vs fp64 through 2 layers of O(1) activations: ~1e-6 relative */
    expect_close("logits", red_model_logits(&m), logits, n, 2e-5, 1e-4);
    loss = st_tensor(&ref, "loss", &n);
    /* stale gradients must not leak through red_model_zero_grad, which only
     * marks tensors unwritten: each tensor is overwritten or cleared */
    for (i = 0; i < m.n_params; i++) m.grads[i] = NAN;
    red_model_zero_grad(&m);
    {
        float l = red_model_cross_entropy(&m, targets, 1, NULL);
        cr_expect(fabs(l - loss[0]) <= 1e-5 * fabs(loss[0]), "loss %.9g vs reference %.9g", l, loss[0]);
    }
    cr_assert(red_model_backward(&m) == RED_OK);
    for (k = 0; k < m.n_tensors; k++) {
        char gname[96];
        float *g;
        const red_param *p = &m.table[k];
        snprintf(gname, sizeof gname, "grad.%s", p->name);
        g = st_tensor(&ref, gname, &n);
        cr_assert_eq(n, p->numel, "%s", gname);
        /* gradients are O(1e-2); fp32 error ~1e-7 absolute */
        expect_close(gname, m.grads + p->offset, g, n, 2e-6, 1e-4);
        free(g);
    }
    {  /* backward without zero_grad adds: the same gradient again, doubled up to
        * the rounding of the additions (an overwrite would leave it single) */
        float *once = malloc(m.n_params * sizeof(float));
        size_t bad = 0;
        memcpy(once, m.grads, m.n_params * sizeof(float));
        red_model_cross_entropy(&m, targets, 1, NULL);
        cr_assert(red_model_backward(&m) == RED_OK);
        for (i = 0; i < m.n_params; i++) bad += !(fabsf(m.grads[i] - 2.0f * once[i]) <= 1e-5f * fabsf(once[i]) + 1e-8f);
        cr_expect(bad == 0, "%zu of %zu gradients are not twice the first backward's", bad, m.n_params);
        free(once);
    }
    /* 10 AdamW steps (lr 1e-2, betas 0.9/0.95, wd 0.1 on matrices) */
    losses = st_tensor(&ref, "adamw_losses", &n);
    cr_assert_eq(n, 10);
    {
        float ours[10];
        for (step = 0; step < 10; step++) {
            red_model_forward(&m, tokens, B, T);
            red_model_zero_grad(&m);
            ours[step] = red_model_cross_entropy(&m, targets, 1, NULL);
            red_model_backward(&m);
            red_model_adamw(&m, &opt);
        }
        /* Adam normalises each update, so fp32 rounding in near-zero gradients
         * moves parameters by up to lr; the loss stays within 1e-3 relative. */
        expect_close("adamw losses", ours, losses, 10, 1e-4, 1e-3);
    }
    free(tokf); free(tgtf); free(logits); free(loss); free(losses);
    red_st_close(&ref);
    red_model_free(&m);
}

Test(model, pytorch_fixture_qwen2_gqa_bias_untied_headdim, .init = setup, .fini = teardown) {
    check_fixture(FIXTURE("model_qwen2_gqa"));
}

Test(model, pytorch_fixture_llama_tied_llama3_rope, .init = setup, .fini = teardown) {
    check_fixture(FIXTURE("model_llama_tied"));
}

/* ------------------------------------------------------------------ finite differences: ops */

typedef struct {
    int N, D, O;
    float *x, *w, *b, *out, *rstd, *c;
} op_ctx;

static double rmsnorm_loss(void *v) {
    op_ctx *o = v;
    red_rmsnorm_forward(pool, o->out, o->rstd, o->x, o->w, o->N, o->D, 1e-5f);
    return weighted(o->out, o->c, (size_t)o->N * o->D);
}

Test(model, ops_rmsnorm_backward_fd, .init = setup, .fini = teardown) {
    red_rng r;
    op_ctx o;
    float *dx, *dw;
    red_rng_seed(&r, 11);
    o.N = 5; o.D = 12;
    o.x = tu_rand(&r, 60, -1.5f, 1.5f);
    o.w = tu_rand(&r, 12, 0.5f, 1.5f);
    o.c = tu_rand(&r, 60, -1, 1);
    o.out = malloc(60 * 4); o.rstd = malloc(5 * 4);
    dx = calloc(60, 4); dw = calloc(12, 4);
    rmsnorm_loss(&o);
    red_rmsnorm_backward(pool, dx, dw, o.c, o.x, o.w, o.rstd, o.N, o.D);
    /* float forward: rounding ~1e-7 * sum|c out| / h ~ 1e-5 */
    fd_check("rmsnorm dx", rmsnorm_loss, &o, o.x, dx, 60, 1e-4, 1e-3);
    fd_check("rmsnorm dw", rmsnorm_loss, &o, o.w, dw, 12, 1e-4, 1e-3);
    free(o.x); free(o.w); free(o.c); free(o.out); free(o.rstd); free(dx); free(dw);
}

static double linear_loss(void *v) {
    op_ctx *o = v;
    red_linear_forward(pool, o->out, o->x, o->w, o->b, o->N, o->O, o->D);
    return weighted(o->out, o->c, (size_t)o->N * o->O);
}

Test(model, ops_linear_backward_fd, .init = setup, .fini = teardown) {
    red_rng r;
    op_ctx o;
    float *dx, *dw, *db;
    red_rng_seed(&r, 12);
    o.N = 6; o.D = 7; o.O = 5;
    o.x = tu_rand(&r, 42, -1, 1);
    o.w = tu_rand(&r, 35, -1, 1);
    o.b = tu_rand(&r, 5, -1, 1);
    o.c = tu_rand(&r, 30, -1, 1);
    o.out = malloc(30 * 4);
    dx = tu_rand(&r, 42, -1, 1);  /* din_beta 0 must overwrite garbage */
    dw = calloc(35, 4); db = calloc(5, 4);
    red_linear_backward(pool, dx, dw, db, o.c, o.x, o.w, o.N, o.O, o.D, 0.0f, 1.0f);
    fd_check("linear dx", linear_loss, &o, o.x, dx, 42, 1e-4, 1e-3);
    fd_check("linear dW", linear_loss, &o, o.w, dw, 35, 1e-4, 1e-3);
    fd_check("linear db", linear_loss, &o, o.b, db, 5, 1e-4, 1e-3);
    free(o.x); free(o.w); free(o.b); free(o.c); free(o.out); free(dx); free(dw); free(db);
}

static double swiglu_loss(void *v) {
    op_ctx *o = v;
    red_swiglu_forward(pool, o->out, o->x, o->w, o->N);
    return weighted(o->out, o->c, (size_t)o->N);
}

Test(model, ops_swiglu_backward_fd, .init = setup, .fini = teardown) {
    red_rng r;
    op_ctx o;
    float *dg, *du;
    red_rng_seed(&r, 13);
    o.N = 40;
    o.x = tu_rand(&r, 40, -4, 4);
    o.w = tu_rand(&r, 40, -2, 2);
    o.c = tu_rand(&r, 40, -1, 1);
    o.out = malloc(40 * 4);
    dg = malloc(40 * 4); du = malloc(40 * 4);
    red_swiglu_backward(pool, dg, du, o.c, o.x, o.w, 40);
    fd_check("swiglu dg", swiglu_loss, &o, o.x, dg, 40, 1e-4, 1e-3);
    fd_check("swiglu du", swiglu_loss, &o, o.w, du, 40, 1e-4, 1e-3);
    free(o.x); free(o.w); free(o.c); free(o.out); free(dg); free(du);
}

typedef struct {
    int B, T, H, KV, HD;
    float *q, *k, *v, *out, *probs, *c, *cs;
    int rope;  /* apply rope to copies of q,k first */
    float *qr, *kr;
} att_fd;

static double attention_loss(void *vp) {
    att_fd *a = vp;
    size_t nq = (size_t)a->B * a->T * a->H * a->HD, nk = (size_t)a->B * a->T * a->KV * a->HD;
    memcpy(a->qr, a->q, nq * 4);
    memcpy(a->kr, a->k, nk * 4);
    if (a->rope) {
        red_rope_forward(pool, a->qr, a->cs, (int64_t)a->B * a->T, a->T, a->H, a->HD);
        red_rope_forward(pool, a->kr, a->cs, (int64_t)a->B * a->T, a->T, a->KV, a->HD);
    }
    red_attention_forward(pool, a->out, a->probs, NULL, a->qr, a->kr, a->v, a->B, a->T, a->H, a->KV, a->HD);
    return weighted(a->out, a->c, nq);
}

/* GQA (4 query heads on 2 KV heads), T = 70 > RED_ATT_CHUNK so the chunked
 * causal path is crossed; with and without RoPE (llama3-scaled frequencies). */
static void attention_fd(int rope) {
    red_rng r;
    att_fd a;
    red_config c;
    float inv[4], *dq, *dk, *dv, *dscr;
    size_t nq, nk;
    red_rng_seed(&r, 14 + rope);
    a.B = 2; a.T = 70; a.H = 4; a.KV = 2; a.HD = 8; a.rope = rope;
    nq = (size_t)a.B * a.T * a.H * a.HD;
    nk = (size_t)a.B * a.T * a.KV * a.HD;
    a.q = tu_rand(&r, nq, -1, 1); a.k = tu_rand(&r, nk, -1, 1); a.v = tu_rand(&r, nk, -1, 1);
    a.c = tu_rand(&r, nq, -1, 1);
    a.qr = malloc(nq * 4); a.kr = malloc(nk * 4); a.out = malloc(nq * 4);
    a.probs = calloc((size_t)red_pool_size(pool) * red_attention_scratch_floats(a.T, a.HD), 4);  /* scratch */
    a.cs = malloc((size_t)a.T * a.HD * 4);
    red_config_default(&c);
    c.head_dim = 8; c.rope_llama3 = 1; c.rope_factor = 8; c.rope_orig_ctx = 32;
    red_rope_inv_freq(&c, inv);
    red_rope_table(a.cs, inv, 4, a.T, NULL);
    dq = malloc(nq * 4); dk = calloc(nk, 4); dv = calloc(nk, 4);
    dscr = malloc((size_t)red_pool_size(pool) * red_attention_scratch_floats(a.T, a.HD) * 4);
    attention_loss(&a);
    red_attention_backward(pool, dq, dk, dv, dscr, a.c, a.probs, NULL, a.qr, a.kr, a.v, a.B, a.T, a.H, a.KV, a.HD);
    {  /* probabilities kept by forward: backward gives the recomputing one's bits */
        float *keep = malloc((size_t)a.B * a.H * a.T * a.T * 4), *out2 = malloc(nq * 4), *dq2 = malloc(nq * 4),
              *dk2 = calloc(nk, 4), *dv2 = calloc(nk, 4);
        red_attention_forward(pool, out2, a.probs, keep, a.qr, a.kr, a.v, a.B, a.T, a.H, a.KV, a.HD);
        red_attention_backward(pool, dq2, dk2, dv2, dscr, a.c, a.probs, keep, a.qr, a.kr, a.v, a.B, a.T, a.H, a.KV,
                               a.HD);
        cr_expect(memcmp(out2, a.out, nq * 4) == 0, "forward with kept probabilities changed the output");
        cr_expect(memcmp(dq2, dq, nq * 4) == 0 && memcmp(dk2, dk, nk * 4) == 0 && memcmp(dv2, dv, nk * 4) == 0,
                  "backward from kept probabilities differs from the recomputing backward");
        free(keep); free(out2); free(dq2); free(dk2); free(dv2);
    }
    if (rope) {
        red_rope_backward(pool, dq, a.cs, (int64_t)a.B * a.T, a.T, a.H, a.HD);
        red_rope_backward(pool, dk, a.cs, (int64_t)a.B * a.T, a.T, a.KV, a.HD);
    }
    /* checked on a seeded sample of elements (the whole tensors take too long) */
    {
        int s;
        for (s = 0; s < 3; s++) {
            size_t off = (size_t)red_rng_below(&r, nq - 40);
            fd_check("attention dq", attention_loss, &a, a.q + off, dq + off, 40, 2e-4, 2e-3);
            off = (size_t)red_rng_below(&r, nk - 40);
            fd_check("attention dk", attention_loss, &a, a.k + off, dk + off, 40, 2e-4, 2e-3);
            fd_check("attention dv", attention_loss, &a, a.v + off, dv + off, 40, 2e-4, 2e-3);
        }
    }
    free(a.q); free(a.k); free(a.v); free(a.c); free(a.qr); free(a.kr); free(a.out); free(a.probs); free(a.cs);
    free(dq); free(dk); free(dv); free(dscr);
}

Test(model, ops_attention_backward_fd_gqa, .init = setup, .fini = teardown) { attention_fd(0); }
Test(model, ops_rope_attention_backward_fd, .init = setup, .fini = teardown) { attention_fd(1); }

Test(model, ops_embed_backward_accumulates_repeated_tokens, .init = setup, .fini = teardown) {
    int tok[5] = {3, 1, 3, 0, 3};
    float E[4 * 2], dE[4 * 2] = {0}, dout[5 * 2], out[10];
    int i;
    for (i = 0; i < 8; i++) E[i] = (float)i;
    for (i = 0; i < 10; i++) dout[i] = (float)(i + 1);
    red_embed_forward(pool, out, tok, E, 5, 2);
    cr_expect(out[0] == 6 && out[1] == 7 && out[2] == 2 && out[6] == 0);
    red_embed_backward(pool, dE, dout, tok, 5, 2, 4);
    /* row 3 gets rows 0, 2, 4 of dout: (1+5+9, 2+6+10) */
    cr_expect(dE[6] == 15 && dE[7] == 18 && dE[2] == 3 && dE[0] == 7 && dE[4] == 0);
}

/* ------------------------------------------------------------------ finite differences: whole model */

typedef struct {
    red_model *m;
    int *tok, *tgt, B, T;
} model_fd;

static double model_loss(void *v) {
    model_fd *f = v;
    red_model_forward(f->m, f->tok, f->B, f->T);
    return red_model_cross_entropy(f->m, f->tgt, 0, NULL);
}

static void whole_model_fd(red_config *c, uint64_t seed) {
    red_model m;
    red_rng r;
    red_error err;
    model_fd f;
    int tok[2 * 9], tgt[2 * 9], i, k;
    cr_assert(red_model_alloc(&m, c, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(&m, &r, 0.3f, 0.0f);
    for (k = 0; k < m.n_tensors; k++)  /* norms and biases away from 1/0 */
        if (m.table[k].ndim == 1)
            for (i = 0; i < (int)m.table[k].numel; i++) m.params[m.table[k].offset + i] += 0.2f * (float)red_rng_normal(&r);
    f.m = &m; f.tok = tok; f.tgt = tgt; f.B = 2; f.T = 9;
    for (i = 0; i < 18; i++) {
        tok[i] = (int)red_rng_below(&r, (uint64_t)c->vocab);
        tgt[i] = i % 7 == 3 ? -1 : (int)red_rng_below(&r, (uint64_t)c->vocab);
    }
    cr_assert(red_model_train_alloc(&m, 2, 9, &err) == RED_OK);
    red_model_forward(&m, tok, 2, 9);
    red_model_zero_grad(&m);
    red_model_cross_entropy(&m, tgt, 1, NULL);
    red_model_backward(&m);
    for (k = 0; k < m.n_tensors; k++) {
        const red_param *p = &m.table[k];
        size_t cnt = p->numel < 6 ? p->numel : 6, off = (size_t)red_rng_below(&r, p->numel - cnt + 1);
        /* loss ~4 in fp32 (rounding ~5e-7): 4-point FD error ~1e-4 at h 1e-2 */
        fd_check(p->name, model_loss, &f, m.params + p->offset + off, m.grads + p->offset + off, cnt, 2e-4, 2e-2);
    }
    red_model_free(&m);
}

Test(model, fd_llama_tied, .init = setup, .fini = teardown) {
    red_config c;
    red_config_default(&c);
    c.dim = 16; c.ffn = 24; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 8; c.vocab = 23;
    whole_model_fd(&c, 101);
}

Test(model, fd_qwen2_bias_gqa_untied_headdim, .init = setup, .fini = teardown) {
    red_config c;
    red_config_default(&c);
    c.arch = RED_ARCH_QWEN2; c.qkv_bias = 1; c.tied = 0;
    c.dim = 16; c.ffn = 20; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 6; c.vocab = 19;
    whole_model_fd(&c, 102);
}

Test(model, fd_llama3_rope_gqa_4to1, .init = setup, .fini = teardown) {
    red_config c;
    red_config_default(&c);
    c.dim = 12; c.ffn = 16; c.n_heads = 4; c.n_kv_heads = 1; c.head_dim = 4; c.vocab = 17; c.tied = 0;
    c.rope_llama3 = 1; c.rope_factor = 8; c.rope_orig_ctx = 8; c.rope_theta = 500000;
    whole_model_fd(&c, 103);
}

/* ------------------------------------------------------------------ KV cache, determinism */

static void random_model(red_model *m, red_config *c, red_pool *p, uint64_t seed) {
    red_rng r;
    red_error err;
    cr_assert(red_model_alloc(m, c, p, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(m, &r, 0.2f, 0.0f);
}

Test(model, kv_cache_decoding_equals_full_forward, .init = setup, .fini = teardown) {
    red_config c;
    red_model m;
    red_kv_state s;
    red_error err;
    int B = 2, T = 80, tok[160], i, t, V;
    red_rng r;
    red_config_default(&c);
    c.arch = RED_ARCH_QWEN2; c.qkv_bias = 1; c.n_kv_heads = 2; c.head_dim = 12; c.vocab = 37;
    random_model(&m, &c, pool, 7);
    V = c.vocab;
    red_rng_seed(&r, 8);
    for (i = 0; i < B * T; i++) tok[i] = (int)red_rng_below(&r, (uint64_t)V);
    cr_assert(red_model_train_alloc(&m, B, T, &err) == RED_OK);
    red_model_forward(&m, tok, B, T);
    cr_assert(red_kv_alloc(&s, &m, B, T, 32, &err) == RED_OK);
    /* sequence 0: prefill 30 tokens then one at a time; sequence 1: all one
     * at a time, interleaved with 0 in the same batch */
    {
        int seqv[32], posv[32], tk[32];
        for (i = 0; i < 30; i++) { tk[i] = tok[i]; seqv[i] = 0; posv[i] = i; }
        cr_assert(red_kv_forward(&m, &s, 30, tk, seqv, posv) == RED_OK);
        expect_close("prefill logits", s.logits, red_model_logits(&m), (size_t)30 * V, 1e-5, 1e-4);
        for (t = 0; t < T; t++) {
            int n = 0;
            if (t >= 30) { tk[n] = tok[t]; seqv[n] = 0; posv[n] = t; n++; }
            tk[n] = tok[T + t]; seqv[n] = 1; posv[n] = t; n++;
            cr_assert(red_kv_forward(&m, &s, n, tk, seqv, posv) == RED_OK);
            if (t >= 30)
                expect_close("decode seq 0", s.logits, red_model_logits(&m) + (size_t)t * V, (size_t)V, 1e-5, 1e-4);
            expect_close("decode seq 1", s.logits + (size_t)(n - 1) * V, red_model_logits(&m) + (size_t)(T + t) * V,
                         (size_t)V, 1e-5, 1e-4);
        }
    }
    red_kv_free(&s);
    red_model_free(&m);
}

/* A batch's summed cross-entropy taken a sequence at a time, the running sum
 * passed on (red train's held-out loss), has the bits of one forward over the
 * batch; restarting the sum per sequence would not. */
Test(model, ce_sum_a_sequence_at_a_time_equals_the_batch, .init = setup, .fini = teardown) {
    red_config c;
    red_model whole, one;
    red_error err;
    red_rng r;
    int B = 3, T = 40, tok[120], tgt[120], i, b;
    int64_t count = 0;
    double batch, seq = 0.0;
    red_config_default(&c);
    c.vocab = 53;
    random_model(&whole, &c, pool, 31);
    random_model(&one, &c, pool, 31);
    red_rng_seed(&r, 32);
    for (i = 0; i < B * T; i++) {
        tok[i] = (int)red_rng_below(&r, 53);
        tgt[i] = i % 7 == 3 ? -1 : (int)red_rng_below(&r, 53);
        count += tgt[i] >= 0;
    }
    cr_assert(red_model_train_alloc(&whole, B, T, &err) == RED_OK);
    cr_assert(red_model_run_alloc(&one, 1, T, RED_RUN_BACKWARD, &err) == RED_OK);
    cr_assert(red_model_forward(&whole, tok, B, T) == RED_OK);
    batch = red_model_ce_sum(&whole, tgt, 0, count, 0.0);
    for (b = 0; b < B; b++) {
        cr_assert(red_model_forward(&one, tok + b * T, 1, T) == RED_OK);
        seq = red_model_ce_sum(&one, tgt + b * T, 0, count, seq);
    }
    cr_assert(memcmp(&batch, &seq, sizeof batch) == 0, "batch %.17g, a sequence at a time %.17g", batch, seq);
    cr_assert_eq((float)(batch / count), red_model_cross_entropy(&whole, tgt, 0, NULL));
    red_model_free(&whole);
    red_model_free(&one);
}

/* Runs forward + backward + 2 AdamW steps, with the weights packed for each
 * forward (red_weight_pack) if `packed`; returns a copy of params+grads. */
static float *train_snapshot_packed(red_pool *p, size_t *n, int packed) {
    red_config c;
    red_model m;
    red_weight_pack pack;
    red_error err;
    red_rng r;
    int tok[3 * 70], tgt[3 * 70], i, step;
    red_adamw_cfg opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    float *out;
    red_config_default(&c);
    c.n_kv_heads = 2; c.dim = 96; c.ffn = 200; c.head_dim = 24; c.vocab = 300; c.tied = 0;
    random_model(&m, &c, p, 21);
    red_rng_seed(&r, 22);
    for (i = 0; i < 210; i++) {
        tok[i] = (int)red_rng_below(&r, 300);
        tgt[i] = (int)red_rng_below(&r, 300);
    }
    cr_assert(red_model_train_alloc(&m, 3, 70, &err) == RED_OK);
    memset(&pack, 0, sizeof pack);
    for (step = 0; step < 2; step++) {
        if (packed) {
            cr_assert(red_weight_pack_fill(&pack, &m, &err) == RED_OK, "%s", err.msg);
            cr_assert(pack.of != NULL, "nothing was packed");
            m.wpack = &pack;
        }
        red_model_forward(&m, tok, 3, 70);
        red_model_zero_grad(&m);
        red_model_cross_entropy(&m, tgt, 1, NULL);
        red_model_backward(&m);
        m.wpack = NULL;  /* the weights change */
        red_model_adamw(&m, &opt);
    }
    red_weight_pack_free(&pack);
    *n = m.n_params;
    out = malloc(2 * m.n_params * sizeof(float));
    memcpy(out, m.params, m.n_params * 4);
    memcpy(out + m.n_params, m.grads, m.n_params * 4);
    red_model_free(&m);
    return out;
}

static float *train_snapshot(red_pool *p, size_t *n) { return train_snapshot_packed(p, n, 0); }

/* The forward reading weights packed once per batch gives the same bits. */
Test(model, packed_weights_give_the_same_bits, .init = setup, .fini = teardown) {
    size_t n;
    float *a = train_snapshot(pool, &n), *b = train_snapshot_packed(pool, &n, 1);
    cr_expect(memcmp(a, b, 2 * n * 4) == 0, "training with packed weights differs");
    free(a); free(b);
}

/* Each block's output is a product of its own, added to the residual once:
 * with K past the GEMM's k block (QD and F here) accumulating into the
 * residual block by block would give other bits. Kept outputs (the
 * distillation's clone targets) are that product, and keeping them changes
 * nothing else. */
Test(model, kept_block_outputs_are_the_products_the_residual_adds, .init = setup, .fini = teardown) {
    red_config c;
    red_model m, plain, ffn_only;
    red_error err;
    red_rng r;
    int B = 2, T = 24, tok[48], i, l, kb = red_sgemm_k_block();
    size_t N = (size_t)B * T, ND, j;
    float *ref;
    red_config_default(&c);
    c.dim = 64; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = kb / 4 + 8; c.ffn = kb + 40; c.vocab = 100;
    c.n_layers = 2;
    random_model(&m, &c, pool, 31);
    cr_assert(red_model_share(&plain, &m, pool, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_share(&ffn_only, &m, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, 32);
    for (i = 0; i < 48; i++) tok[i] = (int)red_rng_below(&r, 100);
    cr_assert(red_model_run_alloc(&m, B, T, RED_RUN_FORWARD | RED_RUN_KEEP_ATTN_OUT | RED_RUN_KEEP_FFN_OUT, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_run_alloc(&plain, B, T, RED_RUN_FORWARD, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_run_alloc(&ffn_only, B, T, RED_RUN_FORWARD | RED_RUN_KEEP_FFN_OUT, &err) == RED_OK, "%s",
              err.msg);
    cr_assert(red_model_forward(&m, tok, B, T) == RED_OK);
    cr_assert(red_model_forward(&plain, tok, B, T) == RED_OK);
    cr_assert(red_model_forward(&ffn_only, tok, B, T) == RED_OK);
    ND = N * c.dim;
    ref = malloc(ND * sizeof(float));
    for (l = 0; l < c.n_layers; l++) {
        red_layer_acts a, p, f;
        red_model_layer_acts(&m, l, &a);
        red_model_layer_acts(&plain, l, &p);
        red_model_layer_acts(&ffn_only, l, &f);
        cr_assert(!f.attn_out && f.ffn_out, "layer %d: the FFN output alone kept when asked alone", l);
        cr_expect(memcmp(f.ffn_out, a.ffn_out, ND * 4) == 0 && memcmp(f.out, a.out, ND * 4) == 0,
                  "layer %d: the FFN output kept alone differs", l);
        cr_assert(a.attn_out && a.ffn_out && !p.attn_out && !p.ffn_out, "layer %d: outputs kept only when asked", l);
        red_model_linear(pool, &m, ref, a.att, m.w.layers[l].wo, (int64_t)N, c.dim, c.n_heads * c.head_dim);
        cr_expect(memcmp(ref, a.attn_out, ND * 4) == 0, "layer %d: attn_out is not att W_oᵀ", l);
        for (j = 0; j < ND; j++) ref[j] = a.x[j] + a.attn_out[j];
        cr_expect(memcmp(ref, a.h, ND * 4) == 0, "layer %d: h is not x + attn_out", l);
        red_model_linear(pool, &m, ref, a.act, m.w.layers[l].wd, (int64_t)N, c.dim, c.ffn);
        cr_expect(memcmp(ref, a.ffn_out, ND * 4) == 0, "layer %d: ffn_out is not act W_dᵀ", l);
        for (j = 0; j < ND; j++) ref[j] = a.h[j] + a.ffn_out[j];
        cr_expect(memcmp(ref, a.out, ND * 4) == 0, "layer %d: the block output is not h + ffn_out", l);
        cr_expect(memcmp(a.out, p.out, ND * 4) == 0, "layer %d: keeping the outputs changed the forward", l);
    }
    free(ref);
    red_model_free(&ffn_only);
    red_model_free(&plain);
    red_model_free(&m);
}

/* A gradient tail rides after the slab: allocated with it, left alone by
 * zero_grad and backward, and not reallocated once the slab exists. */
Test(model, gradient_tail_is_the_callers, .init = setup, .fini = teardown) {
    red_config c;
    red_model m;
    red_error err;
    int tok[2 * 9], tgt[2 * 9], i;
    red_config_default(&c);
    c.dim = 16; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 8; c.ffn = 24; c.vocab = 40; c.n_layers = 2;
    random_model(&m, &c, pool, 41);
    cr_assert(red_model_grad_tail(&m, 10, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_train_alloc(&m, 2, 9, &err) == RED_OK, "%s", err.msg);
    for (i = 0; i < 10; i++) m.grads[m.n_params + i] = (float)i + 0.5f;
    for (i = 0; i < 18; i++) {
        tok[i] = (i * 7) % 40;
        tgt[i] = (i * 11 + 3) % 40;
    }
    cr_assert(red_model_forward(&m, tok, 2, 9) == RED_OK);
    red_model_zero_grad(&m);
    red_model_cross_entropy(&m, tgt, 1, NULL);
    cr_assert(red_model_backward(&m) == RED_OK);
    for (i = 0; i < 10; i++) cr_expect(m.grads[m.n_params + i] == (float)i + 0.5f, "tail element %d changed", i);
    cr_expect(red_model_grad_tail(&m, 10, &err) == RED_OK, "the same size again is accepted");
    cr_expect(red_model_grad_tail(&m, 20, &err) == RED_E_ARG, "another size once the slab exists is refused");
    red_model_free(&m);
}

Test(model, bit_identical_across_runs_and_thread_counts) {
    red_pool *p1 = red_pool_create(1), *p2 = red_pool_create(2), *p3 = red_pool_create(3);
    size_t n;
    float *a = train_snapshot(p2, &n), *b = train_snapshot(p2, &n), *c1 = train_snapshot(p1, &n),
          *c3 = train_snapshot(p3, &n);
    cr_expect(memcmp(a, b, 2 * n * 4) == 0, "two runs on 2 threads differ");
    cr_expect(memcmp(a, c1, 2 * n * 4) == 0, "1 thread differs from 2");
    cr_expect(memcmp(a, c3, 2 * n * 4) == 0, "3 threads differ from 2");
    free(a); free(b); free(c1); free(c3);
    red_pool_destroy(p1); red_pool_destroy(p2); red_pool_destroy(p3);
}

/* ------------------------------------------------------------------ sampler */


Test(model, sampler_greedy_topk_topp_and_frequencies) {
    float z[5], base[5] = {1.0f, 3.0f, 3.0f, 0.5f, 2.0f};
    int idx[10], counts[5] = {0}, i;
    red_rng r;
    red_sampler greedy = {0.0f, 0, 1.0f}, k1 = {1.0f, 1, 1.0f}, p0 = {1.0f, 0, 1e-6f}, full = {1.0f, 0, 1.0f},
                k2 = {1.0f, 2, 1.0f};
    red_rng_seed(&r, 5);
    memcpy(z, base, sizeof z);
    cr_expect(red_sample(z, 5, &greedy, &r, idx) == 1, "greedy takes the first maximum");
    memcpy(z, base, sizeof z);
    cr_expect(red_sample(z, 5, &k1, &r, idx) == 1, "top-k 1 is greedy (ties to lower id)");
    memcpy(z, base, sizeof z);
    cr_expect(red_sample(z, 5, &p0, &r, idx) == 1, "tiny top-p keeps one token");
    for (i = 0; i < 20000; i++) {
        memcpy(z, base, sizeof z);
        counts[red_sample(z, 5, &k2, &r, idx)]++;
    }
    cr_expect(counts[0] == 0 && counts[3] == 0 && counts[4] == 0, "top-k 2 keeps ids 1 and 2 only");
    cr_expect(abs(counts[1] - 10000) < 400, "equal logits split evenly: %d", counts[1]);
    memset(counts, 0, sizeof counts);
    for (i = 0; i < 40000; i++) {
        memcpy(z, base, sizeof z);
        counts[red_sample(z, 5, &full, &r, idx)]++;
    }
    {
        double se = 0.0, pr;
        for (i = 0; i < 5; i++) se += exp(base[i]);
        for (i = 0; i < 5; i++) {
            pr = exp(base[i]) / se;
            /* 5 binomial standard deviations */
            cr_expect(fabs(counts[i] - 40000 * pr) < 5 * sqrt(40000 * pr * (1 - pr)) + 1, "id %d: %d vs %.0f", i,
                      counts[i], 40000 * pr);
        }
    }
}

Test(model, generate_greedy_matches_argmax_of_full_forward, .init = setup, .fini = teardown) {
    red_config c;
    red_model m;
    red_error err;
    red_sampler sp = {0.0f, 0, 1.0f};
    int prompt0[3] = {5, 9, 2}, prompt1[1] = {7}, out0[6], out1[6], lens[2] = {3, 1}, olen[2], *outs[2];
    const int *pr[2];
    int seq[9], i, j, V;
    red_config_default(&c);
    c.vocab = 31;
    random_model(&m, &c, pool, 99);
    V = c.vocab;
    pr[0] = prompt0; pr[1] = prompt1; outs[0] = out0; outs[1] = out1;
    cr_assert(red_generate(&m, 2, pr, lens, 6, &sp, 1, -1, outs, olen, &err) == RED_OK, "%s", err.msg);
    cr_expect(olen[0] == 6 && olen[1] == 6);
    /* recompute sequence 0 greedily with the training forward, one length at a time */
    memcpy(seq, prompt0, sizeof prompt0);
    for (i = 0; i < 6; i++) {
        red_model probe;
        float *lg;
        int best = 0, T = 3 + i;
        random_model(&probe, &c, pool, 99);
        cr_assert(red_model_train_alloc(&probe, 1, T, &err) == RED_OK);
        red_model_forward(&probe, seq, 1, T);
        lg = red_model_logits(&probe) + (size_t)(T - 1) * V;
        for (j = 1; j < V; j++)
            if (lg[j] > lg[best]) best = j;
        cr_expect(out0[i] == best, "step %d: generate %d, full forward argmax %d", i, out0[i], best);
        seq[T] = best;
        red_model_free(&probe);
    }
    red_model_free(&m);
}

Test(model, dinput_is_the_embedding_gradient_per_position, .init = setup, .fini = teardown) {
    /* untied head: the embedding table's gradient is exactly the scatter-add
     * of d(loss)/d(input embeddings) over the positions holding each token */
    red_config c;
    red_model m;
    red_error err;
    int tok[6] = {3, 1, 3, 4, 3, 0}, tgt[6] = {1, 3, 4, 3, 0, 2}, n, d;
    const float *di;
    float want[5 * 64];
    red_config_default(&c);
    c.vocab = 5; c.tied = 0;
    random_model(&m, &c, pool, 31);
    cr_assert(red_model_train_alloc(&m, 1, 6, &err) == RED_OK);
    red_model_forward(&m, tok, 1, 6);
    red_model_zero_grad(&m);
    red_model_cross_entropy(&m, tgt, 1, NULL);
    red_model_backward(&m);
    di = red_model_dinput(&m);
    memset(want, 0, sizeof want);
    for (n = 0; n < 6; n++)
        for (d = 0; d < 64; d++) want[tok[n] * 64 + d] += di[n * 64 + d];
    expect_close("embed grad vs dinput", m.gw.embed, want, 5 * 64, 1e-7, 1e-6);
    red_model_free(&m);
}

/* A forward-only run state (a frozen teacher's) gives the same logits as a
 * training one, holds no gradient or AdamW slab, and refuses backward. */
Test(model, forward_only_run_state_equals_training_forward) {
    red_config c;
    red_model a, b;
    red_error err;
    red_rng r;
    int tok[2 * 9], i;
    red_pool *pool = red_pool_create(2);
    red_config_default(&c);
    c.vocab = 40; c.dim = 24; c.ffn = 40; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 6; c.max_pos = 16;
    cr_assert(red_model_alloc(&a, &c, pool, &err) == RED_OK && red_model_alloc(&b, &c, pool, &err) == RED_OK);
    red_rng_seed(&r, 11);
    red_model_init_random(&a, &r, 0.2f, 0.1f);
    memcpy(b.params, a.params, a.n_params * sizeof(float));
    for (i = 0; i < 18; i++) tok[i] = (i * 7 + 3) % 40;
    cr_assert(red_model_run_alloc(&a, 2, 9, RED_RUN_FORWARD, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_train_alloc(&b, 2, 9, &err) == RED_OK, "%s", err.msg);
    cr_assert(!a.grads && !a.adam_m && !a.adam_v && !red_model_dlogits(&a));
    cr_assert(red_model_forward(&a, tok, 2, 9) == RED_OK && red_model_forward(&b, tok, 2, 9) == RED_OK);
    cr_assert(memcmp(red_model_logits(&a), red_model_logits(&b), 18 * 40 * sizeof(float)) == 0);
    cr_assert(red_model_backward(&a) == RED_E_ARG, "backward needs RED_RUN_BACKWARD");
    cr_assert(red_model_run_alloc(&a, 2, 9, RED_RUN_BACKWARD, &err) == RED_OK);  /* grown in place */
    cr_assert(a.grads && !a.adam_m && red_model_dlogits(&a));
    red_model_free(&a);
    red_model_free(&b);
    red_pool_destroy(pool);
}
