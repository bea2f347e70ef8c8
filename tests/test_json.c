/* tests/test_json.c - the strict JSON reader and writer: values and escapes,
 * rejection with byte offsets, round trips, and 200,000-key objects parsed
 * with duplicate keys found in linear time. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"

static red_json *parse_ok(const char *s) {
    red_json *j = NULL;
    red_error err;
    cr_assert(red_json_parse(s, strlen(s), "t", &j, &err) == RED_OK, "'%s': %s", s, err.msg);
    return j;
}

/* Expects a parse error whose message names byte `at` (or any byte if at < 0). */
static void parse_bad(const char *s, size_t len, long at) {
    red_json *j = NULL;
    red_error err;
    char want[32];
    cr_expect(red_json_parse(s, len, "t", &j, &err) == RED_E_FORMAT, "accepted invalid JSON '%s'", s);
    cr_expect(j == NULL);
    if (at >= 0) {
        snprintf(want, sizeof want, "byte %ld:", at);
        cr_expect(strstr(err.msg, want) != NULL, "'%s': message '%s' should name %s", s, err.msg, want);
    }
}

Test(json, parses_values_and_escapes) {
    red_json *j = parse_ok(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"/\","
                           " \"big\": 9223372036854775807, \"neg\": -9223372036854775808, \"f\": 0.1} ");
    const red_json *a = red_json_get(j, "a"), *s = red_json_get(j, "s"), *b = red_json_get(j, "big");
    cr_assert(a && a->type == RED_JSON_ARRAY && a->count == 5);
    cr_expect(red_json_at(a, 0)->is_int && red_json_at(a, 0)->ival == 1);
    cr_expect(!red_json_at(a, 1)->is_int && red_json_at(a, 1)->number == -2500.0);
    cr_expect(red_json_at(a, 2)->type == RED_JSON_TRUE && red_json_at(a, 4)->type == RED_JSON_NULL);
    /* é = C3 A9, U+1F600 from the surrogate pair = F0 9F 98 80 */
    cr_expect(memcmp(s->str, "x\xC3\xA9\xF0\x9F\x98\x80\n\"/", 10) == 0 && s->len == 10);
    cr_expect(b->is_int && b->ival == INT64_MAX);
    cr_expect(red_json_get(j, "neg")->ival == INT64_MIN);
    cr_expect(red_json_get(j, "f")->number == 0.1);
    cr_expect(red_json_get(j, "missing") == NULL);
    red_json_free(j);
}

Test(json, rejects_with_byte_offsets) {
    parse_bad("[1,]", 4, 3);
    parse_bad("{\"a\":1,}", 8, 7);
    parse_bad("[01]", 4, 2);
    parse_bad("[+1]", 4, 1);
    parse_bad("[1.]", 4, 3);
    parse_bad("[NaN]", 5, 1);
    parse_bad("\"\\ud800\"", 8, -1);          /* lone high surrogate */
    parse_bad("\"\\udc00\"", 8, -1);          /* lone low surrogate */
    parse_bad("\"a\x01\"", 4, 2);              /* raw control character */
    parse_bad("\"\xC0\xAF\"", 4, 1);           /* overlong UTF-8 */
    parse_bad("\"\xED\xA0\x80\"", 5, 1);       /* encoded surrogate */
    parse_bad("\"\xF4\x90\x80\x80\"", 6, 1);   /* above U+10FFFF */
    parse_bad("{\"k\":1,\"k\":2}", 13, 7);    /* duplicate key */
    parse_bad("{} x", 4, 3);                  /* trailing garbage */
    parse_bad("\xEF\xBB\xBF{}", 5, 0);         /* byte order mark */
    parse_bad("\"abc", 4, -1);
    parse_bad("", 0, 0);
    parse_bad("[\"\\x\"]", 6, 3);
    {
        char deep[1200];
        memset(deep, '[', 600);
        memset(deep + 600, ']', 600);
        parse_bad(deep, 1200, -1);  /* nesting over 512 */
    }
}

Test(json, writer_escapes_and_round_trips) {
    red_sbuf b;
    red_json *j;
    const char raw[] = "q\"b\\s\x01\n\xC3\xA9";
    double vals[5] = {0.1, 1e-300, -123456789.125, 3.0, 1.0 / 3.0};
    int i;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "[");
    red_json_put_string(&b, raw, sizeof raw - 1);
    for (i = 0; i < 5; i++) {
        red_sbuf_puts(&b, ",");
        red_json_put_number(&b, vals[i]);
    }
    red_sbuf_puts(&b, ",");
    red_json_put_float(&b, 0.1f);
    red_sbuf_puts(&b, "]");
    cr_expect(strstr(b.p, "\\u0001") && strstr(b.p, "\\n") && strstr(b.p, "\\\""), "%s", b.p);
    cr_expect(strstr(b.p, ",0.1,") != NULL, "shortest form: %s", b.p);
    j = parse_ok(b.p);
    cr_expect(red_json_at(j, 0)->len == sizeof raw - 1 && memcmp(red_json_at(j, 0)->str, raw, sizeof raw - 1) == 0);
    for (i = 0; i < 5; i++) cr_expect(red_json_at(j, (size_t)i + 1)->number == vals[i], "value %d", i);
    cr_expect((float)red_json_at(j, 6)->number == 0.1f);
    red_json_free(j);
    red_sbuf_free(&b);
}

/* {"k0000000":0,...} with n distinct keys; key dup_of (if >= 0) is repeated as
 * an extra last member. *dup_at gets the offset of that last key. */
static char *many_keys(int n, int dup_of, size_t *len, size_t *dup_at) {
    char *s = malloc((size_t)n * 24 + 32);
    size_t k = 0;
    int i;
    s[k++] = '{';
    for (i = 0; i < n; i++) k += (size_t)sprintf(s + k, "%s\"k%07d\":%d", i ? "," : "", i, i);
    if (dup_of >= 0) {
        s[k++] = ',';
        *dup_at = k;
        k += (size_t)sprintf(s + k, "\"k%07d\":0", dup_of);
    }
    s[k++] = '}';
    *len = k;
    return s;
}

/* 200,000 keys: the old member-by-member check took O(n^2) (~10 min here);
 * the timeout turns such a hang into a failure. */
Test(json, many_keys_parse_and_duplicates_are_found, .timeout = 20) {
    size_t len, at = 0;
    red_json *j = NULL;
    red_error err;
    char *s = many_keys(200000, -1, &len, &at), want[48];
    cr_assert(red_json_parse(s, len, "t", &j, &err) == RED_OK, "%s", err.msg);
    cr_expect(j->count == 200000);
    cr_expect(red_json_get(j, "k0199999")->ival == 199999);
    red_json_free(j);
    free(s);
    s = many_keys(200000, 123456, &len, &at);
    cr_assert(red_json_parse(s, len, "t", &j, &err) == RED_E_FORMAT, "duplicate key accepted");
    snprintf(want, sizeof want, "byte %zu: duplicate key", at);
    cr_expect(strstr(err.msg, want) != NULL, "message '%s' should name %s", err.msg, want);
    free(s);
    /* two repeats: the first in document order is reported */
    parse_bad("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,"
              "\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1,\"r\":1,\"x\":1,\"b\":2,\"a\":2}", 127, 115);
}

/* JSONL: every item knows its line (blank lines counted), and a syntax error
 * is reported as FILE:LINE. */
Test(json, jsonl_items_and_errors_carry_their_line) {
    char dir[] = "/tmp/red-test-jsonl-XXXXXX", path[64], want[96];
    red_json **items;
    size_t n, *line;
    red_error err;
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.jsonl", dir);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("\n1\n \t\r\n[2]\n{}", f);
    fclose(f);
    cr_assert(red_jsonl_read_lines(path, &items, &n, &line, &err) == RED_OK, "%s", err.msg);
    cr_expect(n == 3 && line[0] == 2 && line[1] == 4 && line[2] == 5, "%zu items", n);
    red_jsonl_free(items, n);
    free(line);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("1\n\n[2,]\n", f);
    fclose(f);
    cr_expect(red_jsonl_read(path, &items, &n, &err) == RED_E_FORMAT && items == NULL && n == 0);
    snprintf(want, sizeof want, "%s:3: JSON byte 3", path);
    cr_expect(strstr(err.msg, want) != NULL, "[%s] lacks [%s]", err.msg, want);
    unlink(path);
    rmdir(dir);
}
