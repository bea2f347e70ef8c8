/* tests/fuzz/fuzz_safetensors.c - the safetensors reader (hfdir.c):
 * header validation, then every F32/F16/BF16 tensor read in full. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    red_safetensors st;
    red_error err;
    int i;
    if (red_st_parse(&st, fuzz_copy(data, size), size, "fuzz.safetensors", &err)) return 0;
    for (i = 0; i < st.n; i++) {
        const red_st_entry *e = &st.e[i];
        uint64_t bytes = e->end - e->begin;
        float *out;
        if (e->dtype == RED_DT_OTHER) continue;
        out = malloc((size_t)(bytes / (e->dtype == RED_DT_F32 ? 4 : 2) + 1) * sizeof *out);
        if (!out) abort();
        (void)red_st_read_f32(&st, e, out, &err);
        free(out);
        if (red_st_find(&st, e->name) == NULL) abort();
    }
    red_st_close(&st);
    return 0;
}
