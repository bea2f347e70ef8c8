/* data.c - the data a model reads: documents from text and JSONL files,
 * tokenized and packed; the stream shuffled per epoch; fixed calibration and
 * measurement rows.
 *
 * Documents: each line of a .txt file; each JSONL object formatted by its
 * fields: {"question","answer"} -> "Question: q\nAnswer: a" (the zero-shot
 * gsm8k prompt plus the solution), {"text"} -> text, {"query","choices",
 * "gold"} -> query + " " + choices[gold], {"contexts","continuation","gold"}
 * -> contexts[gold] + " " + continuation. Every document ends with EOS.
 * With answer_only, the context part of question/answer and choice items
 * (up to "Answer:", the query, the gold context) is never a prediction
 * target: the loss is spent on what the harnesses score.
 * Epoch e concatenates the documents in an order shuffled by (seed, e); a
 * batch reads B rows of T+1 tokens from that stream, each row starting at a
 * document start (the tail of a document cut by a row's end is skipped).
 */
#include "red_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ documents */

/* prefix: bytes of text that are context only (question, query); with
 * answer_only their tokens are never prediction targets. */
static red_status add_doc(red_train_data *d, const red_tokenizer *tok, const char *text, size_t len, size_t prefix,
                          red_error *err) {
    int n = red_tokenize(tok, text, len, 0, NULL, 0) + 1, n_prefix = red_tokenize(tok, text, prefix, 0, NULL, 0), i;
    if (n < 1 || n_prefix < 0) return red_error_set(err, RED_E_NOMEM, "train: out of memory while tokenizing");
    if (d->n_tok + (size_t)n > d->cap_tok) {
        size_t nc = d->cap_tok ? d->cap_tok : 1 << 12;  /* doubled as needed: a small file stays small */
        int *g;
        while (nc < d->n_tok + (size_t)n) nc *= 2;
        unsigned char *t;
        g = realloc(d->tokens, nc * sizeof(int));
        if (!g) return red_error_set(err, RED_E_NOMEM, "train: out of memory for %zu tokens", nc);
        d->tokens = g;
        t = realloc(d->target, nc);
        if (!t) return red_error_set(err, RED_E_NOMEM, "train: out of memory for %zu tokens", nc);
        d->target = t;
        d->cap_tok = nc;
    }
    if (d->n_docs == d->cap_docs) {
        size_t nc = d->cap_docs ? 2 * d->cap_docs : 4096;
        size_t *g = realloc(d->doc_start, (nc + 1) * sizeof(size_t));
        if (!g) return red_error_set(err, RED_E_NOMEM, "train: out of memory for documents");
        d->doc_start = g;
        d->cap_docs = nc;
    }
    d->doc_start[d->n_docs++] = d->n_tok;
    red_tokenize(tok, text, len, 0, d->tokens + d->n_tok, n - 1);
    d->tokens[d->n_tok + (size_t)n - 1] = red_tokenizer_eos(tok);
    for (i = 0; i < n; i++) d->target[d->n_tok + (size_t)i] = !(d->answer_only && i < n_prefix);
    d->n_tok += (size_t)n;
    d->doc_start[d->n_docs] = d->n_tok;
    return RED_OK;
}

static red_status format_json_doc(const red_json *j, red_sbuf *s, size_t *prefix, const char *path, size_t line,
                                  red_error *err) {
    const red_json *q = red_json_get(j, "question"), *a = red_json_get(j, "answer"), *t = red_json_get(j, "text"),
                   *qu = red_json_get(j, "query"), *ch = red_json_get(j, "choices"), *cx = red_json_get(j, "contexts"),
                   *ct = red_json_get(j, "continuation"), *g = red_json_get(j, "gold");
    s->len = 0;
    *prefix = 0;
    if (q && a && q->type == RED_JSON_STRING && a->type == RED_JSON_STRING) {
        red_sbuf_puts(s, "Question: ");
        red_sbuf_put(s, q->str, q->len);
        red_sbuf_puts(s, "\nAnswer:");
        *prefix = s->len;  /* the harness prompt ends here */
        red_sbuf_puts(s, " ");
        red_sbuf_put(s, a->str, a->len);
    } else if (t && t->type == RED_JSON_STRING) {
        red_sbuf_put(s, t->str, t->len);
    } else if (qu && ch && g && qu->type == RED_JSON_STRING && ch->type == RED_JSON_ARRAY && g->is_int &&
               g->ival >= 0 && g->ival < (int64_t)ch->count && red_json_at(ch, (size_t)g->ival)->type == RED_JSON_STRING) {
        const red_json *c = red_json_at(ch, (size_t)g->ival);
        red_sbuf_put(s, qu->str, qu->len);
        *prefix = s->len;
        red_sbuf_puts(s, " ");
        red_sbuf_put(s, c->str, c->len);
    } else if (cx && ct && g && cx->type == RED_JSON_ARRAY && ct->type == RED_JSON_STRING && g->is_int && g->ival >= 0 &&
               g->ival < (int64_t)cx->count && red_json_at(cx, (size_t)g->ival)->type == RED_JSON_STRING) {
        const red_json *c = red_json_at(cx, (size_t)g->ival);
        red_sbuf_put(s, c->str, c->len);
        *prefix = s->len;
        red_sbuf_puts(s, " ");
        red_sbuf_put(s, ct->str, ct->len);
    } else {
        return red_error_set(err, RED_E_FORMAT, "%s:%zu: expected {\"question\",\"answer\"}, {\"text\"}, "
                             "{\"query\",\"choices\",\"gold\"} or {\"contexts\",\"continuation\",\"gold\"}", path, line);
    }
    return s->failed ? red_error_set(err, RED_E_NOMEM, "train: out of memory") : RED_OK;
}

/* Calls fn(ctx, text, len, prefix) for every document of a file: each JSONL
 * object formatted as above, or each non-empty line of a text file. */
typedef red_status (*doc_fn)(void *ctx, const char *text, size_t len, size_t prefix, red_error *err);

static red_status for_each_doc(const char *path, doc_fn fn, void *ctx, red_error *err) {
    size_t len = strlen(path);
    red_status st = RED_OK;
    if (len > 6 && !strcmp(path + len - 6, ".jsonl")) {
        red_json **items;
        size_t n, i, *line;
        red_sbuf s;
        if ((st = red_jsonl_read_lines(path, &items, &n, &line, err))) return st;
        red_sbuf_init(&s);
        red_sbuf_puts(&s, "");
        for (i = 0; i < n; i++) {
            size_t prefix;
            if ((st = format_json_doc(items[i], &s, &prefix, path, line[i], err)) || (st = fn(ctx, s.p, s.len, prefix, err)))
                break;
        }
        red_sbuf_free(&s);
        red_jsonl_free(items, n);
        free(line);
    } else {  /* plain text: one document per non-empty line */
        unsigned char *buf;
        size_t blen, p = 0;
        if ((st = red_read_file(path, &buf, &blen, err))) return st;
        while (p < blen) {
            size_t e = p;
            while (e < blen && buf[e] != '\n') e++;
            if (e > p && (st = fn(ctx, (const char *)buf + p, e - p, 0, err))) break;
            p = e + 1;
        }
        free(buf);
    }
    return st;
}

typedef struct {
    red_train_data *d;
    const red_tokenizer *tok;
} add_ctx;

static red_status add_one(void *vc, const char *text, size_t len, size_t prefix, red_error *err) {
    add_ctx *c = vc;
    return add_doc(c->d, c->tok, text, len, prefix, err);
}

red_status red_train_data_add_file(red_train_data *d, const red_tokenizer *tok, const char *path, red_error *err) {
    add_ctx c;
    c.d = d;
    c.tok = tok;
    return for_each_doc(path, add_one, &c, err);
}

static red_status append_line(void *vc, const char *text, size_t len, size_t prefix, red_error *err) {
    red_sbuf *out = vc;
    (void)prefix;
    red_sbuf_put(out, text, len);
    red_sbuf_puts(out, "\n");
    return out->failed ? red_error_set(err, RED_E_NOMEM, "out of memory for the documents' text") : RED_OK;
}

red_status red_docs_text(const char *path, red_sbuf *out, red_error *err) { return for_each_doc(path, append_line, out, err); }

void red_train_data_free(red_train_data *d) {
    free(d->tokens);
    free(d->target);
    free(d->stream_target);
    free(d->doc_start);
    free(d->stream);
    memset(d, 0, sizeof *d);
}

/* The stream of epoch e: documents in an order shuffled by (seed, e). */
static red_status build_epoch(red_train_data *d, uint64_t seed, uint64_t epoch, red_error *err) {
    size_t *order, i, at = 0;
    red_rng r;
    if (!d->stream) {
        d->stream = malloc(d->n_tok * sizeof(int));
        d->stream_target = malloc(d->n_tok);
        if (!d->stream || !d->stream_target) return red_error_set(err, RED_E_NOMEM, "train: out of memory for the token stream");
    }
    order = malloc((d->n_docs ? d->n_docs : 1) * sizeof(size_t));
    if (!order) return red_error_set(err, RED_E_NOMEM, "train: out of memory");
    for (i = 0; i < d->n_docs; i++) order[i] = i;
    red_rng_seed(&r, seed * 1000003u + epoch);
    for (i = d->n_docs; i > 1; i--) {  /* Fisher-Yates */
        size_t j = (size_t)red_rng_below(&r, i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (i = 0; i < d->n_docs; i++) {
        size_t a = d->doc_start[order[i]], b = d->doc_start[order[i] + 1];
        memcpy(d->stream + at, d->tokens + a, (b - a) * sizeof(int));
        memcpy(d->stream_target + at, d->target + a, b - a);
        d->stream_target[at] |= 2;  /* document start */
        at += b - a;
    }
    free(order);
    d->epoch_built = epoch;
    d->seed_built = seed;
    d->have_epoch = 1;
    return RED_OK;
}

/* Rows of T+1 tokens from (epoch, offset) onwards, moving to the next
 * epoch when a row would run past the end. */
red_status red_train_data_batch(red_train_data *d, uint64_t seed, uint64_t *epoch, uint64_t *offset, int B, int T,
                             int *in, int *tgt, red_error *err) {
    int b, t;
    red_status st;
    if ((size_t)T + 1 > d->n_tok)
        return red_error_set(err, RED_E_ARG, "train: the data has %zu tokens, fewer than one sequence of %d", d->n_tok, T + 1);
    for (b = 0; b < B; b++) {
        if (*offset + (size_t)T + 1 > d->n_tok) {
            (*epoch)++;
            *offset = 0;
        }
        if (!d->have_epoch || d->epoch_built != *epoch || d->seed_built != seed)
            if ((st = build_epoch(d, seed, *epoch, err))) return st;
        for (t = 0; t < T; t++) {
            in[b * T + t] = d->stream[*offset + (size_t)t];
            tgt[b * T + t] = d->stream_target[*offset + (size_t)t + 1] & 1 ? d->stream[*offset + (size_t)t + 1] : -1;
        }
        /* The next row starts at a document start: the rest of a document cut by
           this row's end is skipped, so every target is predicted with its own
           document's beginning (a solution line without its question is noise). */
        *offset += (size_t)T;
        while (*offset < d->n_tok && !(d->stream_target[*offset] & 2)) (*offset)++;
    }
    return RED_OK;
}

/* ------------------------------------------------------------------ measurement rows */

red_status red_train_data_rows(red_train_data *d, int n_rows, int T, int *tokens, red_error *err) {
    int *tgt = malloc((size_t)T * sizeof(int)), r;
    uint64_t epoch = 0, off = 0;
    red_status st = RED_OK;
    if (!tgt) return red_error_set(err, RED_E_NOMEM, "train: out of memory");
    for (r = 0; r < n_rows && st == RED_OK; r++)
        st = red_train_data_batch(d, RED_CALIB_SEED, &epoch, &off, 1, T, tokens + (size_t)r * T, tgt, err);
    free(tgt);
    return st;
}

uint64_t red_train_data_fingerprint(const red_train_data *d) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a, 64-bit */
    size_t i;
    for (i = 0; i < d->n_tok; i++) {
        uint32_t t = (uint32_t)d->tokens[i];
        int k;
        for (k = 0; k < 4; k++) h = (h ^ ((t >> (8 * k)) & 0xff)) * 1099511628211ull;
        h = (h ^ d->target[i]) * 1099511628211ull;
    }
    return h;
}
