/* bench/bench_tokenize.c - `red bench tokenize`: encode speed of a tokenizer on
 * a file of documents, and of Hugging Face's `tokenizers` (npm, one thread)
 * on the same documents when node and the package are installed
 * (bench/tokenize_hf.js). */
#define _POSIX_C_SOURCE 200809L
#include "../red_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char **text;
    size_t *len, n, bytes;
} doc_list;

static void docs_free(doc_list *d) {
    size_t i;
    for (i = 0; i < d->n; i++) free(d->text[i]);
    free(d->text);
    free(d->len);
}

static int docs_add(doc_list *d, const char *s, size_t n) {
    char **t = realloc(d->text, sizeof(char *) * (d->n + 1));
    size_t *l = realloc(d->len, sizeof(size_t) * (d->n + 1));
    if (t) d->text = t;
    if (l) d->len = l;
    if (!t || !l || !(d->text[d->n] = malloc(n + 1))) return -1;
    memcpy(d->text[d->n], s, n);
    d->text[d->n][n] = 0;
    d->len[d->n++] = n;
    d->bytes += n;
    return 0;
}

/* One document per line: a JSON string, an object's "text", GSM8K's
 * "question" + "\n" + "answer", or the line itself (as bench/tokenize_hf.js). */
static red_status read_docs(const char *path, doc_list *d, red_error *err) {
    unsigned char *buf;
    size_t len, pos = 0;
    red_status st;
    memset(d, 0, sizeof *d);
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    while (pos < len && !st) {
        size_t end = pos;
        const char *line = (const char *)buf + pos;
        while (end < len && buf[end] != '\n') end++;
        if (end > pos && (line[0] == '{' || line[0] == '"')) {
            red_json *j;
            const red_json *v, *q, *a;
            if ((st = red_json_parse(line, end - pos, path, &j, err))) break;
            v = j->type == RED_JSON_STRING ? j : red_json_get(j, "text");
            q = red_json_get(j, "question");
            a = red_json_get(j, "answer");
            if (v && v->type == RED_JSON_STRING) st = docs_add(d, v->str, v->len) ? RED_E_NOMEM : RED_OK;
            else if (q && q->type == RED_JSON_STRING) {
                red_sbuf b;
                red_sbuf_init(&b);
                red_sbuf_put(&b, q->str, q->len);
                red_sbuf_puts(&b, "\n");
                if (a && a->type == RED_JSON_STRING) red_sbuf_put(&b, a->str, a->len);
                st = b.failed || docs_add(d, b.p, b.len) ? RED_E_NOMEM : RED_OK;
                red_sbuf_free(&b);
            }
            red_json_free(j);
        } else if (end > pos) {
            size_t k, blank = 1;
            for (k = pos; k < end; k++) blank &= buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r';
            if (!blank) st = docs_add(d, line, end - pos) ? RED_E_NOMEM : RED_OK;
        }
        pos = end + 1;
    }
    free(buf);
    if (st == RED_E_NOMEM) red_error_set(err, st, "%s: out of memory", path);
    if (st) docs_free(d);
    return st;
}

/* The Hugging Face peer, when node, the script and the package are there. */
static void run_peer(const char *tok_path, const char *data, int reps) {
    char json[4096], cmd[9000], line[1024];
    FILE *p;
    int got = 0;
    size_t n = strlen(tok_path);
    if (n + sizeof "/tokenizer.json" > sizeof json) return;  /* no peer for a path this long */
    if (n > 5 && !strcmp(tok_path + n - 5, ".json")) memcpy(json, tok_path, n + 1);
    else {
        memcpy(json, tok_path, n);
        memcpy(json + n, "/tokenizer.json", sizeof "/tokenizer.json");
    }
    if (strchr(json, '\'') || strchr(data, '\'')) return;
    {
        FILE *f = fopen(json, "r");
        if (!f) {
            printf("op=tokenize impl=hf-tokenizers skipped=1 reason=no_tokenizer_json\n");
            return;
        }
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "RAYON_NUM_THREADS=1 node bench/tokenize_hf.js '%s' '%s' %d 2>/dev/null", json, data, reps);
    fflush(stdout);
    if (!(p = popen(cmd, "r"))) return;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        got = 1;
    }
    pclose(p);
    if (!got) printf("op=tokenize impl=hf-tokenizers skipped=1 reason=node_or_bench/tokenize_hf.js_not_found\n");
}

int red_bench_tokenize(const char *tok_path, const char *data, int reps) {
    red_tokenizer *t;
    red_error err;
    doc_list d;
    double t0 = red_time_seconds(), load, load_cpu, best = 1e300, best_cpu = 1e300;
    clock_t c0 = clock();
    int *ids = NULL, cap = 0, r;
    size_t i, ntok = 0;
    if (!tok_path || !data) {
        fprintf(stderr, "red bench tokenize: --tokenizer PATH and --data FILE are required\n");
        return 2;
    }
    if (red_tokenizer_load(&t, tok_path, &err)) {
        fprintf(stderr, "red bench tokenize: %s\n", err.msg);
        return 1;
    }
    load = red_time_seconds() - t0;
    load_cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (read_docs(data, &d, &err)) {
        fprintf(stderr, "red bench tokenize: %s\n", err.msg);
        red_tokenizer_free(t);
        return 1;
    }
    if (reps < 1) reps = 3;
    for (r = 0; r < reps; r++) {
        double a = red_time_seconds(), s, cs;
        clock_t ca = clock();
        ntok = 0;
        for (i = 0; i < d.n; i++) {
            int n = red_tokenize(t, d.text[i], d.len[i], 0, ids, cap);
            if (n > cap) {  /* grow once, encode again */
                free(ids);
                cap = 2 * n;
                if (!(ids = malloc(sizeof(int) * (size_t)cap))) break;
                n = red_tokenize(t, d.text[i], d.len[i], 0, ids, cap);
            }
            if (n < 0) break;
            ntok += (size_t)n;
        }
        s = red_time_seconds() - a;
        cs = (double)(clock() - ca) / CLOCKS_PER_SEC;
        if (s < best) best = s;
        if (cs < best_cpu) best_cpu = cs;
    }
    printf("op=tokenize impl=red threads=1 docs=%zu bytes=%zu tokens=%zu load_seconds=%.3f load_cpu_seconds=%.3f "
           "seconds=%.4f cpu_seconds=%.4f mb_per_s=%.2f mb_per_cpu_s=%.2f tokens_per_s=%.0f\n", d.n, d.bytes, ntok, load,
           load_cpu, best, best_cpu, (double)d.bytes / best / 1e6, (double)d.bytes / best_cpu / 1e6, (double)ntok / best);
    run_peer(tok_path, data, reps);
    free(ids);
    docs_free(&d);
    red_tokenizer_free(t);
    return 0;
}
