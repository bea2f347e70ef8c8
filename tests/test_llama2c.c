/* tests/test_llama2c.c - llama2.c checkpoints (llama2c.c): stories260K
 * against llama2.c's own run.c (logits and greedy text; fixtures from
 * tests/fixtures/make_llama2c_model_fixture.sh), v0/v1 round trips with tied
 * and untied classifiers, v2 Q8 within the quantisation step, what the
 * writer refuses; absurd, truncated and randomly mutated headers. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testmodel.h"

static int read_ints(const char *path, const char *tag, int *out, int cap) {
    FILE *f = fopen(path, "r");
    char word[64];
    int n = 0, on = 0;
    cr_assert(f, "%s missing", path);
    while (fscanf(f, "%63s", word) == 1) {
        if (!strcmp(word, tag)) { on = 1; continue; }
        if (on && n < cap) out[n++] = atoi(word);
    }
    fclose(f);
    return n;
}

Test(llama2c, stories260K_greedy_and_logits_match_run_c, .init = setup, .fini = teardown) {
    red_model m;
    red_error err;
    int prompt[5] = {1, 403, 407, 261, 378}, ref[64], n_ref, *out, olen, i, j;
    const int *pp = prompt;
    int len = 5;
    red_sampler greedy = {0.0f, 0, 1.0f};
    float *logits, ref_logit;
    FILE *f;
    double worst = 0.0;
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent");
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    cr_expect(m.cfg.dim == 64 && m.cfg.ffn == 172 && m.cfg.n_layers == 5 && m.cfg.n_heads == 8 &&
              m.cfg.n_kv_heads == 4 && m.cfg.vocab == 512 && m.cfg.max_pos == 512 && m.cfg.tied);
    /* run.c's ids: positions 0..63, the first 4 are the prompt's own tokens */
    n_ref = read_ints(FIXTURE("llama2c_stories260K_ids.txt"), "ids", ref, 64);
    cr_assert_eq(n_ref, 64);
    out = malloc(sizeof(int) * 60);
    cr_assert(red_generate(&m, 1, &pp, &len, 60, &greedy, 0, -1, &out, &olen, &err) == RED_OK, "%s", err.msg);
    cr_assert_eq(olen, 60);
    for (i = 0; i < 60; i++) cr_expect_eq(out[i], ref[4 + i], "generated token %d: red %d, run.c %d", i, out[i], ref[4 + i]);
    /* logits of positions 0..7 on run.c's token stream: fp32 with different
     * summation orders over |logit| <= ~20: agree to 1e-4 absolute */
    {
        int ids[8] = {1};
        for (i = 1; i < 8; i++) ids[i] = ref[i - 1];
        logits = run_logits(&m, ids, 8);
    }
    f = fopen(FIXTURE("llama2c_stories260K_logits.txt"), "r");
    cr_assert(f);
    for (i = 0; i < 8; i++)
        for (j = 0; j < 512; j++) {
            double d;
            cr_assert(fscanf(f, "%f", &ref_logit) == 1, "fixture short at %d,%d", i, j);
            d = fabs(logits[i * 512 + j] - ref_logit);
            worst = d > worst ? d : worst;
            cr_expect(d <= 1e-4 + 1e-5 * fabs(ref_logit), "logit pos %d id %d: red %.7g run.c %.7g", i, j,
                      logits[i * 512 + j], ref_logit);
        }
    fclose(f);
    cr_log_info("stories260K: max |logit - run.c| = %.3g", worst);
    free(logits);
    free(out);
    red_model_free(&m);
}

Test(llama2c, v0_v1_round_trip_and_bytes, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    char dir[] = "/tmp/red-l2c-XXXXXX", p0[300], p1[300];
    unsigned char *orig, *mine;
    size_t lo, lm;
    int v;
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent");
    cr_assert(mkdtemp(dir));
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    tmp_path(p0, sizeof p0, dir, "v0.bin");
    tmp_path(p1, sizeof p1, dir, "v1.bin");
    cr_assert(red_llama2c_save(&m, p0, 0, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_llama2c_save(&m, p1, 1, &err) == RED_OK, "%s", err.msg);
    for (v = 0; v < 2; v++) {
        cr_assert(red_model_open(&back, v ? p1 : p0, pool, &err) == RED_OK, "%s", err.msg);
        cr_expect(memcmp(&back.cfg, &m.cfg, sizeof m.cfg) == 0, "v%d config", v);
        cr_expect(memcmp(back.params, m.params, m.n_params * 4) == 0, "v%d weights bit-identical", v);
        red_model_free(&back);
    }
    /* v0 as written equals the original file in header and every weight
     * byte; only freq_cis (unused by run.c) may differ in the last bits */
    cr_assert(red_read_file(STORIES, &orig, &lo, &err) == RED_OK);
    cr_assert(red_read_file(p0, &mine, &lm, &err) == RED_OK);
    cr_assert_eq(lo, lm);
    cr_expect(memcmp(orig, mine, 28 + m.n_params * 4) == 0, "header and weights byte-identical");
    {
        float a, b;
        size_t i;
        for (i = 28 + m.n_params * 4; i < lo; i += 4) {
            red_get_f32le(&a, orig + i, 1);
            red_get_f32le(&b, mine + i, 1);
            cr_assert(fabsf(a - b) <= 1e-6f, "freq_cis at byte %zu: %g vs %g", i, a, b);
        }
    }
    free(orig);
    free(mine);
    red_model_free(&m);
    rm_tree(dir);
}

/* v2 file from a model, quantized in the test with export.py's rule. */
static unsigned char *make_v2(const red_model *m, int gs, size_t *len) {
    const red_config *c = &m->cfg;
    size_t D = (size_t)c->dim, F = (size_t)c->ffn, KD = (size_t)c->n_kv_heads * c->head_dim, cap, pos = 256;
    unsigned char *b;
    int l, a;
    float *tmp = malloc(D * D * 4);
    cap = 256 + 4 * ((2 * (size_t)c->n_layers + 1) * D) + 2 * red_param_floats(c) + 4096;
    b = calloc(cap, 1);
    {
        int32_t h[10] = {0x616b3432, 2, c->dim, c->ffn, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab, c->max_pos, 0};
        int k;
        for (k = 0; k < 9; k++) {
            uint32_t u = (uint32_t)h[k];
            b[4 * k] = (unsigned char)u; b[4 * k + 1] = (unsigned char)(u >> 8);
            b[4 * k + 2] = (unsigned char)(u >> 16); b[4 * k + 3] = (unsigned char)(u >> 24);
        }
        b[36] = (unsigned char)c->tied;
        b[37] = (unsigned char)gs;
    }
#define PUTF(src, n) do { red_put_f32le(b + pos, src, n); pos += (n) * 4; } while (0)
    for (l = 0; l < c->n_layers; l++) PUTF(m->w.layers[l].attn_norm, D);
    for (l = 0; l < c->n_layers; l++) PUTF(m->w.layers[l].mlp_norm, D);
    PUTF(m->w.norm, D);
    for (a = 0; a < 8; a++) {
        int reps = a == 0 ? 1 : c->n_layers;
        for (l = 0; l < reps; l++) {
            const red_layer_weights *lw = &m->w.layers[l];
            const float *src[8] = {m->w.embed, lw->wq, lw->wk, lw->wv, lw->wo, lw->wg, lw->wd, lw->wu};
            size_t n[8] = {(size_t)c->vocab * D, D * D, KD * D, KD * D, D * D, F * D, D * F, F * D}, g, j;
            const float *x = src[a];
            if (a == 1 || a == 2) {  /* back to llama2.c's interleaved rows */
                memcpy(tmp, x, n[a] * 4);
                red_rope_permute_rows(tmp, a == 1 ? c->n_heads : c->n_kv_heads, c->head_dim, c->dim, 0);
                x = tmp;
            }
            for (g = 0; g < n[a] / (size_t)gs; g++) {
                float wmax = 0.0f, s;
                for (j = 0; j < (size_t)gs; j++) wmax = fabsf(x[g * gs + j]) > wmax ? fabsf(x[g * gs + j]) : wmax;
                s = wmax / 127.0f;
                for (j = 0; j < (size_t)gs; j++) b[pos + g * gs + j] = (unsigned char)(int8_t)roundf(x[g * gs + j] / s);
                red_put_f32le(b + pos + n[a] + 4 * g, &s, 1);
            }
            pos += n[a] + n[a] / (size_t)gs * 4;
        }
    }
#undef PUTF
    cr_assert(pos <= cap);
    free(tmp);
    *len = pos;
    return b;
}

Test(llama2c, v2_q8_reads_within_the_quantization_step, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    size_t len, i;
    unsigned char *b;
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent");
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    b = make_v2(&m, 4, &len);  /* 4 divides 172 (hidden) and 64 */
    cr_assert(red_llama2c_parse(&back, b, len, "v2", pool, &err) == RED_OK, "%s", err.msg);
    for (i = 0; i < m.n_params; i++) {
        /* |x - q*s| <= s/2 with s = max|group|/127 <= max|x|/127 */
        cr_assert(fabsf(back.params[i] - m.params[i]) <= 0.5f / 127.0f * 4.0f + 1e-6f, "param %zu: %g vs %g", i,
                  back.params[i], m.params[i]);
    }
    for (i = 0; i < (size_t)m.cfg.dim; i++) cr_assert(back.w.norm[i] == m.w.norm[i], "norms stay f32");
    {
        int ids[6] = {1, 403, 407, 261, 378, 432};
        float *a = run_logits(&m, ids, 6), *q = run_logits(&back, ids, 6);
        int arg_a = 0, arg_q = 0, j;
        for (j = 1; j < 512; j++) {
            if (a[5 * 512 + j] > a[5 * 512 + arg_a]) arg_a = j;
            if (q[5 * 512 + j] > q[5 * 512 + arg_q]) arg_q = j;
        }
        cr_expect_eq(arg_a, arg_q, "Q8 keeps the greedy next token");
        free(a);
        free(q);
    }
    free(b);
    red_model_free(&back);
    red_model_free(&m);
}

static void put_i32(unsigned char *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8); p[2] = (unsigned char)(u >> 16); p[3] = (unsigned char)(u >> 24);
}

static void l2c_bad(const unsigned char *b, size_t len, red_status want, const char *needle) {
    red_model m;
    red_error err;
    red_status st = red_llama2c_parse(&m, b, len, "bad.bin", NULL, &err);
    cr_expect(st == want, "status %s, expected %s (%s)", red_status_name(st), red_status_name(want), err.msg);
    if (st == RED_OK) red_model_free(&m);
    else cr_expect(strstr(err.msg, "bad.bin") && strstr(err.msg, needle), "message '%s' should name '%s'", err.msg, needle);
}

Test(llama2c, absurd_headers_are_clear_errors) {
    unsigned char b[512];
    int32_t good[7] = {8, 16, 1, 2, 2, 4, 4};
    int k;
    memset(b, 0, sizeof b);
    for (k = 0; k < 7; k++) put_i32(b + 4 * k, good[k]);
    l2c_bad(b, 20, RED_E_FORMAT, "too short");
    /* every field negative, zero or huge */
    for (k = 0; k < 7; k++) {
        char want[32];
        int32_t vals[3] = {0, -7, 0x7FFFFFFF};
        int v;
        for (v = 0; v < 3; v++) {
            if (k == 5 && v == 1) continue;  /* negative vocab means an unshared classifier */
            put_i32(b + 4 * k, vals[v]);
            snprintf(want, sizeof want, "byte %d", 4 * k);
            l2c_bad(b, sizeof b, RED_E_FORMAT, want);
        }
        put_i32(b + 4 * k, good[k]);
    }
    put_i32(b + 20, INT32_MIN);
    l2c_bad(b, sizeof b, RED_E_FORMAT, "vocab_size");
    put_i32(b + 20, 4);
    /* valid header, wrong size: says what it implies */
    l2c_bad(b, sizeof b, RED_E_FORMAT, "implies");
    put_i32(b + 12, 3);  /* n_heads 3 does not divide dim 8 */
    l2c_bad(b, sizeof b, RED_E_FORMAT, "n_heads");
    put_i32(b + 12, 2);
    /* v1/v2 headers: version, flag, group size */
    put_i32(b, 0x616b3432);
    put_i32(b + 4, 7);
    l2c_bad(b, sizeof b, RED_E_UNSUPPORTED, "version 7");
    put_i32(b + 4, 1);
    l2c_bad(b, 100, RED_E_FORMAT, "256-byte");
    for (k = 0; k < 7; k++) put_i32(b + 8 + 4 * k, good[k]);
    b[36] = 5;
    l2c_bad(b, sizeof b, RED_E_FORMAT, "byte 36");
    b[36] = 1;
    put_i32(b + 4, 2);
    put_i32(b + 37, 0);
    l2c_bad(b, sizeof b, RED_E_FORMAT, "byte 37");
    put_i32(b + 37, 3);  /* does not divide 8*4 */
    l2c_bad(b, sizeof b, RED_E_FORMAT, "does not divide");
}

Test(llama2c, truncated_stories_at_many_lengths, .init = setup, .fini = teardown) {
    unsigned char *buf;
    size_t len, cut;
    red_error err;
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent");
    cr_assert(red_read_file(STORIES, &buf, &len, &err) == RED_OK);
    for (cut = 0; cut < len; cut += 997) l2c_bad(buf, cut, RED_E_FORMAT, "");
    l2c_bad(buf, len - 1, RED_E_FORMAT, "implies");
    free(buf);
}

Test(llama2c, writer_refuses_what_llama2c_cannot_hold, .init = setup, .fini = teardown) {
    red_model m;
    red_error err;
    random_model(&m, RED_ARCH_QWEN2, 1);
    cr_expect(red_llama2c_save(&m, "/nonexistent/x.bin", 0, &err) == RED_E_UNSUPPORTED);
    cr_expect(strstr(err.msg, "GGUF") != NULL, "%s", err.msg);
    red_model_free(&m);
}

Test(llama2c, random_header_mutations_never_crash, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    red_rng r;
    unsigned char *b;
    size_t len;
    int it;
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent");
    cr_assert(red_model_open(&m, STORIES, NULL, &err) == RED_OK, "%s", err.msg);
    b = make_v2(&m, 4, &len);
    red_rng_seed(&r, 99);
    for (it = 0; it < 500; it++) {
        unsigned char save[4];
        size_t at = (size_t)red_rng_below(&r, 44);
        memcpy(save, b + at, 4);
        b[at] = (unsigned char)red_rng_below(&r, 256);
        if (red_rng_below(&r, 2)) b[at + 3] = 0x80;
        if (red_llama2c_parse(&back, b, len, "mutant", NULL, &err) == RED_OK) red_model_free(&back);
        else cr_assert(strstr(err.msg, "mutant") != NULL, "%s", err.msg);
        memcpy(b + at, save, 4);
    }
    free(b);
    red_model_free(&m);
}

Test(llama2c, untied_classifier_v0_v1_round_trip, .init = setup, .fini = teardown) {
    red_config c;
    red_model m, back;
    red_error err;
    red_rng r;
    char dir[] = "/tmp/red-l2c-XXXXXX", path[300];
    int v, ids[5] = {1, 2, 3, 4, 5};
    float *a, *b;
    cr_assert(mkdtemp(dir));
    red_config_default(&c);  /* llama, head_dim = dim / heads, theta 1e4, eps 1e-5 */
    c.tied = 0; c.n_kv_heads = 2; c.vocab = 40; c.max_pos = 16; c.bos_id = 1; c.eos_id = 2;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, 5);
    red_model_init_random(&m, &r, 0.2f, 0.0f);
    a = run_logits(&m, ids, 5);
    for (v = 0; v < 2; v++) {
        tmp_path(path, sizeof path, dir, v ? "v1.bin" : "v0.bin");
        cr_assert(red_llama2c_save(&m, path, v, &err) == RED_OK, "%s", err.msg);
        cr_assert(red_model_open(&back, path, pool, &err) == RED_OK, "%s", err.msg);
        cr_expect(!back.cfg.tied && back.cfg.vocab == 40 && back.cfg.n_kv_heads == 2);
        cr_expect(memcmp(back.params, m.params, m.n_params * 4) == 0, "v%d untied weights bit-identical", v);
        b = run_logits(&back, ids, 5);
        cr_expect(memcmp(a, b, sizeof(float) * 5 * 40) == 0, "v%d identical logits", v);
        free(b);
        red_model_free(&back);
    }
    free(a);
    red_model_free(&m);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ tokenizer */

Test(llama2c, stories260K_greedy_text_equals_llama2c, .init = setup, .fini = teardown) {
    red_model m;
    red_tokenizer *tok = NULL;
    red_error err;
    if (!have_file(STORIES) || !have_file(TOK512)) cr_skip_test(STORIES " or tok512.bin absent");
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_model_tokenizer(&tok, STORIES, NULL, &err) == RED_E_ARG, "a .bin has no tokenizer");
    cr_expect(strstr(err.msg, "--tokenizer") != NULL, "%s", err.msg);
    cr_assert(red_model_tokenizer(&tok, STORIES, TOK512, &err) == RED_OK, "%s", err.msg);
    stories_text_equal(&m, tok);
    red_tokenizer_free(tok);
    red_model_free(&m);
}
