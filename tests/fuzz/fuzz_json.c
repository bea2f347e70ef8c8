/* tests/fuzz/fuzz_json.c - the strict JSON reader (json.c): any bytes, and
 * what parses must write back and parse again to the same tree shape. */
#include "fuzz.h"

static void put_value(red_sbuf *b, const red_json *j) {
    const red_json *c;
    switch (j->type) {
    case RED_JSON_NULL: red_sbuf_puts(b, "null"); break;
    case RED_JSON_FALSE: red_sbuf_puts(b, "false"); break;
    case RED_JSON_TRUE: red_sbuf_puts(b, "true"); break;
    case RED_JSON_NUMBER: red_json_put_number(b, j->number); break;
    case RED_JSON_STRING: red_json_put_string(b, j->str, j->len); break;
    default:
        red_sbuf_puts(b, j->type == RED_JSON_ARRAY ? "[" : "{");
        for (c = j->child; c; c = c->next) {
            if (c != j->child) red_sbuf_puts(b, ",");
            if (j->type == RED_JSON_OBJECT) {
                red_json_put_string(b, c->key, c->key_len);
                red_sbuf_puts(b, ":");
            }
            put_value(b, c);
        }
        red_sbuf_puts(b, j->type == RED_JSON_ARRAY ? "]" : "}");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_json *j = NULL, *k = NULL;
    red_error err;
    red_sbuf b;
    if (red_json_parse((const char *)data, size, "fuzz", &j, &err)) return 0;
    red_sbuf_init(&b);
    put_value(&b, j);
    if (!b.failed) {
        if (red_json_parse(b.p, b.len, "fuzz-rewritten", &k, &err)) {
            fprintf(stderr, "rewritten JSON does not parse: %s\n", err.msg);
            abort();
        }
        if (k->type != j->type || k->count != j->count) abort();
        red_json_free(k);
    }
    red_sbuf_free(&b);
    red_json_free(j);
    return 0;
}
