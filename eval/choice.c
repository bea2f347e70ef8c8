/* eval/choice.c - lm-eval's multiple_choice scoring (eval.md 1.3 and 1.5):
 * loglikelihood requests (context, " " + choice), split by the context's own
 * token count on the joint encoding, with trailing context whitespace moved
 * to the continuation; summed log-probabilities; acc and acc_norm (divided by
 * the choice's length in Unicode code points); WinoGrande-style docs whose
 * choices are contexts sharing one continuation (acc only).
 * Data (one JSON object per line):
 *   {"query": "...", "choices": ["...", ...], "gold": k}
 *   {"contexts": ["...", ...], "continuation": "...", "gold": k}
 */
#include "../red_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void red_mc_free(red_mc_doc *docs, int n) {
    int i, k;
    if (!docs) return;
    for (i = 0; i < n; i++) {
        free(docs[i].text);
        if (docs[i].options)
            for (k = 0; k < docs[i].n_options; k++) free(docs[i].options[k]);
        free(docs[i].options);
    }
    free(docs);
}

red_status red_mc_load(const char *path, red_mc_doc **docs, int *n, red_error *err) {
    red_json **items;
    size_t count, i, *line;
    red_status st;
    *docs = NULL;
    *n = 0;
    if ((st = red_jsonl_read_lines(path, &items, &count, &line, err))) return st;
    if (!count) {  /* scoring nothing would print a score of 0 */
        red_jsonl_free(items, count);
        free(line);
        return red_error_set(err, RED_E_FORMAT, "%s: no documents (the file is empty or has only blank lines)", path);
    }
    *docs = calloc(count, sizeof **docs);
    if (!*docs) {
        red_jsonl_free(items, count);
        free(line);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
    }
    for (i = 0; i < count; i++) {
        red_mc_doc *d = &(*docs)[i];
        const red_json *q = red_json_get(items[i], "query"), *ch = red_json_get(items[i], "choices"),
                       *cx = red_json_get(items[i], "contexts"), *ct = red_json_get(items[i], "continuation"),
                       *g = red_json_get(items[i], "gold"), *opts, *o;
        int k = 0;
        d->multi_context = cx != NULL;
        opts = d->multi_context ? cx : ch;
        q = d->multi_context ? ct : q;
        if (!q || q->type != RED_JSON_STRING || !opts || opts->type != RED_JSON_ARRAY || opts->count < 1 || !g ||
            g->type != RED_JSON_NUMBER || !g->is_int || g->ival < 0 || g->ival >= (int64_t)opts->count) {
            st = red_error_set(err, RED_E_FORMAT,
                               "%s:%zu: expected {\"query\": string, \"choices\": [strings], \"gold\": index} or "
                               "{\"contexts\": [strings], \"continuation\": string, \"gold\": index}",
                               path, line[i]);
            goto fail;
        }
        d->gold = (int)g->ival;
        d->text = red_strndup(q->str, q->len);
        d->options = calloc(opts->count, sizeof(char *));
        d->n_options = (int)opts->count;
        if (!d->text || !d->options) goto oom;
        for (o = opts->child; o; o = o->next, k++) {
            if (o->type != RED_JSON_STRING) {
                st = red_error_set(err, RED_E_FORMAT, "%s:%zu: option %d is not a string", path, line[i], k);
                goto fail;
            }
            if (!(d->options[k] = red_strndup(o->str, o->len))) goto oom;
        }
    }
    red_jsonl_free(items, count);
    free(line);
    *n = (int)count;
    return RED_OK;
oom:
    st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
fail:
    red_jsonl_free(items, count);
    free(line);
    red_mc_free(*docs, (int)count);
    *docs = NULL;
    return st;
}

/* Tokens of one request: context ids then continuation ids, as lm-eval's
 * _encode_pair builds them. Returns the total; *n_ctx gets the split. */
static int encode_pair(const red_tokenizer *tok, const char *ctx, const char *cont, int add_bos, int **buf, int *cap,
                       int *n_ctx, red_sbuf *scratch) {
    size_t cl = strlen(ctx), k;
    int n_whole, n_c;
    /* move the context's trailing whitespace to the front of the continuation */
    while (cl > 0 && (ctx[cl - 1] == ' ' || ctx[cl - 1] == '\t' || ctx[cl - 1] == '\n' || ctx[cl - 1] == '\r'))
        cl--;
    scratch->len = 0;
    red_sbuf_put(scratch, ctx, cl);
    k = scratch->len;
    red_sbuf_puts(scratch, ctx + cl);
    red_sbuf_puts(scratch, cont);
    if (scratch->failed) return -1;
    for (;;) {
        n_whole = red_tokenize(tok, scratch->p, scratch->len, add_bos, *buf, *cap);
        if (n_whole <= *cap) break;
        free(*buf);
        *cap = n_whole + 16;
        if (!(*buf = malloc(sizeof(int) * (size_t)*cap))) return -1;
    }
    n_c = red_tokenize(tok, scratch->p, k, add_bos, NULL, 0);
    if (n_c == 0) {  /* empty context: lm-eval uses the prefix token (BOS, else EOS) */
        memmove(*buf + 1, *buf, sizeof(int) * (size_t)n_whole);
        (*buf)[0] = red_tokenizer_bos(tok) >= 0 ? red_tokenizer_bos(tok) : red_tokenizer_eos(tok);
        n_whole++;
        n_c = 1;
    }
    *n_ctx = n_c;
    return n_whole;
}

red_status red_loglikelihood(red_model *m, const red_tokenizer *tok, const char *const *ctx,
                             const char *const *cont, int n, int add_bos, int batch, double *ll, int *greedy,
                             void (*progress)(void *, int, int), void *pctx, red_error *err) {
    const int V = m->cfg.vocab, L = m->cfg.max_pos;
    int B = batch > 0 ? batch : 8, r = 0, *ids = NULL, cap = 0, *all = NULL, *seq = NULL, *pos = NULL,
        *start = NULL, *nctx = NULL, *ntot = NULL, *last = NULL;
    red_kv_state kv;
    red_sbuf scratch;
    red_status st;
    red_sbuf_init(&scratch);
    if ((st = red_kv_alloc(&kv, m, B, L, B * L, err))) return st;
    all = malloc(sizeof(int) * (size_t)B * L);
    seq = malloc(sizeof(int) * (size_t)B * L);
    pos = malloc(sizeof(int) * (size_t)B * L);
    start = malloc(sizeof(int) * (size_t)B);
    nctx = malloc(sizeof(int) * (size_t)B);
    ntot = malloc(sizeof(int) * (size_t)B);
    last = malloc(sizeof(int) * (size_t)B);
    if (!all || !seq || !pos || !start || !nctx || !ntot || !last) {
        st = red_error_set(err, RED_E_NOMEM, "loglikelihood: out of memory");
        goto out;
    }
    while (r < n) {
        int nb = n - r < B ? n - r : B, i, rows = 0;
        for (i = 0; i < nb; i++) {
            int total = encode_pair(tok, ctx[r + i], cont[r + i], add_bos, &ids, &cap, &nctx[i], &scratch), j, first;
            if (total < 0) {
                st = red_error_set(err, RED_E_NOMEM, "loglikelihood: out of memory");
                goto out;
            }
            if (total - nctx[i] < 1) {
                st = red_error_set(err, RED_E_ARG, "loglikelihood: request %d has an empty continuation", r + i);
                goto out;
            }
            for (j = 0; j < total; j++)
                if (ids[j] < 0 || ids[j] >= V) {
                    st = red_error_set(err, RED_E_ARG, "loglikelihood: token %d outside the model's vocabulary", ids[j]);
                    goto out;
                }
            /* (ctx + cont)[-(L+1):][:-1]: left-truncate, drop the last token */
            first = total > L + 1 ? total - (L + 1) : 0;
            start[i] = rows;
            ntot[i] = total - first;  /* tokens kept, including the last (not fed) */
            nctx[i] -= first;
            if (nctx[i] < 1) {
                st = red_error_set(err, RED_E_ARG, "loglikelihood: request %d: the continuation alone exceeds the %d-token window",
                                   r + i, L);
                goto out;
            }
            for (j = 0; j < ntot[i] - 1; j++) {
                all[rows] = ids[first + j];
                seq[rows] = i;
                pos[rows] = j;
                rows++;
            }
            last[i] = ids[first + ntot[i] - 1];  /* the final target is not fed */
        }
        if ((st = red_kv_forward(m, &kv, rows, all, seq, pos))) {
            red_error_set(err, st, "loglikelihood: forward failed: %s", red_kv_failure(st));
            goto out;
        }
        for (i = 0; i < nb; i++) {
            int j, all_greedy = 1;
            double sum = 0.0;
            /* logits row start+j predicts token j+1 of the kept sequence */
            for (j = nctx[i] - 1; j < ntot[i] - 1; j++) {
                const float *z = kv.logits + (size_t)(start[i] + j) * V;
                int target = j + 1 < ntot[i] - 1 ? all[start[i] + j + 1] : last[i], k, best = 0;
                double mx = z[0], se = 0.0;
                for (k = 1; k < V; k++) {
                    if (z[k] > mx) mx = z[k];
                    if (z[k] > z[best]) best = k;
                }
                for (k = 0; k < V; k++) se += exp((double)z[k] - mx);
                sum += (double)z[target] - mx - log(se);
                if (best != target) all_greedy = 0;
            }
            if (!isfinite(sum)) {  /* NaN compares false: it would be scored as a valid choice */
                st = red_error_set(err, RED_E_FORMAT, "loglikelihood: request %d: the log-likelihood is %s (the model's "
                                   "logits are not finite)", r + i, isnan(sum) ? "NaN" : "infinite");
                goto out;
            }
            ll[r + i] = sum;
            greedy[r + i] = all_greedy;
        }
        r += nb;
        if (progress) progress(pctx, r, n);
    }
    st = RED_OK;
out:
    red_kv_free(&kv);
    red_sbuf_free(&scratch);
    free(ids); free(all); free(seq); free(pos); free(start); free(nctx); free(ntot); free(last);
    return st;
}

/* Code points of a UTF-8 string (Python's len). */
static double utf8_chars(const char *s) {
    double n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

void red_mc_score(const red_mc_doc *d, const double *ll, int *pred, int *pred_norm) {
    int k;
    *pred = 0;
    *pred_norm = 0;
    for (k = 1; k < d->n_options; k++)
        if (ll[k] > ll[*pred]) *pred = k;  /* np.argmax: first maximum */
    if (d->multi_context) {
        *pred_norm = *pred;
        return;
    }
    for (k = 1; k < d->n_options; k++) {
        double a = ll[k] / utf8_chars(d->options[k]), b = ll[*pred_norm] / utf8_chars(d->options[*pred_norm]);
        if (a > b) *pred_norm = k;
    }
}

const char *red_mc_request(const red_mc_doc *d, int k, const char **cont) {
    *cont = d->multi_context ? d->text : d->options[k];
    return d->multi_context ? d->options[k] : d->text;
}

red_status red_mc_eval(red_model *m, const red_tokenizer *tok, const red_mc_doc *docs, int n, int add_bos, int batch,
                       double *ll, int *pred, int *pred_norm, void (*progress)(void *, int, int), void *pctx,
                       red_error *err) {
    int i, k, q = 0, n_req = 0;
    const char **ctx, **cont;
    char **owned;
    int *greedy;
    double *lls = ll;
    red_status st;
    for (i = 0; i < n; i++) n_req += docs[i].n_options;
    ctx = malloc(sizeof *ctx * (size_t)(n_req ? n_req : 1));
    cont = malloc(sizeof *cont * (size_t)(n_req ? n_req : 1));
    owned = calloc((size_t)(n_req ? n_req : 1), sizeof *owned);
    greedy = malloc(sizeof *greedy * (size_t)(n_req ? n_req : 1));
    if (!lls) lls = malloc(sizeof *lls * (size_t)(n_req ? n_req : 1));
    if (!ctx || !cont || !owned || !greedy || !lls) {
        st = red_error_set(err, RED_E_NOMEM, "choice: out of memory for %d requests", n_req);
        goto out;
    }
    for (i = 0; i < n; i++)
        for (k = 0; k < docs[i].n_options; k++, q++) {
            const char *c;
            ctx[q] = red_mc_request(&docs[i], k, &c);
            owned[q] = malloc(strlen(c) + 2);
            if (!owned[q]) {
                st = red_error_set(err, RED_E_NOMEM, "choice: out of memory");
                goto out;
            }
            owned[q][0] = ' ';  /* target_delimiter */
            strcpy(owned[q] + 1, c);
            cont[q] = owned[q];
        }
    if ((st = red_loglikelihood(m, tok, ctx, cont, n_req, add_bos, batch, lls, greedy, progress, pctx, err))) goto out;
    for (i = 0, q = 0; i < n; q += docs[i].n_options, i++) red_mc_score(&docs[i], lls + q, &pred[i], &pred_norm[i]);
out:
    if (owned)
        for (q = 0; q < n_req; q++) free(owned[q]);
    free(owned); free(ctx); free(cont); free(greedy);
    if (lls != ll) free(lls);
    return st;
}
