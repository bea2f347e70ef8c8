/* eval/gsm8k.c - lm-eval's gsm8k / gsm8k_cot conventions (../shared/docs/
 * eval.md section 2): prompts, few-shot draws, stop-string cutting, the
 * strict-match and flexible-extract filters and exact_match with
 * regexes_to_ignore, each pattern implemented by hand with Python `re`
 * semantics (leftmost match, greedy quantifiers with backtracking, findall
 * scanning on from the end of each match).
 */
#include "../red_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const INVALID = "[invalid]";

static int in_num_class(char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; } /* [0-9\.\,] */
static int in_flex_class(char c) { return in_num_class(c) || c == '$'; }                   /* [$0-9.,]  */

/* `#### (\-?[0-9\.\,]+)`: first match. */
void red_gsm8k_extract_strict(const char *s, red_sbuf *out) {
    const char *p = s;
    while ((p = strstr(p, "#### ")) != NULL) {
        const char *q = p + 5, *g = q;
        if (*q == '-') q++;
        if (in_num_class(*q)) {
            while (in_num_class(*q)) q++;
            red_sbuf_put(out, g, (size_t)(q - g));
            return;
        }
        p++;
    }
    red_sbuf_puts(out, INVALID);
}

/* `The answer is (\-?[0-9\.\,]+).` (gsm8k_cot): the unescaped `.` needs one
 * more character that is not a newline, backtracking into the run if needed. */
void red_gsm8k_extract_cot_strict(const char *s, red_sbuf *out) {
    static const char lead[] = "The answer is ";
    const char *p = s;
    while ((p = strstr(p, lead)) != NULL) {
        const char *g = p + sizeof lead - 1, *q = g;
        size_t run, len;
        if (*q == '-') q++;
        for (run = 0; in_num_class(q[run]); run++) {}
        for (len = run; len >= 1; len--)
            if (q[len] != '\0' && q[len] != '\n') {
                red_sbuf_put(out, g, (size_t)(q + len - g));
                return;
            }
        p++;
    }
    red_sbuf_puts(out, INVALID);
}

/* `(-?[$0-9.,]{2,})|(-?[0-9]+)` with group_select -1: the last match, its
 * first non-empty group. */
void red_gsm8k_extract_flexible(const char *s, red_sbuf *out) {
    const char *p = s, *best = NULL;
    size_t best_len = 0;
    while (*p) {
        const char *q = p + (*p == '-'), *e;
        /* alternative 1: -? then at least two of [$0-9.,] (greedy) */
        for (e = q; in_flex_class(*e); e++) {}
        if (e - q >= 2) {
            best = p; best_len = (size_t)(e - p);
            p = e;
            continue;
        }
        /* alternative 2: -? then digits */
        for (e = q; *e >= '0' && *e <= '9'; e++) {}
        if (e > q) {
            best = p; best_len = (size_t)(e - p);
            p = e;
            continue;
        }
        p++;
    }
    if (best) red_sbuf_put(out, best, best_len);
    else red_sbuf_puts(out, INVALID);
}

/* regexes_to_ignore in order: `,`  `\$`  `(?s).*#### `  `\.$`, then
 * ignore_case (ASCII lower-casing; the filtered answers are ASCII). */
void red_gsm8k_normalize(const char *s, red_sbuf *out) {
    size_t n = strlen(s), i, start = 0, len;
    char *t = malloc(n + 1), *u;
    const char *last = NULL, *p;
    if (!t) { out->failed = 1; return; }
    for (i = 0, len = 0; i < n; i++)
        if (s[i] != ',' && s[i] != '$') t[len++] = s[i];
    t[len] = 0;
    /* greedy DOTALL .* up to the last "#### ": delete through it */
    for (p = t; (p = strstr(p, "#### ")) != NULL; p++) last = p;
    if (last) start = (size_t)(last - t) + 5;
    u = t + start;
    len = strlen(u);
    /* `\.$`: $ is the end or just before a final newline */
    if (len >= 1 && u[len - 1] == '.') u[--len] = 0;
    else if (len >= 2 && u[len - 1] == '\n' && u[len - 2] == '.') {
        u[len - 2] = '\n';
        u[--len] = 0;
    }
    for (i = 0; i < len; i++) u[i] = (char)tolower((unsigned char)u[i]);
    red_sbuf_put(out, u, len);
    free(t);
}

int red_gsm8k_exact_match(const char *pred, const char *gold) {
    red_sbuf a, b;
    int eq;
    red_sbuf_init(&a);
    red_sbuf_init(&b);
    red_sbuf_puts(&a, "");
    red_sbuf_puts(&b, "");
    red_gsm8k_normalize(pred, &a);
    red_gsm8k_normalize(gold, &b);
    eq = !a.failed && !b.failed && a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
    red_sbuf_free(&a);
    red_sbuf_free(&b);
    return eq;
}

/* generation.split(term)[0] for each stop string in turn. */
size_t red_cut_at_stops(const char *gen, size_t len, const char *const *stops, int n_stops) {
    int k;
    for (k = 0; k < n_stops; k++) {
        size_t sl = strlen(stops[k]), i;
        if (!sl) continue;
        for (i = 0; i + sl <= len; i++)
            if (memcmp(gen + i, stops[k], sl) == 0) {
                len = i;
                break;
            }
    }
    return len;
}

/* ------------------------------------------------------------------ prompts */

static const char *const cot_q[8] = {
    "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
    "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
    "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
    "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
};
static const char *const cot_a[8] = {
    "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
    "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
    "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
    "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.",
    "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
    "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
};

static const char *const stops_gsm8k[3] = {"Question:", "</s>", "<|im_end|>"};
static const char *const stops_cot[3] = {"Q:", "</s>", "<|im_end|>"};

red_status red_gsm8k_task_parse(const char *name, red_gsm8k_task *t) {
    if (!strcmp(name, "gsm8k")) *t = RED_GSM8K;
    else if (!strcmp(name, "gsm8k_cot")) *t = RED_GSM8K_COT;
    else if (!strcmp(name, "gsm8k_cot_zeroshot")) *t = RED_GSM8K_COT_ZEROSHOT;
    else return RED_E_ARG;
    return RED_OK;
}

const char *const *red_gsm8k_stops(red_gsm8k_task t, int *n) {
    *n = 3;
    return t == RED_GSM8K ? stops_gsm8k : stops_cot;
}

void red_gsm8k_prompt(red_gsm8k_task t, const red_gsm8k_doc *train, const int64_t *shots, int n_shots,
                      const char *question, red_sbuf *out) {
    int i;
    if (t == RED_GSM8K) {
        for (i = 0; i < n_shots; i++) {
            const red_gsm8k_doc *d = &train[shots[i]];
            red_sbuf_puts(out, "Question: ");
            red_sbuf_puts(out, d->question);
            red_sbuf_puts(out, "\nAnswer: ");
            red_sbuf_puts(out, d->answer);
            red_sbuf_puts(out, "\n\n");
        }
        red_sbuf_puts(out, "Question: ");
        red_sbuf_puts(out, question);
        red_sbuf_puts(out, "\nAnswer:");
    } else {
        if (t == RED_GSM8K_COT)
            for (i = 0; i < 8; i++) {
                red_sbuf_puts(out, "Q: ");
                red_sbuf_puts(out, cot_q[i]);
                red_sbuf_puts(out, "\nA: ");
                red_sbuf_puts(out, cot_a[i]);
                red_sbuf_puts(out, "\n\n");
            }
        red_sbuf_puts(out, "Q: ");
        red_sbuf_puts(out, question);
        red_sbuf_puts(out, t == RED_GSM8K_COT ? "\nA:" : "\nA: Let's think step by step.");
    }
}

void red_gsm8k_gold(red_gsm8k_task t, const char *answer, red_sbuf *out) {
    if (t == RED_GSM8K_COT) {  /* answer.split('####')[-1].strip() */
        const char *p = answer, *last = answer, *e;
        while ((p = strstr(p, "####")) != NULL) last = (p += 4);
        while (*last && isspace((unsigned char)*last)) last++;
        e = last + strlen(last);
        while (e > last && isspace((unsigned char)e[-1])) e--;
        red_sbuf_put(out, last, (size_t)(e - last));
    } else {
        red_sbuf_puts(out, answer);  /* the whole answer; `(?s).*#### ` reduces it */
    }
}

void red_gsm8k_score_one(red_gsm8k_task t, const char *completion, const char *answer, red_gsm8k_scored *s) {
    red_sbuf gold;
    red_sbuf_init(&s->strict);
    red_sbuf_init(&s->flexible);
    red_sbuf_init(&gold);
    red_sbuf_puts(&s->strict, "");
    red_sbuf_puts(&s->flexible, "");
    red_sbuf_puts(&gold, "");
    if (t == RED_GSM8K) red_gsm8k_extract_strict(completion, &s->strict);
    else red_gsm8k_extract_cot_strict(completion, &s->strict);
    red_gsm8k_extract_flexible(completion, &s->flexible);
    red_gsm8k_gold(t, answer, &gold);
    s->strict_ok = red_gsm8k_exact_match(s->strict.p, gold.p);
    s->flexible_ok = red_gsm8k_exact_match(s->flexible.p, gold.p);
    red_sbuf_free(&gold);
}

void red_gsm8k_scored_free(red_gsm8k_scored *s) {
    red_sbuf_free(&s->strict);
    red_sbuf_free(&s->flexible);
}

/* lm-eval's mean_stderr: sample standard deviation (ddof 1) / sqrt(n). */
double red_mean_stderr(double sum, double sumsq, int64_t n) {
    double mean, var;
    if (n < 2) return 0.0;
    mean = sum / n;
    var = (sumsq - n * mean * mean) / (n - 1);
    return var > 0 ? sqrt(var / n) : 0.0;
}

/* ------------------------------------------------------------------ data */

red_status red_gsm8k_load(const char *path, red_gsm8k_doc **docs, int *n, red_error *err) {
    red_json **items = NULL;
    size_t count = 0, i, *line = NULL;
    red_status st;
    *docs = NULL;
    *n = 0;
    if ((st = red_jsonl_read_lines(path, &items, &count, &line, err))) return st;
    if (!count)  /* scoring nothing would print a score of 0 */
        st = red_error_set(err, RED_E_FORMAT, "%s: no documents (the file is empty or has only blank lines)", path);
    else if (!(*docs = calloc(count, sizeof **docs)))
        st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
    for (i = 0; i < count && !st; i++) {
        const red_json *q = red_json_get(items[i], "question"), *a = red_json_get(items[i], "answer");
        if (!q || q->type != RED_JSON_STRING || !a || a->type != RED_JSON_STRING) {
            st = red_error_set(err, RED_E_FORMAT, "%s:%zu: expected an object with string fields \"question\" and "
                               "\"answer\"", path, line[i]);
            break;
        }
        (*docs)[i].question = red_strndup(q->str, q->len);
        (*docs)[i].answer = red_strndup(a->str, a->len);
        if (!(*docs)[i].question || !(*docs)[i].answer) st = red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
    }
    red_jsonl_free(items, count);
    free(line);
    if (st) {
        red_gsm8k_free(*docs, (int)count);
        *docs = NULL;
        return st;
    }
    *n = (int)count;
    return RED_OK;
}

void red_gsm8k_free(red_gsm8k_doc *docs, int n) {
    int i;
    if (!docs) return;
    for (i = 0; i < n; i++) {
        free(docs[i].question);
        free(docs[i].answer);
    }
    free(docs);
}
