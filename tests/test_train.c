/* tests/test_train.c - the trainer (train.c): loss falls on a learnable
 * stream, checkpoints load back as ordinary models, an interrupted run
 * resumed from its last checkpoint ends bit-identical to an uninterrupted
 * one, and bad ids or too little data stop the run before any step. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

/* When set, the run is asked to stop (as a SIGINT handler would). */
static const volatile sig_atomic_t *run_stop;

/* Trains 12 steps (or stops after stop_after) into dir; returns the weights. */
static float *run(const char *dir, const char *data_path, red_pool *pool, uint64_t stop_after, int resume) {
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_train_data d;
    red_train_opts o;
    red_error err;
    red_rng r;
    float *snap;
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    memset(&d, 0, sizeof d);
    cr_assert(red_train_data_add_file(&d, tok, data_path, &err) == RED_OK, "%s", err.msg);
    if (resume) {
        cr_assert(red_model_load(&m, dir, pool, &err) == RED_OK, "%s", err.msg);
    } else {
        red_config_default(&c);
        c.vocab = 259; c.dim = 32; c.ffn = 64; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 16; c.max_pos = 64;
        cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK);
        red_rng_seed(&r, 9);
        red_model_init_random(&m, &r, 0.1f, 0.05f);
    }
    memset(&o, 0, sizeof o);
    o.loop.out = dir; o.loop.tokens = 12 * 4 * 32; o.loop.batch = 4; o.loop.seq = 32; o.loop.seed = 5; o.loop.lr = 3e-3f; o.loop.min_lr = 3e-4f;
    o.loop.beta1 = 0.9f; o.loop.beta2 = 0.95f; o.loop.weight_decay = 0.1f; o.loop.clip = 1.0; o.loop.warmup_steps = 2;
    o.loop.schedule = RED_SCHED_COSINE; o.loop.save_every = 4; o.loop.resume = resume; o.loop.stop_after = stop_after;
    o.loop.stop = run_stop;
    {
        red_status st = red_train(&o, &m, tok, &d, NULL, &err);
        cr_assert(st == (run_stop && *run_stop ? RED_E_INTERRUPTED : RED_OK), "%s", err.msg);
    }
    snap = malloc(m.n_params * 4);
    memcpy(snap, m.params, m.n_params * 4);
    red_train_data_free(&d);
    red_model_free(&m);
    red_tokenizer_free(tok);
    return snap;
}

static void rm_dir(const char *dir) {
    const char *files[4] = {"config.json", "model.safetensors", "red_tokenizer.json", "train_state.bin"};
    char p[256];
    int i;
    for (i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

Test(train, interrupted_and_resumed_equals_uninterrupted) {
    red_pool *pool = red_pool_create(2);
    char a[] = "/tmp/red-test-train-a-XXXXXX", b[] = "/tmp/red-test-train-b-XXXXXX", data[64];
    float *full, *resumed;
    size_t n;
    cr_assert(mkdtemp(a) && mkdtemp(b));
    snprintf(data, sizeof data, "%s/d.jsonl", a);
    tu_write_reasoning(data);
    full = run(a, data, pool, 0, 0);
    free(run(b, data, pool, 6, 0));  /* "killed" after step 6; the last checkpoint is step 4 */
    resumed = run(b, data, pool, 0, 1);
    {
        red_model m;
        red_error err;
        cr_assert(red_model_load(&m, a, pool, &err) == RED_OK, "%s", err.msg);
        n = m.n_params;
        cr_expect(memcmp(m.params, full, n * 4) == 0, "the final checkpoint holds the final weights");
        red_model_free(&m);
    }
    cr_expect(memcmp(full, resumed, n * 4) == 0, "resumed run differs from the uninterrupted one");
    free(full);
    free(resumed);
    unlink(data);
    rm_dir(a);
    rm_dir(b);
    red_pool_destroy(pool);
}

/* With several threads the batch's sequences run one per thread on workers
 * (optim.c's tree joins them); on one thread one after another through the
 * model's own run state: the same weights, bit for bit. 3 threads over 4
 * sequences: groups of 2 (the tree's halves), never a full width. */
Test(train, sequences_on_workers_equal_one_thread) {
    red_pool *one = red_pool_create(1), *three = red_pool_create(3);
    char a[] = "/tmp/red-test-train-a-XXXXXX", b[] = "/tmp/red-test-train-b-XXXXXX", data[64];
    float *w1, *w3;
    cr_assert(one && three && mkdtemp(a) && mkdtemp(b));
    snprintf(data, sizeof data, "%s/d.jsonl", a);
    tu_write_reasoning(data);
    w1 = run(a, data, one, 0, 0);
    w3 = run(b, data, three, 0, 0);
    {
        red_model m;
        red_error err;
        cr_assert(red_model_load(&m, a, one, &err) == RED_OK, "%s", err.msg);
        cr_expect(memcmp(w1, w3, m.n_params * 4) == 0, "the workers' run differs from the one-thread run");
        red_model_free(&m);
    }
    free(w1);
    free(w3);
    unlink(data);
    rm_dir(a);
    rm_dir(b);
    red_pool_destroy(one);
    red_pool_destroy(three);
}

Test(train, stop_request_checkpoints_and_resumes_identically) {
    static volatile sig_atomic_t stop = 1;  /* set before the first step: stop after step 1 */
    red_pool *pool = red_pool_create(2);
    char a[] = "/tmp/red-test-train-a-XXXXXX", b[] = "/tmp/red-test-train-b-XXXXXX", data[64];
    float *full, *resumed;
    red_config c;
    red_error err;
    cr_assert(mkdtemp(a) && mkdtemp(b));
    snprintf(data, sizeof data, "%s/d.jsonl", a);
    tu_write_reasoning(data);
    full = run(a, data, pool, 0, 0);
    run_stop = &stop;
    free(run(b, data, pool, 0, 0));  /* interrupted after step 1: save_every is 4, so this checkpoint is the signal's */
    cr_assert(red_config_load(&c, b, &err) == RED_OK, "the interrupted run left a checkpoint: %s", err.msg);
    run_stop = NULL;
    resumed = run(b, data, pool, 0, 1);
    cr_expect(memcmp(full, resumed, (size_t)red_param_floats(&c) * 4) == 0, "resumed after a stop request differs");
    free(full);
    free(resumed);
    unlink(data);
    rm_dir(a);
    rm_dir(b);
    red_pool_destroy(pool);
}

static float loss_of(red_model *m, const int *in, const int *tgt) {
    red_model_forward(m, in, 4, 32);
    return red_model_cross_entropy(m, tgt, 0, NULL);
}

Test(train, loss_falls_on_its_own_data) {
    red_pool *pool = red_pool_create(2);
    red_tokenizer *tok;
    red_train_data d;
    red_error err;
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    {   /* a short run lowers the loss on its own data */
        char dir[] = "/tmp/red-test-train-l-XXXXXX", data[64];
        red_model m;
        int in[128], tgt[128], i;
        float before, after;
        float *w;
        cr_assert(mkdtemp(dir));
        snprintf(data, sizeof data, "%s/d.jsonl", dir);
        tu_write_reasoning(data);
        memset(&d, 0, sizeof d);
        cr_assert(red_train_data_add_file(&d, tok, data, &err) == RED_OK);
        for (i = 0; i < 128; i++) {  /* a fixed probe batch from the stream's first documents */
            in[i] = d.tokens[i];
            tgt[i] = d.tokens[i + 1];
        }
        w = run(dir, data, pool, 0, 0);
        cr_assert(red_model_load(&m, dir, pool, &err) == RED_OK);
        cr_assert(red_model_train_alloc(&m, 4, 32, &err) == RED_OK);
        after = loss_of(&m, in, tgt);
        {
            red_rng r;
            red_rng_seed(&r, 9);
            red_model_init_random(&m, &r, 0.1f, 0.05f);  /* the same initial weights as run() */
        }
        before = loss_of(&m, in, tgt);
        cr_expect(after < before - 0.5f, "12 steps: loss %.3f -> %.3f", before, after);
        red_model_free(&m);
        free(w);
        red_train_data_free(&d);
        unlink(data);
        rm_dir(dir);
    }
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
}

/* ------------------------------------------------------------------ hostile inputs */

/* Token ids the model cannot take (a 259-id tokenizer, a 200-id model, as
 * after --resume with another tokenizer) stop the run before any step: the
 * forward's failure used to be ignored, training on stale logits with loss 0
 * and saving that as a checkpoint, and targets past the vocabulary were
 * read and written outside the logits. */
Test(train, ids_outside_the_vocabulary_stop_the_run_without_a_checkpoint) {
    red_pool *pool = red_pool_create(2);
    char dir[] = "/tmp/red-test-train-f-XXXXXX", data[64], p[128];
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_train_data d;
    red_train_opts o;
    red_error err;
    cr_assert(mkdtemp(dir));
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    tu_write_reasoning(data);
    cr_assert(red_tokenizer_byte_new(&tok, &err) == RED_OK);
    memset(&d, 0, sizeof d);
    cr_assert(red_train_data_add_file(&d, tok, data, &err) == RED_OK, "%s", err.msg);
    red_config_default(&c);
    c.vocab = 200; c.bos_id = c.eos_id = -1; c.dim = 32; c.ffn = 64; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 16;
    c.max_pos = 64;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK, "%s", err.msg);
    memset(&o, 0, sizeof o);
    o.loop.out = dir; o.loop.tokens = 4 * 4 * 32; o.loop.batch = 4; o.loop.seq = 32; o.loop.seed = 5; o.loop.lr = 3e-3f;
    o.loop.beta1 = 0.9f; o.loop.beta2 = 0.95f; o.loop.clip = 1.0; o.loop.schedule = RED_SCHED_CONSTANT;
    o.loop.save_every = 1;
    cr_expect(red_train(&o, &m, tok, &d, NULL, &err) == RED_E_ARG, "a failed forward was trained on");
    cr_expect(strstr(err.msg, "259 ids") && strstr(err.msg, "only 200"), "%s", err.msg);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    cr_expect(access(p, F_OK) != 0, "a checkpoint was written from a failed forward");
    red_train_data_free(&d);
    red_tokenizer_free(tok);
    red_model_free(&m);
    unlink(data);
    rm_dir(dir);
    red_pool_destroy(pool);
}

/* --seq 65536 on a few thousand tokens: the data check comes before the
 * activations are allocated (69 GB for this shape). The address space is
 * capped at what the process uses plus 256 MB, so allocating first fails
 * with RED_E_NOMEM instead of the data error (not under ASan: its shadow
 * needs terabytes of address space). */
Test(train, data_checked_before_activations) {
    char dir[] = "/tmp/red-test-train-s-XXXXXX", data[64];
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_train_data d;
    red_train_opts o;
    red_error err;
    cr_assert(mkdtemp(dir));
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    tu_write_reasoning(data);
    cr_assert(red_tokenizer_byte_new(&tok, &err) == RED_OK);
    memset(&d, 0, sizeof d);
    cr_assert(red_train_data_add_file(&d, tok, data, &err) == RED_OK, "%s", err.msg);
    red_config_default(&c);
    c.dim = 32; c.ffn = 64; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 16; c.max_pos = 65536;
    cr_assert(red_model_alloc(&m, &c, NULL, &err) == RED_OK, "%s", err.msg);
    tu_cap_address_space();
    memset(&o, 0, sizeof o);
    o.loop.out = dir; o.loop.tokens = (uint64_t)1 << 20; o.loop.batch = 4; o.loop.seq = 65536; o.loop.lr = 1e-3f;
    o.loop.schedule = RED_SCHED_CONSTANT;
    cr_expect(red_train(&o, &m, tok, &d, NULL, &err) == RED_E_ARG, "expected the data error, got: %s", err.msg);
    cr_expect(strstr(err.msg, "fewer than one sequence of 65537") != NULL, "%s", err.msg);
    red_train_data_free(&d);
    red_tokenizer_free(tok);
    red_model_free(&m);
    unlink(data);
    rmdir(dir);
}
