/* tests/test_hfdir.c - Hugging Face model directories (hfdir.c): safetensors
 * (the format's own byte-exact vector, round trips in F32/F16/BF16, rejection
 * of truncated and lying headers), config.json, model directory round trips,
 * sharded safetensors with their index, and red_model_open's dispatch by
 * path (directory, .gguf, llama2.c .bin). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testmodel.h"

/* ------------------------------------------------------------------ safetensors */

/* The format's own test vector (formats.md section 1). */
static const unsigned char st_vector[96] = {
    0x40, 0, 0, 0, 0, 0, 0, 0,
    '{', '"', 'a', 't', 't', 'n', '.', '0', '"', ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"', ':', '"', 'F', '3',
    '2', '"', ',', '"', 's', 'h', 'a', 'p', 'e', '"', ':', '[', '1', ',', '2', ',', '3', ']', ',', '"', 'd', 'a',
    't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '[', '0', ',', '2', '4', ']', '}', '}',
    0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40};

static red_status st_try(const unsigned char *bytes, size_t len, red_safetensors *st, red_error *err) {
    unsigned char *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    return red_st_parse(st, copy, len, "mem.safetensors", err);
}

Test(hfdir, safetensors_reads_the_reference_vector) {
    red_safetensors st;
    red_error err;
    float out[6];
    int i;
    cr_assert(st_try(st_vector, 96, &st, &err) == RED_OK, "%s", err.msg);
    cr_assert(st.n == 1);
    cr_expect(strcmp(st.e[0].name, "attn.0") == 0 && st.e[0].ndim == 3 && st.e[0].shape[2] == 3);
    cr_assert(red_st_read_f32(&st, &st.e[0], out, &err) == RED_OK);
    for (i = 0; i < 6; i++) cr_expect(out[i] == (float)i);
    red_st_close(&st);
}

/* Rewrites the header of the reference vector (keeping it 64 bytes with
 * trailing spaces) and expects rejection with a message containing `word`. */
static void st_reject(const char *header, const unsigned char *data, size_t data_len, const char *word) {
    unsigned char buf[256];
    size_t hl = strlen(header), n = 64 > hl ? 64 : hl;
    red_safetensors st;
    red_error err;
    int i;
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memset(buf + 8, ' ', n);
    memcpy(buf + 8, header, hl);
    memcpy(buf + 8 + n, data, data_len);
    cr_expect(st_try(buf, 8 + n + data_len, &st, &err) != RED_OK, "accepted: %s", header);
    cr_expect(strstr(err.msg, word) != NULL, "message '%s' should mention '%s'", err.msg, word);
}

Test(hfdir, safetensors_rejects_truncated_and_lying_files) {
    red_safetensors st;
    red_error err;
    unsigned char bad[96];
    const unsigned char *data = st_vector + 72;
    /* truncated by one byte */
    cr_expect(st_try(st_vector, 95, &st, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
    /* header length beyond the file */
    memcpy(bad, st_vector, 96);
    bad[0] = 0xF0;
    cr_expect(st_try(bad, 96, &st, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "header length") != NULL, "%s", err.msg);
    /* absurd header length (2^63) */
    bad[0] = 0x40;
    bad[7] = 0x80;
    cr_expect(st_try(bad, 96, &st, &err) == RED_E_FORMAT);
    cr_expect(st_try(st_vector, 7, &st, &err) == RED_E_FORMAT, "shorter than the length field");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,20]}}", data, 24, "needs 24");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}", data, 24, "trailing");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", data, 16, "starts at data byte 8");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12, "contiguous");
    st_reject("{\"a\":{\"dtype\":\"F33\",\"shape\":[6],\"data_offsets\":[0,24]}}", data, 24, "unknown dtype");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[-6],\"data_offsets\":[0,24]}}", data, 24, "non-negative");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[6]}}", data, 24, "data_offsets");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[24,0]}}", data, 24, "begin <= end");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24],\"x\":1}}", data, 24, "unknown field");
    st_reject("{\"__metadata__\":{\"k\":1}}", data, 0, "must be a string");
    st_reject("[1]", data, 0, "JSON object");
    st_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},}", data, 24, "expected a string key");
}

Test(hfdir, safetensors_round_trips_f32_f16_bf16) {
    float a[12], b[3] = {1.5f, -0.25f, 1e-3f}, out[12];
    red_st_tensor t[2];
    red_safetensors st;
    red_error err;
    red_dtype dts[3] = {RED_DT_F32, RED_DT_F16, RED_DT_BF16};
    char path[] = "/tmp/red-test-st-XXXXXX";
    int fd = mkstemp(path), i, d;
    red_rng r;
    cr_assert(fd >= 0);
    close(fd);
    red_rng_seed(&r, 3);
    red_rng_fill_normal(&r, a, 12, 0.0f, 3.0f);
    t[0].name = "model.w"; t[0].data = a; t[0].ndim = 2; t[0].shape[0] = 3; t[0].shape[1] = 4;
    t[1].name = "b\"q"; t[1].data = b; t[1].ndim = 1; t[1].shape[0] = 3;
    for (d = 0; d < 3; d++) {
        const red_st_entry *e;
        cr_assert(red_st_save(path, t, 2, dts[d], &err) == RED_OK, "%s", err.msg);
        cr_assert(red_st_open(&st, path, &err) == RED_OK, "%s", err.msg);
        cr_expect(st.header_len % 8 == 0, "header padded to 8 bytes");
        e = red_st_find(&st, "model.w");
        cr_assert(e && e->ndim == 2 && e->shape[0] == 3 && e->shape[1] == 4 && e->dtype == dts[d]);
        red_st_read_f32(&st, e, out, &err);
        for (i = 0; i < 12; i++) {
            float want = d == 0 ? a[i] : d == 1 ? red_f16_to_f32(red_f32_to_f16(a[i])) : red_bf16_to_f32(red_f32_to_bf16(a[i]));
            cr_expect(out[i] == want, "dtype %d element %d: %g vs %g", d, i, out[i], want);
        }
        e = red_st_find(&st, "b\"q");
        cr_assert(e, "escaped name survives");
        red_st_read_f32(&st, e, out, &err);
        cr_expect(out[0] == 1.5f && out[1] == -0.25f);
        red_st_close(&st);
    }
    unlink(path);
}

/* ------------------------------------------------------------------ config and model directory */

static red_status cfg_from(const char *text, red_config *c, red_error *err) {
    red_json *j;
    red_status st = red_json_parse(text, strlen(text), "config.json", &j, err);
    if (st) return st;
    st = red_config_from_json(c, j, "config.json", err);
    red_json_free(j);
    return st;
}

Test(hfdir, config_llama_3_2_1b_and_qwen2_5_0_5b) {
    red_config c;
    red_error err;
    /* formats.md section 3 */
    cr_assert(cfg_from("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":2048,"
                       "\"intermediate_size\":8192,\"num_hidden_layers\":16,\"num_attention_heads\":32,"
                       "\"num_key_value_heads\":8,\"head_dim\":64,\"vocab_size\":128256,\"max_position_embeddings\":131072,"
                       "\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,"
                       "\"low_freq_factor\":1.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
                       "\"rms_norm_eps\":1e-05,\"tie_word_embeddings\":true,\"hidden_act\":\"silu\",\"attention_bias\":false,"
                       "\"mlp_bias\":false,\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009]}",
                       &c, &err) == RED_OK, "%s", err.msg);
    cr_expect(c.arch == RED_ARCH_LLAMA && c.dim == 2048 && c.n_kv_heads == 8 && c.head_dim == 64 && c.rope_llama3);
    cr_expect(c.rope_factor == 32.0f && c.rope_orig_ctx == 8192 && c.tied && !c.qkv_bias && c.eos_id == 128001);
    cr_assert(cfg_from("{\"model_type\":\"qwen2\",\"hidden_size\":896,\"intermediate_size\":4864,\"num_hidden_layers\":24,"
                       "\"num_attention_heads\":14,\"num_key_value_heads\":2,\"vocab_size\":151936,\"rope_theta\":1000000.0,"
                       "\"rope_scaling\":null,\"rms_norm_eps\":1e-06,\"tie_word_embeddings\":true,\"sliding_window\":32768}",
                       &c, &err) == RED_OK, "%s", err.msg);
    cr_expect(c.arch == RED_ARCH_QWEN2 && c.head_dim == 64 && c.qkv_bias == 1 && !c.rope_llama3);
    cr_expect(red_param_floats(&c) == 494032768u, "Qwen2.5-0.5B has 494,032,768 parameters (formats.md)");
    /* newer transformers: rope_parameters */
    cr_assert(cfg_from("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":4,\"vocab_size\":10,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":123.0}}",
                       &c, &err) == RED_OK, "%s", err.msg);
    cr_expect(c.rope_theta == 123.0f && c.n_kv_heads == 4);
}

Test(hfdir, config_llama_3_2_1b_parameter_count) {
    red_config c;
    red_config_default(&c);
    c.dim = 2048; c.ffn = 8192; c.n_layers = 16; c.n_heads = 32; c.n_kv_heads = 8; c.head_dim = 64; c.vocab = 128256;
    cr_expect(red_param_floats(&c) == 1235814400u, "1,235,814,400 (formats.md)");
    cr_expect(red_param_tensors(&c) == 146);
}

Test(hfdir, config_errors_name_the_key) {
    red_config c;
    red_error err;
    cr_expect(cfg_from("{\"model_type\":\"llama\",\"hidden_size\":64}", &c, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "intermediate_size") != NULL, "%s", err.msg);
    cr_expect(cfg_from("{\"model_type\":\"gpt2\"}", &c, &err) == RED_E_UNSUPPORTED);
    cr_expect(cfg_from("{\"model_type\":\"llama\",\"hidden_size\":64.5,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":1,\"vocab_size\":1}", &c, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "hidden_size") && strstr(err.msg, "byte 36"), "%s", err.msg);
    cr_expect(cfg_from("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":4,\"num_key_value_heads\":3,\"vocab_size\":1}", &c, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "divide") != NULL, "%s", err.msg);
}

Test(hfdir, model_dir_save_load_round_trip_f32_and_bf16) {
    red_config c;
    red_model m, back;
    red_error err;
    red_rng r;
    char dir[] = "/tmp/red-test-model-XXXXXX", path[128];
    size_t i;
    cr_assert(mkdtemp(dir));
    red_config_default(&c);
    c.arch = RED_ARCH_QWEN2; c.qkv_bias = 1; c.tied = 0; c.n_kv_heads = 2; c.head_dim = 8;
    c.rope_llama3 = 1; c.rope_factor = 4.0f; c.bos_id = 1; c.eos_id = 2;
    cr_assert(red_model_alloc(&m, &c, NULL, &err) == RED_OK);
    red_rng_seed(&r, 4);
    red_model_init_random(&m, &r, 0.1f, 0.0f);
    cr_assert(red_model_save(&m, dir, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_load(&back, dir, NULL, &err) == RED_OK, "%s", err.msg);
    cr_expect(memcmp(&back.cfg, &m.cfg, sizeof c) == 0, "config round trip");
    cr_expect(memcmp(back.params, m.params, m.n_params * 4) == 0, "F32 weights round trip exactly");
    red_model_free(&back);
    cr_assert(red_model_save(&m, dir, RED_DT_BF16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_load(&back, dir, NULL, &err) == RED_OK, "%s", err.msg);
    for (i = 0; i < m.n_params; i++)
        cr_assert(back.params[i] == red_bf16_to_f32(red_f32_to_bf16(m.params[i])), "BF16 element %zu", i);
    red_model_free(&back);
    /* a missing tensor is named */
    {
        red_config c2 = c;
        red_model small;
        c2.n_layers = 3;
        cr_assert(red_model_alloc(&small, &c2, NULL, &err) == RED_OK);
        snprintf(path, sizeof path, "%s/config.json", dir);
        {
            red_sbuf b;
            red_sbuf_init(&b);
            red_config_to_json(&c2, &b);
            cr_assert(red_write_file_atomic(path, b.p, b.len, &err) == RED_OK);
            red_sbuf_free(&b);
        }
        cr_expect(red_model_load(&back, dir, NULL, &err) == RED_E_FORMAT);
        cr_expect(strstr(err.msg, "model.layers.2.") != NULL, "%s", err.msg);
        red_model_free(&small);
    }
    snprintf(path, sizeof path, "%s/config.json", dir); unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir); unlink(path);
    rmdir(dir);
    red_model_free(&m);
}

/* ------------------------------------------------------------------ hostile inputs */

static void write_config(const char *dir, const red_config *c) {
    char path[256];
    red_sbuf b;
    red_error err;
    snprintf(path, sizeof path, "%s/config.json", dir);
    red_sbuf_init(&b);
    red_config_to_json(c, &b);
    cr_assert(red_write_file_atomic(path, b.p, b.len, &err) == RED_OK, "%s", err.msg);
    red_sbuf_free(&b);
}

static void remove_model_dir(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir); unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir); unlink(path);
    rmdir(dir);
}

/* NaN or Inf weights are refused at load, naming the tensor (a NaN model
 * used to score acc 1.0 on multiple choice and write NaN logits). */
Test(hfdir, model_dir_non_finite_weights_are_rejected_with_the_tensor_name) {
    red_config c;
    red_model m, back;
    red_error err;
    red_rng r;
    char dir[] = "/tmp/red-test-nan-XXXXXX";
    cr_assert(mkdtemp(dir));
    red_config_default(&c);
    c.dim = 16; c.ffn = 32; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 8;
    cr_assert(red_model_alloc(&m, &c, NULL, &err) == RED_OK);
    red_rng_seed(&r, 4);
    red_model_init_random(&m, &r, 0.1f, 0.0f);
    m.w.layers[1].wu[37] = NAN;
    cr_assert(red_model_save(&m, dir, RED_DT_BF16, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_model_load(&back, dir, NULL, &err) == RED_E_FORMAT, "NaN weights accepted");
    cr_expect(strstr(err.msg, "model.layers.1.mlp.up_proj.weight") && strstr(err.msg, "element 37 is NaN"), "%s",
              err.msg);
    m.w.layers[1].wu[37] = 0.5f;
    m.w.norm[2] = -INFINITY;
    cr_assert(red_model_save(&m, dir, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_model_load(&back, dir, NULL, &err) == RED_E_FORMAT, "infinite weights accepted");
    cr_expect(strstr(err.msg, "model.norm.weight") && strstr(err.msg, "infinite"), "%s", err.msg);
    red_model_free(&m);
    remove_model_dir(dir);
}

/* config.json asks for 256M parameters (1 GB) next to a 13 KB
 * model.safetensors: the file is checked against the config before any
 * parameter memory exists. The address space is capped at what the process
 * uses plus 256 MB, so allocating first fails with RED_E_NOMEM instead of
 * the format error (ASan reserves terabytes of shadow: no cap there). */
Test(hfdir, model_dir_file_is_checked_against_config_before_allocating) {
    red_config c, big;
    red_model m, back;
    red_error err;
    char dir[] = "/tmp/red-test-big-XXXXXX";
    cr_assert(mkdtemp(dir));
    red_config_default(&c);
    c.dim = 16; c.ffn = 32; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 8; c.n_layers = 1;
    cr_assert(red_model_alloc(&m, &c, NULL, &err) == RED_OK);
    cr_assert(red_model_save(&m, dir, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    red_model_free(&m);
    big = c;
    big.vocab = 262144; big.dim = 1024; big.head_dim = 512; big.ffn = 16;
    write_config(dir, &big);
    tu_cap_address_space();
    cr_expect(red_model_load(&back, dir, NULL, &err) == RED_E_FORMAT, "expected a format error, got: %s", err.msg);
    cr_expect(strstr(err.msg, "model.embed_tokens.weight") && strstr(err.msg, "[259, 16]") &&
              strstr(err.msg, "262144, 1024"), "%s", err.msg);
    remove_model_dir(dir);
}

/* ------------------------------------------------------------------ red_model_open by path */

Test(hfdir, model_open_dispatch, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    red_model_format f;
    char dir[] = "/tmp/red-any-XXXXXX", path[300];
    const char *names[3] = {"hf", "m.gguf", "m.bin"};
    int k;
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_LLAMA, 9);
    m.cfg.rope_llama3 = 0;  /* llama2.c holds only theta 10000, eps 1e-5, head_dim = dim/heads */
    m.cfg.rope_theta = 10000.0f;
    for (k = 0; k < 3; k++) {
        tmp_path(path, sizeof path, dir, names[k]);
        cr_assert(red_model_write(&m, NULL, path, RED_DT_F32, &err) == RED_OK, "%s: %s", names[k], err.msg);
        cr_assert(red_model_format_of(path, &f, &err) == RED_OK);
        cr_expect_eq((int)f, k, "%s detected as %d", names[k], (int)f);
        cr_assert(red_model_open(&back, path, pool, &err) == RED_OK, "%s: %s", names[k], err.msg);
        cr_expect(memcmp(back.params, m.params, m.n_params * 4) == 0, "%s: weights bit-identical", names[k]);
        red_model_free(&back);
    }
    tmp_path(path, sizeof path, dir, "missing");
    cr_expect(red_model_open(&back, path, pool, &err) == RED_E_IO);
    cr_expect(strstr(err.msg, "missing") != NULL);
    red_model_free(&m);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ sharded safetensors */

/* Writes m's tensors [lo, hi) as one shard. */
static void write_shard(const red_model *m, const char *path, int lo, int hi) {
    red_st_tensor t[64];
    red_error err;
    int i;
    cr_assert(hi - lo <= 64);
    for (i = lo; i < hi; i++) {
        const red_param *p = &m->table[i];
        t[i - lo].name = p->name;
        t[i - lo].data = m->params + p->offset;
        t[i - lo].ndim = p->ndim;
        t[i - lo].shape[0] = p->shape[0];
        t[i - lo].shape[1] = p->shape[1];
    }
    cr_assert(red_st_save(path, t, hi - lo, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
}

static void write_index(const red_model *m, const char *dir, int split, const char *second) {
    red_sbuf b;
    red_error err;
    char path[300];
    int i;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (i = 0; i < m->n_tensors; i++)
        red_sbuf_printf(&b, "%s\"%s\": \"%s\"", i ? ", " : "", m->table[i].name,
                        i < split ? "model-00001-of-00002.safetensors" : second);
    red_sbuf_puts(&b, "}}");
    tmp_path(path, sizeof path, dir, "model.safetensors.index.json");
    cr_assert(red_write_file_atomic(path, b.p, b.len, &err) == RED_OK);
    red_sbuf_free(&b);
}

Test(hfdir, safetensors_sharded_index_loads_and_rejects_lies, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    char dir[] = "/tmp/red-shard-XXXXXX", path[300];
    int split;
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_QWEN2, 21);
    cr_assert(red_model_write(&m, NULL, dir, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    tmp_path(path, sizeof path, dir, "model.safetensors");
    cr_assert(unlink(path) == 0);
    split = m.n_tensors / 2;
    tmp_path(path, sizeof path, dir, "model-00001-of-00002.safetensors");
    write_shard(&m, path, 0, split);
    tmp_path(path, sizeof path, dir, "model-00002-of-00002.safetensors");
    write_shard(&m, path, split, m.n_tensors);
    write_index(&m, dir, split, "model-00002-of-00002.safetensors");
    cr_assert(red_model_open(&back, dir, pool, &err) == RED_OK, "%s", err.msg);
    cr_expect(memcmp(back.params, m.params, m.n_params * 4) == 0, "sharded weights bit-identical");
    red_model_free(&back);
    /* a shard outside the directory */
    write_index(&m, dir, split, "../model-00002-of-00002.safetensors");
    cr_expect(red_model_open(&back, dir, pool, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "plain file name") != NULL, "%s", err.msg);
    /* a missing shard file */
    write_index(&m, dir, split, "model-00003-of-00002.safetensors");
    cr_expect(red_model_open(&back, dir, pool, &err) == RED_E_IO);
    cr_expect(strstr(err.msg, "model-00003-of-00002.safetensors") != NULL, "%s", err.msg);
    /* a tensor in two shards */
    tmp_path(path, sizeof path, dir, "model-00002-of-00002.safetensors");
    write_shard(&m, path, split - 1, m.n_tensors);
    write_index(&m, dir, split, "model-00002-of-00002.safetensors");
    cr_expect(red_model_open(&back, dir, pool, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "earlier shard") != NULL, "%s", err.msg);
    /* a tensor in none */
    write_shard(&m, path, split, m.n_tensors - 1);
    cr_expect(red_model_open(&back, dir, pool, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, m.table[m.n_tensors - 1].name) != NULL, "%s", err.msg);
    red_model_free(&m);
    rm_tree(dir);
}
