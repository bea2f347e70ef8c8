/* tests/test_eval.c - the lm-eval re-implementation against CPython itself
 * (fixtures from tests/fixtures/make_eval_fixtures.py): the few-shot sampler
 * (random.Random(1234).sample) and the gsm8k filters and exact_match
 * normalisation on tricky strings; gold parsing of the real GSM8K train
 * split (../shared/data, skipped when absent); prompt layout. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

#define GSM8K_TRAIN "../shared/data/gsm8k/train.jsonl"

Test(eval, pyrandom_cpython_streams) {
    red_pyrandom r;
    int64_t s[10];
    red_pyrandom_seed(&r, 1234);
    cr_expect(red_pyrandom_getrandbits(&r, 32) == 4150886329u);
    cr_expect(red_pyrandom_getrandbits(&r, 32) == 3342196574u);
    cr_expect(red_pyrandom_getrandbits(&r, 32) == 1892932127u);
    cr_expect(red_pyrandom_random(&r) == 0.11685051774599753);
    red_pyrandom_seed(&r, (1ull << 40) + 5);
    red_pyrandom_sample(&r, 100, 7, s);
    cr_expect(s[0] == 64 && s[1] == 66 && s[2] == 34 && s[3] == 84 && s[4] == 3 && s[5] == 67 && s[6] == 97);
    cr_expect(red_pyrandom_randbelow(&r, 1000) == 837);
}

/* Every draw in the fixture: lm-eval's 1319 gsm8k draws (the first is train
 * lines 6374, 3610, 957, 61, 742, as eval.md records) and both of CPython's
 * sample methods (pool for small n, set otherwise). */
Test(eval, pyrandom_sample_matches_cpython_fixture) {
    FILE *f = fopen(FIXTURE("pyrandom_draws.txt"), "r");
    char line[4096];
    red_pyrandom r;
    long long n = 0;
    int k = 0, checked = 0, first = 1;
    cr_assert(f, "missing fixture");
    while (fgets(line, sizeof line, f)) {
        unsigned long long seed;
        int draws;
        if (sscanf(line, "# seed %llu n %lld k %d draws %d", &seed, &n, &k, &draws) == 4) {
            red_pyrandom_seed(&r, seed);
            continue;
        }
        {
            int64_t got[64];
            char *p = line;
            int i;
            cr_assert(red_pyrandom_sample(&r, n, k, got) == RED_OK);
            for (i = 0; i < k; i++) {
                long long want = strtoll(p, &p, 10);
                cr_assert(got[i] == want, "draw %d element %d: %lld vs CPython %lld", checked, i, (long long)got[i], want);
            }
            if (first) {
                cr_expect(got[0] == 6374 && got[1] == 3610 && got[2] == 957 && got[3] == 61 && got[4] == 742);
                first = 0;
            }
            checked++;
        }
    }
    fclose(f);
    cr_expect(checked == 1319 + 3 + 4 + 3 + 2 + 5, "%d draws checked", checked);
}

static const char *jstr(const red_json *o, const char *k) {
    const red_json *v = red_json_get(o, k);
    cr_assert(v && v->type == RED_JSON_STRING, "field %s", k);
    return v->str;
}

static void expect_filter(void (*fn)(const char *, red_sbuf *), const char *in, const char *want, const char *what) {
    red_sbuf b;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "");
    fn(in, &b);
    cr_expect(strcmp(b.p, want) == 0, "%s of \"%s\": got \"%s\", Python re gives \"%s\"", what, in, b.p, want);
    red_sbuf_free(&b);
}

Test(eval, gsm8k_filters_match_python_re) {
    red_json **items;
    size_t n, i;
    red_error err;
    cr_assert(red_jsonl_read(FIXTURE("gsm8k_filters.jsonl"), &items, &n, &err) == RED_OK, "%s", err.msg);
    cr_assert(n >= 40);
    for (i = 0; i < n; i++) {
        const char *t = jstr(items[i], "text");
        expect_filter(red_gsm8k_extract_strict, t, jstr(items[i], "strict"), "strict-match");
        expect_filter(red_gsm8k_extract_cot_strict, t, jstr(items[i], "cot_strict"), "cot strict-match");
        expect_filter(red_gsm8k_extract_flexible, t, jstr(items[i], "flexible"), "flexible-extract");
        expect_filter(red_gsm8k_normalize, t, jstr(items[i], "norm_text"), "regexes_to_ignore");
        expect_filter(red_gsm8k_normalize, jstr(items[i], "flexible"), jstr(items[i], "norm_flexible"), "normalise flexible");
    }
    red_jsonl_free(items, n);
}

Test(eval, gsm8k_quirks_of_eval_md_2_4) {
    /* an ellipsis is a "number" for flexible-extract and scores wrong */
    expect_filter(red_gsm8k_extract_flexible, "so the answer is 5...", "5...", "flexible");
    cr_expect(!red_gsm8k_exact_match("...", "#### 5"));
    cr_expect(red_gsm8k_exact_match("5.", "#### 5"), "a trailing period is ignored");
    cr_expect(red_gsm8k_exact_match("$1,234.", "x\n#### 1,234"));
    cr_expect(!red_gsm8k_exact_match("18.00", "#### 18"), "no numeric comparison");
    cr_expect(!red_gsm8k_exact_match("18.0", "#### 18"));
    /* strict-match for cot needs a character after the number */
    expect_filter(red_gsm8k_extract_cot_strict, "The answer is 42", "4", "cot strict");
    {
        const char *stops[3] = {"Question:", "</s>", "<|im_end|>"};
        const char *g = " 5 + 3 = 8\n#### 8\n\nQuestion: next</s>";
        cr_expect(red_cut_at_stops(g, strlen(g), stops, 3) == strlen(" 5 + 3 = 8\n#### 8\n\n"));
    }
    {
        red_gsm8k_scored s;
        red_gsm8k_score_one(RED_GSM8K_COT, "So 3 + 4 = 7. The answer is 7.\n", "Some steps\n#### 7", &s);
        cr_expect(s.strict_ok && s.flexible_ok, "cot gold is the text after ####");
        cr_expect(strcmp(s.strict.p, "7") == 0);
        red_gsm8k_scored_free(&s);
        red_gsm8k_score_one(RED_GSM8K, " 2 * 3 = <<2*3=6>>6\n#### 6", "2 * 3 = <<2*3=6>>6\n#### 6", &s);
        cr_expect(s.strict_ok && s.flexible_ok);
        red_gsm8k_scored_free(&s);
    }
    cr_expect(fabs(red_mean_stderr(3, 3, 4) - sqrt(0.75 * 0.25 / 3)) < 1e-15, "ddof=1 standard error");
}

Test(eval, gsm8k_gold_parsing_of_the_real_train_split) {
    red_gsm8k_doc *docs;
    int n, i;
    red_error err;
    if (access(GSM8K_TRAIN, R_OK) != 0) {
        cr_skip_test("%s not present (the shared data directory is not beside the repository)", GSM8K_TRAIN);
    }
    cr_assert(red_gsm8k_load(GSM8K_TRAIN, &docs, &n, &err) == RED_OK, "%s", err.msg);
    cr_assert(n == 7473, "%d lines", n);
    for (i = 0; i < n; i++) {
        /* independent parse: the text after the last "#### ", commas removed, an integer */
        const char *p = strstr(docs[i].answer, "#### "), *q;
        char want[64];
        size_t k = 0;
        red_sbuf g;
        cr_assert(p, "line %d has no ####", i + 1);
        while ((q = strstr(p + 1, "#### ")) != NULL) p = q;
        for (p += 5; *p && k < 63; p++)
            if (*p != ',') want[k++] = *p;
        want[k] = 0;
        red_sbuf_init(&g);
        red_sbuf_puts(&g, "");
        red_gsm8k_normalize(docs[i].answer, &g);
        cr_assert(strcmp(g.p, want) == 0, "line %d: gold \"%s\", expected \"%s\"", i + 1, g.p, want);
        cr_assert(strspn(want + (want[0] == '-'), "0123456789") == strlen(want + (want[0] == '-')), "line %d: %s", i + 1, want);
        /* the reference answer scores itself under strict-match */
        {
            red_gsm8k_scored s;
            red_gsm8k_score_one(RED_GSM8K, docs[i].answer, docs[i].answer, &s);
            cr_assert(s.strict_ok, "line %d: the reference solution does not match itself", i + 1);
            red_gsm8k_scored_free(&s);
        }
        red_sbuf_free(&g);
    }
    /* lm-eval's doc-0 prompt begins with train line 6374, the gymnastics problem */
    {
        red_pyrandom r;
        int64_t shots[5];
        red_sbuf pr;
        red_pyrandom_seed(&r, 1234);
        red_pyrandom_sample(&r, n, 5, shots);
        red_sbuf_init(&pr);
        red_gsm8k_prompt(RED_GSM8K, docs, shots, 5, "Q?", &pr);
        cr_expect(strncmp(pr.p, "Question: Jen and Tyler are gymnasts", 36) == 0, "%.60s", pr.p);
        cr_expect(strstr(pr.p, "#### 12\n\nQuestion: Four people in a law firm") != NULL);
        {
            const char *tail = "#### 84\n\nQuestion: Q?\nAnswer:";  /* the fifth exemplar ends with 84 (eval.md) */
            cr_expect(strlen(pr.p) > strlen(tail) && strcmp(pr.p + strlen(pr.p) - strlen(tail), tail) == 0, "%s",
                      pr.p + strlen(pr.p) - 40);
        }
        red_sbuf_free(&pr);
    }
    red_gsm8k_free(docs, n);
}

Test(eval, gsm8k_cot_prompt_layout) {
    red_sbuf p;
    red_sbuf_init(&p);
    red_gsm8k_prompt(RED_GSM8K_COT, NULL, NULL, 0, "How many?", &p);
    cr_expect(strncmp(p.p, "Q: There are 15 trees in the grove.", 35) == 0);
    cr_expect(strstr(p.p, "The answer is 8.\n\nQ: How many?\nA:") != NULL);
    cr_expect(p.p[p.len - 1] == ':', "nothing after the final A:");
    red_sbuf_free(&p);
    red_sbuf_init(&p);
    red_gsm8k_prompt(RED_GSM8K, NULL, NULL, 0, "How many?", &p);
    cr_expect(strcmp(p.p, "Question: How many?\nAnswer:") == 0, "zero-shot: %s", p.p);
    red_sbuf_free(&p);
}

/* generate_until on a random byte-level model equals a hand-rolled greedy
 * loop over the full training forward, cut at the stop strings; a stop
 * string equal to the first generated character yields an empty completion. */
Test(eval, generate_until_matches_full_forward_greedy) {
    red_pool *pool = red_pool_create(2);
    red_config c;
    red_model m, ref;
    red_tokenizer *tok;
    red_error err;
    red_rng r;
    const char *prompts[3] = {"Question: 2+2?\nAnswer:", "abc", "Q: x\nA:"};
    red_sbuf outs[3];
    red_gen_opts o;
    const char *stops[1] = {"</s>"};
    int i;
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    red_config_default(&c);
    c.vocab = 259; c.max_pos = 48; c.dim = 32; c.ffn = 64; c.n_heads = 2; c.n_kv_heads = 1;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK);
    red_rng_seed(&r, 77);
    red_model_init_random(&m, &r, 0.5f, 0.0f);
    memset(&o, 0, sizeof o);
    o.max_gen = 12; o.batch = 2; o.stops = stops; o.n_stops = 1;
    for (i = 0; i < 3; i++) red_sbuf_init(&outs[i]);
    cr_assert(red_generate_until(&m, tok, prompts, 3, &o, outs, &err) == RED_OK, "%s", err.msg);
    for (i = 0; i < 3; i++) {
        int ids[64], n = red_tokenize(tok, prompts[i], strlen(prompts[i]), 0, ids, 64), g, j;
        red_sbuf want;
        red_sbuf_init(&want);
        red_sbuf_puts(&want, "");
        for (g = 0; g < 12; g++) {
            float *lg;
            int best = 0;
            char b[RED_TOKEN_MAX_BYTES];
            cr_assert(red_model_alloc(&ref, &c, pool, &err) == RED_OK);
            memcpy(ref.params, m.params, m.n_params * 4);
            cr_assert(red_model_train_alloc(&ref, 1, n, &err) == RED_OK);
            red_model_forward(&ref, ids, 1, n);
            lg = red_model_logits(&ref) + (size_t)(n - 1) * c.vocab;
            for (j = 1; j < c.vocab; j++)
                if (lg[j] > lg[best]) best = j;
            red_model_free(&ref);
            if (best == red_tokenizer_eos(tok)) break;
            red_sbuf_put(&want, b, (size_t)red_token_bytes(tok, best, b));
            ids[n++] = best;
        }
        want.len = red_cut_at_stops(want.p, want.len, stops, 1);
        cr_expect(outs[i].len == want.len && memcmp(outs[i].p, want.p, want.len) == 0, "prompt %d: \"%s\" vs \"%.*s\"",
                  i, outs[i].p, (int)want.len, want.p);
        /* now stop at the first generated character */
        if (want.len > 0) {
            char first[2] = {want.p[0], 0};
            const char *st1[1] = {first};
            red_sbuf one;
            const char *pr1[1] = {prompts[i]};
            o.stops = st1;
            red_sbuf_init(&one);
            cr_assert(red_generate_until(&m, tok, pr1, 1, &o, &one, &err) == RED_OK);
            cr_expect(one.len == 0, "stop on the first character leaves nothing, got \"%s\"", one.p);
            red_sbuf_free(&one);
            o.stops = stops;
        }
        red_sbuf_free(&want);
        red_sbuf_free(&outs[i]);
    }
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
}

/* Brute force: log p(continuation | context) from the full training forward
 * of the joint byte sequence, log-softmax in double. */
static double brute_ll(red_model *m, red_pool *pool, const char *ctx, const char *cont, int bos) {
    int ids[256], n = 0, nc, j;
    size_t cl = strlen(ctx);
    char joint[256];
    while (cl && ctx[cl - 1] == ' ') cl--;  /* trailing whitespace belongs to the continuation */
    snprintf(joint, sizeof joint, "%s%s", ctx, cont);
    if (bos) ids[n++] = 256;
    for (j = 0; joint[j]; j++) ids[n++] = (unsigned char)joint[j];
    nc = (int)cl + bos;
    if (nc == 0) {  /* empty context: BOS first */
        memmove(ids + 1, ids, sizeof(int) * (size_t)n);
        ids[0] = 256;
        n++;
        nc = 1;
    }
    return tu_sum_logprob(m, pool, ids, n, nc);
}

Test(eval, choice_loglikelihood_matches_brute_force_and_metrics) {
    red_pool *pool = red_pool_create(2);
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_error err;
    red_rng r;
    const char *ctx[5] = {"Question: is ice cold?\nAnswer:", "Question: is ice cold?\nAnswer:", "abc ", "", "x"};
    const char *cont[5] = {" yes", " no", " d", " start", " caf\xC3\xA9"};
    double ll[5];
    int greedy[5], i, bos;
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    red_config_default(&c);
    c.vocab = 259; c.max_pos = 64; c.dim = 32; c.ffn = 48; c.n_heads = 2; c.n_kv_heads = 1;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK);
    red_rng_seed(&r, 5);
    red_model_init_random(&m, &r, 0.3f, 0.0f);
    for (bos = 0; bos <= 1; bos++) {
        cr_assert(red_loglikelihood(&m, tok, ctx, cont, 5, bos, 2, ll, greedy, NULL, NULL, &err) == RED_OK, "%s", err.msg);
        for (i = 0; i < 5; i++) {
            double want = brute_ll(&m, pool, ctx[i], cont[i], bos);
            /* fp32 logits, double log-softmax: |diff| ~ 1e-6 per token */
            cr_expect(fabs(ll[i] - want) <= 1e-4 * (1 + fabs(want)), "bos %d request %d: %.8f vs brute force %.8f", bos, i,
                      ll[i], want);
        }
    }
    {
        /* acc vs acc_norm: normalisation by code points, not bytes */
        red_mc_doc d;
        char *opts[3] = {"ab", "caf\xC3\xA9", "x"};
        double lls[3] = {-4.0, -8.5, -2.2};
        int pred, pred_norm;
        d.text = "q"; d.options = opts; d.n_options = 3; d.gold = 0; d.multi_context = 0;
        red_mc_score(&d, lls, &pred, &pred_norm);
        cr_expect(pred == 2, "acc: first argmax");
        /* per char: -2.0, -2.125 (4 code points, 5 bytes), -2.2 */
        cr_expect(pred_norm == 0, "acc_norm picks -4/2");
        lls[1] = -7.9;  /* -1.975 per code point (by bytes it would be -1.58 either way the winner) */
        red_mc_score(&d, lls, &pred, &pred_norm);
        cr_expect(pred_norm == 1);
        lls[1] = -8.2;  /* -2.05 per code point loses to -2.0; by bytes (-1.64) it would win */
        red_mc_score(&d, lls, &pred, &pred_norm);
        cr_expect(pred_norm == 0, "code points, not bytes");
    }
    red_model_free(&m);
    red_tokenizer_free(tok);
    red_pool_destroy(pool);
}

/* ------------------------------------------------------------------ task generators */

static red_sbuf gen_reasoning(red_split split, int64_t n, uint64_t seed, int a, int b, int64_t M, const char *ops) {
    red_reasoning_opts o;
    red_sbuf s;
    red_error err;
    o.split = split; o.n = n; o.seed = seed; o.min_steps = a; o.max_steps = b; o.max_number = M; o.ops = ops; o.restate = 0; o.keyed = 0;
    red_sbuf_init(&s);
    red_sbuf_puts(&s, "");
    cr_assert(red_tasks_reasoning(&o, &s, &err) == RED_OK, "%s", err.msg);
    return s;
}

/* Every annotation <<a op b=r>> re-evaluated exactly; results in [1, M];
 * the step count within [a, b]; "#### N" equals the last result; the answer
 * scores itself under strict-match. */
Test(eval, tasks_reasoning_annotations_are_correct) {
    char dir[] = "/tmp/red-test-reasoning-XXXXXX", path[64];
    red_sbuf s = gen_reasoning(RED_SPLIT_TRAIN, 3000, 7, 1, 6, 100, "+-*/");
    red_error err;
    red_json **items;
    size_t n, i;
    int step_hist[7] = {0};
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.jsonl", dir);
    cr_assert(red_write_file_atomic(path, s.p, s.len, &err) == RED_OK);
    cr_assert(red_jsonl_read(path, &items, &n, &err) == RED_OK, "%s", err.msg);
    cr_assert(n == 3000);
    for (i = 0; i < n; i++) {
        const char *ans = jstr(items[i], "answer"), *p = ans;
        long long a, b, r, last = -1, final;
        char op;
        int steps = 0;
        red_gsm8k_scored sc;
        while ((p = strstr(p, "<<")) != NULL) {
            long long want;
            cr_assert(sscanf(p, "<<%lld%c%lld=%lld>>", &a, &op, &b, &r) == 4, "doc %zu: bad annotation %.20s", i, p);
            want = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : (b && a % b == 0) ? a / b : -999;
            cr_assert(want == r, "doc %zu: %lld%c%lld=%lld is wrong (exact value %lld)", i, a, op, b, r, want);
            cr_assert(r >= 1 && r <= 100, "doc %zu: intermediate %lld outside [1, 100]", i, r);
            last = r;
            steps++;
            p += 2;
        }
        cr_assert(steps >= 1 && steps <= 6, "doc %zu: %d steps", i, steps);
        step_hist[steps]++;
        p = strstr(ans, "#### ");
        cr_assert(p && sscanf(p, "#### %lld", &final) == 1 && final == last, "doc %zu: final line", i);
        red_gsm8k_score_one(RED_GSM8K, ans, ans, &sc);
        cr_assert(sc.strict_ok);
        red_gsm8k_scored_free(&sc);
    }
    for (i = 1; i <= 6; i++) cr_expect(step_hist[i] > 300, "steps %zu: only %d problems", i, step_hist[i]);
    red_jsonl_free(items, n);
    unlink(path);
    rmdir(dir);
    red_sbuf_free(&s);
}

Test(eval, tasks_deterministic_and_options_respected) {
    red_sbuf a = gen_reasoning(RED_SPLIT_TEST, 200, 3, 2, 4, 50, "+-"), b = gen_reasoning(RED_SPLIT_TEST, 200, 3, 2, 4, 50, "+-"),
             c = gen_reasoning(RED_SPLIT_TEST, 200, 4, 2, 4, 50, "+-");
    cr_expect(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "same seed, same bytes");
    cr_expect(a.len != c.len || memcmp(a.p, c.p, a.len) != 0, "another seed differs");
    cr_expect(strstr(a.p, "*") == NULL && strstr(a.p, "/") == NULL, "--ops +- uses no * or /");
    red_sbuf_free(&a); red_sbuf_free(&b); red_sbuf_free(&c);
}

/* Open-addressing set of 64-bit hashes of each line's question (the text
 * before "answer"): add_all inserts a JSONL buffer's lines, count_in counts
 * how many lines of another buffer are already present. */
#define QSET_CAP (1u << 16)
static uint64_t question_hash(const char *line) {
    const char *q = strstr(line, "\"answer\""), *k;
    uint64_t h = 1469598103934665603ull;
    for (k = line; k < q; k++) h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h ? h : 1;
}
static size_t qset_slot(const uint64_t *set, uint64_t h) {
    size_t i;
    for (i = h & (QSET_CAP - 1); set[i] && set[i] != h; i = (i + 1) & (QSET_CAP - 1)) {}
    return i;
}
static size_t qset_scan(uint64_t *set, const char *buf, int insert, size_t *lines) {
    const char *p, *e;
    size_t hits = 0;
    *lines = 0;
    for (p = buf; (e = strchr(p, '\n')) != NULL; p = e + 1) {
        uint64_t h = question_hash(p);
        size_t i = qset_slot(set, h);
        hits += set[i] == h;
        if (insert) set[i] = h;
        (*lines)++;
    }
    return hits;
}

/* No test question occurs in train (the split is a function of the problem). */
Test(eval, tasks_splits_are_disjoint) {
    /* small numbers and 1-3 steps make collisions likely if splits leaked */
    red_sbuf tr = gen_reasoning(RED_SPLIT_TRAIN, 20000, 1, 1, 3, 30, "+-*/"), te = gen_reasoning(RED_SPLIT_TEST, 2000, 1, 1, 3, 30, "+-*/"),
             tr2 = gen_reasoning(RED_SPLIT_TRAIN, 2000, 99, 1, 3, 30, "+-*/");
    uint64_t *set = calloc(QSET_CAP, sizeof *set);
    size_t lines, hits;
    qset_scan(set, tr.p, 1, &lines);
    hits = qset_scan(set, te.p, 0, &lines);
    cr_expect(lines == 2000);
    cr_expect(hits == 0, "%zu test questions occur in train", hits);
    /* control: another train draw does overlap train, so the check has power */
    hits = qset_scan(set, tr2.p, 0, &lines);
    cr_expect(hits > 0, "another train draw overlaps train (%zu): the disjointness test can detect overlap", hits);
    free(set);
    red_sbuf_free(&tr);
    red_sbuf_free(&te);
    red_sbuf_free(&tr2);
}

/* Every colour/home/kind item's gold is the fact the corpus states. */
Test(eval, tasks_choice_items_are_answerable_from_the_corpus) {
    red_world_opts o;
    red_sbuf corpus, items;
    red_error err;
    char *p, *e;
    int checked = 0;
    o.split = RED_SPLIT_TEST; o.n = 300; o.seed = 2; o.world_seed = 1; o.n_entities = 48;
    red_sbuf_init(&corpus); red_sbuf_puts(&corpus, "");
    red_sbuf_init(&items); red_sbuf_puts(&items, "");
    cr_assert(red_tasks_choice(&o, &items, &err) == RED_OK, "%s", err.msg);
    o.n = 10;
    cr_assert(red_tasks_corpus(&o, &corpus, &err) == RED_OK, "%s", err.msg);
    for (p = items.p; (e = strchr(p, '\n')) != NULL; p = e + 1) {
        red_json *j;
        const red_json *q, *ch, *g;
        char name[64], fact[160];
        *e = 0;
        cr_assert(red_json_parse(p, strlen(p), "item", &j, &err) == RED_OK, "%s", err.msg);
        q = red_json_get(j, "query");
        ch = red_json_get(j, "choices");
        g = red_json_get(j, "gold");
        if (!red_json_get(j, "contexts")) cr_assert(q && ch && g && g->ival >= 0 && g->ival < (int64_t)ch->count);
        if (q && sscanf(q->str, "Question: What color is the %63[^?]?", name) == 1) {
            snprintf(fact, sizeof fact, "The %s is %s.", name, red_json_at(ch, (size_t)g->ival)->str);
            cr_expect(strstr(corpus.p, fact) != NULL, "corpus lacks \"%s\"", fact);
            checked++;
        } else if (q && sscanf(q->str, "Question: Where does the %63s live?", name) == 1) {
            snprintf(fact, sizeof fact, "The %s lives in %s.", name, red_json_at(ch, (size_t)g->ival)->str);
            cr_expect(strstr(corpus.p, fact) != NULL, "corpus lacks \"%s\"", fact);
            checked++;
        }
        red_json_free(j);
    }
    cr_expect(checked > 50, "only %d items checked", checked);
    red_sbuf_free(&corpus);
    red_sbuf_free(&items);
}

/* ------------------------------------------------------------------ SVG plots */

Test(eval, svg_line_plot_has_title_axes_legend_and_escapes) {
    double x[3] = {1, 2, 3}, y[3] = {0.5, 0.25, 1.0}, e[3] = {0.1, 0, 0.2};
    red_series s[2];
    red_plot p;
    red_error err;
    unsigned char *buf;
    size_t len;
    char path[] = "/tmp/red_test_svg_XXXXXX";
    const char *t;
    int fd = mkstemp(path), lines = 0;
    close(fd);
    memset(s, 0, sizeof s);
    memset(&p, 0, sizeof p);
    p.title = "eRank <per> layer & more";
    p.xlabel = "layer";
    p.ylabel = "eRank";
    p.integer_x = 1;
    s[0].label = "red \"at init\""; s[0].x = x; s[0].y = y; s[0].err = e; s[0].n = 3; s[0].markers = 1;
    s[1].label = "lrc"; s[1].x = x; s[1].y = y; s[1].n = 3; s[1].dashed = 1;
    cr_assert(red_svg_plot(path, &p, s, 2, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_read_file(path, &buf, &len, &err) == RED_OK);
    buf = realloc(buf, len + 1);
    buf[len] = 0;
    t = (const char *)buf;
    cr_expect(!strncmp(t, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), "an SVG document");
    cr_expect(strstr(t, "</svg>\n") == t + len - 7, "closed at the end");
    cr_expect(strstr(t, "eRank &lt;per&gt; layer &amp; more") != NULL, "escaped title");
    cr_expect(strstr(t, "red &quot;at init&quot;") != NULL && strstr(t, ">lrc</text>") != NULL, "legend entries");
    cr_expect(strstr(t, ">layer</text>") != NULL && strstr(t, "rotate(-90") != NULL, "axis labels");
    cr_expect(strstr(t, "stroke-dasharray") != NULL, "dashed series");
    for (const char *q = t; (q = strstr(q, "<polyline")) != NULL; q++) lines++;
    cr_expect(lines == 2, "one polyline per series (%d)", lines);
    cr_expect(strstr(t, ">1.5<") == NULL, "integer x ticks only");
    /* the x range [1, 3] maps onto the frame [78, 530]: first and last points at its edges */
    cr_expect(strstr(t, "points=\"78.0,") != NULL && strstr(t, " 530.0,") != NULL, "x mapped to the frame");
    free(buf);
    unlink(path);
}

Test(eval, gsm8k_calculator_fills_open_annotations_only) {
    struct { const char *text, *want; } cases[] = {
        {"Mia has 16 - 9 = <<16-9=", "7>>"},
        {"x <<3*4+2=", "14>>"},
        {"x <<(3+4)*2=", "14>>"},
        {"<<82/2=", "41>>"},
        {"<<7/2=", "3.5>>"},
        {"<<10-2*3=", "4>>"},
        {"16 - 9 = <<16-9=7>>7 apples.\nThen 7 + 2 =", NULL},  /* no open annotation */
        {"<<16-9=7>>7 =", NULL},
        {"<<abc=", NULL},
        {"<<5/0=", NULL},
        {"<<=", NULL},
        {"<<16-9", NULL},
    };
    size_t k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char out[64];
        int got = red_gsm8k_calculator(cases[k].text, strlen(cases[k].text), out, sizeof out);
        if (cases[k].want) cr_expect(got && !strcmp(out, cases[k].want), "'%s' -> '%s', want '%s'", cases[k].text, got ? out : "(none)", cases[k].want);
        else cr_expect(!got, "'%s' must not trigger the calculator", cases[k].text);
    }
}

/* ------------------------------------------------------------------ hostile inputs */

/* A model whose logits are NaN (one NaN in the final norm, put there in
 * memory: the loader refuses such files) must make every harness fail: NaN
 * log-likelihoods compared false and scored as a valid choice, and greedy
 * decoding of NaN logits returned token 0. */
Test(eval, choice_non_finite_logits_fail_the_harnesses) {
    red_pool *pool = red_pool_create(2);
    red_config c;
    red_model m;
    red_tokenizer *tok;
    red_error err;
    red_rng r;
    red_mc_doc d;
    char *opts[2] = {"yes", "no"};
    int pred[2], prompt[3] = {5, 6, 7}, *outs[1], olen[1], buf[8];
    const int *prompts[1] = {prompt};
    int lens[1] = {3};
    red_sampler sp;
    cr_assert(red_tokenizer_byte_new(&tok, &err) == RED_OK);
    red_config_default(&c);
    c.vocab = 259; c.max_pos = 64; c.dim = 32; c.ffn = 48; c.n_heads = 2; c.n_kv_heads = 1;
    cr_assert(red_model_alloc(&m, &c, pool, &err) == RED_OK);
    red_rng_seed(&r, 5);
    red_model_init_random(&m, &r, 0.3f, 0.0f);
    m.w.norm[3] = NAN;
    d.text = "Question: is ice cold?\nAnswer:"; d.options = opts; d.n_options = 2; d.gold = 0; d.multi_context = 0;
    cr_expect(red_mc_eval(&m, tok, &d, 1, 0, 2, NULL, pred, pred + 1, NULL, NULL, &err) == RED_E_FORMAT,
              "a NaN model was scored");
    cr_expect(strstr(err.msg, "not finite") != NULL, "%s", err.msg);
    memset(&sp, 0, sizeof sp);
    sp.top_p = 1.0f;
    outs[0] = buf;
    cr_expect(red_generate(&m, 1, prompts, lens, 4, &sp, 1, -1, outs, olen, &err) == RED_E_FORMAT, "NaN logits decoded");
    cr_expect(strstr(err.msg, "not finite") != NULL, "%s", err.msg);
    red_tokenizer_free(tok);
    red_model_free(&m);
    red_pool_destroy(pool);
}

/* An empty or blank test set is an error, not a score of 0 +- 0. */
Test(eval, choice_empty_document_files_are_rejected) {
    char dir[] = "/tmp/red_test_empty_XXXXXX", path[256];
    red_mc_doc *mc;
    red_gsm8k_doc *g;
    red_error err;
    int n, k;
    const char *bodies[2] = {"", "\n  \n"};
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/test.jsonl", dir);
    for (k = 0; k < 2; k++) {
        FILE *f = fopen(path, "w");
        fputs(bodies[k], f);
        fclose(f);
        cr_expect(red_mc_load(path, &mc, &n, &err) == RED_E_FORMAT, "empty multiple-choice file accepted");
        cr_expect(strstr(err.msg, "no documents") && strstr(err.msg, path), "%s", err.msg);
        cr_expect(red_gsm8k_load(path, &g, &n, &err) == RED_E_FORMAT, "empty gsm8k file accepted");
        cr_expect(strstr(err.msg, "no documents") && strstr(err.msg, path), "%s", err.msg);
    }
    unlink(path);
    rmdir(dir);
}

/* Field errors name FILE:LINE of the bad row, blank lines counted (not the
 * index among the documents). */
Test(eval, loader_errors_name_the_file_line) {
    char dir[] = "/tmp/red_test_line_XXXXXX", path[256], want[300];
    red_mc_doc *mc;
    red_gsm8k_doc *g;
    red_error err;
    int n;
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/test.jsonl", dir);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("{\"question\": \"q\", \"answer\": \"a\", \"query\": \"q\", \"choices\": [\"a\"], \"gold\": 0}\n\n  \n"
          "{\"question\": 1, \"query\": \"q\", \"choices\": [\"a\", 2], \"gold\": 1}\n", f);
    fclose(f);
    snprintf(want, sizeof want, "%s:4: ", path);
    cr_expect(red_gsm8k_load(path, &g, &n, &err) == RED_E_FORMAT, "a bad gsm8k row was accepted");
    cr_expect(strstr(err.msg, want) != NULL, "[%s] lacks [%s]", err.msg, want);
    cr_expect(red_mc_load(path, &mc, &n, &err) == RED_E_FORMAT, "a bad multiple-choice row was accepted");
    cr_expect(strstr(err.msg, want) != NULL && strstr(err.msg, "option 1 is not a string"), "[%s] lacks [%s]", err.msg,
              want);
    unlink(path);
    rmdir(dir);
}
