/* tests/fuzz/tok_check.h - what every tokenizer harness asks of a tokenizer
 * that loaded: text with letters, digits, spaces, newlines, non-ASCII and
 * added-token spellings encodes to ids inside the vocabulary (asking again
 * with a bigger buffer when the full count exceeds the first), the ids
 * decode, and every id has bytes that fit red_token_bytes' buffer. */
#ifndef RED_FUZZ_TOK_CHECK_H
#define RED_FUZZ_TOK_CHECK_H
#include "fuzz.h"

static inline void fuzz_tok_check(const red_tokenizer *t) {
    static const char text[] = "Tom has 12 apples.\nAnswer: \xc3\xa9t\xc3\xa9  !! \xe4\xbd\xa0 <|im_start|>\r\n\t<s></s>"
                               "e\xcc\x81\xef\xbc\xa1\xff";
    static char b[RED_TOKEN_MAX_BYTES];
    int small[512], *ids = small, n, i, v = red_tokenizer_vocab(t);
    red_sbuf out;
    n = red_tokenize(t, text, sizeof text - 1, 1, ids, 512);
    if (n < 0) abort();
    if (n > 512) {  /* the full count came back (a normalizer can grow the text): again, with room */
        if (!(ids = malloc((size_t)n * sizeof *ids))) return;
        if (red_tokenize(t, text, sizeof text - 1, 1, ids, n) != n) abort();
    }
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v) {
            fprintf(stderr, "id %d outside the vocabulary of %d\n", ids[i], v);
            abort();
        }
    red_sbuf_init(&out);
    red_detokenize(t, ids, n, &out);
    red_sbuf_free(&out);
    if (ids != small) free(ids);
    for (i = 0; i < v; i++)
        if (red_token_bytes(t, i, b) > RED_TOKEN_MAX_BYTES) abort();
}
#endif
