/* tests/fuzz/fuzz_config.c - config.json (hfdir.c): JSON text to a
 * red_config; an accepted config must pass red_config_check and write back
 * to a config that reads as the same one. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_json *j = NULL, *k = NULL;
    red_config c, d;
    red_error err;
    red_sbuf b;
    if (red_json_parse((const char *)data, size, "config.json", &j, &err)) return 0;
    if (red_config_from_json(&c, j, "config.json", &err) == RED_OK) {
        if (red_config_check(&c, &err)) abort();
        red_sbuf_init(&b);
        red_config_to_json(&c, &b);
        if (b.failed || red_json_parse(b.p, b.len, "rewritten", &k, &err) ||
            red_config_from_json(&d, k, "rewritten", &err) || d.dim != c.dim || d.n_layers != c.n_layers ||
            d.vocab != c.vocab || d.n_kv_heads != c.n_kv_heads || d.head_dim != c.head_dim) {
            fprintf(stderr, "config does not round-trip: %s\n", err.msg);
            abort();
        }
        red_json_free(k);
        red_sbuf_free(&b);
    }
    red_json_free(j);
    return 0;
}
