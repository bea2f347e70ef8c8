/* tests/test_gguf.c - GGUF v3 (gguf.c): round trips in F32/F16/BF16 with
 * identical weights and logits, Q8_0, llama3 rope_freqs, llama.cpp's
 * vocab-only GPT-2 file and its tokenizer vectors, the independent Python
 * reader tests/fixtures/gguf_check.py, tokenizers embedded and read back;
 * hostile files: truncations at every length, lying counts and offsets,
 * unknown types, overflowing dims, random mutations. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testmodel.h"

#define VOCAB_GPT2 "../shared/data/tokenizers/llamacpp/ggml-vocab-gpt-2.gguf"

static void gguf_round_trip(red_arch arch) {
    red_model m, back;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    int ids[7] = {1, 5, 60, 3, 3, 17, 42}, d;
    const red_dtype dts[3] = {RED_DT_F32, RED_DT_F16, RED_DT_BF16};
    float *want;
    size_t i;
    cr_assert(mkdtemp(dir));
    random_model(&m, arch, 7 + arch);
    want = run_logits(&m, ids, 7);
    for (d = 0; d < 3; d++) {
        float *got;
        tmp_path(path, sizeof path, dir, "m.gguf");
        cr_assert(red_model_write(&m, NULL, path, dts[d], &err) == RED_OK, "%s", err.msg);
        cr_assert(red_model_open(&back, path, pool, &err) == RED_OK, "%s", err.msg);
        cr_expect(memcmp(&back.cfg, &m.cfg, sizeof m.cfg) == 0, "%s config round trip (dtype %d)",
                  red_arch_name(arch), d);
        cr_assert_eq(back.n_params, m.n_params);
        for (i = 0; i < (size_t)m.n_tensors; i++) {
            const red_param *p = &m.table[i];
            size_t j;
            for (j = 0; j < p->numel; j++) {
                float x = m.params[p->offset + j], y = back.params[p->offset + j];
                float e = p->ndim == 1 || d == 0 ? x : d == 1 ? red_f16_to_f32(red_f32_to_f16(x))
                                                             : red_bf16_to_f32(red_f32_to_bf16(x));
                cr_assert(y == e, "%s[%zu] dtype %d: %g, expected %g", p->name, j, d, y, e);
            }
        }
        got = run_logits(&back, ids, 7);
        if (d == 0) cr_expect(memcmp(got, want, sizeof(float) * 7 * m.cfg.vocab) == 0, "F32: identical logits");
        else  /* 16-bit weights of O(0.3) through 2 layers: logits O(1) move by ~1e-2 at most */
            expect_close("16-bit logits", got, want, 7 * (size_t)m.cfg.vocab, 5e-2, 5e-2);
        free(got);
        red_model_free(&back);
    }
    free(want);
    red_model_free(&m);
    rm_tree(dir);
}

Test(gguf, round_trip_llama_tied_llama3_rope, .init = setup, .fini = teardown) { gguf_round_trip(RED_ARCH_LLAMA); }
Test(gguf, round_trip_qwen2_bias_gqa_untied, .init = setup, .fini = teardown) { gguf_round_trip(RED_ARCH_QWEN2); }

Test(gguf, metadata_and_layout_as_llama_cpp_names_them, .init = setup, .fini = teardown) {
    red_model m;
    red_gguf g;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    int64_t v;
    double f;
    const red_gguf_tensor *t;
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_QWEN2, 3);
    tmp_path(path, sizeof path, dir, "q.gguf");
    cr_assert(red_model_write(&m, NULL, path, RED_DT_BF16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_expect(g.version == 3 && g.alignment == 32 && g.data_start % 32 == 0);
    cr_expect_str_eq(red_gguf_get_str(&g, "general.architecture"), "qwen2");
    cr_expect(red_gguf_get_int(&g, "qwen2.block_count", &v) == 1 && v == 2);
    cr_expect(red_gguf_get_int(&g, "qwen2.attention.head_count_kv", &v) == 1 && v == 2);
    cr_expect(red_gguf_get_int(&g, "qwen2.attention.key_length", &v) == 1 && v == 16);
    cr_expect(red_gguf_get_int(&g, "general.file_type", &v) == 1 && v == 32);
    cr_expect(red_gguf_get_float(&g, "qwen2.rope.freq_base", &f) == 1 && f == 1e6);
    cr_expect(red_gguf_get_float(&g, "qwen2.attention.layer_norm_rms_epsilon", &f) == 1 && (float)f == 1e-6f);
    cr_expect(red_gguf_get_str(&g, "qwen2.block_count") == NULL, "a u32 is not a string");
    t = red_gguf_find_tensor(&g, "blk.1.attn_k.weight");
    cr_assert(t);
    cr_expect(t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 32 && t->type == RED_GGML_BF16, "ne innermost first");
    t = red_gguf_find_tensor(&g, "blk.0.attn_q.bias");
    cr_expect(t && t->type == RED_GGML_F32 && t->ne[0] == 64, "biases stay F32");
    cr_expect(red_gguf_find_tensor(&g, "output.weight") != NULL, "untied head");
    cr_expect(red_gguf_find_tensor(&g, "output_norm.weight")->type == RED_GGML_F32);
    red_gguf_close(&g);
    red_model_free(&m);
    rm_tree(dir);
}

Test(gguf, q8_0_dequantises_on_load, .init = setup, .fini = teardown) {
    red_gguf_writer w;
    red_gguf g;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    float x[64], y[64];
    uint64_t ne[2] = {32, 2};
    int i;
    cr_assert(mkdtemp(dir));
    for (i = 0; i < 64; i++) x[i] = (float)cos(i) * (i < 32 ? 1.0f : 0.01f);
    x[40] = 0.0f;
    red_gguf_w_init(&w);
    red_gguf_w_str(&w, "general.architecture", "test");
    cr_assert(red_gguf_w_tensor(&w, "q", 2, ne, RED_GGML_Q8_0, x, 0, &err) == RED_OK);
    tmp_path(path, sizeof path, dir, "q.gguf");
    cr_assert(red_gguf_w_write(&w, path, &err) == RED_OK, "%s", err.msg);
    red_gguf_w_free(&w);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(g.t[0].nbytes == 68 && g.t[0].type == RED_GGML_Q8_0);
    cr_assert(red_gguf_tensor_f32(&g, &g.t[0], y, &err) == RED_OK);
    for (i = 0; i < 64; i++) {
        /* per block: |x - q d| <= d/2 (+ the f16 rounding of d, <= 2^-11 relative, times 127) */
        float amax = i < 32 ? 1.0f : 0.01f, d = amax / 127.0f;
        cr_expect(fabsf(y[i] - x[i]) <= d * (0.5f + 127.0f / 2048.0f), "element %d: %g vs %g", i, y[i], x[i]);
    }
    red_gguf_close(&g);
    rm_tree(dir);
}

Test(gguf, reads_llama_cpp_vocab_only_gpt2_file) {
    red_gguf g;
    red_error err;
    const red_gguf_kv *tokens, *merges, *types;
    uint64_t len;
    const char *s;
    int64_t v;
    if (!have_file(VOCAB_GPT2)) cr_skip_test(VOCAB_GPT2 " absent");
    cr_assert(red_gguf_open(&g, VOCAB_GPT2, &err) == RED_OK, "%s", err.msg);
    cr_expect(g.version == 3 && g.n_tensors == 0 && g.n_kv == 16);
    cr_expect_str_eq(red_gguf_get_str(&g, "general.architecture"), "gpt2");
    cr_expect_str_eq(red_gguf_get_str(&g, "tokenizer.ggml.model"), "gpt2");
    tokens = red_gguf_find(&g, "tokenizer.ggml.tokens");
    merges = red_gguf_find(&g, "tokenizer.ggml.merges");
    types = red_gguf_find(&g, "tokenizer.ggml.token_type");
    cr_assert(tokens && merges && types);
    cr_expect(tokens->elem_type == RED_GGUF_STRING && tokens->n == 50257, "%llu tokens", (unsigned long long)tokens->n);
    cr_expect(merges->elem_type == RED_GGUF_STRING && merges->n == 50000, "%llu merges", (unsigned long long)merges->n);
    cr_expect(types->elem_type == RED_GGUF_I32 && types->n == 50257);
    s = red_gguf_arr_str(&g, tokens, 0, &len);
    cr_expect(len == 1 && s[0] == '!', "token 0 is '!'");
    s = red_gguf_arr_str(&g, tokens, 50256, &len);
    cr_expect(len == 13 && !memcmp(s, "<|endoftext|>", 13));
    s = red_gguf_arr_str(&g, merges, 0, &len);
    cr_expect(len == 4 && !memcmp(s, "\xC4\xA0 t", 4), "first merge 'Ġ t' (U+0120 is 2 bytes)");
    cr_expect_str_eq(red_gguf_get_str(&g, "tokenizer.ggml.pre"), "gpt-2");
    cr_expect(red_gguf_get_int(&g, "gpt2.context_length", &v) == 1 && v == 1024);
    cr_expect(red_gguf_arr_num(&g, types, 0) == 1.0 && red_gguf_arr_num(&g, types, 50256) == 3.0,
              "normal and control token types");
    cr_expect(red_gguf_get_int(&g, "tokenizer.ggml.eos_token_id", &v) == 1 && v == 50256);
    /* a vocab-only file is not a model */
    {
        red_model m;
        cr_expect(red_model_open(&m, VOCAB_GPT2, NULL, &err) == RED_E_UNSUPPORTED);
        cr_expect(strstr(err.msg, "gpt2") != NULL, "%s", err.msg);
    }
    red_gguf_close(&g);
}

/* ------------------------------------------------------------------ independent reader */

static int python_numpy(char *py, size_t cap) {
    const char *cands[2] = {"python3", "/usr/bin/python3"};
    int i;
    for (i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) {
            snprintf(py, cap, "%s", cands[i]);
            return 1;
        }
    }
    return 0;
}

static int run_check_to(const char *py, const char *gguf, const char *ref_opt, const char *ref, const char *to) {
    char cmd[1200];
    int rc;
    snprintf(cmd, sizeof cmd, "%s " FIXTURE("gguf_check.py") " '%s' %s '%s' %s", py, gguf, ref_opt, ref, to);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int run_check(const char *py, const char *gguf, const char *ref_opt, const char *ref) {
    return run_check_to(py, gguf, ref_opt, ref, ">&2");
}

Test(gguf, independent_python_reader_agrees, .init = setup, .fini = teardown) {
    char py[64], dir[] = "/tmp/red-gguf-XXXXXX", path[300], hf[300];
    red_model m;
    red_error err;
    int a, d;
    const char *dts[3] = {"f32", "f16", "bf16"};
    if (!python_numpy(py, sizeof py)) cr_skip_test("python3 with numpy absent (apt-get install python3-numpy)");
    cr_assert(mkdtemp(dir));
    for (a = 0; a < 2; a++) {
        random_model(&m, a ? RED_ARCH_QWEN2 : RED_ARCH_LLAMA, 11 + a);
        m.cfg.rope_llama3 = 0;  /* the script compares tensors with an HF directory, which has no rope_freqs */
        tmp_path(hf, sizeof hf, dir, a ? "qwen2" : "llama");
        cr_assert(red_model_write(&m, NULL, hf, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
        for (d = 0; d < 3; d++) {
            char name[32];
            snprintf(name, sizeof name, "%d_%s.gguf", a, dts[d]);
            tmp_path(path, sizeof path, dir, name);
            cr_assert(red_model_write(&m, NULL, path, (red_dtype)d, &err) == RED_OK, "%s", err.msg);
            cr_expect(run_check(py, path, "--hf", hf) == 0, "gguf_check.py rejects %s (see stderr)", path);
        }
        red_model_free(&m);
    }
    /* the checker can fail: one weight byte changed */
    {
        unsigned char *b;
        size_t len;
        cr_assert(red_read_file(path, &b, &len, &err) == RED_OK);
        b[len - 40] ^= 0x40;
        cr_assert(red_write_file_atomic(path, b, len, &err) == RED_OK);
        free(b);
        cr_expect(run_check_to(py, path, "--hf", hf, ">/dev/null") == 1, "gguf_check.py must notice a changed weight");
    }
    rm_tree(dir);
}

/* The same reader on a real llama2.c model: its rows are GGUF llama rows (no permutation). */
Test(gguf, independent_python_reader_agrees_on_stories260K, .init = setup, .fini = teardown) {
    char py[64], dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    red_model m;
    red_error err;
    if (!python_numpy(py, sizeof py)) cr_skip_test("python3 with numpy absent (apt-get install python3-numpy)");
    if (!have_file(STORIES)) cr_skip_test(STORIES " absent (the shared data directory is not beside the repository)");
    cr_assert(mkdtemp(dir));
    tmp_path(path, sizeof path, dir, "stories.gguf");
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_write(&m, NULL, path, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    cr_expect(run_check(py, path, "--llama2c", STORIES) == 0, "llama2.c rows = GGUF llama rows (no permutation)");
    red_model_free(&m);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ hostile GGUF files */

/* A hand-built file: 1 kv general.alignment u32 32, then 1 tensor "w" F32
 * ne [4, 2] at offset 0. Byte map: 0 magic, 4 version, 8 n_tensors, 16 n_kv,
 * 24 key len, 32 key (17 bytes), 49 type, 53 value, 57 name len, 65 "w",
 * 66 n_dims, 70 ne0, 78 ne1, 86 type, 90 offset, 98..127 pad, 128 data. */
static size_t tiny_gguf(unsigned char *b) {
    size_t p = 0;
    int i;
    memset(b, 0, 160);
    memcpy(b, "GGUF", 4);
    b[4] = 3;
    b[8] = 1;
    b[16] = 1;
    p = 24;
    b[p] = 17; p += 8;
    memcpy(b + p, "general.alignment", 17); p += 17;
    b[p] = RED_GGUF_U32; p += 4;
    b[p] = 32; p += 4;
    b[p] = 1; p += 8;
    b[p++] = 'w';
    b[p] = 2; p += 4;
    b[p] = 4; p += 8;
    b[p] = 2; p += 8;
    b[p] = RED_GGML_F32; p += 4;
    p += 8;  /* offset 0 */
    cr_assert_eq(p, 98);
    for (i = 0; i < 8; i++) {
        float v = (float)i;
        red_put_f32le(b + 128 + 4 * i, &v, 1);
    }
    return 160;
}

static void gguf_bad(const unsigned char *src, size_t len, red_status want, const char *needle) {
    red_gguf g;
    red_error err;
    unsigned char *copy = malloc(len ? len : 1);
    red_status st;
    memcpy(copy, src, len);
    st = red_gguf_parse(&g, copy, len, "bad.gguf", &err);
    cr_expect(st == want, "status %s, expected %s (%s)", red_status_name(st), red_status_name(want),
              st ? err.msg : "accepted");
    if (st == RED_OK) red_gguf_close(&g);
    else cr_expect(strstr(err.msg, "bad.gguf") && strstr(err.msg, needle), "message '%s' should say '%s'", err.msg, needle);
}

static void set_u64(unsigned char *p, uint64_t v) { red_put_u64le(p, v); }

Test(gguf, hostile_files_are_clear_errors) {
    unsigned char good[160], b[160];
    size_t len = tiny_gguf(good), cut;
    red_gguf g;
    red_error err;
    float x[8];
    unsigned char *copy = malloc(len);
    memcpy(copy, good, len);
    cr_assert(red_gguf_parse(&g, copy, len, "tiny", &err) == RED_OK, "%s", err.msg);
    cr_assert(g.data_start == 128 && g.t[0].nbytes == 32);
    cr_assert(red_gguf_tensor_f32(&g, &g.t[0], x, &err) == RED_OK);
    cr_expect(x[7] == 7.0f);
    red_gguf_close(&g);
    /* every truncation of the header and data */
    for (cut = 0; cut < 160; cut++)
        if (cut < 128 + 32) gguf_bad(good, cut, RED_E_FORMAT, "");
#define BAD(stmt, want, needle) do { memcpy(b, good, len); stmt; gguf_bad(b, len, want, needle); } while (0)
    BAD(b[0] = 'X', RED_E_FORMAT, "magic");
    BAD(b[4] = 1, RED_E_UNSUPPORTED, "version 1");
    BAD((b[4] = 0, b[7] = 3), RED_E_UNSUPPORTED, "big-endian");
    BAD(set_u64(b + 8, (uint64_t)1 << 60), RED_E_FORMAT, "tensor infos cannot fit");
    BAD(set_u64(b + 16, UINT64_MAX), RED_E_FORMAT, "metadata entries cannot fit");
    BAD(set_u64(b + 24, 1000), RED_E_FORMAT, "byte 24");                 /* key length past EOF */
    BAD(set_u64(b + 24, 0), RED_E_FORMAT, "metadata key");
    BAD(b[49] = 13, RED_E_FORMAT, "value type 13");
    BAD(b[53] = 48, RED_E_FORMAT, "power of two");                       /* alignment 48 */
    BAD(b[49] = RED_GGUF_I32, RED_E_FORMAT, "general.alignment");         /* must be u32 */
    BAD(set_u64(b + 57, (uint64_t)1 << 63), RED_E_FORMAT, "byte 57");     /* name length past EOF */
    BAD(b[66] = 5, RED_E_FORMAT, "5 dims");
    BAD(b[66] = 0, RED_E_FORMAT, "0 dims");
    BAD((set_u64(b + 70, (uint64_t)1 << 40), set_u64(b + 78, (uint64_t)1 << 40)), RED_E_FORMAT, "overflow");
    BAD(set_u64(b + 78, 100), RED_E_FORMAT, "past the end");              /* data runs past EOF */
    BAD(b[86] = 12, RED_E_UNSUPPORTED, "Q4_K");                           /* unknown to red */
    BAD(b[86] = 200, RED_E_UNSUPPORTED, "type 200");
    BAD(b[86] = RED_GGML_Q8_0, RED_E_FORMAT, "block size");               /* ne0 4 % 32 */
    BAD(b[90] = 8, RED_E_FORMAT, "not a multiple of the alignment");
    BAD(b[90] = 64, RED_E_FORMAT, "past the end");
    BAD(set_u64(b + 90, UINT64_MAX - 31), RED_E_FORMAT, "past the end");
#undef BAD
    /* arrays: nested, lying count, bad bool, lying string count */
    {
        unsigned char a[96];
        size_t p;
        memset(a, 0, sizeof a);
        memcpy(a, "GGUF", 4);
        a[4] = 3;
        a[16] = 1;
        p = 24;
        a[p] = 1; p += 8;
        a[p++] = 'k';
        a[p] = RED_GGUF_ARRAY; p += 4;
        a[p] = RED_GGUF_ARRAY;  /* element type at byte 37 */
        gguf_bad(a, 60, RED_E_FORMAT, "nested");
        a[37] = RED_GGUF_U32;
        set_u64(a + 41, 1000);
        gguf_bad(a, 60, RED_E_FORMAT, "array of 1000 u32");
        a[37] = RED_GGUF_BOOL;
        set_u64(a + 41, 2);
        a[50] = 2;
        gguf_bad(a, 51, RED_E_FORMAT, "bool value 2");
        a[37] = RED_GGUF_STRING;
        set_u64(a + 41, (uint64_t)1 << 61);
        gguf_bad(a, 60, RED_E_FORMAT, "strings cannot fit");
        set_u64(a + 41, 1);
        set_u64(a + 49, 100);
        gguf_bad(a, 60, RED_E_FORMAT, "length 100");
        /* a duplicate key: kv "k" u8 at 24..37, again at 38..51 */
        memset(a + 8, 0, sizeof a - 8);
        a[16] = 2;
        a[24] = 1; a[32] = 'k'; a[33] = RED_GGUF_U8; a[37] = 1;
        a[38] = 1; a[46] = 'k'; a[47] = RED_GGUF_U8; a[51] = 1;
        gguf_bad(a, 60, RED_E_FORMAT, "duplicate metadata key");
    }
}

Test(gguf, truncated_model_file_at_every_length_in_header, .init = setup, .fini = teardown) {
    red_model m;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    unsigned char *b;
    size_t len, cut;
    uint64_t end;
    red_gguf g;
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_QWEN2, 5);
    tmp_path(path, sizeof path, dir, "m.gguf");
    cr_assert(red_model_write(&m, NULL, path, RED_DT_F16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_read_file(path, &b, &len, &err) == RED_OK);
    /* every cut before the last tensor's end (the zero padding after it is optional) */
    end = g.data_start + g.t[g.n_tensors - 1].offset + g.t[g.n_tensors - 1].nbytes;
    cr_assert(end <= len);
    for (cut = 0; cut < end; cut += cut < g.data_start + 64 ? 1 : 509) gguf_bad(b, cut, RED_E_FORMAT, "");
    gguf_bad(b, (size_t)end - 1, RED_E_FORMAT, "past the end");
    red_gguf_close(&g);
    free(b);
    red_model_free(&m);
    rm_tree(dir);
}

Test(gguf, model_metadata_errors_name_the_key, .init = setup, .fini = teardown) {
    red_gguf_writer w;
    red_gguf g;
    red_model m;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300];
    float e[8 * 3] = {0};
    uint64_t ne[2] = {8, 3};
    cr_assert(mkdtemp(dir));
    tmp_path(path, sizeof path, dir, "x.gguf");
    red_gguf_w_init(&w);
    red_gguf_w_str(&w, "general.architecture", "llama");
    red_gguf_w_u32(&w, "llama.embedding_length", 8);
    red_gguf_w_u32(&w, "llama.feed_forward_length", 8);
    red_gguf_w_u32(&w, "llama.block_count", 1);
    red_gguf_w_str(&w, "llama.attention.head_count", "two");
    cr_assert(red_gguf_w_tensor(&w, "token_embd.weight", 2, ne, RED_GGML_F32, e, 0, &err) == RED_OK);
    cr_assert(red_gguf_w_write(&w, path, &err) == RED_OK);
    red_gguf_w_free(&w);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_gguf_model_load(&m, &g, NULL, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "llama.attention.head_count must be an integer") != NULL, "%s", err.msg);
    red_gguf_close(&g);
    /* all keys right, but the layer tensors are missing */
    red_gguf_w_init(&w);
    red_gguf_w_str(&w, "general.architecture", "llama");
    red_gguf_w_u32(&w, "llama.embedding_length", 8);
    red_gguf_w_u32(&w, "llama.feed_forward_length", 8);
    red_gguf_w_u32(&w, "llama.block_count", 1);
    red_gguf_w_u32(&w, "llama.attention.head_count", 2);
    cr_assert(red_gguf_w_tensor(&w, "token_embd.weight", 2, ne, RED_GGML_F32, e, 0, &err) == RED_OK);
    cr_assert(red_gguf_w_write(&w, path, &err) == RED_OK);
    red_gguf_w_free(&w);
    cr_expect(red_model_open(&m, path, NULL, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "parameters, the file's tensors hold 24") != NULL, "%s", err.msg);
    /* enough data, but not under the names llama.cpp uses */
    {
        float *big = calloc(8 * 64, sizeof(float));
        uint64_t ne2[2] = {8, 64};
        red_gguf_w_init(&w);
        red_gguf_w_str(&w, "general.architecture", "llama");
        red_gguf_w_u32(&w, "llama.embedding_length", 8);
        red_gguf_w_u32(&w, "llama.feed_forward_length", 8);
        red_gguf_w_u32(&w, "llama.block_count", 1);
        red_gguf_w_u32(&w, "llama.attention.head_count", 2);
        cr_assert(red_gguf_w_tensor(&w, "token_embd.weight", 2, ne, RED_GGML_F32, e, 0, &err) == RED_OK);
        cr_assert(red_gguf_w_tensor(&w, "blk.0.attn_nrm.weight", 2, ne2, RED_GGML_F32, big, 0, &err) == RED_OK);
        cr_assert(red_gguf_w_write(&w, path, &err) == RED_OK);
        red_gguf_w_free(&w);
        free(big);
    }
    cr_expect(red_model_open(&m, path, NULL, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "\"blk.0.attn_norm.weight\" is missing") != NULL, "%s", err.msg);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ mutations */

/* 3000 seeded mutations (1-4 random bytes set to random or extreme values)
 * of a real model file: each parses or fails with a message, and whatever
 * parses loads as a model or fails cleanly. Under `make test SAN=1` any
 * out-of-bounds read would abort the test. */
Test(gguf, random_mutations_never_crash, .init = setup, .fini = teardown) {
    red_model m, back;
    red_error err;
    red_rng r;
    char dir[] = "/tmp/red-mut-XXXXXX", path[300];
    unsigned char *good, *b;
    size_t len;
    int it, k, parsed = 0;
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_LLAMA, 31);
    tmp_path(path, sizeof path, dir, "m.gguf");
    cr_assert(red_model_write(&m, NULL, path, RED_DT_F16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_read_file(path, &good, &len, &err) == RED_OK);
    red_rng_seed(&r, 1234);
    for (it = 0; it < 3000; it++) {
        red_gguf g;
        int n = 1 + (int)red_rng_below(&r, 4);
        b = malloc(len);
        memcpy(b, good, len);
        for (k = 0; k < n; k++) {
            /* mostly the header (first 2 KB), where the counts and offsets are */
            size_t at = (size_t)red_rng_below(&r, red_rng_below(&r, 4) ? 2048 : len);
            const unsigned char extremes[4] = {0x00, 0xFF, 0x7F, 0x80};
            b[at] = red_rng_below(&r, 2) ? (unsigned char)red_rng_below(&r, 256) : extremes[red_rng_below(&r, 4)];
        }
        if (red_gguf_parse(&g, b, len, "mutant", &err) == RED_OK) {
            parsed++;
            if (red_gguf_model_load(&back, &g, NULL, &err) == RED_OK) red_model_free(&back);
            red_gguf_close(&g);
        } else {
            cr_assert(strstr(err.msg, "mutant") != NULL, "iteration %d: message without the file name: %s", it, err.msg);
        }
    }
    cr_log_info("mutations: %d of 3000 still parse", parsed);
    free(good);
    red_model_free(&m);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ tokenizers in model files */

Test(gguf, tokenizer_embedded_and_read_back, .init = setup, .fini = teardown) {
    red_model m, back;
    red_tokenizer *tok = NULL, *tok2 = NULL;
    red_error err;
    red_gguf g;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300], py[64];
    const char *texts[4] = {"Once upon a time", "The cat sat on the mat. \"Hi!\" 123", "  leading\nnewline\t",
                            "caf\xC3\xA9 \xE4\xB8\xAD"};
    int k, a[256], b[256], na, nb;
    if (!have_file(STORIES) || !have_file(TOK512)) cr_skip_test(STORIES " or tok512.bin absent");
    cr_assert(mkdtemp(dir));
    cr_assert(red_model_open(&m, STORIES, pool, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_tokenizer(&tok, STORIES, TOK512, &err) == RED_OK, "%s", err.msg);
    tmp_path(path, sizeof path, dir, "s.gguf");
    cr_assert(red_model_write(&m, tok, path, RED_DT_F32, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_expect_str_eq(red_gguf_get_str(&g, "tokenizer.ggml.model"), "llama");
    cr_expect(red_gguf_find(&g, "tokenizer.ggml.tokens")->n == 512);
    cr_expect(red_gguf_find(&g, "tokenizer.ggml.scores")->elem_type == RED_GGUF_F32);
    red_gguf_close(&g);
    cr_assert(red_model_open(&back, path, pool, &err) == RED_OK, "%s", err.msg);
    cr_expect(back.cfg.bos_id == 1 && back.cfg.eos_id == 2);
    cr_assert(red_model_tokenizer(&tok2, path, NULL, &err) == RED_OK, "%s", err.msg);
    for (k = 0; k < 4; k++) {
        na = red_tokenize(tok, texts[k], strlen(texts[k]), 1, a, 256);
        nb = red_tokenize(tok2, texts[k], strlen(texts[k]), 1, b, 256);
        cr_expect(na == nb && !memcmp(a, b, sizeof(int) * (size_t)na), "'%s': same ids from tok512.bin and the GGUF",
                  texts[k]);
    }
    stories_text_equal(&back, tok2);
    if (python_numpy(py, sizeof py)) cr_expect(run_check(py, path, "--llama2c", STORIES) == 0, "gguf_check.py");
    red_tokenizer_free(tok);
    red_tokenizer_free(tok2);
    red_model_free(&back);
    red_model_free(&m);
    rm_tree(dir);
}

/* llama.cpp's own test vectors for its GPT-2 vocabulary, through red's GGUF
 * reader: .inp strings split on "\n__ggml_vocab_test__\n", .out ids per line. */
Test(gguf, llama_cpp_gpt2_vectors_through_the_gguf_reader) {
    red_gguf g;
    red_tokenizer *tok = NULL;
    red_error err;
    unsigned char *inp, *outf;
    size_t li, lo, pos = 0, opos = 0;
    const char *sep = "\n__ggml_vocab_test__\n";
    int cases = 0;
    if (!have_file(VOCAB_GPT2)) cr_skip_test(VOCAB_GPT2 " absent");
    cr_assert(red_gguf_open(&g, VOCAB_GPT2, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_gguf_tokenizer(&tok, &g, &err) == RED_OK, "%s", err.msg);
    red_gguf_close(&g);
    cr_assert(red_read_file(VOCAB_GPT2 ".inp", &inp, &li, &err) == RED_OK);
    cr_assert(red_read_file(VOCAB_GPT2 ".out", &outf, &lo, &err) == RED_OK);
    while (pos < li) {
        const char *end = strstr((const char *)inp + pos, sep);
        size_t n = end ? (size_t)(end - (const char *)inp) - pos : li - pos;
        int ids[512], want[512], nw = 0, got, i;
        char *line_end = memchr(outf + opos, '\n', lo - opos), *p = (char *)outf + opos;
        cr_assert(end && line_end, "case %d: files out of step", cases);
        while (p < line_end) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) break;
            want[nw++] = (int)v;
            p = q;
        }
        got = red_tokenize(tok, (const char *)inp + pos, n, 0, ids, 512);
        cr_expect(got == nw && !memcmp(ids, want, sizeof(int) * (size_t)nw), "case %d ('%.*s'): %d ids, llama.cpp %d",
                  cases, (int)n, (const char *)inp + pos, got, nw);
        (void)i;
        pos += n + strlen(sep);
        opos = (size_t)(line_end - (char *)outf) + 1;
        cases++;
    }
    cr_expect(cases > 30, "%d cases", cases);
    free(inp);
    free(outf);
    red_tokenizer_free(tok);
}

/* A byte-level BPE with added tokens (Qwen3's tokenizer.json) embedded in a
 * qwen2 GGUF: tokens, merges and types survive, so encoding is unchanged. */
Test(gguf, qwen3_tokenizer_embedded_encodes_the_same, .init = setup, .fini = teardown) {
    const char *qwen = "../shared/data/tokenizers/qwen3";
    const char *texts[4] = {"Hello world, 1234 apples.\n\n  def f(x):\n\treturn x",
                            "<|im_start|>user\nWhat is 7*8?<|im_end|>", "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80",
                            "Ame\xCC\x81lie's  'S   "};
    red_tokenizer *tok = NULL, *back = NULL;
    red_config c;
    red_model m;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300], py[64];
    int k, a[256], b[256], na, nb;
    if (!have_file("../shared/data/tokenizers/qwen3/tokenizer.json")) cr_skip_test("qwen3 tokenizer absent");
    cr_assert(mkdtemp(dir));
    cr_assert(red_model_tokenizer(&tok, qwen, NULL, &err) == RED_OK, "%s", err.msg);
    red_config_default(&c);
    c.arch = RED_ARCH_QWEN2; c.qkv_bias = 1; c.dim = 8; c.ffn = 8; c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 1;
    c.head_dim = 4; c.vocab = red_tokenizer_vocab(tok);
    cr_assert(red_model_alloc(&m, &c, NULL, &err) == RED_OK, "%s", err.msg);
    tmp_path(path, sizeof path, dir, "q.gguf");
    cr_assert(red_model_write(&m, tok, path, RED_DT_BF16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_model_tokenizer(&back, path, NULL, &err) == RED_OK, "%s", err.msg);
    cr_expect_eq(red_tokenizer_vocab(back), red_tokenizer_vocab(tok));
    cr_expect_eq(red_tokenizer_n_merges(back), red_tokenizer_n_merges(tok));
    for (k = 0; k < 4; k++) {
        na = red_tokenize(tok, texts[k], strlen(texts[k]), 0, a, 256);
        nb = red_tokenize(back, texts[k], strlen(texts[k]), 0, b, 256);
        cr_expect(na == nb && na > 0 && !memcmp(a, b, sizeof(int) * (size_t)na), "'%s': %d ids from tokenizer.json, %d "
                  "from the GGUF", texts[k], na, nb);
    }
    if (python_numpy(py, sizeof py)) cr_expect(run_check(py, path, "", "") == 0, "gguf_check.py");
    red_tokenizer_free(tok);
    red_tokenizer_free(back);
    red_model_free(&m);
    rm_tree(dir);
}

/* Hugging Face's GGUF parser (npm @huggingface/gguf, tests/fixtures/gguf_check_hf.js)
 * reads red's file as red's own reader does: version, counts, data offset,
 * every tensor's name, dims, type and offset. Skipped without node and the package. */
Test(gguf, huggingface_parser_agrees, .init = setup, .fini = teardown) {
    red_model m;
    red_gguf g;
    red_error err;
    char dir[] = "/tmp/red-gguf-XXXXXX", path[300], cmd[700], line[512], want[512];
    FILE *p;
    uint64_t i = 0;
    int n_lines = 0;
    if (system("node -e \"require('@huggingface/gguf')\" >/dev/null 2>&1") != 0)
        cr_skip_test("node with the npm package @huggingface/gguf absent (NODE_PATH)");
    cr_assert(mkdtemp(dir));
    random_model(&m, RED_ARCH_QWEN2, 41);
    tmp_path(path, sizeof path, dir, "q.gguf");
    cr_assert(red_model_write(&m, NULL, path, RED_DT_BF16, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "node " FIXTURE("gguf_check_hf.js") " '%s'", path);
    p = popen(cmd, "r");
    cr_assert(p);
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (n_lines == 0)
            snprintf(want, sizeof want, "version=3 tensor_count=%llu kv_count=%llu", (unsigned long long)g.n_tensors,
                     (unsigned long long)g.n_kv);
        else if (n_lines == 1)
            snprintf(want, sizeof want, "architecture=qwen2 tensor_data_offset=%llu", (unsigned long long)g.data_start);
        else {
            const red_gguf_tensor *t = &g.t[i++];
            int k, o;
            o = snprintf(want, sizeof want, "tensor=%s dims=", t->name);
            for (k = 0; k < t->n_dims; k++) o += snprintf(want + o, sizeof want - (size_t)o, "%s%llu", k ? "," : "",
                                                            (unsigned long long)t->ne[k]);
            snprintf(want + o, sizeof want - (size_t)o, " type=%u offset=%llu", t->type, (unsigned long long)t->offset);
        }
        cr_expect_str_eq(line, want, "line %d", n_lines);
        n_lines++;
        if (i > g.n_tensors) break;
    }
    cr_expect_eq(pclose(p), 0, "the parser accepted the file");
    cr_expect_eq((uint64_t)n_lines, 2 + g.n_tensors);
    red_gguf_close(&g);
    red_model_free(&m);
    rm_tree(dir);
}

/* 200,000 metadata keys and 40,000 tensor infos: duplicate checks and
 * look-ups are hashed (a pairwise check took minutes on such a file), and a
 * repeated name is still found. */
Test(gguf, many_keys_and_tensors_parse_in_linear_time, .timeout = 20) {
    const uint64_t n_kv = 200000, n_t = 40000;
    size_t cap = 64 + n_kv * 24 + n_t * 40 + 64, len = 24, tensors_at;
    unsigned char *b = calloc(cap, 1), *copy;
    red_gguf g;
    red_error err;
    char name[32];
    uint64_t i, k;
    cr_assert(b);
    memcpy(b, "GGUF", 4);
    b[4] = 3;
    red_put_u64le(b + 8, n_t);
    red_put_u64le(b + 16, n_kv);
    for (i = 0; i < n_kv; i++) {  /* "k<i>": u8 1 */
        k = (uint64_t)snprintf(name, sizeof name, "k%llu", (unsigned long long)i);
        red_put_u64le(b + len, k);
        memcpy(b + len + 8, name, (size_t)k);
        len += 8 + (size_t)k;
        b[len] = RED_GGUF_U8;
        b[len + 4] = 1;
        len += 5;
    }
    tensors_at = len;
    for (i = 0; i < n_t; i++) {  /* "t<i>": 1-D, 0 elements, F32, offset 0 */
        k = (uint64_t)snprintf(name, sizeof name, "t%llu", (unsigned long long)i);
        red_put_u64le(b + len, k);
        memcpy(b + len + 8, name, (size_t)k);
        len += 8 + (size_t)k;
        b[len] = 1;
        len += 4 + 8 + 4 + 8;
    }
    len = (len + 31) / 32 * 32;
    cr_assert(len <= cap);
    cr_assert((copy = malloc(len)) != NULL);
    memcpy(copy, b, len);
    cr_assert(red_gguf_parse(&g, copy, len, "many.gguf", &err) == RED_OK, "%s", err.msg);
    cr_expect(red_gguf_find(&g, "k199999") == &g.kv[199999] && red_gguf_find(&g, "k200000") == NULL);
    cr_expect(red_gguf_find_tensor(&g, "t39999") == &g.t[39999] && red_gguf_find_tensor(&g, "t") == NULL);
    red_gguf_close(&g);
    memcpy(b + tensors_at + 8, "t1", 2);  /* tensor 0 renamed "t1": a duplicate */
    cr_expect(red_gguf_parse(&g, b, len, "dup.gguf", &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "duplicate tensor name \"t1\"") != NULL, "%s", err.msg);
}

/* A vocabulary whose token type does not fit an int (found by fuzz_gguf_vocab;
 * the conversion was undefined) is refused, naming the token and the field. */
Test(gguf, token_type_out_of_range_is_refused) {
    red_gguf g;
    red_tokenizer *tok = NULL;
    red_error err;
    const char *path = "tests/fixtures/gguf_vocab_bad_token_type.gguf";
    cr_assert(red_gguf_open(&g, path, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_gguf_tokenizer(&tok, &g, &err) == RED_E_FORMAT, "a token type of 3e9 was accepted");
    cr_expect(strstr(err.msg, "tokenizer.ggml.token_type") != NULL && strstr(err.msg, "0..6") != NULL, "%s", err.msg);
    red_gguf_close(&g);
}
