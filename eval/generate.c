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

/* The decoding state of one batch of up to B sequences (sequence i is prompt g + i). */
typedef struct {
    red_kv_state kv;
    int *ids, cap;        /* token ids fed to the model: a prompt's, or one per live sequence */
    int *seq, *pos;       /* per fed row: its sequence and position */
    int *cur, *len, *alive;
    int *forced, *n_forced, *at_forced;  /* calculator: up to 64 tokens per sequence to feed instead of the model's */
} gen_state;

static void gen_free(gen_state *G) {
    red_kv_free(&G->kv);
    free(G->ids); free(G->seq); free(G->pos); free(G->cur); free(G->len); free(G->alive);
    free(G->forced); free(G->n_forced); free(G->at_forced);
}

static red_status gen_alloc(gen_state *G, red_model *m, int B, int max_prompt, red_error *err) {
    red_status st;
    memset(G, 0, sizeof *G);
    if ((st = red_kv_alloc(&G->kv, m, B, m->cfg.max_pos, max_prompt > B ? max_prompt : B, err))) return st;
    G->cap = B;  /* the decode loop feeds one token per live sequence through ids */
    G->ids = malloc(sizeof(int) * (size_t)G->cap);
    G->seq = malloc(sizeof(int) * (size_t)(max_prompt > B ? max_prompt : B));
    G->pos = malloc(sizeof(int) * (size_t)(max_prompt > B ? max_prompt : B));
    G->cur = malloc(sizeof(int) * (size_t)B);
    G->len = malloc(sizeof(int) * (size_t)B);
    G->alive = malloc(sizeof(int) * (size_t)B);
    G->forced = malloc(sizeof(int) * 64 * (size_t)B);
    G->n_forced = calloc((size_t)B, sizeof(int));
    G->at_forced = calloc((size_t)B, sizeof(int));
    if (!G->ids || !G->seq || !G->pos || !G->cur || !G->len || !G->alive || !G->forced || !G->n_forced || !G->at_forced) {
        gen_free(G);
        return red_error_set(err, RED_E_NOMEM, "generate: out of memory");
    }
    return RED_OK;
}

/* Prefills prompt g + i as sequence i, its first generated token from its last row. */
static red_status gen_prefill(red_model *m, const red_tokenizer *tok, const red_gen_opts *o, gen_state *G, int max_prompt,
                              const char *p, int g, int i, red_sbuf *out, red_error *err) {
    int k = red_tokenize(tok, p, strlen(p), o->add_bos, G->ids, G->cap), start, j;
    red_status st;
    if (k > G->cap) {
        int *bigger = realloc(G->ids, sizeof(int) * (size_t)k);
        if (!bigger) return red_error_set(err, RED_E_NOMEM, "generate: out of memory");
        G->ids = bigger;
        G->cap = k;
        red_tokenize(tok, p, strlen(p), o->add_bos, G->ids, G->cap);
    }
    if (k < 1) return red_error_set(err, RED_E_ARG, "generate: prompt %d is empty (use a BOS token)", g + i);
    start = k > max_prompt ? k - max_prompt : 0;  /* left truncation */
    for (j = 0; j < k - start; j++) {
        G->seq[j] = i;
        G->pos[j] = j;
    }
    if ((st = red_kv_forward(m, &G->kv, k - start, G->ids + start, G->seq, G->pos)))
        return red_error_set(err, st, "generate: forward failed on prompt %d: %s", g + i, red_kv_failure(st));
    G->len[i] = k - start;
    G->cur[i] = argmax_first(G->kv.logits + (size_t)(k - start - 1) * m->cfg.vocab, m->cfg.vocab);
    G->alive[i] = 1;
    G->n_forced[i] = G->at_forced[i] = 0;
    out->len = 0;
    red_sbuf_puts(out, "");
    return RED_OK;
}

/* Appends each live sequence's chosen token to its text, ends the sequences that hit EOS, a stop
 * string or max_gen, and queues the calculator's result; returns how many sequences live on. */
static int gen_take_tokens(const red_tokenizer *tok, const red_gen_opts *o, gen_state *G, int nb, int step, int max_gen,
                           red_sbuf *outs) {
    int i, live = 0;
    for (i = 0; i < nb; i++) {
        char b[RED_TOKEN_MAX_BYTES];
        int nbytes;
        if (!G->alive[i]) continue;
        if (G->cur[i] == red_tokenizer_eos(tok)) { G->alive[i] = 0; continue; }
        nbytes = red_token_bytes(tok, G->cur[i], b);
        red_sbuf_put(&outs[i], b, (size_t)nbytes);
        if (step + 1 >= max_gen || hit_stop(&outs[i], (size_t)nbytes, o->stops, o->n_stops)) {
            G->alive[i] = 0;
            continue;
        }
        if (o->calculator && G->at_forced[i] == G->n_forced[i]) {
            char r[64];
            if (red_gsm8k_calculator(outs[i].p, outs[i].len, r, sizeof r)) {
                G->n_forced[i] = red_tokenize(tok, r, strlen(r), 0, G->forced + 64 * i, 64);
                if (G->n_forced[i] > 64) G->n_forced[i] = 64;
                G->at_forced[i] = 0;
            }
        }
        live++;
    }
    return live;
}

/* Feeds every live sequence's token in one forward and picks each one's next (forced or greedy). */
static red_status gen_decode_step(red_model *m, gen_state *G, int nb, red_error *err) {
    const int V = m->cfg.vocab;
    int i, rows = 0;
    red_status st;
    for (i = 0; i < nb; i++)
        if (G->alive[i]) {
            G->seq[rows] = i;
            G->pos[rows] = G->len[i]++;
            G->ids[rows] = G->cur[i];
            rows++;
        }
    if ((st = red_kv_forward(m, &G->kv, rows, G->ids, G->seq, G->pos)))
        return red_error_set(err, st, "generate: forward failed: %s", red_kv_failure(st));
    for (i = 0; i < rows; i++) {
        int q = G->seq[i];
        G->cur[q] = G->at_forced[q] < G->n_forced[q] ? G->forced[64 * q + G->at_forced[q]++]
                                                     : argmax_first(G->kv.logits + (size_t)i * V, V);
    }
    return RED_OK;
}

red_status red_generate_until(red_model *m, const red_tokenizer *tok, const char *const *prompts, int n,
                              const red_gen_opts *o, red_sbuf *outs, red_error *err) {
    const int V = m->cfg.vocab, B = o->batch > 0 ? o->batch : 8;
    int max_gen = o->max_gen > 0 ? o->max_gen : 256, max_prompt = m->cfg.max_pos - max_gen;
    int g, i, done_total = 0;
    gen_state G;
    red_status st = RED_OK;
    if (max_prompt < 1)
        return red_error_set(err, RED_E_ARG, "generate: max_gen %d leaves no room for a prompt in %d positions",
                             max_gen, m->cfg.max_pos);
    if (red_tokenizer_vocab(tok) > V)
        return red_error_set(err, RED_E_ARG, "generate: the tokenizer has %d ids but the model only %d", red_tokenizer_vocab(tok), V);
    if ((st = gen_alloc(&G, m, B, max_prompt, err))) return st;
    for (g = 0; g < n; g += B) {
        int nb = n - g < B ? n - g : B, step;
        for (i = 0; i < nb; i++)
            if ((st = gen_prefill(m, tok, o, &G, max_prompt, prompts[g + i], g, i, &outs[g + i], err))) goto out;
        for (step = 0; gen_take_tokens(tok, o, &G, nb, step, max_gen, outs + g); step++)
            if ((st = gen_decode_step(m, &G, nb, err))) goto out;
        for (i = 0; i < nb; i++) {  /* cut at the stop strings */
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
    gen_free(&G);
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
