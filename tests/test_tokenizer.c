/* tests/test_tokenizer.c - the Hugging Face, GGUF and llama2.c tokenizers
 * against independent references: ids made by Hugging Face's own
 * `tokenizers` (tests/fixtures/make_tokenizer_fixtures.js) for the Qwen3,
 * Llama-3 and Mistral files of ../shared/data/tokenizers, llama.cpp's test
 * vectors for its GPT-2 vocabulary GGUF, and llama2.c's run.c for
 * stories260K's tok512.bin (tests/fixtures/make_llama2c_fixture.sh). Every id
 * is compared; a mismatch names the string and the position. Bad files get an
 * error, never a crash. Also the byte tokenizer and red's own BPE (against
 * tests/fixtures/make_bpe_fixture.py). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

#define TOKDATA "../shared/data/tokenizers/"
#define TOK_FIXTURE(name) FIXTURE("tokenizers/" name)

/* Parses "1 2 3" into ids; returns the count. */
static int parse_ids(const char *s, int **ids) {
    int n = 0, cap = 64;
    *ids = malloc(sizeof(int) * (size_t)cap);
    for (;;) {
        char *end;
        long v;
        while (*s == ' ') s++;
        v = strtol(s, &end, 10);
        if (end == s) break;
        if (n == cap) *ids = realloc(*ids, sizeof(int) * (size_t)(cap *= 2));
        (*ids)[n++] = (int)v;
        s = end;
    }
    return n;
}

/* The string quoted for a message, at most 120 bytes. */
static const char *show(const char *s, size_t n, char *buf) {
    size_t i, k = 0;
    for (i = 0; i < n && k < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') { buf[k++] = '\\'; buf[k++] = 'n'; }
        else if (c < 32) k += (size_t)sprintf(buf + k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    buf[k] = 0;
    return buf;
}

/* Encodes s and compares with want[0..nw); returns 1 if equal. */
static int same_ids(const red_tokenizer *t, const char *s, size_t len, int add_bos, const int *want, int nw, const char *what,
                    size_t line) {
    int n = red_tokenize(t, s, len, add_bos, NULL, 0), *ids, k, ok = 1;
    char b[512];
    cr_assert(n >= 0, "%s line %zu: out of memory", what, line);
    ids = malloc(sizeof(int) * (size_t)(n + 1));
    red_tokenize(t, s, len, add_bos, ids, n);
    for (k = 0; k < n && k < nw && ids[k] == want[k]; k++) {}
    if (k < n || k < nw) {
        cr_expect(0, "%s line %zu \"%s\": first difference at id %d: %d, reference %d (%d ids, reference %d)", what, line,
                  show(s, len, b), k, k < n ? ids[k] : -1, k < nw ? want[k] : -1, n, nw);
        ok = 0;
    }
    free(ids);
    return ok;
}

/* Every fixture string through the tokenizer at tok_path against NAME.ids
 * ("ids|=" or "ids|decoded JSON string"). */
static void check_hf_fixture(const char *tok_path, const char *ids_file) {
    red_json **strings;
    size_t n_strings, k = 0, bad = 0;
    red_tokenizer *t;
    red_error err;
    FILE *f;
    static char line[1 << 20];
    if (access(tok_path, R_OK)) cr_skip_test("%s absent (the shared data directory is not beside the repository)", tok_path);
    cr_assert(red_jsonl_read(TOK_FIXTURE("strings.jsonl"), &strings, &n_strings, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_tokenizer_load(&t, tok_path, &err) == RED_OK, "%s", err.msg);
    cr_assert((f = fopen(ids_file, "r")), "%s missing", ids_file);
    while (fgets(line, sizeof line, f) && k < n_strings) {
        const red_json *s = strings[k];
        char *bar = strchr(line, '|'), *dec;
        int *want, nw;
        red_sbuf out;
        if (line[0] == '\n') {  /* a variant checks every 3rd string */
            k++;
            continue;
        }
        cr_assert(bar && s->type == RED_JSON_STRING, "fixture line %zu", k + 1);
        *bar = 0;
        dec = bar + 1;
        dec[strcspn(dec, "\n")] = 0;
        nw = parse_ids(line, &want);
        bad += !same_ids(t, s->str, s->len, 0, want, nw, ids_file, k + 1);
        red_sbuf_init(&out);
        red_sbuf_puts(&out, "");
        red_detokenize(t, want, nw, &out);
        if (!strcmp(dec, "=")) cr_expect(out.len == s->len && !memcmp(out.p, s->str, s->len), "%s line %zu: decode", ids_file, k + 1);
        else {
            red_json *d;
            cr_assert(red_json_parse(dec, strlen(dec), "decoded", &d, &err) == RED_OK, "%s", err.msg);
            cr_expect(out.len == d->len && !memcmp(out.p, d->str, d->len), "%s line %zu: decode", ids_file, k + 1);
            red_json_free(d);
        }
        red_sbuf_free(&out);
        free(want);
        k++;
    }
    fclose(f);
    cr_expect(k == n_strings && k > 2000, "%zu of %zu strings read", k, n_strings);
    cr_expect(bad == 0, "%s: %zu of %zu strings differ", ids_file, bad, k);
    red_jsonl_free(strings, n_strings);
    red_tokenizer_free(t);
}

Test(tokenizer, qwen3_matches_hugging_face) {
    check_hf_fixture(TOKDATA "qwen3/tokenizer.json", TOK_FIXTURE("qwen3.ids"));
}

Test(tokenizer, llama3_matches_hugging_face) {
    check_hf_fixture(TOKDATA "llama3/tokenizer.json", TOK_FIXTURE("llama3.ids"));
}

Test(tokenizer, mistral_spm_matches_hugging_face) {
    check_hf_fixture(TOKDATA "spm-mistral/tokenizer.json", TOK_FIXTURE("spm-mistral.ids"));
}

/* The Mistral file with a Metaspace pre-tokenizer in place of its normalizers
 * (as newer Llama-2 exports are written), as the fixture script builds it. */
static void check_metaspace(const char *scheme, const char *split, const char *ids_file) {
    unsigned char *buf;
    size_t len;
    red_error err;
    char dir[] = "/tmp/red-test-metaspace-XXXXXX", path[128];
    const char *a, *b;
    FILE *f;
    if (access(TOKDATA "spm-mistral/tokenizer.json", R_OK)) cr_skip_test("../shared/data/tokenizers absent");
    cr_assert(red_read_file(TOKDATA "spm-mistral/tokenizer.json", &buf, &len, &err) == RED_OK);
    buf = realloc(buf, len + 1);
    buf[len] = 0;
    a = strstr((const char *)buf, "\"normalizer\": {");
    b = strstr((const char *)buf, "\"post_processor\":");
    cr_assert(a && b && a < b, "the file's layout");
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert((f = fopen(path, "wb")));
    fwrite(buf, 1, (size_t)(a - (const char *)buf), f);
    fprintf(f, "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
               "\"prepend_scheme\": \"%s\", \"split\": %s},\n  ", scheme, split);
    fwrite(b, 1, len - (size_t)(b - (const char *)buf), f);
    fclose(f);
    free(buf);
    check_hf_fixture(path, ids_file);
    unlink(path);
    rmdir(dir);
}

Test(tokenizer, metaspace_first_matches_hugging_face) {
    check_metaspace("first", "false", TOK_FIXTURE("spm-metaspace-first.ids"));
}

Test(tokenizer, metaspace_split_matches_hugging_face) {
    check_metaspace("always", "true", TOK_FIXTURE("spm-metaspace-split.ids"));
}

/* Model directories: tokenizer_config.json gives BOS/EOS and add_bos_token. */
Test(tokenizer, config_gives_specials) {
    red_tokenizer *t;
    red_error err;
    int ids[8];
    if (access(TOKDATA "qwen3/tokenizer.json", R_OK)) cr_skip_test("../shared/data/tokenizers absent");
    cr_assert(red_tokenizer_load(&t, TOKDATA "spm-mistral", &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_kind(t) == RED_TOK_SPM_BPE && red_tokenizer_vocab(t) == 32000);
    cr_expect(red_tokenizer_bos(t) == 1 && red_tokenizer_eos(t) == 2 && red_tokenizer_add_bos(t) && !red_tokenizer_add_eos(t));
    cr_expect(red_tokenize(t, "Hi", 2, 1, ids, 8) == 2 && ids[0] == 1 && ids[1] == 15359, "%d %d", ids[0], ids[1]);
    red_tokenizer_free(t);
    cr_assert(red_tokenizer_load(&t, TOKDATA "qwen3", &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_kind(t) == RED_TOK_BYTE_BPE && red_tokenizer_vocab(t) == 151669, "%d", red_tokenizer_vocab(t));
    cr_expect(red_tokenizer_bos(t) == -1 && red_tokenizer_eos(t) == 151645 && red_tokenizer_pad(t) == 151643 && !red_tokenizer_add_bos(t));
    red_tokenizer_free(t);
    cr_assert(red_tokenizer_load(&t, TOKDATA "llama3", &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_bos(t) == 128000 && red_tokenizer_eos(t) == 128001);
    red_tokenizer_free(t);
}

/* ---- GGUF: a minimal reader of the metadata (independent of red's) ---- */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} gguf_cur;

static uint64_t g_u(gguf_cur *c, int bytes) {
    uint64_t v = 0;
    int i;
    if (c->end - c->p < bytes) { c->bad = 1; return 0; }
    for (i = 0; i < bytes; i++) v |= (uint64_t)c->p[i] << (8 * i);
    c->p += bytes;
    return v;
}

static char *g_str(gguf_cur *c) {
    uint64_t n = g_u(c, 8);
    char *s;
    if (c->bad || (uint64_t)(c->end - c->p) < n) { c->bad = 1; return NULL; }
    s = malloc(n + 1);
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    return s;
}

static const int g_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Reads the tokenizer.ggml.* keys into a vocabulary spec (strings owned by the caller). */
static void gguf_vocab(const unsigned char *buf, size_t len, red_vocab_spec *s, char ***tok_store, char ***merge_store) {
    gguf_cur c = {buf, buf + len, 0};
    uint64_t n_kv, k;
    memset(s, 0, sizeof *s);
    s->bos_id = s->eos_id = s->unk_id = s->pad_id = -1;
    cr_assert(len > 24 && !memcmp(buf, "GGUF", 4));
    c.p += 4;
    cr_assert(g_u(&c, 4) == 3);
    g_u(&c, 8);
    n_kv = g_u(&c, 8);
    for (k = 0; k < n_kv && !c.bad; k++) {
        char *key = g_str(&c);
        uint32_t type = (uint32_t)g_u(&c, 4);
        cr_assert(key && type <= 12);
        if (type == 8) {
            char *v = g_str(&c);
            if (!strcmp(key, "tokenizer.ggml.model")) s->model = v;
            else if (!strcmp(key, "tokenizer.ggml.pre")) s->pre = v;
            else free(v);
        } else if (type == 9) {
            uint32_t et = (uint32_t)g_u(&c, 4);
            uint64_t n = g_u(&c, 8), i;
            cr_assert(et <= 12 && et != 9 && n < (1u << 24));
            if (et == 8) {
                char **arr = malloc(sizeof(char *) * (size_t)(n + 1));
                for (i = 0; i < n; i++) arr[i] = g_str(&c);
                if (!strcmp(key, "tokenizer.ggml.tokens")) { s->tokens = (const char *const *)arr; s->n_tokens = (int)n; *tok_store = arr; }
                else if (!strcmp(key, "tokenizer.ggml.merges")) { s->merges = (const char *const *)arr; s->n_merges = (int)n; *merge_store = arr; }
                else { for (i = 0; i < n; i++) free(arr[i]); free(arr); }
            } else if (!strcmp(key, "tokenizer.ggml.token_type") && et == 5) {
                int32_t *ty = malloc(sizeof(int32_t) * (size_t)(n + 1));
                for (i = 0; i < n; i++) ty[i] = (int32_t)g_u(&c, 4);
                s->types = ty;
            } else c.p += g_size[et] * n;
        } else {
            uint64_t v = g_u(&c, g_size[type]);
            if (!strcmp(key, "tokenizer.ggml.bos_token_id")) s->bos_id = (int)v;
            if (!strcmp(key, "tokenizer.ggml.eos_token_id")) s->eos_id = (int)v;
        }
        free(key);
    }
    cr_assert(!c.bad && s->model && s->tokens, "GGUF metadata");
}

static void free_spec(red_vocab_spec *s, char **toks, char **merges) {
    int i;
    for (i = 0; i < s->n_tokens; i++) free(toks[i]);
    for (i = 0; i < s->n_merges; i++) free(merges[i]);
    free(toks);
    free(merges);
    free((void *)s->model);
    free((void *)s->pre);
    free((void *)s->types);
}

/* llama.cpp's own vectors for its GPT-2 vocabulary GGUF, through red_tokenizer_from_vocab. */
Test(tokenizer, gguf_gpt2_vocab_matches_llama_cpp_vectors) {
    unsigned char *buf, *inp, *outp;
    size_t len, ilen, olen, pos = 0;
    red_vocab_spec s;
    char **toks = NULL, **merges = NULL, *in_text, *out_text;
    red_tokenizer *t;
    red_error err;
    const char *sep = "\n__ggml_vocab_test__\n";
    int cases = 0;
    if (access(TOKDATA "llamacpp/ggml-vocab-gpt-2.gguf", R_OK)) cr_skip_test("../shared/data/tokenizers absent");
    cr_assert(red_read_file(TOKDATA "llamacpp/ggml-vocab-gpt-2.gguf", &buf, &len, &err) == RED_OK);
    cr_assert(red_read_file(TOKDATA "llamacpp/ggml-vocab-gpt-2.gguf.inp", &inp, &ilen, &err) == RED_OK);
    cr_assert(red_read_file(TOKDATA "llamacpp/ggml-vocab-gpt-2.gguf.out", &outp, &olen, &err) == RED_OK);
    in_text = calloc(ilen + 1, 1);  /* NUL-terminated copies for strstr/strchr */
    out_text = calloc(olen + 1, 1);
    memcpy(in_text, inp, ilen);
    memcpy(out_text, outp, olen);
    gguf_vocab(buf, len, &s, &toks, &merges);
    cr_expect(!strcmp(s.model, "gpt2") && s.n_tokens == 50257 && s.n_merges == 50000, "%s %d %d", s.model, s.n_tokens, s.n_merges);
    cr_assert(red_tokenizer_from_vocab(&t, &s, &err) == RED_OK, "%s", err.msg);
    {   /* .out has one line per string, empty for the empty string */
        char *o = out_text;
        while (pos < ilen) {
            const char *end = strstr(in_text + pos, sep);
            char *nl;
            int *want, nw;
            cr_assert(end, "separator");
            nl = strchr(o, '\n');
            if (nl) *nl = 0;
            nw = parse_ids(o, &want);
            same_ids(t, in_text + pos, (size_t)(end - in_text) - pos, 0, want, nw, "gpt-2.gguf.inp", (size_t)cases + 1);
            free(want);
            cases++;
            o = nl ? nl + 1 : o + strlen(o);
            pos = (size_t)(end - in_text) + strlen(sep);
        }
    }
    cr_expect(cases > 30, "%d cases", cases);
    red_tokenizer_free(t);
    free_spec(&s, toks, merges);
    free(buf);
    free(inp);
    free(outp);
    free(in_text);
    free(out_text);
}

/* llama2.c's run.c (encode with BOS; decode as its generate loop prints) on tok512.bin. */
Test(tokenizer, llama2c_tok512_matches_run_c) {
    red_json **strings;
    size_t n_strings, k = 0, checked = 0;
    red_tokenizer *t;
    red_error err;
    FILE *f;
    static char line[1 << 20];
    const char *path = "../shared/data/stories260K/tok512.bin";
    if (access(path, R_OK)) cr_skip_test("%s absent (the shared data directory is not beside the repository)", path);
    cr_assert(red_jsonl_read(TOK_FIXTURE("strings.jsonl"), &strings, &n_strings, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_tokenizer_load(&t, path, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_kind(t) == RED_TOK_LLAMA2C && red_tokenizer_vocab(t) == 512 && red_tokenizer_bos(t) == 1 &&
              red_tokenizer_eos(t) == 2 && red_tokenizer_add_bos(t));
    cr_assert((f = fopen(TOK_FIXTURE("tok512.ids"), "r")));
    for (k = 0; fgets(line, sizeof line, f) && k < n_strings; k++) {
        const red_json *s = strings[k];
        char *bar = strchr(line, '|');
        int *want, nw;
        size_t len = strlen(s->str);  /* run.c reads a C string */
        red_sbuf out;
        if (!bar) continue;  /* every 4th string has a reference */
        *bar = 0;
        nw = parse_ids(line, &want);
        same_ids(t, s->str, len, 1, want, nw, "tok512.ids", k + 1);
        red_sbuf_init(&out);
        red_sbuf_puts(&out, "");
        red_detokenize(t, want, nw, &out);
        cr_expect(bar[1] == '=' && out.len == len && !memcmp(out.p, s->str, len), "tok512.ids line %zu: decode", k + 1);
        red_sbuf_free(&out);
        free(want);
        checked++;
    }
    fclose(f);
    cr_expect(checked > 700, "%zu strings checked", checked);
    {   /* the prompt of stories260K's README */
        int ids[16], want[5] = {1, 403, 407, 261, 378}, n = red_tokenize(t, "Once upon a time", 16, 1, ids, 16), i;
        cr_expect(n == 5);
        for (i = 0; i < 5 && i < n; i++) cr_expect(ids[i] == want[i], "id %d: %d, llama2.c %d", i, ids[i], want[i]);
    }
    red_jsonl_free(strings, n_strings);
    red_tokenizer_free(t);
}

/* to_vocab then from_vocab: the same ids (the arrays a GGUF stores are enough);
 * scores_only drops the merges, as SentencePiece GGUFs store scores alone. */
static void check_vocab_round_trip(const char *path, int scores_only) {
    red_tokenizer *t, *back;
    red_vocab_spec s;
    red_error err;
    red_json **strings;
    size_t n_strings, k;
    if (access(path, R_OK)) cr_skip_test("%s absent", path);
    cr_assert(red_tokenizer_load(&t, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_tokenizer_to_vocab(t, &s, &err) == RED_OK, "%s", err.msg);
    if (scores_only) s.n_merges = 0;
    cr_assert(red_tokenizer_from_vocab(&back, &s, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_vocab(back) == red_tokenizer_vocab(t) && red_tokenizer_bos(back) == red_tokenizer_bos(t) &&
              red_tokenizer_eos(back) == red_tokenizer_eos(t) && red_tokenizer_add_bos(back) == red_tokenizer_add_bos(t));
    cr_assert(red_jsonl_read(TOK_FIXTURE("strings.jsonl"), &strings, &n_strings, &err) == RED_OK, "%s", err.msg);
    for (k = 0; k < n_strings; k += 3) {
        int n = red_tokenize(t, strings[k]->str, strings[k]->len, 0, NULL, 0), *ids = malloc(sizeof(int) * (size_t)(n + 1));
        red_tokenize(t, strings[k]->str, strings[k]->len, 0, ids, n);
        if (!same_ids(back, strings[k]->str, strings[k]->len, 0, ids, n, path, k + 1)) k = n_strings;
        free(ids);
    }
    red_jsonl_free(strings, n_strings);
    red_tokenizer_free(back);
    red_tokenizer_free(t);
}

Test(tokenizer, qwen3_vocab_arrays_round_trip) { check_vocab_round_trip(TOKDATA "qwen3/tokenizer.json", 0); }
Test(tokenizer, llama3_vocab_arrays_round_trip) { check_vocab_round_trip(TOKDATA "llama3/tokenizer.json", 0); }
Test(tokenizer, mistral_vocab_arrays_round_trip) { check_vocab_round_trip(TOKDATA "spm-mistral/tokenizer.json", 0); }
Test(tokenizer, mistral_scores_only_round_trip) { check_vocab_round_trip(TOKDATA "spm-mistral/tokenizer.json", 1); }

/* ---- bad files: an error that says what is wrong, never a crash ---- */

static red_status load_text(const char *dir, const char *name, const char *text, size_t len, red_error *err) {
    char path[256];
    FILE *f;
    red_tokenizer *t = NULL;
    red_status st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert((f = fopen(path, "wb")));
    fwrite(text, 1, len, f);
    fclose(f);
    st = red_tokenizer_load(&t, path, err);
    cr_expect((st == RED_OK) == (t != NULL));
    red_tokenizer_free(t);
    unlink(path);
    return st;
}

#define BPE_JSON(vocab, merges, pre) \
    "{\"model\": {\"type\": \"BPE\", \"vocab\": " vocab ", \"merges\": " merges "}, \"pre_tokenizer\": " pre \
    ", \"decoder\": {\"type\": \"ByteLevel\"}}"

Test(tokenizer, bad_tokenizer_json_is_an_error) {
    char dir[] = "/tmp/red-test-tokbad-XXXXXX";
    red_error err;
    const char *good = BPE_JSON("{\"a\": 0, \"b\": 1, \"ab\": 2}", "[\"a b\"]", "{\"type\": \"ByteLevel\", \"use_regex\": true}");
    struct { const char *text, *says; } bad[] = {
        {BPE_JSON("{\"a\": 0, \"b\": 1}", "[\"a c\"]", "null"), "not in the vocabulary"},
        {BPE_JSON("{\"a\": 0, \"b\": 1}", "[\"a b\"]", "null"), "not in the vocabulary"},  /* "ab" missing */
        {BPE_JSON("{\"a\": 0, \"b\": 1, \"ab\": 2}", "[\"a  b\"]", "null"), "two tokens"},
        {BPE_JSON("{\"a\": 0, \"b\": 1, \"ab\": 2}", "[3]", "null"), "merge 0"},
        {BPE_JSON("{\"a\": 0, \"b\": -1}", "[]", "null"), "ids must be"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a(?<=b)\"}, \"behavior\": \"Isolated\"}"),
         "unsupported group"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\p{Foo}\"}, \"behavior\": \"Isolated\"}"),
         "unknown Unicode category"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(ab)+\"}, \"behavior\": \"Isolated\"}"),
         "quantified groups"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a+?\"}, \"behavior\": \"Isolated\"}"),
         "lazy"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-\"}, \"behavior\": \"Isolated\"}"),
         "unterminated"},
        {BPE_JSON("{\"a\": 0}", "[]", "{\"type\": \"Whitespace\"}"), "not supported"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "BPE"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}", "NFKC"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}}}", "duplicate"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}", "JSON"},
        {"", "JSON"},
    };
    size_t k, n = strlen(good);
    cr_assert(mkdtemp(dir));
    cr_expect(load_text(dir, "tokenizer.json", good, n, &err) == RED_OK, "%s", err.msg);
    for (k = 1; k < n; k += 7)  /* truncated anywhere */
        cr_expect(load_text(dir, "tokenizer.json", good, k, &err) == RED_E_FORMAT, "cut at %zu", k);
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        red_status st = load_text(dir, "tokenizer.json", bad[k].text, strlen(bad[k].text), &err);
        cr_expect(st != RED_OK && strstr(err.msg, bad[k].says), "case %zu: %s", k, st ? err.msg : "accepted");
    }
    rmdir(dir);
}

static size_t put_token(unsigned char *b, float score, const char *s, int32_t len_field) {
    uint32_t bits, n = (uint32_t)len_field;
    int i;
    memcpy(&bits, &score, 4);
    for (i = 0; i < 4; i++) b[i] = (unsigned char)(bits >> (8 * i));
    for (i = 0; i < 4; i++) b[4 + i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, s, strlen(s));
    return 8 + strlen(s);
}

Test(tokenizer, bad_llama2c_file_is_an_error) {
    char dir[] = "/tmp/red-test-tokbad-XXXXXX";
    red_error err;
    unsigned char *b = malloc(20000);
    size_t n = 4, good_len;
    int i;
    red_tokenizer *t;
    b[0] = 7; b[1] = b[2] = b[3] = 0;
    n += put_token(b + n, 0, "<unk>", 5);
    n += put_token(b + n, 0, "\n<s>\n", 5);
    n += put_token(b + n, 0, "\n</s>\n", 6);
    for (i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        n += put_token(b + n, 0, s, 6);
    }
    n += put_token(b + n, -1, " ", 1);
    n += put_token(b + n, -2, "a", 1);
    n += put_token(b + n, -3, " a", 2);
    good_len = n;
    cr_assert(mkdtemp(dir));
    cr_expect(load_text(dir, "tokenizer.bin", (const char *)b, good_len, &err) == RED_OK, "%s", err.msg);
    {
        char path[256];
        int ids[8];
        FILE *f;
        snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
        f = fopen(path, "wb");
        fwrite(b, 1, good_len, f);
        fclose(f);
        cr_assert(red_tokenizer_load(&t, path, &err) == RED_OK, "%s", err.msg);
        cr_expect(red_tokenize(t, "a\xC3", 2, 1, ids, 8) == 3 && ids[0] == 1 && ids[1] == 261 && ids[2] == 0xC3 + 3,
                  "BOS, \" a\", byte fallback");
        red_tokenizer_free(t);
        unlink(path);
    }
    for (n = 0; n < good_len; n += 97)  /* truncated */
        if (n != 4)
            cr_expect(load_text(dir, "tokenizer.bin", (const char *)b, n, &err) == RED_E_FORMAT, "cut at %zu", n);
    put_token(b + 4, 0, "<unk>", 1 << 30);  /* a length beyond the file */
    cr_expect(load_text(dir, "tokenizer.bin", (const char *)b, good_len, &err) == RED_E_FORMAT && strstr(err.msg, "claims"), "%s", err.msg);
    put_token(b + 4, 0, "<unk>", -5);
    cr_expect(load_text(dir, "tokenizer.bin", (const char *)b, good_len, &err) == RED_E_FORMAT, "negative length");
    rmdir(dir);
    free(b);
}

/* GGUF vocabularies with something wrong. */
Test(tokenizer, bad_vocab_spec_is_an_error) {
    const char *tokens[4] = {"a", "b", "ab", "c"}, *merges[1] = {"a x"};
    red_vocab_spec s;
    red_tokenizer *t;
    red_error err;
    memset(&s, 0, sizeof s);
    s.model = "gpt2";
    s.n_tokens = 4;
    s.tokens = tokens;
    s.n_merges = 1;
    s.merges = merges;
    s.bos_id = s.eos_id = s.unk_id = s.pad_id = -1;
    cr_expect(red_tokenizer_from_vocab(&t, &s, &err) == RED_E_FORMAT && strstr(err.msg, "not in the vocabulary"), "%s", err.msg);
    merges[0] = "a b";
    s.pre = "falcon";
    cr_expect(red_tokenizer_from_vocab(&t, &s, &err) == RED_E_UNSUPPORTED && strstr(err.msg, "falcon"), "%s", err.msg);
    s.pre = "qwen2";
    s.bos_id = 9;
    cr_expect(red_tokenizer_from_vocab(&t, &s, &err) == RED_E_FORMAT, "bos outside");
    s.bos_id = -1;
    s.model = "t5";
    cr_expect(red_tokenizer_from_vocab(&t, &s, &err) == RED_E_UNSUPPORTED);
    s.model = "gpt2";
    cr_assert(red_tokenizer_from_vocab(&t, &s, &err) == RED_OK, "%s", err.msg);
    {
        int ids[4];
        cr_expect(red_tokenize(t, "abc", 3, 0, ids, 4) == 2 && ids[0] == 2 && ids[1] == 3);
    }
    red_tokenizer_free(t);
}

/* Arbitrary bytes (invalid UTF-8, NUL, control characters) never crash, and
 * come back from decode where the tokenizer changes nothing (no NFC). */
Test(tokenizer, any_bytes_encode_and_round_trip) {
    const char *paths[4] = {TOKDATA "llama3/tokenizer.json", TOKDATA "spm-mistral/tokenizer.json", TOKDATA "qwen3/tokenizer.json",
                            "../shared/data/stories260K/tok512.bin"};
    int p;
    for (p = 0; p < 4; p++)
        if (access(paths[p], R_OK)) cr_skip_test("%s absent (the shared data directory is not beside the repository)", paths[p]);
    for (p = 0; p < 4; p++) {
        red_tokenizer *t;
        red_error err;
        red_rng r;
        int trial;
        cr_assert(red_tokenizer_load(&t, paths[p], &err) == RED_OK, "%s", err.msg);
        red_rng_seed(&r, 99);
        for (trial = 0; trial < 300; trial++) {
            char s[200];
            int ids[1000], n, i;
            size_t len = (size_t)red_rng_below(&r, 200), k;
            red_sbuf out;
            for (k = 0; k < len; k++) {  /* bytes, ASCII, and pieces of UTF-8 */
                int c = (int)red_rng_below(&r, 4);
                s[k] = (char)(c == 0 ? red_rng_below(&r, 256) : c == 1 ? 0x80 + red_rng_below(&r, 64)
                              : c == 2 ? 0xC0 + red_rng_below(&r, 64) : 32 + red_rng_below(&r, 95));
                if (p == 3 && !s[k]) s[k] = 'x';  /* llama2.c reads a C string */
            }
            n = red_tokenize(t, s, len, 0, ids, 1000);
            cr_assert(n >= 0 && n <= 1000, "%s trial %d: %d ids", paths[p], trial, n);
            for (i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < red_tokenizer_vocab(t));
            if (p == 2) continue;
            red_sbuf_init(&out);
            red_sbuf_puts(&out, "");
            if (p == 3) {  /* run.c decodes after BOS */
                memmove(ids + 1, ids, sizeof(int) * (size_t)n);
                ids[0] = 1;
                n++;
            }
            red_detokenize(t, ids, n, &out);
            cr_expect(out.len == len && !memcmp(out.p, s, len), "%s trial %d: decode(encode(x)) != x", paths[p], trial);
            red_sbuf_free(&out);
        }
        red_tokenizer_free(t);
    }
}

/* ------------------------------------------------------------------ byte tokenizer */

Test(tokenizer, byte_round_trip_and_directory_record) {
    red_tokenizer *t, *back;
    red_error err;
    const char text[] = "Caf\xC3\xA9 #### 5\n";
    int ids[64], n, i;
    red_sbuf s;
    char dir[] = "/tmp/red-test-tok-XXXXXX", path[128];
    cr_assert(red_tokenizer_byte_new(&t, &err) == RED_OK);
    cr_expect(red_tokenizer_vocab(t) == 259 && red_tokenizer_bos(t) == 256 && red_tokenizer_eos(t) == 257 &&
              red_tokenizer_pad(t) == 258 && !red_tokenizer_add_bos(t));
    n = red_tokenize(t, text, sizeof text - 1, 1, ids, 64);
    cr_assert(n == (int)sizeof text);
    cr_expect(ids[0] == 256 && ids[4] == 0xC3 && ids[5] == 0xA9);
    cr_expect(red_tokenize(t, text, sizeof text - 1, 0, ids, 2) == (int)sizeof text - 1, "count beyond cap");
    red_sbuf_init(&s);
    n = red_tokenize(t, text, sizeof text - 1, 1, ids, 64);
    ids[n++] = red_tokenizer_eos(t);
    red_detokenize(t, ids, n, &s);
    cr_expect(s.len == sizeof text - 1 && memcmp(s.p, text, s.len) == 0, "specials have no text");
    red_sbuf_free(&s);
    cr_assert(mkdtemp(dir));
    cr_assert(red_tokenizer_save(t, dir, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_tokenizer_load(&back, dir, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_kind(back) == RED_TOK_BYTE && red_tokenizer_vocab(back) == 259 && red_tokenizer_bos(back) == 256 &&
              red_tokenizer_eos(back) == 257 && red_tokenizer_pad(back) == 258);
    red_tokenizer_free(back);
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    unlink(path);
    cr_expect(red_tokenizer_load(&back, dir, &err) == RED_E_IO);
    cr_expect(strstr(err.msg, "red_tokenizer.json") != NULL, "%s", err.msg);
    rmdir(dir);
    for (i = 0; i < 256; i++) {
        char b[RED_TOKEN_MAX_BYTES];
        cr_assert(red_token_bytes(t, i, b) == 1 && (unsigned char)b[0] == i);
    }
    red_tokenizer_free(t);
}

/* ------------------------------------------------------------------ BPE tokenizer */

static const char *const bpe_corpus[] = {
    "Question: On Monday, Liam picks 16 apples. On Tuesday, Omar picks 9 fewer apples than Liam.",
    "Answer: On Tuesday, Omar picks 9 fewer apples than Liam: 16 - 9 = <<16-9=7>>7 apples.\n#### 7",
    "The red fox lives in the forest. All foxes are orange. The fox weighs 12 kilograms.",
    "Mia has 3 more stickers than Zoe: 5 + 3 = <<5+3=8>>8 stickers.   Spaces   and tabs\tand \xc3\xbcmlauts \303\274ber."};  /* octal: a hex escape would swallow the b */

static void bpe_corpus_text(red_sbuf *s) {
    int r, k;
    red_sbuf_init(s);
    red_sbuf_puts(s, "");
    for (r = 0; r < 3; r++)
        for (k = 0; k < 4; k++) {
            if (s->len) red_sbuf_puts(s, "\n");
            red_sbuf_puts(s, bpe_corpus[k]);
        }
    red_sbuf_puts(s, "\napples apples apples; bananas!! <<>> ==== 1234567890");
}

static size_t unhex(const char *h, char *out) {
    size_t n = 0;
    unsigned v;
    while (h[0] && h[1] && sscanf(h, "%2x", &v) == 1) {
        out[n++] = (char)v;
        h += 2;
    }
    return n;
}

/* Merges and encodings against an independent Python implementation
 * (tests/fixtures/make_bpe_fixture.py). */
Test(tokenizer, bpe_matches_independent_reference) {
    red_tokenizer *t, *back;
    red_sbuf text;
    red_error err;
    FILE *f = fopen(FIXTURE("bpe_reference.txt"), "r");
    char line[4096], probe[2048];
    size_t plen = 0;
    int n_merges = 0, ids[512];
    char dir[] = "/tmp/red_test_bpe_XXXXXX";
    cr_assert(f, "fixture missing");
    bpe_corpus_text(&text);
    cr_assert(red_tokenizer_train_bpe(&t, text.p, text.len, 300, &err) == RED_OK, "%s", err.msg);
    while (fgets(line, sizeof line, f)) {
        int a, b;
        if (sscanf(line, "merge %d %d", &a, &b) == 2) {
            int ga = -1, gb = -1;
            cr_expect(red_tokenizer_merge(t, n_merges, &ga, &gb) && ga == a && gb == b,
                      "merge %d: reference (%d, %d)", n_merges, a, b);
            n_merges++;
        } else if (!strncmp(line, "encode ", 7)) {
            line[strcspn(line, "\n")] = 0;
            plen = unhex(line + 7, probe);
        } else if (!strncmp(line, "ids", 3)) {
            int want[512], nw = 0, n, k, off = 0, used;
            while (sscanf(line + 3 + off, "%d%n", &want[nw], &used) == 1) { nw++; off += used; }
            n = red_tokenize(t, probe, plen, 0, ids, 512);
            cr_expect(n == nw, "%.*s: %d ids, reference %d", (int)plen, probe, n, nw);
            for (k = 0; k < n && k < nw; k++) cr_expect(ids[k] == want[k], "id %d: %d, reference %d", k, ids[k], want[k]);
        }
    }
    fclose(f);
    cr_expect(n_merges == red_tokenizer_n_merges(t) && red_tokenizer_vocab(t) == 259 + n_merges, "%d merges, reference %d",
              red_tokenizer_n_merges(t), n_merges);
    /* save and load give the same tokenizer */
    cr_assert(mkdtemp(dir));
    cr_assert(red_tokenizer_save(t, dir, &err) == RED_OK);
    cr_assert(red_tokenizer_load(&back, dir, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_tokenizer_kind(back) == RED_TOK_BPE && red_tokenizer_vocab(back) == red_tokenizer_vocab(t) &&
              red_tokenizer_n_merges(back) == red_tokenizer_n_merges(t), "round trip");
    for (n_merges = 0; n_merges < red_tokenizer_vocab(t); n_merges++) {
        char x[RED_TOKEN_MAX_BYTES], y[RED_TOKEN_MAX_BYTES];
        int nx = red_token_bytes(t, n_merges, x), ny = red_token_bytes(back, n_merges, y), a = 0, b = 0, c = 0, d = 0;
        red_tokenizer_merge(t, n_merges, &a, &b);
        red_tokenizer_merge(back, n_merges, &c, &d);
        cr_expect(nx == ny && !memcmp(x, y, (size_t)nx) && a == c && b == d, "round trip: id %d", n_merges);
    }
    red_tokenizer_free(back);
    {
        char path[256];
        snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
        unlink(path);
        rmdir(dir);
    }
    red_sbuf_free(&text);
    red_tokenizer_free(t);
}

Test(tokenizer, bpe_round_trips_any_bytes_and_keeps_digits_single) {
    red_tokenizer *t;
    red_sbuf text, out;
    red_error err;
    red_rng r;
    int trial, ids[700], n, k;
    bpe_corpus_text(&text);
    cr_assert(red_tokenizer_train_bpe(&t, text.p, text.len, 320, &err) == RED_OK);
    red_rng_seed(&r, 17);
    for (trial = 0; trial < 200; trial++) {
        char s[300];
        size_t len = (size_t)red_rng_below(&r, 300), i;
        for (i = 0; i < len; i++)  /* mostly corpus-like text, some arbitrary bytes */
            s[i] = red_rng_below(&r, 4) ? text.p[red_rng_below(&r, text.len)] : (char)red_rng_below(&r, 256);
        n = red_tokenize(t, s, len, 0, ids, 700);
        red_sbuf_init(&out);
        red_sbuf_puts(&out, "");
        red_detokenize(t, ids, n, &out);
        cr_assert(out.len == len && !memcmp(out.p, s, len), "decode(encode(x)) == x (trial %d)", trial);
        for (k = 0; k < n; k++) {
            char b[RED_TOKEN_MAX_BYTES];
            int nb = red_token_bytes(t, ids[k], b), j, digits = 0;
            for (j = 0; j < nb; j++) digits += b[j] >= '0' && b[j] <= '9';
            cr_assert(digits == 0 || nb == 1, "a digit is always a token of its own");
        }
        red_sbuf_free(&out);
    }
    n = red_tokenize(t, " apples", 7, 0, ids, 700);
    cr_expect(n == 1, "a frequent word with its space is one token (%d)", n);
    red_sbuf_free(&text);
    red_tokenizer_free(t);
}

Test(tokenizer, bpe_rejects_malformed_merges) {
    red_tokenizer *t;
    red_error err;
    char dir[] = "/tmp/red_test_bpe_XXXXXX", path[256];
    const char *bad[] = {"{\"type\": \"bpe\", \"merges\": [[97, 400]]}", "{\"type\": \"bpe\", \"merges\": [[256, 97]]}",
                         "{\"type\": \"bpe\", \"merges\": [[97]]}", "{\"type\": \"bpe\", \"merges\": 3}",
                         "{\"type\": \"wordpiece\"}"};
    int k;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    for (k = 0; k < 5; k++) {
        FILE *f = fopen(path, "w");
        fputs(bad[k], f);
        fclose(f);
        cr_expect(red_tokenizer_load(&t, dir, &err) != RED_OK, "rejects %s", bad[k]);
    }
    unlink(path);
    rmdir(dir);
}

/* The error names the offending id's byte offset, read before the JSON tree
 * is freed (ASan reported a use-after-free here), and keeps the I/O reason
 * when the file is missing. */
Test(tokenizer, load_errors_name_the_byte_and_the_reason) {
    red_tokenizer *t = NULL;
    red_error err;
    char dir[] = "/tmp/red_test_tokerr_XXXXXX", path[256];
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/red_tokenizer.json", dir);
    f = fopen(path, "w");
    fputs("{\"type\": \"byte\", \"eos_token_id\": 12}", f);
    fclose(f);
    cr_expect(red_tokenizer_load(&t, dir, &err) == RED_E_FORMAT);
    cr_expect(strstr(err.msg, "byte 33:") && strstr(err.msg, "eos_token_id"), "%s", err.msg);
    /* a special id may not be a merged token's id (BOS decoded as "ab", and "ab" encoded as BOS) */
    f = fopen(path, "w");
    fputs("{\"type\": \"bpe\", \"merges\": [[97, 98]], \"bos_token_id\": 259}", f);
    fclose(f);
    cr_expect(red_tokenizer_load(&t, dir, &err) == RED_E_FORMAT, "a special id equal to a merged id was accepted");
    /* a special id past the merge tables has no text (was read out of bounds) */
    f = fopen(path, "w");
    fputs("{\"type\": \"bpe\", \"merges\": [[97, 98]], \"bos_token_id\": 60000}", f);
    fclose(f);
    cr_assert(red_tokenizer_load(&t, dir, &err) == RED_OK, "%s", err.msg);
    {
        static char b[RED_TOKEN_MAX_BYTES];
        cr_expect(red_tokenizer_vocab(t) == 60001 && red_token_bytes(t, 259, b) == 2 && red_token_bytes(t, 5000, b) == 0);
    }
    red_tokenizer_free(t);
    unlink(path);
    rmdir(dir);
}

/* A Split pattern of many stacked quantifiers that never matches
 * (a*a*...a*Z on a run of a's) used to backtrack length^11 ways and hang the
 * encoder of a 48-byte text; the matcher now remembers failed (node, position)
 * pairs. The text is one gap piece: 48 ids of "a". */
Test(tokenizer, split_regex_backtracking_is_bounded, .timeout = 10) {
    char dir[] = "/tmp/red-test-rx-XXXXXX", path[64], text[49];
    red_tokenizer *t;
    red_error err;
    int ids[64], n, i;
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"Z\": 1}, \"merges\": []}, \"pre_tokenizer\": "
          "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a*a*a*a*a*a*a*a*a*a*a*Z\"}, \"behavior\": \"Isolated\", "
          "\"invert\": false}, \"decoder\": {\"type\": \"ByteLevel\"}}", f);
    fclose(f);
    cr_assert(red_tokenizer_load(&t, path, &err) == RED_OK, "%s", err.msg);
    memset(text, 'a', 48);
    text[48] = 0;
    n = red_tokenize(t, text, 48, 0, ids, 64);
    cr_expect(n == 48, "%d ids", n);
    for (i = 0; i < n && i < 64; i++) cr_expect(ids[i] == 0, "id %d at %d", ids[i], i);
    red_tokenizer_free(t);
    unlink(path);
    rmdir(dir);
}
