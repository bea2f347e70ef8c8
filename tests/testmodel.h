/* tests/testmodel.h - what the model-file suites (hfdir, gguf, llama2c)
 * share: a thread pool per test, small random models in both layouts,
 * logits through the KV cache, temporary trees, and stories260K from
 * ../shared with the greedy text llama2.c's run.c prints for it. */
#ifndef RED_TESTMODEL_H
#define RED_TESTMODEL_H

#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

#define STORIES "../shared/data/stories260K/stories260K.bin"
#define TOK512 "../shared/data/stories260K/tok512.bin"

static red_pool *pool;
static inline void setup(void) { pool = red_pool_create(2); }
static inline void teardown(void) { red_pool_destroy(pool); }

static inline int have_file(const char *path) { return access(path, R_OK) == 0; }

/* Logits [n, V] of one sequence through the KV-cache path. */
static inline float *run_logits(red_model *m, const int *ids, int n) {
    red_kv_state kv;
    red_error err;
    int seq[64], pos[64], i;
    float *out;
    cr_assert(n <= 64);
    for (i = 0; i < n; i++) { seq[i] = 0; pos[i] = i; }
    cr_assert(red_kv_alloc(&kv, m, 1, n, n, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_kv_forward(m, &kv, n, ids, seq, pos) == RED_OK);
    out = malloc(sizeof(float) * (size_t)n * m->cfg.vocab);
    memcpy(out, kv.logits, sizeof(float) * (size_t)n * m->cfg.vocab);
    red_kv_free(&kv);
    return out;
}

static inline void tmp_path(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static inline void rm_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

/* A small random model: qwen2 (biases, GQA, untied) or llama (tied, llama3 rope). */
static inline void random_model(red_model *m, red_arch arch, uint64_t seed) {
    red_config c;
    red_error err;
    red_rng r;
    red_config_default(&c);
    c.arch = arch;
    c.dim = 32; c.ffn = 48; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 8; c.vocab = 67;
    c.max_pos = 64; c.bos_id = 1; c.eos_id = 2;
    if (arch == RED_ARCH_QWEN2) {
        c.qkv_bias = 1; c.tied = 0; c.rope_theta = 1e6f; c.norm_eps = 1e-6f; c.head_dim = 16;  /* head_dim != dim/heads */
    } else {
        c.rope_llama3 = 1; c.rope_factor = 32.0f; c.rope_low_freq = 1.0f; c.rope_high_freq = 4.0f;
        c.rope_orig_ctx = 8192; c.rope_theta = 500000.0f;
    }
    cr_assert(red_model_alloc(m, &c, pool, &err) == RED_OK, "%s", err.msg);
    red_rng_seed(&r, seed);
    red_model_init_random(m, &r, 0.3f, 0.0f);
}

static inline void stories_text_equal(red_model *m, red_tokenizer *tok) {
    /* llama2.c's README output for `run stories260K.bin -z tok512.bin -t 0 -n 64 -i "Once upon a time"` */
    static const char *const stories_text =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
        "big, red ball. She wanted to play with it, but it was too high.\nLily";
    int ids[70], n, *out, olen, all[70], i;
    const int *pp = ids;
    red_sampler greedy = {0.0f, 0, 1.0f};
    red_error err;
    red_sbuf text;
    n = red_tokenize(tok, "Once upon a time", 16, 1, ids, 70);
    cr_assert_eq(n, 5);
    cr_expect(ids[0] == 1 && ids[1] == 403 && ids[2] == 407 && ids[3] == 261 && ids[4] == 378,
              "prompt ids as run.c: 1 403 407 261 378");
    out = malloc(sizeof(int) * 60);  /* run.c -n 64: positions 0..63 after BOS, 60 of them new */
    cr_assert(red_generate(m, 1, &pp, &n, 60, &greedy, 0, -1, &out, &olen, &err) == RED_OK, "%s", err.msg);
    for (i = 0; i < 5; i++) all[i] = ids[i];
    for (i = 0; i < olen; i++) all[5 + i] = out[i];
    red_sbuf_init(&text);
    red_detokenize(tok, all, 5 + olen, &text);
    cr_expect(text.len == strlen(stories_text) && !memcmp(text.p, stories_text, text.len),
              "red's greedy text:\n%s\nllama2.c's:\n%s", text.p ? text.p : "", stories_text);
    red_sbuf_free(&text);
    free(out);
}

#endif
