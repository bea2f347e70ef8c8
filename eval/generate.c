/* eval/generate.c - lm-eval's generate_until on red's KV cache: greedy
 * decoding of batches of prompts, stopping when a stop string appears in the
 * decoded text or EOS is produced or max_gen tokens are reached, then cutting
 * at the first occurrence of each stop string in turn (eval.md 1.6). Prompts
 * are left-truncated to max_position_embeddings - max_gen tokens. */
#include "../red_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Did the text gain an occurrence of a stop string that ends in its last
 * `added` bytes? (Occurrences wholly before were checked on earlier steps.) */
static int hit_stop(const red_sbuf *s, size_t added, const char *const *stops, int n_stops) {
    int k;
    for (k = 0; k < n_stops; k++) {
        size_t sl = strlen(stops[k]), from, i;
        if (!sl || s->len < sl) continue;
        from = s->len >= sl + added ? s->len - sl - added + 1 : 0;
        for (i = from; i + sl <= s->len; i++)
            if (memcmp(s->p + i, stops[k], sl) == 0) return 1;
    }
    return 0;
}

static int argmax_first(const float *x, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Recursive descent for the calculator: numbers, + - * / and parentheses. */
static double calc_expr(const char **p, int *ok);
static double calc_number(const char **p, int *ok) {
    char *end;
    double v;
    while (**p == ' ') (*p)++;
    if (**p == '(') {
        (*p)++;
        v = calc_expr(p, ok);
        while (**p == ' ') (*p)++;
        if (**p != ')') *ok = 0;
        else (*p)++;
        return v;
    }
    v = strtod(*p, &end);
    if (end == *p) *ok = 0;
    *p = end;
    return v;
}
static double calc_term(const char **p, int *ok) {
    double v = calc_number(p, ok);
    for (;;) {
        while (**p == ' ') (*p)++;
        if (**p == '*') { (*p)++; v *= calc_number(p, ok); }
        else if (**p == '/') {
            double d;
            (*p)++;
            d = calc_number(p, ok);
            if (d == 0.0) *ok = 0;
            else v /= d;
        } else return v;
    }
}
static double calc_expr(const char **p, int *ok) {
    double v = calc_term(p, ok);
    for (;;) {
        while (**p == ' ') (*p)++;
        if (**p == '+') { (*p)++; v += calc_term(p, ok); }
        else if (**p == '-') { (*p)++; v -= calc_term(p, ok); }
        else return v;
    }
}

int red_gsm8k_calculator(const char *text, size_t len, char *out, size_t cap) {
    size_t i, open = (size_t)-1;
    red_sbuf view;
    const red_sbuf *s = &view;
    char expr[128];
    const char *p;
    int ok = 1;
    double v;
    view.p = (char *)text;
    view.len = len;
    if (!s->len || s->p[s->len - 1] != '=') return 0;
    for (i = s->len - 1; i >= 2; i--) {
        if (s->p[i - 1] == '>' && s->p[i - 2] == '>') return 0;  /* the last annotation is closed */
        if (s->p[i - 1] == '<' && s->p[i - 2] == '<') { open = i; break; }
    }
    if (open == (size_t)-1 || s->len - 1 - open >= sizeof expr || s->len - 1 == open) return 0;
    memcpy(expr, s->p + open, s->len - 1 - open);
    expr[s->len - 1 - open] = 0;
    p = expr;
    v = calc_expr(&p, &ok);
    while (*p == ' ') p++;
    if (!ok || *p || v != v) return 0;
    if (v == (double)(long long)v && v < 9e15 && v > -9e15) snprintf(out, cap, "%lld>>", (long long)v);
    else snprintf(out, cap, "%.6g>>", v);
    return 1;
}

red_status red_generate_until(red_model *m, const red_tokenizer *tok, const char *const *prompts, int n,
                              const red_gen_opts *o, red_sbuf *outs, red_error *err) {
    const int V = m->cfg.vocab, B = o->batch > 0 ? o->batch : 8;
    int max_gen = o->max_gen > 0 ? o->max_gen : 256, max_prompt = m->cfg.max_pos - max_gen;
    int g, i, done_total = 0, *ids = NULL, *seq = NULL, *pos = NULL, *cur = NULL, *len = NULL, *alive = NULL,
              cap = 0, *forced = NULL, *n_forced = NULL, *at_forced = NULL;
    red_kv_state kv;
    red_status st = RED_OK;
    if (max_prompt < 1)
        return red_error_set(err, RED_E_ARG, "generate: max_gen %d leaves no room for a prompt in %d positions",
                             max_gen, m->cfg.max_pos);
    if (red_tokenizer_vocab(tok) > V)
        return red_error_set(err, RED_E_ARG, "generate: the tokenizer has %d ids but the model only %d", red_tokenizer_vocab(tok), V);
    if ((st = red_kv_alloc(&kv, m, B, m->cfg.max_pos, max_prompt > B ? max_prompt : B, err))) return st;
    cap = B;  /* the decode loop feeds one token per live sequence through ids */
    ids = malloc(sizeof(int) * (size_t)cap);
    seq = malloc(sizeof(int) * (size_t)(max_prompt > B ? max_prompt : B));
    pos = malloc(sizeof(int) * (size_t)(max_prompt > B ? max_prompt : B));
    cur = malloc(sizeof(int) * (size_t)B);
    len = malloc(sizeof(int) * (size_t)B);
    alive = malloc(sizeof(int) * (size_t)B);
    forced = malloc(sizeof(int) * 64 * (size_t)B);  /* calculator: tokens to feed instead of the model's */
    n_forced = calloc((size_t)B, sizeof(int));
    at_forced = calloc((size_t)B, sizeof(int));
    if (!ids || !seq || !pos || !cur || !len || !alive || !forced || !n_forced || !at_forced) {
        st = red_error_set(err, RED_E_NOMEM, "generate: out of memory");
        goto out;
    }
    for (g = 0; g < n; g += B) {
        int nb = n - g < B ? n - g : B, step, live = 0;
        for (i = 0; i < nb; i++) {  /* prefill each prompt, first token from its last row */
            const char *p = prompts[g + i];
            int k = red_tokenize(tok, p, strlen(p), o->add_bos, ids, cap), start, j;
            if (k > cap) {
                int *bigger = realloc(ids, sizeof(int) * (size_t)k);
                if (!bigger) {
                    st = red_error_set(err, RED_E_NOMEM, "generate: out of memory");
                    goto out;
                }
                ids = bigger;
                cap = k;
                red_tokenize(tok, p, strlen(p), o->add_bos, ids, cap);
            }
            if (k < 1) {
                st = red_error_set(err, RED_E_ARG, "generate: prompt %d is empty (use a BOS token)", g + i);
                goto out;
            }
            start = k > max_prompt ? k - max_prompt : 0;  /* left truncation */
            for (j = 0; j < k - start; j++) {
                seq[j] = i;
                pos[j] = j;
            }
            if ((st = red_kv_forward(m, &kv, k - start, ids + start, seq, pos))) {
                red_error_set(err, st, "generate: forward failed on prompt %d: %s", g + i, red_kv_failure(st));
                goto out;
            }
            len[i] = k - start;
            cur[i] = argmax_first(kv.logits + (size_t)(k - start - 1) * V, V);
            alive[i] = 1;
            n_forced[i] = at_forced[i] = 0;
            outs[g + i].len = 0;
            red_sbuf_puts(&outs[g + i], "");
        }
        for (step = 0;; step++) {
            int rows = 0;
            live = 0;
            for (i = 0; i < nb; i++) {  /* take the token just chosen */
                char b[RED_TOKEN_MAX_BYTES];
                int nbytes;
                if (!alive[i]) continue;
                if (cur[i] == red_tokenizer_eos(tok)) { alive[i] = 0; continue; }
                nbytes = red_token_bytes(tok, cur[i], b);
                red_sbuf_put(&outs[g + i], b, (size_t)nbytes);
                if (step + 1 >= max_gen || hit_stop(&outs[g + i], (size_t)nbytes, o->stops, o->n_stops)) {
                    alive[i] = 0;
                    continue;
                }
                if (o->calculator && at_forced[i] == n_forced[i]) {
                    char r[64];
                    if (red_gsm8k_calculator(outs[g + i].p, outs[g + i].len, r, sizeof r)) {
                        n_forced[i] = red_tokenize(tok, r, strlen(r), 0, forced + 64 * i, 64);
                        if (n_forced[i] > 64) n_forced[i] = 64;
                        at_forced[i] = 0;
                    }
                }
                live++;
            }
            if (!live) break;
            for (i = 0; i < nb; i++)
                if (alive[i]) {
                    seq[rows] = i;
                    pos[rows] = len[i]++;
                    ids[rows] = cur[i];
                    rows++;
                }
            if ((st = red_kv_forward(m, &kv, rows, ids, seq, pos))) {
                red_error_set(err, st, "generate: forward failed: %s", red_kv_failure(st));
                goto out;
            }
            for (i = 0; i < rows; i++) {
                int q = seq[i];
                cur[q] = at_forced[q] < n_forced[q] ? forced[64 * q + at_forced[q]++]
                                                    : argmax_first(kv.logits + (size_t)i * V, V);
            }
        }
        for (i = 0; i < nb; i++) {
            red_sbuf *s = &outs[g + i];
            if (s->failed) {
                st = red_error_set(err, RED_E_NOMEM, "generate: out of memory");
                goto out;
            }
            s->len = red_cut_at_stops(s->p, s->len, o->stops, o->n_stops);
            s->p[s->len] = 0;
        }
        done_total += nb;
        if (o->progress) o->progress(o->progress_ctx, done_total, n);
    }
out:
    red_kv_free(&kv);
    free(ids); free(seq); free(pos); free(cur); free(len); free(alive);
    free(forced); free(n_forced); free(at_forced);
    return st;
}

red_status red_gsm8k_run(red_model *m, const red_tokenizer *tok, red_gsm8k_task task, const red_gsm8k_doc *train,
                         int n_train, int shots, const red_gsm8k_doc *docs, int n, const red_gen_opts *go,
                         red_sbuf *prompts, red_sbuf *outs, red_error *err) {
    red_gen_opts o = *go;
    red_pyrandom rng;
    int64_t shot_idx[64];
    const char **pp = malloc(sizeof *pp * (size_t)(n ? n : 1));
    red_sbuf *pr = prompts ? prompts : malloc(sizeof *pr * (size_t)(n ? n : 1));
    red_status st = RED_OK;
    int i, k = task == RED_GSM8K ? shots : 0;
    if (!pp || !pr) {
        free(pp);
        if (!prompts) free(pr);
        return red_error_set(err, RED_E_NOMEM, "gsm8k: out of memory for %d prompts", n);
    }
    if (k > 64 || (k > 0 && (!train || n_train < k))) {
        free(pp);
        if (!prompts) free(pr);
        return red_error_set(err, RED_E_ARG, "gsm8k: %d shots need a few-shot set of at least that many docs (<= 64)", k);
    }
    red_pyrandom_seed(&rng, 1234);  /* re-seeded once per task, one draw per doc in order */
    for (i = 0; i < n; i++) {
        red_sbuf_init(&pr[i]);
        red_sbuf_init(&outs[i]);
        if (k > 0) red_pyrandom_sample(&rng, n_train, k, shot_idx);
        red_gsm8k_prompt(task, train, shot_idx, k, docs[i].question, &pr[i]);
        if (pr[i].failed) st = red_error_set(err, RED_E_NOMEM, "gsm8k: out of memory");
        pp[i] = pr[i].p;
    }
    o.stops = red_gsm8k_stops(task, &o.n_stops);
    if (st == RED_OK) st = red_generate_until(m, tok, pp, n, &o, outs, err);
    if (!prompts) {
        for (i = 0; i < n; i++) red_sbuf_free(&pr[i]);
        free(pr);
    }
    free(pp);
    return st;
}
