/* tests/test_lmeval.c - lm-eval's general-ability tasks (eval/lmeval.c):
 * requests against an independent Jinja2 rendering of the task YAMLs
 * (tests/fixtures/make_lmeval_fixtures.py, byte for byte), one row per task
 * with its request written out here, malformed rows (errors name the line
 * and the field), acc / acc_norm on a random byte-level model against
 * log-likelihoods from its full forward, and MMLU's pooled group stderr. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>

#include "testutil.h"

static const char *const TASKS[] = {"arc_easy", "arc_challenge", "hellaswag", "piqa",
                                    "winogrande", "sciq", "boolq", "mmlu"};

static red_lm_task task_of(const char *name) {
    red_lm_task t;
    cr_assert(red_lm_task_parse(name, &t) == RED_OK, "%s", name);
    return t;
}

static void load_fixture(const char *task, red_lm_set *s) {
    char path[256];
    red_error err;
    snprintf(path, sizeof path, FIXTURE("lmeval/%s.jsonl"), task);
    cr_assert(red_lm_load(task_of(task), path, 0, s, &err) == RED_OK, "%s", err.msg);
}

static size_t code_points(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* The dump equals the reference file byte for byte; golds and len(choice)
 * (acc_norm's divisor, Python characters) equal the reference's. */
Test(lmeval, requests_match_independent_jinja_rendering) {
    size_t t;
    for (t = 0; t < sizeof TASKS / sizeof *TASKS; t++) {
        red_lm_set s;
        red_sbuf got;
        unsigned char *want;
        size_t want_len;
        char path[256], line[256];
        red_error err;
        FILE *g;
        int i;
        load_fixture(TASKS[t], &s);
        red_sbuf_init(&got);
        red_lm_requests_jsonl(&s, &got);
        snprintf(path, sizeof path, FIXTURE("lmeval/%s.requests.jsonl"), TASKS[t]);
        cr_assert(red_read_file(path, &want, &want_len, &err) == RED_OK, "%s", err.msg);
        if (got.len != want_len || memcmp(got.p, want, want_len)) {
            size_t k = 0;
            while (k < got.len && k < want_len && got.p[k] == (char)want[k]) k++;
            cr_expect(0, "%s: requests differ from the reference at byte %zu:\nred: %.120s\nref: %.120s", TASKS[t], k,
                      got.p + (k > 40 ? k - 40 : 0), (const char *)want + (k > 40 ? k - 40 : 0));
        }
        snprintf(path, sizeof path, FIXTURE("lmeval/%s.gold.txt"), TASKS[t]);
        g = fopen(path, "r");
        cr_assert(g, "%s", path);
        for (i = 0; i < s.n; i++) {
            char *p = line;
            int k;
            cr_assert(fgets(line, sizeof line, g));
            cr_expect(strtol(p, &p, 10) == s.docs[i].gold, "%s doc %d gold", TASKS[t], i);
            for (k = 0; k < s.docs[i].n_options; k++)
                cr_expect(strtol(p, &p, 10) == (long)code_points(s.docs[i].options[k]), "%s doc %d choice %d length",
                          TASKS[t], i, k);
        }
        fclose(g);
        free(want);
        red_sbuf_free(&got);
        red_lm_set_free(&s);
    }
}

/* One row per task and the request lm-eval forms from it, spelled out. */
static void expect_request(const char *task, const char *row, int choice, const char *ctx, const char *cont, int gold) {
    red_lm_set s;
    red_error err;
    const char *c, *x;
    cr_assert(red_lm_parse(task_of(task), row, strlen(row), "row", 0, &s, &err) == RED_OK, "%s: %s", task, err.msg);
    cr_assert(s.n == 1 && choice < s.docs[0].n_options);
    x = red_mc_request(&s.docs[0], choice, &c);
    cr_expect(strcmp(x, ctx) == 0, "%s context:\n[%s]\nlm-eval:\n[%s]", task, x, ctx);
    cr_expect(cont[0] == ' ' && strcmp(c, cont + 1) == 0, "%s continuation: [ %s], lm-eval: [%s]", task, c, cont);
    cr_expect(s.docs[0].gold == gold, "%s gold %d, want %d", task, s.docs[0].gold, gold);
    red_lm_set_free(&s);
}

Test(lmeval, requests_written_out) {
    expect_request("arc_challenge",
                   "{\"question\": \"Which gas do plants absorb?\", \"choices\": {\"text\": [\"oxygen\", \"carbon dioxide\","
                   " \"helium\"], \"label\": [\"1\", \"2\", \"3\"]}, \"answerKey\": \"2\"}",
                   1, "Question: Which gas do plants absorb?\nAnswer:", " carbon dioxide", 1);
    expect_request("hellaswag",
                   "{\"activity_label\": \"Home and Garden\", \"ctx_a\": \"[header] How to mop [title] Sweep.\", \"ctx_b\":"
                   " \"[step] Fill A BUCKET.\", \"endings\": [\"Add  soap [substeps] now.\", \"x\"], \"label\": \"0\"}",
                   0, "Home and Garden: How to mop. Sweep. fill a bucket.", " Add soap now.", 0);
    expect_request("piqa", "{\"goal\": \"Dry a phone\", \"sol1\": \"rice\", \"sol2\": \"oven\", \"label\": 0}", 1,
                   "Question: Dry a phone\nAnswer:", " oven", 0);
    expect_request("winogrande",
                   "{\"sentence\": \"Ann asked Mary because _ knew.\", \"option1\": \"Ann\", \"option2\": \"Mary\","
                   " \"answer\": \"2\"}",
                   1, "Ann asked Mary because Mary", " knew.", 1);
    expect_request("sciq",
                   "{\"question\": \"What is H2O?\", \"distractor1\": \"salt\", \"distractor2\": \"air\", \"distractor3\":"
                   " \"fire\", \"correct_answer\": \"water\", \"support\": \"\"}",
                   3, "\nQuestion: What is H2O?\nAnswer:", " water", 3);
    expect_request("boolq",
                   "{\"question\": \"is ice cold\", \"passage\": \"Ice -- Ice is frozen water.\", \"idx\": 3, \"label\": 1}",
                   0, "Ice -- Ice is frozen water.\nQuestion: is ice cold?\nAnswer:", " no", 1);
    expect_request("mmlu",
                   "{\"question\": \" What is 2+2? \\n\", \"subject\": \"high_school_mathematics\", \"choices\": [\"3\","
                   " \"4\", \"5\", \"22\"], \"answer\": 1}",
                   3,
                   "The following are multiple choice questions (with answers) about high school mathematics.\n\n"
                   "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:",
                   " D", 1);
}

/* Error text names the file, the line (blank lines counted) and the field. */
static void expect_error(const char *task, const char *text, const char *want1, const char *want2) {
    red_lm_set s;
    red_error err;
    red_status st = red_lm_parse(task_of(task), text, strlen(text), "rows.jsonl", 0, &s, &err);
    cr_expect(st != RED_OK, "%s: accepted %s", task, text);
    if (st == RED_OK) {
        red_lm_set_free(&s);
        return;
    }
    cr_expect(strstr(err.msg, want1) != NULL, "%s: message [%s] lacks [%s]", task, err.msg, want1);
    if (want2) cr_expect(strstr(err.msg, want2) != NULL, "%s: message [%s] lacks [%s]", task, err.msg, want2);
}

Test(lmeval, malformed_rows_name_line_and_field) {
    static const char arc_ok[] =
        "{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"A\"}\n";
    char two[512];
    red_lm_task t;
    snprintf(two, sizeof two, "%s\n%s", arc_ok, "{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}}\n");
    expect_error("arc_easy", two, "rows.jsonl:3", "\"answerKey\" is missing");
    expect_error("arc_easy", "{\"question\": 5, \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"A\"}",
                 "rows.jsonl:1", "\"question\" must be a string, not number");
    expect_error("arc_easy", "{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"C\"}",
                 "\"answerKey\" is not one of choices.label", NULL);
    expect_error("arc_challenge", "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answerKey\": \"A\"}",
                 "\"choices\" must be an object", NULL);
    expect_error("arc_easy", "{\"question\": \"q\", \"choices\": {\"text\": [\"a\", 3], \"label\": [\"A\", \"B\"]}, "
                             "\"answerKey\": \"A\"}", "\"text\" must be an array of strings", NULL);
    expect_error("hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"x\"]}",
                 "\"label\" is missing", NULL);
    expect_error("hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"x\"], "
                              "\"label\": \"\"}", "\"label\" is empty", NULL);
    expect_error("hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"x\"], "
                              "\"label\": \"1\"}", "\"label\" does not index endings", NULL);
    expect_error("hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"endings\": [\"x\"], \"label\": \"0\"}",
                 "\"ctx_b\" is missing", "hellaswag rows need activity_label, ctx_a, ctx_b, endings, label");
    expect_error("piqa", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": \"0\"}",
                 "\"label\" must be an integer, not string", NULL);
    expect_error("piqa", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 2}", "\"label\" is 2, outside 0..1",
                 NULL);
    expect_error("winogrande", "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}",
                 "\"sentence\" has no blank", NULL);
    expect_error("winogrande", "{\"sentence\": \"a _ b\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": 1}",
                 "\"answer\" must be a string, not number", NULL);
    expect_error("winogrande", "{\"sentence\": \"a _ b\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"\"}",
                 "\"answer\" must be \"1\" or \"2\"", NULL);
    expect_error("sciq", "{\"question\": \"q\", \"distractor1\": \"a\", \"distractor2\": \"b\", \"correct_answer\": \"d\","
                         " \"support\": \"\"}", "\"distractor3\" is missing", NULL);
    expect_error("boolq", "{\"question\": \"q\", \"passage\": \"p\"}", "\"label\" is missing", "\"answer\"");
    expect_error("boolq", "{\"question\": \"q\", \"passage\": \"p\", \"answer\": \"yes\"}",
                 "\"answer\" must be true or false, not string", NULL);
    expect_error("mmlu", "{\"question\": \"q\", \"subject\": \"astrology\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], "
                         "\"answer\": 0}", "\"subject\" is not one of MMLU's 57 subjects", NULL);
    expect_error("mmlu", "{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\"], \"answer\": 0}",
                 "\"choices\" has 3 elements, needs at least 4", NULL);
    expect_error("mmlu", "{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], "
                         "\"answer\": \"B\"}", "\"answer\" must be an integer, not string", NULL);
    expect_error("mmlu", "[1, 2]", "expected a JSON object", NULL);
    expect_error("piqa", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 0\n", "rows.jsonl:1", NULL);
    expect_error("piqa", "\n  \n", "no rows", NULL);
    cr_expect(red_lm_task_parse("lambada", &t) == RED_E_ARG, "an unknown task is an error, not a guess");
    cr_expect(red_lm_task_parse("choice", &t) == RED_E_ARG);
}

/* ------------------------------------------------------------------ scores */

/* log p(cont | ctx) from the full training forward of the byte sequence,
 * log-softmax in double; trailing context whitespace joins the continuation. */
static double brute_ll(red_model *m, red_pool *pool, const char *ctx, const char *cont) {
    size_t cl = strlen(ctx), n = 0, j, total = strlen(ctx) + strlen(cont);
    int *ids = malloc(sizeof(int) * (total + 1));
    double sum;
    while (cl && (ctx[cl - 1] == ' ' || ctx[cl - 1] == '\n')) cl--;
    for (j = 0; ctx[j]; j++) ids[n++] = (unsigned char)ctx[j];
    for (j = 0; cont[j]; j++) ids[n++] = (unsigned char)cont[j];
    cr_assert(cl > 0, "test requests have a context");
    sum = tu_sum_logprob(m, pool, ids, (int)n, (int)cl);
    free(ids);
    return sum;
}

/* sample stddev (two passes, ddof 1) / sqrt(n), as lm-eval's mean_stderr */
static double stderr_two_pass(const double *x, int n) {
    double mu = 0.0, ss = 0.0;
    int i;
    if (n < 2) return 0.0;
    for (i = 0; i < n; i++) mu += x[i] / n;
    for (i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    return sqrt(ss / (n - 1) / n);
}

/* acc and acc_norm of red_lm_eval equal argmax over brute-force
 * log-likelihoods of the reference requests (divided by the reference's
 * len(choice) for acc_norm), for tasks with and without acc_norm. */
Test(lmeval, scores_match_brute_force_loglikelihoods) {
    static const char *const tasks[] = {"arc_easy", "hellaswag", "winogrande", "piqa"};
    red_pool *pool = red_pool_create(2);
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_error err;
    red_rng r;
    size_t t;
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    red_config_default(&c);
    c.vocab = 259; c.max_pos = 512; c.dim = 32; c.ffn = 48; c.n_heads = 2; c.n_kv_heads = 1;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK);
    red_rng_seed(&r, 11);
    red_model_init_random(&m, &r, 0.3f, 0.0f);
    for (t = 0; t < sizeof tasks / sizeof *tasks; t++) {
        red_lm_set s;
        red_lm_scores sc;
        red_json **req, **gl;
        size_t n_req, q = 0;
        double acc[16], accn[16];
        char path[256];
        int i, k;
        FILE *g;
        load_fixture(tasks[t], &s);
        snprintf(path, sizeof path, FIXTURE("lmeval/%s.requests.jsonl"), tasks[t]);
        cr_assert(red_jsonl_read(path, &req, &n_req, &err) == RED_OK, "%s", err.msg);
        snprintf(path, sizeof path, FIXTURE("lmeval/%s.gold.txt"), tasks[t]);
        g = fopen(path, "r");
        (void)gl;
        cr_assert(g && s.n <= 16);
        cr_assert(red_lm_eval(&m, tok, &s, 0, 3, NULL, NULL, &sc, &err) == RED_OK, "%s", err.msg);
        cr_assert(sc.n_req == (int)n_req);
        for (i = 0; i < s.n; i++) {
            double ll[8], best = -1e300, best_norm = -1e300, second = -1e300, second_norm = -1e300;
            int pred = 0, pred_norm = 0, gold;
            char line[256], *p = line;
            cr_assert(fgets(line, sizeof line, g));
            gold = (int)strtol(p, &p, 10);
            for (k = 0; k < s.docs[i].n_options; k++, q++) {
                const char *ctx = red_json_get(req[q], "context")->str, *cont = red_json_get(req[q], "continuation")->str;
                double want = brute_ll(&m, pool, ctx, cont), len = (double)strtol(p, &p, 10);
                /* fp32 logits, double log-softmax: |diff| ~ 1e-6 per token */
                cr_expect(fabs(sc.ll[q] - want) <= 1e-4 * (1 + fabs(want)), "%s doc %d choice %d: %.8f vs brute force %.8f",
                          tasks[t], i, k, sc.ll[q], want);
                ll[k] = want;
                if (want > best) second = best, best = want, pred = k;
                else if (want > second) second = want;
                if (want / len > best_norm) second_norm = best_norm, best_norm = want / len, pred_norm = k;
                else if (want / len > second_norm) second_norm = want / len;
            }
            (void)ll;
            /* compare predictions only where the margin exceeds the ll tolerance */
            if (best - second > 1e-3) cr_expect(sc.pred[i] == pred, "%s doc %d acc pred %d vs %d", tasks[t], i, sc.pred[i], pred);
            if (red_lm_has_acc_norm(s.task) && best_norm - second_norm > 1e-3)
                cr_expect(sc.pred_norm[i] == pred_norm, "%s doc %d acc_norm pred %d vs %d", tasks[t], i, sc.pred_norm[i],
                          pred_norm);
            acc[i] = sc.pred[i] == gold;
            accn[i] = sc.pred_norm[i] == gold;
        }
        {
            double a = 0.0, an = 0.0;
            for (i = 0; i < s.n; i++) a += acc[i], an += accn[i];
            cr_expect(fabs(sc.summary.acc - a / s.n) < 1e-15);
            cr_expect(fabs(sc.summary.acc_stderr - stderr_two_pass(acc, s.n)) < 1e-12, "%s acc stderr %.17g vs %.17g",
                      tasks[t], sc.summary.acc_stderr, stderr_two_pass(acc, s.n));
            if (red_lm_has_acc_norm(s.task)) {
                cr_expect(fabs(sc.summary.acc_norm - an / s.n) < 1e-15);
                cr_expect(fabs(sc.summary.acc_norm_stderr - stderr_two_pass(accn, s.n)) < 1e-12);
            } else cr_expect(isnan(sc.summary.acc_norm), "%s reports no acc_norm", tasks[t]);
        }
        fclose(g);
        red_jsonl_free(req, n_req);
        red_lm_scores_free(&sc);
        red_lm_set_free(&s);
    }
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
}

/* MMLU: acc is the micro average over every question; its stderr is
 * lm-eval's pooled_sample_stderr over the four category groups, each pooled
 * over its subjects (values from the formula with two-pass variances). */
Test(lmeval, mmlu_groups_and_pooled_stderr) {
    /* subjects: anatomy (stem) x5, astronomy (stem) x3, virology (other) x4,
     * philosophy (humanities) x1 */
    static const char *const subj[4] = {"anatomy", "astronomy", "virology", "philosophy"};
    static const int count[4] = {5, 3, 4, 1};
    static const int right[13] = {1, 0, 1, 1, 0, /**/ 1, 1, 0, /**/ 0, 0, 1, 0, /**/ 1};
    red_sbuf rows;
    red_lm_set s;
    red_lm_summary r;
    red_error err;
    int pred[13], i, k, d = 0;
    double x[13], se_sub[4], n_stem = 8, n_other = 4, n_hum = 1, total = 0, se_stem, se_other, se_hum, pooled;
    red_sbuf_init(&rows);
    for (k = 0; k < 4; k++)
        for (i = 0; i < count[k]; i++)
            red_sbuf_printf(&rows, "{\"question\": \"q%d\", \"subject\": \"%s\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], "
                                   "\"answer\": %d}\n", d++, subj[k], i % 4);
    cr_assert(red_lm_parse(RED_LM_MMLU, rows.p, rows.len, "mmlu", 0, &s, &err) == RED_OK, "%s", err.msg);
    cr_assert(s.n == 13);
    for (i = 0; i < 13; i++) {
        pred[i] = right[i] ? s.docs[i].gold : (s.docs[i].gold + 1) % 4;
        x[i] = right[i];
        total += right[i];
    }
    red_lm_summarize(&s, pred, pred, &r);
    se_sub[0] = stderr_two_pass(x, 5);
    se_sub[1] = stderr_two_pass(x + 5, 3);
    se_sub[2] = stderr_two_pass(x + 8, 4);
    se_sub[3] = 0.0;  /* one question: no variance term ((n - 1) = 0) */
    se_stem = sqrt((4 * se_sub[0] * se_sub[0] * 5 + 2 * se_sub[1] * se_sub[1] * 3) / (n_stem - 2) / n_stem);
    se_other = se_sub[2];  /* one subject: the pool is that subject */
    se_hum = 0.0;
    pooled = sqrt(((n_stem - 1) * se_stem * se_stem * n_stem + (n_other - 1) * se_other * se_other * n_other +
                   (n_hum - 1) * se_hum * se_hum * n_hum) / (13 - 3) / 13);
    cr_expect(fabs(r.acc - total / 13) < 1e-15, "micro average");
    cr_expect(fabs(r.acc_stderr - pooled) < 1e-12, "pooled stderr %.17g vs %.17g", r.acc_stderr, pooled);
    cr_expect(fabs(r.group_stderr[0] - se_stem) < 1e-12 && fabs(r.group_stderr[1] - se_other) < 1e-12);
    cr_expect(r.group_n[0] == 8 && r.group_n[1] == 4 && r.group_n[2] == 0 && r.group_n[3] == 1);
    cr_expect(strcmp(red_mmlu_group_name(0), "stem") == 0 && strcmp(red_mmlu_group_name(3), "humanities") == 0);
    cr_expect(fabs(r.group_acc[0] - 5.0 / 8) < 1e-15 && fabs(r.group_acc[1] - 1.0 / 4) < 1e-15);
    cr_expect(isnan(r.acc_norm), "MMLU reports acc only");
    /* the flat stderr over all 13 differs: the pooled one drops between-group variance */
    cr_expect(fabs(r.acc_stderr - stderr_two_pass(x, 13)) > 1e-3);
    red_sbuf_free(&rows);
    red_lm_set_free(&s);
}
