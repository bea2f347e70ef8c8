/* reproduce.c - `red reproduce`: the paper's experiment (method.md §E) on a
 * teacher: distillation data (mostly general corpus, a minority of reasoning
 * problems, the teacher's task format), students with every init and several
 * seeds at an equal token budget, the GSM8K-style and multiple-choice
 * harnesses on held-out test splits (accuracy by number of steps, and along
 * training), eRank per layer at init and after, projection spectra, and a
 * report (report.md, results.json, SVG plots drawn by eval/svg.c).
 *
 * Layout of OUT: data/ (generated test and distillation files), teacher.json,
 * runs/<init>-s<seed>/ (the distillation state, the student model and
 * result.json, written last: a run with result.json is done and skipped on
 * the next invocation, a run with only a state resumes), results.json,
 * report.md, *.svg. */
#include "red_internal.h"

#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 6

typedef struct {
    red_reasoning_opts fmt;   /* the teacher's task format */
    red_world_opts world;
} task_format;

typedef struct {
    red_gsm8k_doc *docs[MAX_STEPS];
    int n[MAX_STEPS], max_gen[MAX_STEPS];
    red_mc_doc *mc;
    int n_mc;
} test_sets;

#define LOSS_SMOOTH 5  /* logged points in the trailing mean of the loss curve */

static void say(const red_repro_opts *o, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->say) o->say(o->say_ctx, msg);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* The teacher's task format from TEACHER/red_tasks.json (defaults when absent). */
static red_status read_format(const char *dir, task_format *f, red_error *err) {
    char path[2048];
    unsigned char *buf;
    size_t len;
    red_json *j;
    const red_json *v;
    red_status st;
    memset(f, 0, sizeof *f);
    f->fmt.max_number = 100;
    f->fmt.ops = "+-*/";
    f->world.world_seed = 1;
    f->world.n_entities = 48;
    snprintf(path, sizeof path, "%s/red_tasks.json", dir);
    if (!file_exists(path)) return RED_OK;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    st = red_json_parse((const char *)buf, len, path, &j, err);
    free(buf);
    if (st) return st;
    if ((v = red_json_get(j, "solution")) && v->type == RED_JSON_STRING) f->fmt.restate = !strcmp(v->str, "restate");
    if ((v = red_json_get(j, "keyed")) && (v->type == RED_JSON_TRUE || v->type == RED_JSON_FALSE)) f->fmt.keyed = v->type == RED_JSON_TRUE;
    if ((v = red_json_get(j, "max_number")) && v->is_int) f->fmt.max_number = v->ival;
    if ((v = red_json_get(j, "world_seed")) && v->is_int) f->world.world_seed = (uint64_t)v->ival;
    if ((v = red_json_get(j, "entities")) && v->is_int) f->world.n_entities = (int)v->ival;
    red_json_free(j);
    return RED_OK;
}

/* ------------------------------------------------------------------ data */

static red_status write_sbuf(const char *path, red_sbuf *b, red_error *err) {
    if (b->failed) return red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
    return red_write_file_atomic(path, b->p ? b->p : "", b->len, err);
}

/* Test files per step count and the choice test; distillation corpus and reasoning. */
static red_status make_data(const red_repro_opts *o, const task_format *f, red_error *err) {
    char path[2048];
    red_sbuf b;
    red_reasoning_opts ro = f->fmt;
    red_world_opts wo = f->world;
    red_status st = RED_OK;
    int k;
    double corpus_bytes;
    for (k = 1; k <= MAX_STEPS && st == RED_OK; k++) {
        red_sbuf_init(&b);
        red_sbuf_puts(&b, "");
        ro.split = RED_SPLIT_TEST; ro.n = o->per_step; ro.seed = 5; ro.min_steps = ro.max_steps = k;
        snprintf(path, sizeof path, "%s/data/test_steps%d.jsonl", o->out, k);
        if (!(st = red_tasks_reasoning(&ro, &b, err))) st = write_sbuf(path, &b, err);
        red_sbuf_free(&b);
    }
    if (st) return st;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    wo.split = RED_SPLIT_TEST; wo.n = o->n_choice; wo.seed = 5;
    snprintf(path, sizeof path, "%s/data/test_choice.jsonl", o->out);
    if (!(st = red_tasks_choice(&wo, &b, err))) st = write_sbuf(path, &b, err);
    red_sbuf_free(&b);
    if (st) return st;
    /* distillation: general corpus + reasoning (distill split, 1-6 steps) at the mix by bytes (= tokens) */
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    wo.split = RED_SPLIT_TRAIN; wo.n = o->corpus_lines; wo.seed = 21;
    snprintf(path, sizeof path, "%s/data/distill_corpus.txt", o->out);
    if (!(st = red_tasks_corpus(&wo, &b, err))) st = write_sbuf(path, &b, err);
    corpus_bytes = (double)b.len;
    red_sbuf_free(&b);
    if (st) return st;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    ro.split = RED_SPLIT_DISTILL; ro.n = 200; ro.seed = 21; ro.min_steps = 1; ro.max_steps = MAX_STEPS;
    if ((st = red_tasks_reasoning(&ro, &b, err))) {
        red_sbuf_free(&b);
        return st;
    }
    {   /* problems so that reasoning is `mix` of the bytes */
        double per = (double)b.len / 200.0, want = o->mix / (1.0 - o->mix) * corpus_bytes;
        ro.n = (int64_t)(want / per) + 1;
    }
    b.len = 0;
    snprintf(path, sizeof path, "%s/data/distill_reasoning.jsonl", o->out);
    if (o->mix > 0 && !(st = red_tasks_reasoning(&ro, &b, err))) st = write_sbuf(path, &b, err);
    red_sbuf_free(&b);
    return st;
}

static red_status load_tests(const red_repro_opts *o, const red_tokenizer *tok, test_sets *t, red_error *err) {
    char path[2048];
    int k, i;
    red_status st;
    memset(t, 0, sizeof *t);
    for (k = 0; k < MAX_STEPS; k++) {
        snprintf(path, sizeof path, "%s/data/test_steps%d.jsonl", o->out, k + 1);
        if ((st = red_gsm8k_load(path, &t->docs[k], &t->n[k], err))) return st;
        t->max_gen[k] = 16;
        for (i = 0; i < t->n[k]; i++) {  /* room for the longest reference solution, plus a margin */
            int len = red_tokenize(tok, t->docs[k][i].answer, strlen(t->docs[k][i].answer), 0, NULL, 0) + 24;
            if (len > t->max_gen[k]) t->max_gen[k] = len;
        }
    }
    if (o->general_file) {  /* a real benchmark for the general-ability column */
        red_lm_set g;
        if ((st = red_lm_load((red_lm_task)o->general_task, o->general_file, 0, &g, err))) return st;
        t->mc = g.docs;
        t->n_mc = g.n;
        free(g.subject);
        return RED_OK;
    }
    snprintf(path, sizeof path, "%s/data/test_choice.jsonl", o->out);
    return red_mc_load(path, &t->mc, &t->n_mc, err);
}

/* "TASK:FILE" of --general, "" for the built-in items: teacher.json records
 * it so that a resumed run cannot mix scores of two test sets. */
static void general_tag(const red_repro_opts *o, char *tag, size_t n) {
    if (o->general_file) snprintf(tag, n, "%s:%s", red_lm_task_name((red_lm_task)o->general_task), o->general_file);
    else tag[0] = 0;
}

static void free_tests(test_sets *t) {
    int k;
    for (k = 0; k < MAX_STEPS; k++) red_gsm8k_free(t->docs[k], t->n[k]);
    red_mc_free(t->mc, t->n_mc);
}

/* ------------------------------------------------------------------ evaluation */

/* Strict exact match per step count (k in [lo, hi]); acc[k-1] in [0, 1]. */
static red_status eval_reasoning(red_model *m, const red_tokenizer *tok, const test_sets *t, int lo, int hi,
                                 double *acc, red_error *err) {
    int k, i;
    red_status st = RED_OK;
    for (k = lo; k <= hi && st == RED_OK; k++) {
        red_sbuf *outs = calloc((size_t)(t->n[k - 1] ? t->n[k - 1] : 1), sizeof *outs);
        red_gen_opts go;
        int ok = 0;
        if (!outs) return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
        memset(&go, 0, sizeof go);
        go.max_gen = t->max_gen[k - 1];
        if (go.max_gen > m->cfg.max_pos / 2) go.max_gen = m->cfg.max_pos / 2;
        go.batch = 32;
        st = red_gsm8k_run(m, tok, RED_GSM8K, NULL, 0, 0, t->docs[k - 1], t->n[k - 1], &go, NULL, outs, err);
        for (i = 0; i < t->n[k - 1]; i++) {
            if (st == RED_OK) {
                red_gsm8k_scored sc;
                red_gsm8k_score_one(RED_GSM8K, outs[i].p ? outs[i].p : "", t->docs[k - 1][i].answer, &sc);
                ok += sc.strict_ok;
                red_gsm8k_scored_free(&sc);
            }
            red_sbuf_free(&outs[i]);
        }
        free(outs);
        acc[k - 1] = t->n[k - 1] ? (double)ok / t->n[k - 1] : 0.0;
    }
    return st;
}

static red_status eval_choice(red_model *m, const red_tokenizer *tok, const test_sets *t, double *acc, red_error *err) {
    int *pred = malloc(sizeof(int) * 2 * (size_t)(t->n_mc ? t->n_mc : 1)), i, ok = 0;
    red_status st;
    if (!pred) return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
    st = red_mc_eval(m, tok, t->mc, t->n_mc, 0, 16, NULL, pred, pred + t->n_mc, NULL, NULL, err);
    for (i = 0; i < t->n_mc; i++) ok += pred[i] == t->mc[i].gold;
    *acc = t->n_mc ? (double)ok / t->n_mc : 0.0;
    free(pred);
    return st;
}

/* Accuracy over the 2-4-step problems, the headline. */
static double acc_2_4(const double *acc, const test_sets *t) {
    double s = 0.0;
    int k, n = 0;
    for (k = 2; k <= 4; k++) {
        s += acc[k - 1] * t->n[k - 1];
        n += t->n[k - 1];
    }
    return n ? s / n : 0.0;
}

/* ------------------------------------------------------------------ eRank and indistinguishability */

static const char *const hidden_keys[] = {"erank", "cos_mean", "indist_0.95", "indist_0.99"};

static double hidden_value(const red_layer_metrics *m, int key) {
    return key == 0 ? m->erank : key == 1 ? m->ind.cos_mean : m->ind.indist[key - 2];
}

static void hidden_nan(red_layer_metrics *m, int n) {
    int i;
    memset(m, 0, (size_t)n * sizeof *m);
    for (i = 0; i < n; i++) m[i].erank = m[i].ind.cos_mean = m[i].ind.indist[0] = m[i].ind.indist[1] = NAN;
}

/* The curve's points measured by earlier invocations: hidden_curve.txt, "segment erank cos i95 i99" lines. */
static void read_hidden_curve(const char *dir, red_layer_metrics *hid, int n_seg) {
    char path[2304];
    FILE *f;
    int sg;
    double v[4];
    snprintf(path, sizeof path, "%s/hidden_curve.txt", dir);
    if (!(f = fopen(path, "r"))) return;
    while (fscanf(f, "%d %lf %lf %lf %lf", &sg, &v[0], &v[1], &v[2], &v[3]) == 5)
        if (sg >= 1 && sg <= n_seg) {
            hid[sg].erank = v[0]; hid[sg].ind.cos_mean = v[1]; hid[sg].ind.indist[0] = v[2]; hid[sg].ind.indist[1] = v[3];
        }
    fclose(f);
}

static red_status write_hidden_curve(const char *dir, red_layer_metrics *hid, int seg, const red_layer_metrics *m,
                                     red_error *err) {
    char path[2304];
    red_sbuf b;
    int q, k;
    red_status st;
    hid[seg] = *m;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    for (q = 1; q <= seg; q++) {
        red_sbuf_printf(&b, "%d", q);
        for (k = 0; k < 4; k++) red_sbuf_printf(&b, " %.17g", hidden_value(&hid[q], k));
        red_sbuf_puts(&b, "\n");
    }
    snprintf(path, sizeof path, "%s/hidden_curve.txt", dir);
    st = write_sbuf(path, &b, err);
    red_sbuf_free(&b);
    return st;
}

/* result.json members: cos_mean / indist per layer at init and end; the final-norm curve. */
static void put_hidden_result(red_sbuf *b, const red_layer_metrics *m0, const red_layer_metrics *m1, int n_layers,
                              const red_layer_metrics *hid, int n_curve, int width) {
    double v[256];
    int k, i, when;
    for (when = 0; when < 2; when++)
        for (k = 1; k < 4; k++) {
            for (i = 0; i < n_layers && i < 256; i++) v[i] = hidden_value(when ? &m1[i] : &m0[i], k);
            red_sbuf_printf(b, ",\n \"%s_%s\": ", hidden_keys[k], when ? "final" : "init");
            red_json_put_numbers(b, v, i);
        }
    for (k = 0; k < 5; k++) {
        for (i = 0; i < n_curve && i < 256; i++) v[i] = k == 4 ? hid[i].erank / width : hidden_value(&hid[i], k);
        red_sbuf_printf(b, ",\n \"%s_curve\": ", k == 4 ? "erank_norm" : hidden_keys[k]);
        red_json_put_numbers(b, v, i);
    }
}

/* Members ", \"cos_mean<sfx>\": [...], ..." (indistinguishability per layer) of a JSON object. */
static void put_hidden_json(red_sbuf *b, const char *sfx, const red_layer_metrics *m, int n) {
    double v[256];
    int k, i;
    for (k = 1; k < 4; k++) {
        for (i = 0; i < n && i < 256; i++) v[i] = hidden_value(&m[i], k);
        red_sbuf_printf(b, ", \"%s%s\": ", hidden_keys[k], sfx);
        red_json_put_numbers(b, v, i);
    }
}

static int json_doubles(const red_json *a, double *out, int cap);

/* Reads them back (NaN where absent; null reads as NaN); 1 if all were there. */
static int read_hidden_json(const red_json *j, const char *sfx, red_layer_metrics *m, int n) {
    char key[64];
    double v[256];
    int k, i, all = 1;
    for (k = 1; k < 4; k++) {
        int got;
        for (i = 0; i < 256; i++) v[i] = NAN;
        snprintf(key, sizeof key, "%s%s", hidden_keys[k], sfx);
        got = json_doubles(red_json_get(j, key), v, n < 256 ? n : 256);
        all &= got == n;
        for (i = 0; i < n && i < 256; i++) {
            if (k == 1) m[i].ind.cos_mean = v[i];
            else m[i].ind.indist[k - 2] = v[i];
        }
    }
    return all;
}

/* ------------------------------------------------------------------ one student */

typedef struct {
    red_model *teacher;
    const red_tokenizer *tok;
    red_train_data *data;
    const test_sets *tests;
    const int *erank_rows;
    int n_erank_rows;
    red_pool *pool;
} shared_state;

/* Mean sorted singular-value spectrum over every projection. */
static void mean_spectrum(const float *sv, int n_proj, int width, double *mean) {
    int i, k;
    for (k = 0; k < width; k++) mean[k] = 0.0;
    for (i = 0; i < n_proj; i++)
        for (k = 0; k < width; k++) mean[k] += sv[(size_t)i * width + k] / n_proj;
}

/* One student's accuracy curve along training, measured by the job's segments. */
typedef struct {
    const red_repro_opts *o;
    shared_state *sh;
    const char *init, *dir;
    int seed, n_seg;
    unsigned char have_seg[65];
    double curve_acc[65], curve_tok[65];
    red_layer_metrics hid[65];    /* final-norm eRank and indistinguishability at each point */
    red_layer_metrics *scratch;   /* [L+1] */
} student_curve;

/* After segment seg (0 = at init): the 2-4-step accuracy, kept in
 * acc_curve.txt so an interrupted student does not measure it again. The
 * last point comes from the full evaluation. */
static red_status curve_point(void *ctx, red_student *s, int seg, int n_seg, uint64_t step, red_error *err) {
    student_curve *c = ctx;
    const red_repro_opts *o = c->o;
    double a[MAX_STEPS];
    char path[2304];
    red_status st;
    int q;
    red_sbuf cb;
    c->curve_tok[seg] = (double)step * o->batch * o->seq;
    if (seg > 0 && (c->have_seg[seg] || seg == n_seg)) return RED_OK;
    red_student_merge(s);
    if ((st = eval_reasoning(&s->model, c->sh->tok, c->sh->tests, 2, 4, a, err))) return st;
    c->curve_acc[seg] = acc_2_4(a, c->sh->tests);
    if (seg == 0) return RED_OK;  /* (the init's come from the job's diagnostics) */
    if ((st = red_hidden_metrics(&s->model, c->sh->erank_rows, c->sh->n_erank_rows, o->seq, 0, 1, c->scratch, err)) ||
        (st = write_hidden_curve(c->dir, c->hid, seg, &c->scratch[s->cfg.n_layers], err)))
        return st;
    c->have_seg[seg] = 1;
    red_sbuf_init(&cb);
    red_sbuf_puts(&cb, "");
    for (q = 1; q <= seg; q++) red_sbuf_printf(&cb, "%d %.17g\n", q, c->curve_acc[q]);
    snprintf(path, sizeof path, "%s/acc_curve.txt", c->dir);
    st = write_sbuf(path, &cb, err);
    red_sbuf_free(&cb);
    if (st) return st;
    say(o, "  %s seed %d: %.0f%% of the budget, 2-4-step accuracy %.1f%%", c->init, c->seed, 100.0 * seg / n_seg,
        100.0 * c->curve_acc[seg]);
    return RED_OK;
}

/* Segments measured by an interrupted invocation (acc_curve.txt). */
static void read_curve(student_curve *c) {
    char path[2304];
    FILE *f;
    int sg;
    double v;
    snprintf(path, sizeof path, "%s/acc_curve.txt", c->dir);
    if (!(f = fopen(path, "r"))) return;
    while (fscanf(f, "%d %lf", &sg, &v) == 2)
        if (sg >= 1 && sg <= c->n_seg) { c->curve_acc[sg] = v; c->have_seg[sg] = 1; }
    fclose(f);
    read_hidden_curve(c->dir, c->hid, c->n_seg);
}

/* The job of one student: the experiment's recipe (method.md §E). */
static void student_job(const red_repro_opts *o, shared_state *sh, student_curve *c, int width, red_distill_job *j) {
    uint64_t steps = o->tokens / ((uint64_t)o->batch * o->seq);
    char path[2304];
    memset(j, 0, sizeof *j);
    j->teacher = sh->teacher; j->tok = sh->tok; j->teacher_name = o->teacher; j->init_name = c->init; j->width = width;
    red_init_opts_default(&j->init);
    j->init.seed = (uint64_t)c->seed;
    red_distill_opts_default(&j->opt);
    j->opt.loop.out = c->dir; j->opt.loop.tokens = o->tokens; j->opt.loop.batch = o->batch; j->opt.loop.seq = o->seq;
    j->opt.loop.seed = (uint64_t)c->seed; j->opt.loop.lr = o->lr; j->opt.loop.warmup_steps = steps / 100;
    j->opt.loss.tau = o->tau; j->opt.loss.alpha = o->alpha;
    j->opt.log_every = steps / 40 ? steps / 40 : 1;
    j->opt.loop.stop = o->stop;
    j->opt.loop.single = 1;  /* under mpirun, ranks share out students, not batches */
    snprintf(path, sizeof path, "%s/distill_state.bin", c->dir);
    j->opt.loop.resume = file_exists(path);
    j->data = sh->data; j->calib = sh->data; j->calib_tokens = o->calib_tokens;
    j->erank_rows = sh->erank_rows; j->n_erank_rows = sh->n_erank_rows;
    j->n_segments = c->n_seg; j->at_segment = curve_point; j->ctx = c;
}

/* Appends the distillation curve kept beside the state (one object per line). */
static red_status put_loss_curve(red_sbuf *res, const char *dir, red_error *err) {
    char path[2304];
    unsigned char *buf;
    size_t len, p = 0;
    int first = 1;
    red_status st;
    snprintf(path, sizeof path, "%s/distill_curve.jsonl", dir);
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    while (p < len) {
        size_t e = p;
        while (e < len && buf[e] != '\n') e++;
        if (e > p) {
            red_sbuf_puts(res, first ? "\n  " : ",\n  ");
            red_sbuf_put(res, (const char *)buf + p, e - p);
            first = 0;
        }
        p = e + 1;
    }
    free(buf);
    return RED_OK;
}

/* result.json of one student, written last (its presence marks the student done). */
static red_status write_result(const red_repro_opts *o, const student_curve *c, const red_distill_report *r,
                               const double *acc, double choice, const test_sets *tests, red_error *err) {
    int L = r->n_layers, w = r->width;
    double *sv = malloc(sizeof(double) * 2 * (size_t)w);
    char path[2304];
    red_sbuf res;
    red_status st;
    if (!sv) return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
    mean_spectrum(r->sv_init, r->n_proj, w, sv);
    mean_spectrum(r->sv_final, r->n_proj, w, sv + w);
    red_sbuf_init(&res);
    red_sbuf_printf(&res, "{\"init\": \"%s\", \"seed\": %d, \"d_s\": %d, \"tokens\": %llu,\n \"acc_by_steps\": ", c->init,
                    c->seed, w, (unsigned long long)o->tokens);
    red_json_put_numbers(&res, acc, MAX_STEPS);
    red_sbuf_puts(&res, ", \"acc_2_4\": ");
    red_json_put_number(&res, acc_2_4(acc, tests));
    red_sbuf_puts(&res, ", \"choice_acc\": ");
    red_json_put_number(&res, choice);
    red_sbuf_puts(&res, ",\n \"erank_init\": ");
    red_json_put_numbers(&res, r->erank_init, L + 1);
    red_sbuf_puts(&res, ", \"erank_final\": ");
    red_json_put_numbers(&res, r->erank_final, L + 1);
    red_sbuf_puts(&res, ",\n \"sv_init\": ");
    red_json_put_numbers(&res, sv, w);
    red_sbuf_puts(&res, ",\n \"sv_final\": ");
    red_json_put_numbers(&res, sv + w, w);
    red_sbuf_puts(&res, ",\n \"acc_curve_tokens\": ");
    red_json_put_numbers(&res, c->curve_tok, c->n_seg + 1);
    red_sbuf_puts(&res, ", \"acc_curve\": ");
    red_json_put_numbers(&res, c->curve_acc, c->n_seg + 1);
    red_sbuf_puts(&res, ",\n \"loss_curve\": [");
    if (!(st = put_loss_curve(&res, c->dir, err))) {
        red_sbuf_puts(&res, "]");
        put_hidden_result(&res, r->hidden_init, r->hidden_final, L + 1, c->hid, c->n_seg + 1, w);
        red_sbuf_puts(&res, "}\n");
        snprintf(path, sizeof path, "%s/result.json", c->dir);
        st = write_sbuf(path, &res, err);
    }
    red_sbuf_free(&res);
    free(sv);
    return st;
}

/* One student: the distillation job with the accuracy curve, then the full
 * evaluation. *fresh is 0 when an earlier invocation had finished it. */
static red_status run_student(const red_repro_opts *o, shared_state *sh, const char *init, int seed, int *fresh,
                              red_error *err) {
    char dir[2048], path[2304];
    red_student s;
    red_distill_job job;
    red_distill_report rep;
    student_curve *c;
    int width = (int)(sh->teacher->cfg.dim * o->width_ratio + 0.5);
    uint64_t steps = o->tokens / ((uint64_t)o->batch * o->seq);
    double acc[MAX_STEPS], choice = 0.0;
    red_status st;
    snprintf(dir, sizeof dir, "%s/runs/%s-s%d", o->out, init, seed);
    snprintf(path, sizeof path, "%s/result.json", dir);
    *fresh = !file_exists(path);
    if (!*fresh) return RED_OK;  /* done in an earlier invocation */
    if (width < 1) width = 1;
    if (!(c = calloc(1, sizeof *c)) || !(c->scratch = calloc((size_t)sh->teacher->cfg.n_layers + 1, sizeof *c->scratch))) {
        free(c);
        return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
    }
    hidden_nan(c->hid, 65);
    c->o = o; c->sh = sh; c->init = init; c->dir = dir; c->seed = seed;
    c->n_seg = o->n_evals > 64 ? 64 : o->n_evals;
    if (steps < (uint64_t)c->n_seg) c->n_seg = (int)(steps ? steps : 1);
    student_job(o, sh, c, width, &job);
    if ((st = red_init_by_name(init, sh->teacher->cfg.dim, &job.init, err))) goto out_c;
    if (job.opt.loop.resume) read_curve(c);
    if ((st = red_distill_run(&job, &s, &rep, err))) goto out;
    c->hid[0] = rep.hidden_init[rep.n_layers];
    c->hid[c->n_seg] = rep.hidden_final[rep.n_layers];
    if ((st = eval_reasoning(&s.model, sh->tok, sh->tests, 1, MAX_STEPS, acc, err)) ||
        (st = eval_choice(&s.model, sh->tok, sh->tests, &choice, err)))
        goto out;
    c->curve_acc[c->n_seg] = acc_2_4(acc, sh->tests);
    say(o, "  %s seed %d: done, 2-4-step accuracy %.1f%%, multiple choice %.1f%%", init, seed,
        100.0 * c->curve_acc[c->n_seg], 100.0 * choice);
    st = write_result(o, c, &rep, acc, choice, sh->tests, err);
out:
    red_distill_report_free(&rep);
    red_student_free(&s);
out_c:
    free(c->scratch);
    free(c);
    return st;
}

/* ------------------------------------------------------------------ aggregation */

/* ------------------------------------------------------------------ running the students */

/* The distillation mix (general corpus + reasoning at the mix), tokenised. */
static red_status load_distill_data(const red_repro_opts *o, const red_tokenizer *tok, red_train_data *data,
                                    red_error *err) {
    char path[2048];
    red_status st;
    snprintf(path, sizeof path, "%s/data/distill_corpus.txt", o->out);
    if ((st = red_train_data_add_file(data, tok, path, err))) return st;
    snprintf(path, sizeof path, "%s/data/distill_reasoning.jsonl", o->out);
    if (o->mix > 0 && (st = red_train_data_add_file(data, tok, path, err))) return st;
    return RED_OK;
}

/* Every init x seed, seed-major (a run stopped early already has every init),
 * handed out one at a time to the workers. */
typedef struct {
    const red_repro_opts *o;
    const shared_state *main;  /* tokenizer, tests and eRank rows are shared read-only */
    pthread_mutex_t mu;
    int next, total, finished, fresh;
    int rank, ranks;  /* student i is rank i % ranks's */
    double t0;
    red_status st;
    red_error err;
} student_queue;

static void queue_work(student_queue *q, shared_state *sh) {
    const red_repro_opts *o = q->o;
    for (;;) {
        int i, fresh = 0, k, seed;
        red_error err;
        red_status st;
        pthread_mutex_lock(&q->mu);
        if (q->st == RED_OK && o->stop && *o->stop && q->next < q->total)
            q->st = red_error_set(&q->err, RED_E_INTERRUPTED, "reproduce: interrupted; finished students and checkpoints "
                                  "are kept in %s (run the same command again to continue)", o->out);
        if (q->st != RED_OK || q->next >= q->total) {
            pthread_mutex_unlock(&q->mu);
            return;
        }
        i = q->next++;
        if (i % q->ranks != q->rank) {
            pthread_mutex_unlock(&q->mu);
            continue;
        }
        seed = i / o->n_inits + 1;
        k = i % o->n_inits;
        if (q->fresh) say(o, "reproduce: student %d of %d: %s seed %d (about %.0f s left)", i + 1, q->total, o->inits[k], seed,
                          (red_time_seconds() - q->t0) / q->fresh * (q->total - q->finished));
        else say(o, "reproduce: student %d of %d: %s seed %d", i + 1, q->total, o->inits[k], seed);
        pthread_mutex_unlock(&q->mu);
        memset(&err, 0, sizeof err);
        st = run_student(o, sh, o->inits[k], seed, &fresh, &err);
        pthread_mutex_lock(&q->mu);
        if (st != RED_OK && q->st == RED_OK) { q->st = st; q->err = err; }
        if (fresh) q->fresh++;
        else if (!q->fresh) q->t0 = red_time_seconds();  /* finished by an earlier invocation: no time to learn from */
        q->finished++;
        pthread_mutex_unlock(&q->mu);
    }
}

/* A worker: its own 1-thread pool, teacher and data stream (each holds
 * per-run state); results do not depend on which worker runs a student,
 * because a student's numbers do not depend on the thread count. */
static void *queue_worker(void *arg) {
    student_queue *q = arg;
    shared_state sh = *q->main;
    red_model t;
    red_train_data data;
    red_error err;
    red_status st;
    memset(&data, 0, sizeof data);
    memset(&err, 0, sizeof err);
    if (!(sh.pool = red_pool_create(1))) st = red_error_set(&err, RED_E_NOMEM, "reproduce: cannot create a worker pool");
    else if ((st = red_model_share(&t, q->main->teacher, sh.pool, &err)) == RED_OK) {  /* one copy of the weights */
        if ((st = load_distill_data(q->o, sh.tok, &data, &err)) == RED_OK) {
            sh.teacher = &t;
            sh.data = &data;
            queue_work(q, &sh);
        }
        red_train_data_free(&data);
        red_model_free(&t);
    }
    if (sh.pool) red_pool_destroy(sh.pool);
    if (st != RED_OK) {
        pthread_mutex_lock(&q->mu);
        if (q->st == RED_OK) { q->st = st; q->err = err; }
        pthread_mutex_unlock(&q->mu);
    }
    return NULL;
}

/* Runs every student: in this thread with the caller's pool when workers is
 * 1, else on `workers` threads with one student each at a time (small
 * students scale better across students than across a step's threads). */
static red_status run_students(const red_repro_opts *o, shared_state *sh, int workers, red_error *err) {
    student_queue q;
    pthread_t th[64];
    int w, started = 0;
    memset(&q, 0, sizeof q);
    q.o = o;
    q.main = sh;
    q.total = o->n_inits * o->n_seeds;
    q.rank = red_dist_rank();
    q.ranks = red_dist_size();
    q.t0 = red_time_seconds();
    if (workers > q.total) workers = q.total;
    if (workers > 64) workers = 64;
    if (pthread_mutex_init(&q.mu, NULL) != 0) return red_error_set(err, RED_E_NOMEM, "reproduce: cannot create a mutex");
    if (workers <= 1) queue_work(&q, sh);
    else {
        for (w = 0; w < workers; w++, started++)
            if (pthread_create(&th[w], NULL, queue_worker, &q) != 0) break;
        if (!started) queue_work(&q, sh);  /* no thread to be had: run them here */
        for (w = 0; w < started; w++) pthread_join(th[w], NULL);
    }
    pthread_mutex_destroy(&q.mu);
    if (q.st != RED_OK) {
        *err = q.err;
        return q.st;
    }
    return RED_OK;
}

/* Under mpirun: each student's result.json goes from the rank that ran it to
 * rank 0, which aggregates (the output directory need not be shared). */
static red_status gather_results(const red_repro_opts *o, red_error *err) {
    int rank = red_dist_rank(), ranks = red_dist_size(), i, total = o->n_inits * o->n_seeds;
    red_status st = RED_OK;
    for (i = 0; i < total && st == RED_OK; i++) {
        int owner = i % ranks;
        char dir[2048], path[2304];
        unsigned char *buf = NULL, head[8];
        size_t len = 0;
        uint64_t n;
        if (owner == 0) continue;
        snprintf(dir, sizeof dir, "%s/runs/%s-s%d", o->out, o->inits[i % o->n_inits], i / o->n_inits + 1);
        snprintf(path, sizeof path, "%s/result.json", dir);
        if (rank == owner && (st = red_read_file(path, &buf, &len, err))) return st;  /* the others then wait: abort */
        red_put_u64le(head, (uint64_t)len);
        if ((st = red_dist_bcast(head, sizeof head, owner, err))) break;
        n = red_get_u64le(head);
        if (rank != owner && !(buf = malloc(n ? (size_t)n : 1))) return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
        if (!(st = red_dist_bcast(buf, (size_t)n, owner, err)) && rank == 0 && !(st = red_make_dir(dir, err)))
            st = red_write_file_atomic(path, buf, (size_t)n, err);
        free(buf);
    }
    return st;
}

typedef struct {
    int n;                      /* seeds found */
    double acc[MAX_STEPS][2];   /* mean, std over seeds */
    double acc24[2], choice[2];
    double *erank_init, *erank_final;  /* [L+1] means */
    double er_f_init[2], er_f_final[2];  /* final-norm eRank mean, std */
    double *sv_init, *sv_final; /* [d_s] means (seed 1) */
    int n_curve;
    double *curve_tok, *curve_acc, *curve_acc_sd;
    int n_loss;
    double *loss_tok, *loss;   /* mean over seeds */
    double tokens_to_loss;     /* first logged tokens with mean loss <= threshold, or NAN */
    double final_loss;
    red_layer_metrics *hid_init, *hid_final;  /* [L+1] indistinguishability per layer, means over seeds */
    double hid_curve[4][64];   /* final-norm eRank, cos_mean, indist@0.95/0.99 at each accuracy point, means */
} init_summary;

static void mean_sd(const double *x, int n, double *out) {
    double m = 0.0, v = 0.0;
    int i;
    for (i = 0; i < n; i++) m += x[i];
    m = n ? m / n : 0.0;
    for (i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    out[0] = m;
    out[1] = n > 1 ? sqrt(v / (n - 1)) : 0.0;
}

static int json_doubles(const red_json *a, double *out, int cap) {
    int i;
    if (!a || a->type != RED_JSON_ARRAY) return 0;
    for (i = 0; i < (int)a->count && i < cap; i++) {
        const red_json *e = red_json_at(a, (size_t)i);
        out[i] = e->type == RED_JSON_NUMBER ? e->number : NAN;  /* null: not measured */
    }
    return i;
}

static red_status read_json_file(const char *path, red_json **j, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    st = red_json_parse((const char *)buf, len, path, j, err);
    free(buf);
    return st;
}

/* Adds one seed's indistinguishability (init, end, curve) to the summary's sums. */
static void add_hidden_seed(const red_json *j, int L, init_summary *S) {
    static const char *const curve_keys[] = {"erank_curve", "cos_mean_curve", "indist_0.95_curve", "indist_0.99_curve"};
    red_layer_metrics m[256];
    double v[64];
    int i, k, when;
    for (when = 0; when < 2; when++) {
        red_layer_metrics *sum = when ? S->hid_final : S->hid_init;
        hidden_nan(m, L + 1 < 256 ? L + 1 : 256);
        read_hidden_json(j, when ? "_final" : "_init", m, L + 1 < 256 ? L + 1 : 256);
        for (i = 0; i <= L && i < 256; i++) {
            sum[i].ind.cos_mean += m[i].ind.cos_mean;
            sum[i].ind.indist[0] += m[i].ind.indist[0];
            sum[i].ind.indist[1] += m[i].ind.indist[1];
        }
    }
    for (k = 0; k < 4; k++) {
        for (i = 0; i < 64; i++) v[i] = NAN;
        json_doubles(red_json_get(j, curve_keys[k]), v, 64);
        for (i = 0; i < 64; i++) S->hid_curve[k][i] += v[i];
    }
}

static red_status alloc_summary(init_summary *S, int L, int ds, red_error *err) {
    memset(S, 0, sizeof *S);
    S->erank_init = calloc((size_t)(L + 1), sizeof(double));
    S->erank_final = calloc((size_t)(L + 1), sizeof(double));
    S->sv_init = calloc((size_t)ds, sizeof(double));
    S->sv_final = calloc((size_t)ds, sizeof(double));
    S->curve_tok = calloc(64, sizeof(double));
    S->curve_acc = calloc(64, sizeof(double));
    S->curve_acc_sd = calloc(64, sizeof(double));
    S->loss_tok = calloc(4096, sizeof(double));
    S->loss = calloc(4096, sizeof(double));
    S->hid_init = calloc((size_t)(2 * (L + 1)), sizeof *S->hid_init);
    S->hid_final = S->hid_init ? S->hid_init + L + 1 : NULL;
    if (!S->erank_init || !S->erank_final || !S->sv_init || !S->sv_final || !S->curve_tok || !S->curve_acc ||
        !S->curve_acc_sd || !S->loss_tok || !S->loss || !S->hid_init)
        return red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
    return RED_OK;
}

/* Per-seed numbers kept apart until every seed is read: their mean and std need them all. */
typedef struct {
    double acc[64][MAX_STEPS + 8], a24[64], choice[64], erf_init[64], erf_final[64], curve[64][64];
} seed_values;

/* Adds seed number S->n's result.json to the sums in S and its own numbers to sv. */
/* sum[i] += the array's number i for i < n (NaN where the file has none, as
 * json_doubles reads null); returns the last one added. */
static double json_add_doubles(const red_json *a, double *sum, int n) {
    double v = NAN;
    int i;
    for (i = 0; i < n; i++) {
        const red_json *e = a && a->type == RED_JSON_ARRAY && (size_t)i < a->count ? red_json_at(a, (size_t)i) : NULL;
        v = e && e->type == RED_JSON_NUMBER ? e->number : NAN;
        sum[i] += v;
    }
    return v;
}

static void add_seed_result(const red_json *j, int L, int ds, init_summary *S, seed_values *sv) {
    const red_json *lc;
    int i;
    json_doubles(red_json_get(j, "acc_by_steps"), sv->acc[S->n], MAX_STEPS);
    sv->a24[S->n] = red_json_get(j, "acc_2_4")->number;
    sv->choice[S->n] = red_json_get(j, "choice_acc")->number;
    sv->erf_init[S->n] = json_add_doubles(red_json_get(j, "erank_init"), S->erank_init, L + 1);
    sv->erf_final[S->n] = json_add_doubles(red_json_get(j, "erank_final"), S->erank_final, L + 1);
    if (S->n == 0) {  /* spectra and curve positions: the first seed's (the same for every seed) */
        json_doubles(red_json_get(j, "sv_init"), S->sv_init, ds);
        json_doubles(red_json_get(j, "sv_final"), S->sv_final, ds);
        S->n_curve = json_doubles(red_json_get(j, "acc_curve_tokens"), S->curve_tok, 64);
    }
    json_doubles(red_json_get(j, "acc_curve"), sv->curve[S->n], 64);
    add_hidden_seed(j, L, S);
    lc = red_json_get(j, "loss_curve");
    if (lc && lc->type == RED_JSON_ARRAY) {
        int n = (int)lc->count < 4096 ? (int)lc->count : 4096;
        if (S->n == 0) S->n_loss = n;
        for (i = 0; i < n && i < S->n_loss; i++) {
            const red_json *e = red_json_at(lc, (size_t)i);
            S->loss_tok[i] = red_json_get(e, "tokens")->number;
            S->loss[i] += red_json_get(e, "loss")->number;
        }
    }
}

/* Turns the sums over S->n > 0 seeds into means, and the per-seed numbers into mean ± std. */
static void seeds_to_means(init_summary *S, seed_values *sv, int L) {
    int k, i;
    for (i = 0; i <= 2 * L + 1; i++) {  /* sums -> means */
        red_layer_metrics *m = &S->hid_init[i];
        m->ind.cos_mean /= S->n; m->ind.indist[0] /= S->n; m->ind.indist[1] /= S->n;
    }
    for (k = 0; k < 4; k++)
        for (i = 0; i < 64; i++) S->hid_curve[k][i] /= S->n;
    for (k = 0; k < MAX_STEPS; k++) {
        double x[64];
        for (i = 0; i < S->n; i++) x[i] = sv->acc[i][k];
        mean_sd(x, S->n, S->acc[k]);
    }
    mean_sd(sv->a24, S->n, S->acc24);
    mean_sd(sv->choice, S->n, S->choice);
    mean_sd(sv->erf_init, S->n, S->er_f_init);
    mean_sd(sv->erf_final, S->n, S->er_f_final);
    for (i = 0; i <= L; i++) {
        S->erank_init[i] /= S->n;
        S->erank_final[i] /= S->n;
    }
    for (i = 0; i < S->n_loss; i++) S->loss[i] /= S->n;
}

/* each logged loss is one batch's: smooth with a trailing mean over LOSS_SMOOTH points so that
 * "tokens to reach a loss" does not hinge on one lucky batch (a trailing window, so a level is
 * "reached" only once the batches up to that point average below it) */
static void smooth_loss(init_summary *S) {
    int i;
    for (i = S->n_loss - 1; i >= 1; i--) {  /* point 0 is step 1: kept as is, out of every window */
        int j, lo = i - LOSS_SMOOTH + 1 < 1 ? 1 : i - LOSS_SMOOTH + 1;
        double sum = 0.0;
        for (j = lo; j <= i; j++) sum += S->loss[j];
        S->loss[i] = sum / (i - lo + 1);
    }
}

static red_status summarize(const red_repro_opts *o, const char *init, int L, int ds, init_summary *S, red_error *err) {
    seed_values sv;
    int seed, k, i;
    red_status st;
    if ((st = alloc_summary(S, L, ds, err))) return st;
    for (seed = 1; seed <= o->n_seeds && seed <= 64; seed++) {
        char path[2304];
        red_json *j;
        snprintf(path, sizeof path, "%s/runs/%s-s%d/result.json", o->out, init, seed);
        if (!file_exists(path)) continue;
        if ((st = read_json_file(path, &j, err))) return st;
        add_seed_result(j, L, ds, S, &sv);
        red_json_free(j);
        S->n++;
    }
    for (k = 0; k < S->n_curve; k++) {
        double x[64], ms[2];
        for (i = 0; i < S->n; i++) x[i] = sv.curve[i][k];
        mean_sd(x, S->n, ms);
        S->curve_acc[k] = ms[0];
        S->curve_acc_sd[k] = ms[1];
    }
    if (!S->n) return RED_OK;
    seeds_to_means(S, &sv, L);
    smooth_loss(S);
    S->final_loss = S->n_loss ? S->loss[S->n_loss - 1] : NAN;
    return RED_OK;
}

static void free_summary(init_summary *S) {
    free(S->hid_init);
    free(S->erank_init); free(S->erank_final); free(S->sv_init); free(S->sv_final);
    free(S->curve_tok); free(S->curve_acc); free(S->curve_acc_sd); free(S->loss_tok); free(S->loss);
}

/* ------------------------------------------------------------------ report */

typedef struct {
    double acc[MAX_STEPS], acc24, choice, *erank;
    red_layer_metrics *hidden;  /* [L+1] eRank and indistinguishability per layer */
} teacher_result;

#define PLOT_SERIES 32

/* A fresh plot and series table; returns 0 (the series count). */
static int plot_begin(red_plot *p, red_series *sr, const char *title, const char *xlabel, const char *ylabel) {
    memset(p, 0, sizeof *p);
    memset(sr, 0, sizeof(red_series) * PLOT_SERIES);
    p->title = title;
    p->xlabel = xlabel;
    p->ylabel = ylabel;
    return 0;
}

/* one colour per init in every plot (index in --inits) */
static const char *init_colour(int k) {
    static const char *const pal[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    return pal[k % 6];
}

static red_status plots(const red_repro_opts *o, const teacher_result *T, init_summary *S, int n_init, int L, int ds,
                        double mp_lo, double mp_hi, red_error *err) {
    red_series sr[PLOT_SERIES];
    red_plot p;
    char path[2048], lab[32][96];
    double xs[MAX_STEPS + 64], layer_x[256], idx[4096], mpl[2], mph[2], mpx[2], tflat[2], tx[2], ta[MAX_STEPS];
    int i, k, n = 0;
    red_status st;
    for (i = 0; i <= L && i < 256; i++) layer_x[i] = i + 1;
    for (i = 0; i < ds && i < 4096; i++) idx[i] = i + 1;
    for (i = 0; i < MAX_STEPS; i++) xs[i] = i + 1;
    /* eRank per layer */
    n = plot_begin(&p, sr, "eRank per layer (residual after each block; last point = final norm)", "layer (1..L = blocks, L+1 = final norm)", "eRank");
    p.integer_x = 1;
    p.have_ymin = 1; p.ymin = 0;
    sr[n].label = "teacher"; sr[n].x = layer_x; sr[n].y = T->erank; sr[n].n = L + 1; sr[n].color = "#000000";
    sr[n].width = 2; sr[n].markers = 1; n++;
    for (k = 0; k < n_init && n < 30; k++) {
        if (!S[k].n) continue;
        snprintf(lab[n], sizeof lab[n], "%s, after", o->inits[k]);
        sr[n].label = lab[n]; sr[n].x = layer_x; sr[n].y = S[k].erank_final; sr[n].n = L + 1; sr[n].markers = 1;
        sr[n].color = init_colour(k); n++;
        snprintf(lab[n], sizeof lab[n], "%s, at init", o->inits[k]);
        sr[n].label = lab[n]; sr[n].x = layer_x; sr[n].y = S[k].erank_init; sr[n].n = L + 1; sr[n].dashed = 1;
        sr[n].color = sr[n - 1].color; n++;
    }
    snprintf(path, sizeof path, "%s/erank_layers.svg", o->out);
    if ((st = red_svg_plot(path, &p, sr, n, err))) return st;
    /* projection spectra against Marchenko-Pastur */
    n = plot_begin(&p, sr, "Projection singular values (mean over the projections)",
                   "index (descending)", "singular value");
    p.logy = 1;
    for (k = 0; k < n_init && n < 28; k++) {
        if (!S[k].n) continue;
        snprintf(lab[n], sizeof lab[n], "%s, after", o->inits[k]);
        sr[n].label = lab[n]; sr[n].x = idx; sr[n].y = S[k].sv_final; sr[n].n = ds; sr[n].color = init_colour(k); n++;
        snprintf(lab[n], sizeof lab[n], "%s, at init", o->inits[k]);
        sr[n].label = lab[n]; sr[n].x = idx; sr[n].y = S[k].sv_init; sr[n].n = ds; sr[n].dashed = 1;
        sr[n].color = init_colour(k); n++;
    }
    mpx[0] = 1; mpx[1] = ds; mpl[0] = mpl[1] = mp_lo; mph[0] = mph[1] = mp_hi;
    sr[n].label = "MP bounds (lrc std)"; sr[n].x = mpx; sr[n].y = mpl; sr[n].n = 2; sr[n].dashed = 1; sr[n].color = "#777777"; n++;
    sr[n].label = NULL; sr[n].x = mpx; sr[n].y = mph; sr[n].n = 2; sr[n].dashed = 1; sr[n].color = "#777777"; n++;
    snprintf(path, sizeof path, "%s/singular_values.svg", o->out);
    if ((st = red_svg_plot(path, &p, sr, n, err))) return st;
    /* reasoning accuracy against tokens */
    n = plot_begin(&p, sr, "Reasoning (2-4 steps, strict exact match) during distillation", "distillation tokens", "accuracy (mean over seeds; bars = std)");
    p.have_ymin = p.have_ymax = 1; p.ymin = 0; p.ymax = 1;
    for (k = 0; k < n_init; k++) {
        if (!S[k].n) continue;
        sr[n].label = o->inits[k]; sr[n].x = S[k].curve_tok; sr[n].y = S[k].curve_acc; sr[n].err = S[k].curve_acc_sd;
        sr[n].n = S[k].n_curve; sr[n].markers = 1; sr[n].color = init_colour(k); n++;
    }
    tx[0] = 0; tx[1] = (double)o->tokens; tflat[0] = tflat[1] = T->acc24;
    sr[n].label = "teacher"; sr[n].x = tx; sr[n].y = tflat; sr[n].n = 2; sr[n].dashed = 1; sr[n].color = "#000000"; n++;
    snprintf(path, sizeof path, "%s/reasoning_vs_tokens.svg", o->out);
    if ((st = red_svg_plot(path, &p, sr, n, err))) return st;
    /* accuracy by number of steps */
    n = plot_begin(&p, sr, "Reasoning accuracy by number of steps (after distillation)", "steps in the problem",
                   "strict exact match (mean over seeds; bars = std)");
    p.integer_x = 1;
    p.have_ymin = p.have_ymax = 1; p.ymin = 0; p.ymax = 1;
    for (i = 0; i < MAX_STEPS; i++) ta[i] = T->acc[i];
    sr[n].label = "teacher"; sr[n].x = xs; sr[n].y = ta; sr[n].n = MAX_STEPS; sr[n].color = "#000000"; sr[n].width = 2;
    sr[n].markers = 1; n++;
    {
        static double m[16][MAX_STEPS], sd[16][MAX_STEPS];
        for (k = 0; k < n_init && k < 16; k++) {
            if (!S[k].n) continue;
            for (i = 0; i < MAX_STEPS; i++) { m[k][i] = S[k].acc[i][0]; sd[k][i] = S[k].acc[i][1]; }
            sr[n].label = o->inits[k]; sr[n].x = xs; sr[n].y = m[k]; sr[n].err = sd[k]; sr[n].n = MAX_STEPS;
            sr[n].markers = 1; sr[n].color = init_colour(k); n++;
        }
        snprintf(path, sizeof path, "%s/accuracy_by_steps.svg", o->out);
        if ((st = red_svg_plot(path, &p, sr, n, err))) return st;
    }
    /* distillation loss against tokens */
    n = plot_begin(&p, sr, "Distillation loss (mean over seeds, trailing mean of 5 points)", "distillation tokens", "loss");
    p.logy = 1;
    for (k = 0; k < n_init; k++) {
        if (!S[k].n) continue;
        sr[n].label = o->inits[k]; sr[n].x = S[k].loss_tok; sr[n].y = S[k].loss; sr[n].n = S[k].n_loss;
        sr[n].color = init_colour(k); n++;
    }
    snprintf(path, sizeof path, "%s/loss_vs_tokens.svg", o->out);
    return red_svg_plot(path, &p, sr, n, err);
}

/* ------------------------------------------------------------------ report: indistinguishability */

/* results.json members of one init: indistinguishability per layer, and the final-norm curve. */
static void put_hidden_summary(red_sbuf *js, const init_summary *S, int L, int ds) {
    static const char *const keys[] = {"erank_curve", "cos_mean_curve", "indist_0.95_curve", "indist_0.99_curve"};
    double v[64];
    int k, i;
    put_hidden_json(js, "_init", S->hid_init, L + 1);
    put_hidden_json(js, "_final", S->hid_final, L + 1);
    red_sbuf_puts(js, ",\n    \"curve_tokens\": ");
    red_json_put_numbers(js, S->curve_tok, S->n_curve);
    for (k = 0; k < 4; k++) {
        red_sbuf_printf(js, ", \"%s\": ", keys[k]);
        red_json_put_numbers(js, S->hid_curve[k], S->n_curve);
        if (k == 0) {
            for (i = 0; i < S->n_curve; i++) v[i] = S->hid_curve[0][i] / ds;
            red_sbuf_puts(js, ", \"erank_norm_curve\": ");
            red_json_put_numbers(js, v, S->n_curve);
        }
    }
}

/* x with a printf format (a percentage when pct), or a dash where not measured (runs of older versions). */
static void put_num(red_sbuf *b, const char *fmt, double x, int pct) {
    if (!isfinite(x)) red_sbuf_puts(b, "–");
    else if (pct) red_sbuf_printf(b, "%.2f%%", 100 * x);
    else red_sbuf_printf(b, fmt, x);
}

/* "eRank (eRank / width)" */
static void put_erank_norm(red_sbuf *b, double er, int width) {
    put_num(b, "%.1f", er, 0);
    red_sbuf_puts(b, " (");
    put_num(b, "%.3f", er / width, 0);
    red_sbuf_puts(b, ")");
}

/* report.md: eRank (raw and / width) and token indistinguishability of the final-norm output, at init, along
 * training and after. */
static void put_hidden_report(red_sbuf *b, const red_repro_opts *o, const teacher_result *T, const init_summary *S,
                              int n_init, int L, int d_t, int ds) {
    int k, i, q;
    red_sbuf_printf(b, "## Token indistinguishability and eRank through training\n\n"
                    "On the %lld-token eRank set, final-norm output, mean over seeds: `cos_mean` is the mean cosine "
                    "between the hidden states of two positions; `indist@θ` the share of pairs of positions holding "
                    "different tokens whose cosine is at least θ (exact, over every pair). eRank ÷ width is the "
                    "normalised eRank (a width-%d student cannot exceed %d).\n\n",
                    (long long)o->erank_tokens / o->seq * o->seq, ds, ds);
    red_sbuf_puts(b, "| model | eRank (÷ width): init → end | cos_mean: init → end | indist@0.95: init → end | "
                     "indist@0.99: init → end |\n|---|---|---|---|---|\n| teacher | ");
    put_erank_norm(b, T->hidden[L].erank, d_t);
    for (q = 1; q < 4; q++) {
        red_sbuf_puts(b, " | ");
        put_num(b, "%.3f", hidden_value(&T->hidden[L], q), q > 1);
    }
    red_sbuf_puts(b, " |\n");
    for (k = 0; k < n_init; k++) {
        const init_summary *s = &S[k];
        int e = s->n_curve - 1;
        if (!s->n || e < 0) continue;
        red_sbuf_printf(b, "| %s | ", o->inits[k]);
        for (q = 0; q < 4; q++) {
            if (q) red_sbuf_puts(b, " | ");
            for (i = 0; i < 2; i++) {
                double x = s->hid_curve[q][i ? e : 0];
                if (i) red_sbuf_puts(b, " → ");
                if (q == 0) put_erank_norm(b, x, ds);
                else put_num(b, "%.3f", x, q > 1);
            }
        }
        red_sbuf_puts(b, " |\n");
    }
    red_sbuf_puts(b, "\nAt every accuracy point of the curve (2-4-step accuracy as in the reasoning plot):\n\n"
                     "| model | tokens | reasoning 2-4 (%) | eRank (÷ width) | cos_mean | indist@0.95 | indist@0.99 |\n"
                     "|---|---|---|---|---|---|---|\n");
    for (k = 0; k < n_init; k++)
        for (i = 0; i < S[k].n_curve && S[k].n; i++) {
            const init_summary *s = &S[k];
            red_sbuf_printf(b, "| %s | %.0f | %.1f | ", o->inits[k], s->curve_tok[i], 100 * s->curve_acc[i]);
            put_erank_norm(b, s->hid_curve[0][i], ds);
            for (q = 1; q < 4; q++) {
                red_sbuf_puts(b, " | ");
                put_num(b, "%.3f", s->hid_curve[q][i], q > 1);
            }
            red_sbuf_puts(b, " |\n");
        }
    red_sbuf_puts(b, "\n![normalised eRank through training](erank_vs_tokens.svg)\n"
                     "![indistinguishability through training](indist_vs_tokens.svg)\n");
}

/* erank_vs_tokens.svg (normalised eRank) and indist_vs_tokens.svg (indist@0.95 solid, @0.99 dashed). */
static red_status hidden_plots(const red_repro_opts *o, const teacher_result *T, const init_summary *S, int n_init, int L,
                               int d_t, int ds, red_error *err) {
    red_series sr[PLOT_SERIES];
    red_plot p;
    char path[2048];
    static double y[16][64];
    double tx[2], ty[2], ty2[2];
    int k, i, n;
    red_status st;
    tx[0] = 0; tx[1] = (double)o->tokens;
    n = plot_begin(&p, sr, "Normalised eRank of the final-norm output during distillation", "distillation tokens",
                   "eRank / width (mean over seeds)");
    p.have_ymin = 1; p.ymin = 0;
    for (k = 0; k < n_init && k < 16; k++) {
        if (!S[k].n) continue;
        for (i = 0; i < S[k].n_curve && i < 64; i++) y[k][i] = S[k].hid_curve[0][i] / ds;
        sr[n].label = o->inits[k]; sr[n].x = S[k].curve_tok; sr[n].y = y[k]; sr[n].n = S[k].n_curve; sr[n].markers = 1;
        sr[n].color = init_colour(k); n++;
    }
    ty[0] = ty[1] = T->hidden[L].erank / d_t;
    sr[n].label = "teacher (÷ its width)"; sr[n].x = tx; sr[n].y = ty; sr[n].n = 2; sr[n].dashed = 1; sr[n].color = "#000000"; n++;
    snprintf(path, sizeof path, "%s/erank_vs_tokens.svg", o->out);
    if ((st = red_svg_plot(path, &p, sr, n, err))) return st;
    n = plot_begin(&p, sr, "Token indistinguishability of the final-norm output during distillation", "distillation tokens",
                   "share of distinct-token pairs with cos >= 0.95 (solid), 0.99 (dashed)");
    p.have_ymin = 1; p.ymin = 0;
    for (k = 0; k < n_init && n < PLOT_SERIES - 4; k++) {
        if (!S[k].n) continue;
        sr[n].label = o->inits[k]; sr[n].x = S[k].curve_tok; sr[n].y = S[k].hid_curve[2]; sr[n].n = S[k].n_curve;
        sr[n].markers = 1; sr[n].color = init_colour(k); n++;
        sr[n].label = NULL; sr[n].x = S[k].curve_tok; sr[n].y = S[k].hid_curve[3]; sr[n].n = S[k].n_curve; sr[n].dashed = 1;
        sr[n].color = init_colour(k); n++;
    }
    ty2[0] = ty2[1] = T->hidden[L].ind.indist[0];
    sr[n].label = "teacher"; sr[n].x = tx; sr[n].y = ty2; sr[n].n = 2; sr[n].dashed = 1; sr[n].color = "#000000"; n++;
    snprintf(path, sizeof path, "%s/indist_vs_tokens.svg", o->out);
    return red_svg_plot(path, &p, sr, n, err);
}

static int count_inits(const init_summary *S, int n_init) {
    int k, n = 0;
    for (k = 0; k < n_init; k++) n += S[k].n > 0;
    return n;
}

/* Average ranks (ties share their mean rank) of x[0..n). */
static void ranks(const double *x, int n, double *r) {
    int i, j;
    for (i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        r[i] = less + (equal + 1) / 2.0;
    }
}

/* Spearman's rho between final-norm eRank at init and 2-4-step accuracy over
 * the inits with results (NAN for fewer than 3, or a constant side). */
static double spearman_erank_reasoning(const init_summary *S, int n_init) {
    double x[16], y[16], rx[16], ry[16], mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    int k, n = 0, i;
    for (k = 0; k < n_init && k < 16; k++)
        if (S[k].n) { x[n] = S[k].er_f_init[0]; y[n] = S[k].acc24[0]; n++; }
    if (n < 3) return NAN;
    ranks(x, n, rx);
    ranks(y, n, ry);
    for (i = 0; i < n; i++) { mx += rx[i] / n; my += ry[i] / n; }
    for (i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static void pct(red_sbuf *b, const double *ms) { red_sbuf_printf(b, "%.1f ± %.1f", 100 * ms[0], 100 * ms[1]); }

/* The report's opening paragraph: what was run, on what budget, how it was tested. */
static void put_report_intro(red_sbuf *b, const red_repro_opts *o, int n_init, int L, int d_t, int ds, double seconds,
                             int threads, int n_general) {
    int k;
    red_sbuf_printf(b, "# red reproduce: %s\n\n", o->preset ? o->preset : "default run");
    red_sbuf_printf(b, "Teacher `%s` (width %d, %d layers) distilled to width %d (%.0f%%), inits: ", o->teacher, d_t, L, ds,
                    100.0 * o->width_ratio);
    for (k = 0; k < n_init; k++) red_sbuf_printf(b, "%s`%s`", k ? ", " : "", o->inits[k]);
    red_sbuf_printf(b, "; %d seed(s) each; %llu distillation tokens per student (batch %d x %d); data %.0f%% general corpus, "
                    "%.0f%% reasoning problems (distill split) by tokens; lr %g, tau %g, alpha %g. Tests: %d problems per "
                    "step count 1-%d (test split, zero-shot GSM8K harness, strict exact match) and ",
                    o->n_seeds, (unsigned long long)o->tokens, o->batch, o->seq, 100 * (1 - o->mix), 100 * o->mix,
                    (double)o->lr, (double)o->tau, (double)o->alpha, o->per_step, MAX_STEPS);
    if (o->general_file)  /* --general: a real benchmark in the general-ability column */
        red_sbuf_printf(b, "lm-eval's zero-shot `%s` on `%s` (%d docs, acc) for general ability",
                        red_lm_task_name((red_lm_task)o->general_task), o->general_file, n_general);
    else red_sbuf_printf(b, "%d multiple-choice items (test split)", o->n_choice);
    red_sbuf_printf(b, ". Wall time of this invocation %.0f s on %d threads (one student per thread at a time).\n\n",
                    seconds, threads);
}

/* The results table: the teacher, then one row per init that has results. */
static void put_results_table(red_sbuf *b, const red_repro_opts *o, const teacher_result *T, const init_summary *S,
                              int n_init, int L, double threshold) {
    int k, i;
    red_sbuf_puts(b, "## Results (mean ± std over seeds)\n\n| model | reasoning 2-4 steps (%) |");
    for (i = 1; i <= MAX_STEPS; i++) red_sbuf_printf(b, " %d-step |", i);
    red_sbuf_printf(b, " general MC (%%) | eRank final norm: init → end | tokens to loss %.3g |\n|---|---|", threshold);
    for (i = 0; i < MAX_STEPS; i++) red_sbuf_puts(b, "---|");
    red_sbuf_puts(b, "---|---|---|\n");
    red_sbuf_printf(b, "| teacher | %.1f |", 100 * T->acc24);
    for (i = 0; i < MAX_STEPS; i++) red_sbuf_printf(b, " %.0f |", 100 * T->acc[i]);
    red_sbuf_printf(b, " %.1f | %.1f | |\n", 100 * T->choice, T->erank[L]);
    for (k = 0; k < n_init; k++) {
        if (!S[k].n) continue;
        red_sbuf_printf(b, "| %s | ", o->inits[k]);
        pct(b, S[k].acc24);
        red_sbuf_puts(b, " |");
        for (i = 0; i < MAX_STEPS; i++) red_sbuf_printf(b, " %.0f |", 100 * S[k].acc[i][0]);
        red_sbuf_puts(b, " ");
        pct(b, S[k].choice);
        red_sbuf_printf(b, " | %.1f → %.1f | ", S[k].er_f_init[0], S[k].er_f_final[0]);
        if (isfinite(S[k].tokens_to_loss)) red_sbuf_printf(b, "%.0f |\n", S[k].tokens_to_loss);
        else red_sbuf_puts(b, "not reached |\n");
    }
}

/* The four claims of method.md §E, each read from the lrc and red rows (both must have results). */
static void put_claims(red_sbuf *b, const teacher_result *T, const init_summary *S, int n_init, int L, int lrc, int red,
                       double threshold) {
    double d_er = S[red].er_f_final[0] - S[lrc].er_f_final[0], d_acc = S[red].acc24[0] - S[lrc].acc24[0],
           d_mc = S[red].choice[0] - S[lrc].choice[0];
    double se_acc = sqrt(S[red].acc24[1] * S[red].acc24[1] / S[red].n + S[lrc].acc24[1] * S[lrc].acc24[1] / S[lrc].n);
    double keep_l = S[lrc].er_f_final[0] / T->erank[L], keep_r = S[red].er_f_final[0] / T->erank[L];
    red_sbuf_printf(b, "1. **eRank.** Final-norm eRank: teacher %.1f; lrc %.1f at init, %.1f after; red %.1f at init, "
                    "%.1f after (red − lrc after: %+.1f; after distillation lrc keeps %.0f%% of the teacher's, red %.0f%%). %s\n",
                    T->erank[L], S[lrc].er_f_init[0], S[lrc].er_f_final[0], S[red].er_f_init[0], S[red].er_f_final[0], d_er,
                    100 * keep_l, 100 * keep_r,
                    d_er <= 0 ? "Does not show here."
                    : keep_r >= 0.9 ? "Shows: the random init loses eRank, red keeps the teacher's."
                    : "Shows in part: the random init has the lower eRank, but red does not keep the teacher's either.");
    {   /* does eRank at init order the inits as reasoning does? Spearman's rho over the inits run */
        double rho = spearman_erank_reasoning(S, n_init);
        if (isfinite(rho))
            red_sbuf_printf(b, "   Over all %d inits, the rank correlation between final-norm eRank at init and 2-4-step "
                            "accuracy after distillation is %.2f (Spearman).\n", count_inits(S, n_init), rho);
    }
    red_sbuf_printf(b, "2. **Reasoning.** 2-4-step accuracy red − lrc: %+.1f points (standard error of the difference over "
                    "seeds %.1f). %s\n", 100 * d_acc, 100 * se_acc,
                    d_acc > 2 * se_acc && d_acc > 0.02 ? "Shows." : "Does not show clearly at this budget.");
    red_sbuf_printf(b, "3. **General ability.** MC accuracy red − lrc: %+.1f points (teacher %.1f%%, lrc %.1f%%, red %.1f%%). %s\n",
                    100 * d_mc, 100 * T->choice, 100 * S[lrc].choice[0], 100 * S[red].choice[0],
                    fabs(d_mc) < 0.03 ? "The two stay close, as claimed."
                    : d_mc > 0 ? "Does not show at this budget: the random init loses general ability too."
                    : "Does not show: red trails on general ability.");
    {   /* the threshold is the highest final loss, so every init reaches it by the end */
        double tl = S[lrc].tokens_to_loss, tr = S[red].tokens_to_loss;
        red_sbuf_printf(b, "4. **Efficiency.** Loss %.3g (the highest final loss of any init; losses averaged over seeds "
                        "and a trailing window of %d logged points) first reached at "
                        "%.0f tokens by lrc, %.0f by red (lrc needs %.2fx red's tokens). %s\n\n", threshold, LOSS_SMOOTH, tl, tr,
                        tl / tr, tr < tl ? "Shows." : "Does not show here.");
    }
}

/* results.json: every number of the report */
static red_status write_results_json(const red_repro_opts *o, const teacher_result *T, init_summary *S, int n_init,
                                     int L, int d_t, int ds, double threshold, int n_general, red_error *err) {
    red_sbuf js;
    char path[2048];
    int k, i;
    red_status st;
    red_sbuf_init(&js);
    red_sbuf_puts(&js, "{\"teacher\": {\"acc_by_steps\": ");
    red_json_put_numbers(&js, T->acc, MAX_STEPS);
    red_sbuf_puts(&js, ", \"acc_2_4\": ");
    red_json_put_number(&js, T->acc24);
    red_sbuf_puts(&js, ", \"choice_acc\": ");
    red_json_put_number(&js, T->choice);
    red_sbuf_puts(&js, ", \"erank\": ");
    red_json_put_numbers(&js, T->erank, L + 1);
    put_hidden_json(&js, "", T->hidden, L + 1);
    red_sbuf_printf(&js, "},\n \"d_t\": %d, \"d_s\": %d, \"tokens\": %llu, \"seeds\": %d, \"loss_threshold\": ", d_t, ds,
                    (unsigned long long)o->tokens, o->n_seeds);
    red_json_put_number(&js, threshold);
    red_sbuf_puts(&js, ", \"erank_init_reasoning_spearman\": ");
    red_json_put_number(&js, spearman_erank_reasoning(S, n_init));
    if (o->general_file) {  /* what choice_acc measures under --general */
        const char *task = red_lm_task_name((red_lm_task)o->general_task);
        red_sbuf_printf(&js, ", \"general\": {\"task\": \"%s\", \"n\": %d, \"data\": ", task, n_general);
        red_json_put_string(&js, o->general_file, strlen(o->general_file));
        red_sbuf_puts(&js, "}");
    }
    red_sbuf_puts(&js, ",\n \"inits\": {");
    for (k = 0; k < n_init; k++) {
        double m[MAX_STEPS], s[MAX_STEPS];
        for (i = 0; i < MAX_STEPS; i++) { m[i] = S[k].acc[i][0]; s[i] = S[k].acc[i][1]; }
        red_sbuf_printf(&js, "%s\n  \"%s\": {\"seeds\": %d, \"acc_2_4\": ", k ? "," : "", o->inits[k], S[k].n);
        red_json_put_numbers(&js, S[k].acc24, 2);
        red_sbuf_puts(&js, ", \"acc_by_steps_mean\": ");
        red_json_put_numbers(&js, m, MAX_STEPS);
        red_sbuf_puts(&js, ", \"acc_by_steps_std\": ");
        red_json_put_numbers(&js, s, MAX_STEPS);
        red_sbuf_puts(&js, ", \"choice_acc\": ");
        red_json_put_numbers(&js, S[k].choice, 2);
        red_sbuf_puts(&js, ", \"erank_init\": ");
        red_json_put_numbers(&js, S[k].erank_init, L + 1);
        red_sbuf_puts(&js, ", \"erank_final\": ");
        red_json_put_numbers(&js, S[k].erank_final, L + 1);
        red_sbuf_puts(&js, ", \"tokens_to_loss\": ");
        red_json_put_number(&js, S[k].tokens_to_loss);
        red_sbuf_puts(&js, ", \"final_loss\": ");
        red_json_put_number(&js, S[k].final_loss);
        if (S[k].n) put_hidden_summary(&js, &S[k], L, ds);
        red_sbuf_puts(&js, "}");
    }
    red_sbuf_puts(&js, "}}\n");
    snprintf(path, sizeof path, "%s/results.json", o->out);
    st = write_sbuf(path, &js, err);
    red_sbuf_free(&js);
    return st;
}

static red_status write_report(const red_repro_opts *o, const teacher_result *T, init_summary *S, int n_init, int L,
                               int d_t, int ds, double threshold, double seconds, int threads, int n_general,
                               red_error *err) {
    red_sbuf b;
    char path[2048];
    int k, lrc = -1, red = -1;
    red_status st;
    for (k = 0; k < n_init; k++) {
        if (!strcmp(o->inits[k], "lrc")) lrc = k;
        if (!strcmp(o->inits[k], "red")) red = k;
    }
    red_sbuf_init(&b);
    put_report_intro(&b, o, n_init, L, d_t, ds, seconds, threads, n_general);
    put_results_table(&b, o, T, S, n_init, L, threshold);
    red_sbuf_puts(&b, "\n![eRank per layer](erank_layers.svg)\n![projection spectra](singular_values.svg)\n"
                      "![reasoning vs tokens](reasoning_vs_tokens.svg)\n![accuracy by steps](accuracy_by_steps.svg)\n"
                      "![loss vs tokens](loss_vs_tokens.svg)\n\n");
    red_sbuf_puts(&b, "## The four claims (method.md §E), read from this run\n\n");
    if (lrc >= 0 && red >= 0 && S[lrc].n && S[red].n) put_claims(&b, T, S, n_init, L, lrc, red, threshold);
    else red_sbuf_puts(&b, "Both `lrc` and `red` are needed to read the claims.\n\n");
    put_hidden_report(&b, o, T, S, n_init, L, d_t, ds);
    snprintf(path, sizeof path, "%s/report.md", o->out);
    st = write_sbuf(path, &b, err);
    red_sbuf_free(&b);
    if (st) return st;
    return write_results_json(o, T, S, n_init, L, d_t, ds, threshold, n_general, err);
}

/* ------------------------------------------------------------------ the experiment */

/* Every init name known and none twice: checked before any work. */
static red_status check_inits(const red_repro_opts *o, red_error *err) {
    int k, j;
    red_status st;
    if (o->n_inits < 1 || o->n_inits > 16) return red_error_set(err, RED_E_ARG, "reproduce: 1 to 16 inits");
    for (k = 0; k < o->n_inits; k++) {
        red_init_opts io;
        red_init_opts_default(&io);
        if ((st = red_init_by_name(o->inits[k], 128, &io, err))) return st;
        for (j = 0; j < k; j++)
            if (!strcmp(o->inits[j], o->inits[k]))
                return red_error_set(err, RED_E_ARG, "reproduce: init '%s' given twice", o->inits[k]);
    }
    return RED_OK;
}

static red_status make_out_dirs(const red_repro_opts *o, red_error *err) {
    char path[2048];
    red_status st;
    if ((st = red_make_dir(o->out, err))) return st;
    snprintf(path, sizeof path, "%s/data", o->out);
    if ((st = red_make_dir(path, err))) return st;
    snprintf(path, sizeof path, "%s/runs", o->out);
    return red_make_dir(path, err);
}

/* The teacher's accuracy, eRank and hidden-state metrics, measured once and cached in teacher.json
 * (a rerun into the same --out reads them back; it must use the same general-ability data). */
static red_status measure_teacher(const red_repro_opts *o, red_model *t, const red_tokenizer *tok, const test_sets *tests,
                                  const int *rows, int n_rows, teacher_result *T, red_error *err) {
    char path[2048], tag[2100];
    int k, L = t->cfg.n_layers, have_hidden = 0, fresh;
    red_sbuf b;
    red_status st;
    snprintf(path, sizeof path, "%s/teacher.json", o->out);
    if (file_exists(path)) {
        red_json *j;
        const red_json *g;
        if ((st = read_json_file(path, &j, err))) return st;
        general_tag(o, tag, sizeof tag);
        g = red_json_get(j, "general");
        if (strcmp(g && g->type == RED_JSON_STRING ? g->str : "", tag)) {
            st = red_error_set(err, RED_E_ARG, "reproduce: %s was run with general-ability data '%s', not '%s': use another --out",
                               o->out, g && g->type == RED_JSON_STRING ? g->str : "built-in", tag[0] ? tag : "built-in");
            red_json_free(j);
            return st;
        }
        json_doubles(red_json_get(j, "acc_by_steps"), T->acc, MAX_STEPS);
        T->choice = red_json_get(j, "choice_acc")->number;
        json_doubles(red_json_get(j, "erank"), T->erank, L + 1);
        have_hidden = read_hidden_json(j, "", T->hidden, L + 1);
        red_json_free(j);
    }
    if (file_exists(path) && have_hidden) return RED_OK;
    fresh = !file_exists(path);
    say(o, "reproduce: evaluating the teacher");
    if ((st = red_model_run_alloc(t, o->batch, o->seq, RED_RUN_FORWARD, err)) ||
        (st = red_hidden_metrics(t, rows, n_rows, o->seq, 0, 0, T->hidden, err)))
        return st;
    if (fresh) {  /* (a teacher.json of an older run keeps its numbers; only the new ones are added) */
        for (k = 0; k <= L; k++) T->erank[k] = T->hidden[k].erank;
        if ((st = eval_reasoning(t, tok, tests, 1, MAX_STEPS, T->acc, err)) || (st = eval_choice(t, tok, tests, &T->choice, err)))
            return st;
    }
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "{");
    general_tag(o, tag, sizeof tag);
    if (tag[0]) {
        red_sbuf_puts(&b, "\"general\": ");
        red_json_put_string(&b, tag, strlen(tag));
        red_sbuf_puts(&b, ", ");
    }
    red_sbuf_puts(&b, "\"acc_by_steps\": ");
    red_json_put_numbers(&b, T->acc, MAX_STEPS);
    red_sbuf_puts(&b, ", \"choice_acc\": ");
    red_json_put_number(&b, T->choice);
    red_sbuf_puts(&b, ", \"erank\": ");
    red_json_put_numbers(&b, T->erank, L + 1);
    put_hidden_json(&b, "", T->hidden, L + 1);
    red_sbuf_puts(&b, "}\n");
    st = write_sbuf(path, &b, err);
    red_sbuf_free(&b);
    return st;
}

/* The loss threshold is the highest final mean loss among the inits (the level every init reaches);
 * sets each init's tokens to first reach it and returns it. */
static double set_tokens_to_loss(init_summary *S, int n_init) {
    double threshold = -INFINITY;
    int k, i;
    for (k = 0; k < n_init; k++)
        if (S[k].n && S[k].final_loss > threshold) threshold = S[k].final_loss;
    for (k = 0; k < n_init; k++) {
        S[k].tokens_to_loss = NAN;
        for (i = 0; i < S[k].n_loss; i++)
            if (S[k].loss[i] <= threshold) {
                S[k].tokens_to_loss = S[k].loss_tok[i];
                break;
            }
    }
    return threshold;
}

red_status red_reproduce(const red_repro_opts *o, red_pool *pool, red_error *err) {
    red_model t;
    red_tokenizer *tok = NULL;
    task_format fmt;
    test_sets tests;
    red_train_data data;
    teacher_result T;
    init_summary S[16];
    shared_state sh;
    int *rows = NULL, n_rows, L, k, ds, n_init = o->n_inits;
    double threshold, seconds, t0 = red_time_seconds();
    red_status st;
    memset(&data, 0, sizeof data);
    memset(S, 0, sizeof S);
    if ((st = check_inits(o, err)) || (st = make_out_dirs(o, err))) return st;
    if ((st = red_model_load(&t, o->teacher, pool, err))) return st;
    if ((st = red_tokenizer_load(&tok, o->teacher, err)) || (st = read_format(o->teacher, &fmt, err))) goto out_model;
    if (o->seq > t.cfg.max_pos) {
        st = red_error_set(err, RED_E_ARG, "reproduce: seq %d exceeds the teacher's max_position_embeddings %d", o->seq, t.cfg.max_pos);
        goto out_model;
    }
    say(o, "reproduce: generating data in %s/data", o->out);
    if ((st = make_data(o, &fmt, err)) || (st = load_tests(o, tok, &tests, err))) goto out_model;
    if ((st = load_distill_data(o, tok, &data, err))) goto out_tests;
    L = t.cfg.n_layers;
    ds = (int)(t.cfg.dim * o->width_ratio + 0.5);
    n_rows = o->erank_tokens / o->seq > 0 ? (int)(o->erank_tokens / o->seq) : 1;
    rows = malloc((size_t)n_rows * o->seq * sizeof(int));
    T.erank = calloc((size_t)(L + 1), sizeof(double));
    T.hidden = calloc((size_t)(L + 1), sizeof *T.hidden);
    if (!rows || !T.erank || !T.hidden) {
        st = red_error_set(err, RED_E_NOMEM, "reproduce: out of memory");
        goto out_data;
    }
    if ((st = red_train_data_rows(&data, n_rows, o->seq, rows, err))) goto out_data;
    if ((st = measure_teacher(o, &t, tok, &tests, rows, n_rows, &T, err))) goto out_data;
    T.acc24 = acc_2_4(T.acc, &tests);
    say(o, "reproduce: teacher 2-4-step accuracy %.1f%%", 100 * T.acc24);
    sh.teacher = &t; sh.tok = tok; sh.data = &data; sh.tests = &tests; sh.erank_rows = rows; sh.n_erank_rows = n_rows;
    sh.pool = pool;
    if ((st = run_students(o, &sh, red_pool_size(pool), err))) goto out_data;
    if (red_dist_size() > 1 && ((st = gather_results(o, err)) || red_dist_rank() != 0)) goto out_data;
    for (k = 0; k < n_init; k++)
        if ((st = summarize(o, o->inits[k], L, ds, &S[k], err))) goto out_sum;
    threshold = set_tokens_to_loss(S, n_init);
    seconds = red_time_seconds() - t0;
    {
        double mp_sd = 0.02 * sqrt(3072.0 / t.cfg.dim);
        if ((st = plots(o, &T, S, n_init, L, ds, mp_sd * (sqrt((double)t.cfg.dim) - sqrt((double)ds)),
                        mp_sd * (sqrt((double)t.cfg.dim) + sqrt((double)ds)), err)) ||
            (st = hidden_plots(o, &T, S, n_init, L, t.cfg.dim, ds, err)) ||
            (st = write_report(o, &T, S, n_init, L, t.cfg.dim, ds, threshold, seconds, red_pool_size(pool), tests.n_mc,
                              err)))
            goto out_sum;
    }
    say(o, "reproduce: report in %s/report.md", o->out);
out_sum:
    for (k = 0; k < n_init; k++) free_summary(&S[k]);
out_data:
    free(rows);
    free(T.erank);
    free(T.hidden);
    red_train_data_free(&data);
out_tests:
    free_tests(&tests);
out_model:
    red_model_free(&t);
    red_tokenizer_free(tok);
    return st;
}
