/* tests/fuzz/fuzz.h - what the libFuzzer harnesses share.
 *
 * One harness per parser of untrusted bytes: tests/fuzz/fuzz_<name>.c defines
 * LLVMFuzzerTestOneInput and starts from the seeds in tests/fuzz/corpus/<name>/
 * (small real files). `make fuzz FUZZ_SECONDS=N` builds every fuzz_*.c with
 * clang -fsanitize=fuzzer,address,undefined and runs each for N seconds, so a
 * new format (GGUF, llama2.c, a Hugging Face tokenizer) is one new .c file and
 * one seed directory. Loaders that read a path get the bytes through
 * fuzz_file(), a file in a private temporary directory. A harness may only
 * fail by a sanitizer report, a crash, a leak or a hang: every rejection is a
 * red_status, which the harness ignores. */
#ifndef RED_FUZZ_H
#define RED_FUZZ_H

#define _POSIX_C_SOURCE 200809L
#include "../../red_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[64];

static inline void fuzz_cleanup(void) {
    char cmd[128];
    if (!fuzz_dir_path[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

/* A private directory, made on first use, removed at exit. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        /* in memory when possible: a disk file per input is 10x slower */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || strlen(tmp) > 40) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/red-fuzz-XXXXXX", tmp);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir_path;
}

/* Writes the input to fuzz_dir()/name and returns that path (static storage). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the input");
        abort();
    }
    return path;
}

/* A heap copy (loaders that take ownership of their buffer). */
static inline unsigned char *fuzz_copy(const uint8_t *data, size_t size) {
    unsigned char *p = malloc(size ? size : 1);
    if (!p) abort();
    if (size) memcpy(p, data, size);
    return p;
}

#endif
