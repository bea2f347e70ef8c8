/* tests/fuzz/fuzz_state.c - the training-state file (optim.c
 * red_state_load): magic, version, resume record, array sizes. The caller's
 * record and arrays are fixed; the seeds hold a matching file (written by
 * tests/fuzz/make_corpus.sh) and a real train_state.bin. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char record[] = "tokens=4096\nbatch=4\nseq=64\ndata=15071 tokens, 40 documents\n";
    float a[5], b[3];
    red_state_array arrays[2];
    red_loop_pos pos;
    red_error err;
    const char *path = fuzz_file("state.bin", data, size);
    arrays[0].p = a; arrays[0].n = 5; arrays[0].name = "weights";
    arrays[1].p = b; arrays[1].n = 3; arrays[1].name = "moments";
    (void)red_state_load(path, "REDTRAIN", record, &pos, arrays, 2, &err);
    return 0;
}
