/* eval/lmeval.c - the zero-shot general-ability suite of LRC and RED as
 * lm-evaluation-harness (v0.4.x) builds it: rows in the Hugging Face
 * datasets' own schemas become lm-eval's requests character for character,
 * scored by eval/choice.c (red_mc_eval: summed log-probabilities, acc, and
 * acc_norm = ll / len(choice) in Unicode code points, as lm-eval's
 * process_results computes it; eval.md 1.3, 1.5). No printing, no exit.
 *
 * Every task below is 0-shot with the default target_delimiter " ", so each
 * request is (doc_to_text, " " + choice); WinoGrande is the exception (its
 * choices are contexts sharing one continuation). Conventions per task, from
 * the task YAMLs (eval.md section 3), in the functions that build them:
 *   arc_easy, arc_challenge  arc_from_row
 *   hellaswag                hellaswag_from_row (utils.py preprocess)
 *   piqa                     piqa_from_row
 *   winogrande               winogrande_from_row (preprocess_winogrande.py)
 *   sciq                     sciq_from_row
 *   boolq                    boolq_from_row
 *   mmlu                     mmlu_from_row (default/_default_template_yaml;
 *                            the group's pooled stderr in red_lm_summarize)
 * Python string semantics the templates rely on (str.strip, str.capitalize,
 * re.sub with `.` not matching newlines) are reproduced on UTF-8 below.
 */
#include "../red_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const task_names[RED_LM_N_TASKS] = {
    "arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "sciq", "boolq", "mmlu"};

/* The row fields each schema needs, for error messages. */
static const char *const task_schemas[RED_LM_N_TASKS] = {
    "question, choices {text, label}, answerKey",
    "question, choices {text, label}, answerKey",
    "activity_label, ctx_a, ctx_b, endings, label",
    "goal, sol1, sol2, label",
    "sentence, option1, option2, answer",
    "question, distractor1, distractor2, distractor3, correct_answer, support",
    "passage, question, and label (super_glue) or answer (google/boolq)",
    "question, subject, choices, answer"};

/* MMLU's 57 subjects and the category group each belongs to (lm-eval's
 * mmlu/_generate_configs.py; the `mmlu` group averages its four category
 * groups, which average their subjects, all weighted by size). */
static const char *const mmlu_groups[RED_MMLU_GROUPS] = {"stem", "other", "social_sciences", "humanities"};
enum { STEM, OTHER, SOCIAL, HUMAN };
static const struct {
    const char *name;
    int group;
} mmlu_subjects[RED_MMLU_SUBJECTS] = {
    {"abstract_algebra", STEM}, {"anatomy", STEM}, {"astronomy", STEM}, {"business_ethics", OTHER},
    {"clinical_knowledge", OTHER}, {"college_biology", STEM}, {"college_chemistry", STEM},
    {"college_computer_science", STEM}, {"college_mathematics", STEM}, {"college_medicine", OTHER},
    {"college_physics", STEM}, {"computer_security", STEM}, {"conceptual_physics", STEM},
    {"econometrics", SOCIAL}, {"electrical_engineering", STEM}, {"elementary_mathematics", STEM},
    {"formal_logic", HUMAN}, {"global_facts", OTHER}, {"high_school_biology", STEM},
    {"high_school_chemistry", STEM}, {"high_school_computer_science", STEM},
    {"high_school_european_history", HUMAN}, {"high_school_geography", SOCIAL},
    {"high_school_government_and_politics", SOCIAL}, {"high_school_macroeconomics", SOCIAL},
    {"high_school_mathematics", STEM}, {"high_school_microeconomics", SOCIAL}, {"high_school_physics", STEM},
    {"high_school_psychology", SOCIAL}, {"high_school_statistics", STEM}, {"high_school_us_history", HUMAN},
    {"high_school_world_history", HUMAN}, {"human_aging", OTHER}, {"human_sexuality", SOCIAL},
    {"international_law", HUMAN}, {"jurisprudence", HUMAN}, {"logical_fallacies", HUMAN},
    {"machine_learning", STEM}, {"management", OTHER}, {"marketing", OTHER}, {"medical_genetics", OTHER},
    {"miscellaneous", OTHER}, {"moral_disputes", HUMAN}, {"moral_scenarios", HUMAN}, {"nutrition", OTHER},
    {"philosophy", HUMAN}, {"prehistory", HUMAN}, {"professional_accounting", OTHER},
    {"professional_law", HUMAN}, {"professional_medicine", OTHER}, {"professional_psychology", SOCIAL},
    {"public_relations", SOCIAL}, {"security_studies", SOCIAL}, {"sociology", SOCIAL},
    {"us_foreign_policy", SOCIAL}, {"virology", OTHER}, {"world_religions", HUMAN}};

red_status red_lm_task_parse(const char *name, red_lm_task *t) {
    int i;
    for (i = 0; i < RED_LM_N_TASKS; i++)
        if (!strcmp(name, task_names[i])) {
            *t = (red_lm_task)i;
            return RED_OK;
        }
    return RED_E_ARG;
}

const char *red_lm_task_name(red_lm_task t) { return task_names[t]; }

/* lm-eval's metric_list: acc everywhere, acc_norm for ARC, HellaSwag, PIQA
 * and SciQ; BoolQ, WinoGrande and MMLU report acc only. */
int red_lm_has_acc_norm(red_lm_task t) {
    return t == RED_LM_ARC_EASY || t == RED_LM_ARC_CHALLENGE || t == RED_LM_HELLASWAG || t == RED_LM_PIQA ||
           t == RED_LM_SCIQ;
}

const char *red_mmlu_group_name(int g) { return mmlu_groups[g]; }

/* ------------------------------------------------------------------ Python string semantics */

/* Decodes the code point at s[i] (valid UTF-8: the JSON reader checked it). */
static uint32_t utf8_at(const char *s, size_t i, size_t *w) {
    const unsigned char *p = (const unsigned char *)s + i;
    if (p[0] < 0x80) { *w = 1; return p[0]; }
    if (p[0] < 0xE0) { *w = 2; return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F); }
    if (p[0] < 0xF0) { *w = 3; return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F); }
    *w = 4;
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

static void put_utf8(red_sbuf *b, uint32_t c) {
    char u[4];
    if (c < 0x80) { u[0] = (char)c; red_sbuf_put(b, u, 1); }
    else if (c < 0x800) { u[0] = (char)(0xC0 | c >> 6); u[1] = (char)(0x80 | (c & 0x3F)); red_sbuf_put(b, u, 2); }
    else if (c < 0x10000) {
        u[0] = (char)(0xE0 | c >> 12); u[1] = (char)(0x80 | (c >> 6 & 0x3F)); u[2] = (char)(0x80 | (c & 0x3F));
        red_sbuf_put(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | c >> 18); u[1] = (char)(0x80 | (c >> 12 & 0x3F));
        u[2] = (char)(0x80 | (c >> 6 & 0x3F)); u[3] = (char)(0x80 | (c & 0x3F));
        red_sbuf_put(b, u, 4);
    }
}

/* Python's str.isspace for one code point (the set str.strip() removes). */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* str.strip() / lstrip() of s[0..len): the kept byte range [*a, *b). */
static void py_strip(const char *s, size_t len, int left, int right, size_t *a, size_t *b) {
    size_t i = 0, w, first = 0, last_end = 0;
    int seen = 0;
    while (i < len) {
        uint32_t c = utf8_at(s, i, &w);
        if (!py_space(c)) {
            if (!seen) first = i;
            seen = 1;
            last_end = i + w;
        }
        i += w;
    }
    if (!seen) { /* all whitespace: nothing is kept */
        *a = *b = left ? len : 0;
        if (!left && !right) *b = len;
        return;
    }
    *a = left ? first : 0;
    *b = right ? last_end : len;
}

/* Python's simple case mappings for the scripts HellaSwag's English text
 * meets: ASCII, Latin-1, Latin Extended-A and Cyrillic. Other code points
 * (Greek, with its context-dependent final sigma, among them) pass
 * unchanged. İ lower-cases to "i" + U+0307 as Python's full mapping does. */
static uint32_t py_lower(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        if (c == 0x178) return 0xFF;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    return c;
}

static uint32_t py_upper(uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
    if (c == 0xB5) return 0x39C;
    if (c == 0xFF) return 0x178;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130 || c == 0x138 || c == 0x149) return c;
        if (c == 0x131) return 'I';
        if (c == 0x17F) return 'S';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c : c - 1;
        return (c & 1) ? c - 1 : c;
    }
    if (c >= 0x430 && c <= 0x44F) return c - 0x20;
    if (c >= 0x450 && c <= 0x45F) return c - 0x50;
    return c;
}

/* str.capitalize(): first character upper (title) case, the rest lower. */
static void py_capitalize(const char *s, size_t len, red_sbuf *out) {
    size_t i = 0, w;
    while (i < len) {
        uint32_t c = utf8_at(s, i, &w);
        if (i == 0 && c == 0xDF) red_sbuf_puts(out, "Ss");  /* 'ß'.capitalize() */
        else if (i == 0) put_utf8(out, py_upper(c));
        else if (c == 0x130) red_sbuf_puts(out, "i\xCC\x87");
        else put_utf8(out, py_lower(c));
        i += w;
    }
}

/* HellaSwag's utils.preprocess: strip(); " [title]" -> ". "; re.sub
 * r"\[.*?\]" -> "" (shortest bracket group, never across a newline); "  "
 * -> " " in one left-to-right pass. */
static void hellaswag_preprocess(const char *s, size_t len, red_sbuf *out) {
    red_sbuf a, b;
    size_t i, lo, hi;
    red_sbuf_init(&a);
    red_sbuf_init(&b);
    py_strip(s, len, 1, 1, &lo, &hi);
    for (i = lo; i < hi;)
        if (hi - i >= 8 && !memcmp(s + i, " [title]", 8)) {
            red_sbuf_put(&a, ". ", 2);
            i += 8;
        } else red_sbuf_put(&a, s + i++, 1);
    for (i = 0; i < a.len;) {
        size_t j = i + 1;
        if (a.p[i] == '[') {
            while (j < a.len && a.p[j] != ']' && a.p[j] != '\n') j++;
            if (j < a.len && a.p[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        red_sbuf_put(&b, a.p + i, 1);
        i++;
    }
    for (i = 0; i < b.len;)
        if (i + 1 < b.len && b.p[i] == ' ' && b.p[i + 1] == ' ') {
            red_sbuf_put(out, " ", 1);
            i += 2;
        } else red_sbuf_put(out, b.p + i++, 1);
    if (a.failed || b.failed) out->failed = 1;
    red_sbuf_free(&a);
    red_sbuf_free(&b);
}

/* ------------------------------------------------------------------ row fields */

typedef struct {
    const red_json *row;
    const char *where;  /* "FILE: line N" */
    red_lm_task task;
    red_error *err;
} row_ctx;

static red_status field_error(const row_ctx *r, const char *field, const char *what) {
    return red_error_set(r->err, RED_E_FORMAT, "%s: %s: field \"%s\" %s (%s rows need %s)", r->where,
                         task_names[r->task], field, what, task_names[r->task], task_schemas[r->task]);
}

static red_status type_error(const row_ctx *r, const char *field, const char *want, const red_json *v) {
    char what[96];
    snprintf(what, sizeof what, "must be %s, not %s", want, red_json_type_name(v->type));
    return field_error(r, field, what);
}

/* A string field; NUL inside the text is refused (requests are C strings). */
static red_status get_str(const row_ctx *r, const red_json *obj, const char *field, const red_json **out) {
    const red_json *v = red_json_get(obj, field);
    if (!v) return field_error(r, field, "is missing");
    if (v->type != RED_JSON_STRING) return type_error(r, field, "a string", v);
    if (strlen(v->str) != v->len) return field_error(r, field, "contains a NUL character");
    *out = v;
    return RED_OK;
}

/* An array of strings with at least `min` elements. */
static red_status get_str_array(const row_ctx *r, const red_json *obj, const char *field, size_t min,
                                const red_json **out) {
    const red_json *v = red_json_get(obj, field), *e;
    char what[96];
    if (!v) return field_error(r, field, "is missing");
    if (v->type != RED_JSON_ARRAY) return type_error(r, field, "an array of strings", v);
    if (v->count < min) {
        snprintf(what, sizeof what, "has %zu elements, needs at least %zu", v->count, min);
        return field_error(r, field, what);
    }
    for (e = v->child; e; e = e->next)
        if (e->type != RED_JSON_STRING || strlen(e->str) != e->len)
            return type_error(r, field, "an array of strings without NUL", e);
    *out = v;
    return RED_OK;
}

/* An integer field in [0, n). */
static red_status get_index(const row_ctx *r, const char *field, int n, int *out) {
    const red_json *v = red_json_get(r->row, field);
    char what[96];
    if (!v) return field_error(r, field, "is missing");
    if (v->type != RED_JSON_NUMBER || !v->is_int) return type_error(r, field, "an integer", v);
    if (v->ival < 0 || v->ival >= n) {
        snprintf(what, sizeof what, "is %lld, outside 0..%d", (long long)v->ival, n - 1);
        return field_error(r, field, what);
    }
    *out = (int)v->ival;
    return RED_OK;
}

static char *sbuf_take(red_sbuf *b) {
    char *p;
    if (b->failed) {
        red_sbuf_free(b);
        return NULL;
    }
    if (!b->p) red_sbuf_puts(b, "");
    p = b->p;
    red_sbuf_init(b);
    return p;
}

/* Fills d->options from an array of strings (each passed through `pre` when
 * given). Returns 0 on allocation failure. */
static int set_options(red_mc_doc *d, const red_json *arr, void (*pre)(const char *, size_t, red_sbuf *)) {
    const red_json *e;
    int k = 0;
    d->options = calloc(arr->count ? arr->count : 1, sizeof *d->options);
    if (!d->options) return 0;
    d->n_options = (int)arr->count;
    for (e = arr->child; e; e = e->next, k++) {
        if (pre) {
            red_sbuf b;
            red_sbuf_init(&b);
            pre(e->str, e->len, &b);
            d->options[k] = sbuf_take(&b);
        } else d->options[k] = red_strndup(e->str, e->len);
        if (!d->options[k]) return 0;
    }
    return 1;
}

static int set_fixed_options(red_mc_doc *d, const char *const *opts, int n) {
    int k;
    d->options = calloc((size_t)n, sizeof *d->options);
    if (!d->options) return 0;
    d->n_options = n;
    for (k = 0; k < n; k++)
        if (!(d->options[k] = red_strndup(opts[k], strlen(opts[k])))) return 0;
    return 1;
}

/* ------------------------------------------------------------------ tasks */

#define OOM(r) red_error_set((r)->err, RED_E_NOMEM, "%s: out of memory", (r)->where)

/* ARC (arc/arc_easy.yaml; arc_challenge.yaml includes it):
 *   doc_to_text   "Question: {{question}}\nAnswer:"
 *   doc_to_choice "{{choices.text}}"   (3 to 5 choices)
 *   doc_to_target "{{choices.label.index(answerKey)}}" (labels A-E or 1-5;
 *                 the first label equal to answerKey)
 *   metrics acc, acc_norm. */
static red_status arc_from_row(const row_ctx *r, red_mc_doc *d) {
    const red_json *q, *ch, *text, *label, *key, *e;
    red_sbuf b;
    red_status st;
    int k = 0;
    ch = red_json_get(r->row, "choices");
    if (!ch) return field_error(r, "choices", "is missing");
    if (ch->type != RED_JSON_OBJECT) return type_error(r, "choices", "an object {text, label}", ch);
    if ((st = get_str(r, r->row, "question", &q)) || (st = get_str_array(r, ch, "text", 1, &text)) ||
        (st = get_str_array(r, ch, "label", 1, &label)) || (st = get_str(r, r->row, "answerKey", &key)))
        return st;
    if (text->count != label->count) return field_error(r, "choices", "has text and label arrays of different lengths");
    d->gold = -1;
    for (e = label->child; e; e = e->next, k++)
        if (e->len == key->len && !memcmp(e->str, key->str, key->len)) {
            d->gold = k;
            break;
        }
    if (d->gold < 0) return field_error(r, "answerKey", "is not one of choices.label");
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "Question: ");
    red_sbuf_put(&b, q->str, q->len);
    red_sbuf_puts(&b, "\nAnswer:");
    if (!(d->text = sbuf_take(&b)) || !set_options(d, text, NULL)) return OOM(r);
    return RED_OK;
}

/* HellaSwag (hellaswag/hellaswag.yaml + utils.py, process_docs):
 *   ctx     = ctx_a + " " + ctx_b.capitalize()
 *   query   = preprocess(activity_label + ": " + ctx)    doc_to_text "{{query}}"
 *   choices = [preprocess(e) for e in endings]          doc_to_choice "choices"
 *   gold    = int(label)   (label is a string in the HF dataset; an integer
 *             is accepted too, as int() would)
 *   metrics acc, acc_norm (by the preprocessed ending's length). */
static red_status hellaswag_from_row(const row_ctx *r, red_mc_doc *d) {
    const red_json *act, *ca, *cb, *ends, *lab;
    red_sbuf raw, b;
    red_status st;
    int64_t g = 0;
    size_t i;
    if ((st = get_str(r, r->row, "activity_label", &act)) || (st = get_str(r, r->row, "ctx_a", &ca)) ||
        (st = get_str(r, r->row, "ctx_b", &cb)) || (st = get_str_array(r, r->row, "endings", 1, &ends)))
        return st;
    lab = red_json_get(r->row, "label");
    if (!lab) return field_error(r, "label", "is missing");
    if (lab->type == RED_JSON_NUMBER && lab->is_int) g = lab->ival;
    else if (lab->type == RED_JSON_STRING) {
        if (lab->len == 0) return field_error(r, "label", "is empty (unlabelled test split rows cannot be scored)");
        for (i = 0; i < lab->len; i++) {
            if (lab->str[i] < '0' || lab->str[i] > '9' || g > 1000000)
                return field_error(r, "label", "must be a string of digits");
            g = g * 10 + (lab->str[i] - '0');
        }
    } else return type_error(r, "label", "a string of digits", lab);
    if (g < 0 || g >= (int64_t)ends->count) return field_error(r, "label", "does not index endings");
    d->gold = (int)g;
    red_sbuf_init(&raw);
    red_sbuf_init(&b);
    red_sbuf_put(&raw, act->str, act->len);
    red_sbuf_puts(&raw, ": ");
    red_sbuf_put(&raw, ca->str, ca->len);
    red_sbuf_puts(&raw, " ");
    py_capitalize(cb->str, cb->len, &raw);
    if (!raw.failed) hellaswag_preprocess(raw.p, raw.len, &b);
    red_sbuf_free(&raw);
    if (!(d->text = sbuf_take(&b)) || !set_options(d, ends, hellaswag_preprocess)) return OOM(r);
    return RED_OK;
}

/* PIQA (piqa/piqa.yaml):
 *   doc_to_text   "Question: {{goal}}\nAnswer:"
 *   doc_to_choice "{{[sol1, sol2]}}", doc_to_target label (0/1)
 *   metrics acc, acc_norm. */
static red_status piqa_from_row(const row_ctx *r, red_mc_doc *d) {
    const red_json *goal, *s1, *s2;
    const char *opts[2];
    red_sbuf b;
    red_status st;
    if ((st = get_str(r, r->row, "goal", &goal)) || (st = get_str(r, r->row, "sol1", &s1)) ||
        (st = get_str(r, r->row, "sol2", &s2)) || (st = get_index(r, "label", 2, &d->gold)))
        return st;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "Question: ");
    red_sbuf_put(&b, goal->str, goal->len);
    red_sbuf_puts(&b, "\nAnswer:");
    opts[0] = s1->str;
    opts[1] = s2->str;
    if (!(d->text = sbuf_take(&b)) || !set_fixed_options(d, opts, 2)) return OOM(r);
    return RED_OK;
}

/* WinoGrande (winogrande/default.yaml + preprocess_winogrande.py), the
 * multiple-input form: with idx = sentence.index("_"),
 *   doc_to_choice  [sentence[:idx] + option1, sentence[:idx] + option2]  (contexts)
 *   doc_to_target  sentence[idx+1:].strip()       (the shared continuation)
 *   doc_to_text    {"1": 0, "2": 1}[answer]       (the gold index)
 * requests (context_i, " " + target): only the text after the blank is
 * scored, even when it starts with punctuation. Metric acc. */
static red_status winogrande_from_row(const row_ctx *r, red_mc_doc *d) {
    const red_json *s, *o1, *o2, *ans;
    const char *blank;
    size_t idx, a, b;
    red_sbuf c0, c1;
    red_status st;
    if ((st = get_str(r, r->row, "sentence", &s)) || (st = get_str(r, r->row, "option1", &o1)) ||
        (st = get_str(r, r->row, "option2", &o2)) || (st = get_str(r, r->row, "answer", &ans)))
        return st;
    if (strcmp(ans->str, "1") && strcmp(ans->str, "2")) return field_error(r, "answer", "must be \"1\" or \"2\"");
    if (!(blank = strchr(s->str, '_'))) return field_error(r, "sentence", "has no blank \"_\"");
    idx = (size_t)(blank - s->str);
    d->gold = ans->str[0] - '1';
    d->multi_context = 1;
    py_strip(s->str + idx + 1, s->len - idx - 1, 1, 1, &a, &b);
    d->text = red_strndup(s->str + idx + 1 + a, b - a);
    red_sbuf_init(&c0);
    red_sbuf_init(&c1);
    red_sbuf_put(&c0, s->str, idx);
    red_sbuf_put(&c0, o1->str, o1->len);
    red_sbuf_put(&c1, s->str, idx);
    red_sbuf_put(&c1, o2->str, o2->len);
    d->options = calloc(2, sizeof *d->options);
    if (d->options) {
        d->n_options = 2;
        d->options[0] = sbuf_take(&c0);
        d->options[1] = sbuf_take(&c1);
    }
    red_sbuf_free(&c0);
    red_sbuf_free(&c1);
    if (!d->text || !d->options || !d->options[0] || !d->options[1]) return OOM(r);
    return RED_OK;
}

/* SciQ (sciq/sciq.yaml):
 *   doc_to_text   "{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:"
 *                 (an empty support leaves the text starting with "\n")
 *   doc_to_choice "{{[distractor1, distractor2, distractor3, correct_answer]}}"
 *   doc_to_target 3
 *   metrics acc, acc_norm. */
static red_status sciq_from_row(const row_ctx *r, red_mc_doc *d) {
    const red_json *q, *sup, *d1, *d2, *d3, *ok;
    const char *opts[4];
    size_t a, e;
    red_sbuf b;
    red_status st;
    if ((st = get_str(r, r->row, "question", &q)) || (st = get_str(r, r->row, "distractor1", &d1)) ||
        (st = get_str(r, r->row, "distractor2", &d2)) || (st = get_str(r, r->row, "distractor3", &d3)) ||
        (st = get_str(r, r->row, "correct_answer", &ok)) || (st = get_str(r, r->row, "support", &sup)))
        return st;
    py_strip(sup->str, sup->len, 1, 0, &a, &e);
    red_sbuf_init(&b);
    red_sbuf_put(&b, sup->str + a, e - a);
    red_sbuf_puts(&b, "\nQuestion: ");
    red_sbuf_put(&b, q->str, q->len);
    red_sbuf_puts(&b, "\nAnswer:");
    opts[0] = d1->str;
    opts[1] = d2->str;
    opts[2] = d3->str;
    opts[3] = ok->str;
    d->gold = 3;
    if (!(d->text = sbuf_take(&b)) || !set_fixed_options(d, opts, 4)) return OOM(r);
    return RED_OK;
}

/* BoolQ (super_glue/boolq/default.yaml):
 *   doc_to_text   "{{passage}}\nQuestion: {{question}}?\nAnswer:"
 *   doc_to_choice ["no", "yes"], doc_to_target label (0 = False, 1 = True)
 *   metric acc.
 * lm-eval loads super_glue's boolq (label 0/1), whose passages begin with
 * "Title -- "; google/boolq rows (answer true/false) are read too, but
 * their passages lack the title, so their prompts differ from lm-eval's. */
static red_status boolq_from_row(const row_ctx *r, red_mc_doc *d) {
    static const char *const no_yes[2] = {"no", "yes"};
    const red_json *p, *q, *ans;
    red_sbuf b;
    red_status st;
    if ((st = get_str(r, r->row, "passage", &p)) || (st = get_str(r, r->row, "question", &q))) return st;
    if (red_json_get(r->row, "label")) {
        if ((st = get_index(r, "label", 2, &d->gold))) return st;
    } else if ((ans = red_json_get(r->row, "answer"))) {
        if (ans->type != RED_JSON_TRUE && ans->type != RED_JSON_FALSE) return type_error(r, "answer", "true or false", ans);
        d->gold = ans->type == RED_JSON_TRUE;
    } else return field_error(r, "label", "is missing (and there is no \"answer\" either)");
    red_sbuf_init(&b);
    red_sbuf_put(&b, p->str, p->len);
    red_sbuf_puts(&b, "\nQuestion: ");
    red_sbuf_put(&b, q->str, q->len);
    red_sbuf_puts(&b, "?\nAnswer:");
    if (!(d->text = sbuf_take(&b)) || !set_fixed_options(d, no_yes, 2)) return OOM(r);
    return RED_OK;
}

/* MMLU (mmlu/default/_default_template_yaml and the per-subject YAMLs), 0-shot:
 *   description   "The following are multiple choice questions (with answers)
 *                 about {subject with "_" replaced by " "}.\n\n"
 *   doc_to_text   "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\n
 *                 C. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
 *   doc_to_choice ["A", "B", "C", "D"], doc_to_target answer (0-3)
 *   metric acc; the context is description + doc_to_text. */
static red_status mmlu_from_row(const row_ctx *r, red_mc_doc *d, int *subject) {
    static const char *const letters[4] = {"A", "B", "C", "D"};
    const red_json *q, *subj, *ch, *e;
    size_t a, z, i;
    red_sbuf b;
    red_status st;
    int k;
    if ((st = get_str(r, r->row, "question", &q)) || (st = get_str(r, r->row, "subject", &subj)) ||
        (st = get_str_array(r, r->row, "choices", 4, &ch)) || (st = get_index(r, "answer", 4, &d->gold)))
        return st;
    if (ch->count != 4) return field_error(r, "choices", "must have exactly 4 elements");
    for (k = 0; k < RED_MMLU_SUBJECTS && strcmp(subj->str, mmlu_subjects[k].name); k++) {}
    if (k == RED_MMLU_SUBJECTS) return field_error(r, "subject", "is not one of MMLU's 57 subjects");
    *subject = k;
    red_sbuf_init(&b);
    red_sbuf_puts(&b, "The following are multiple choice questions (with answers) about ");
    for (i = 0; i < subj->len; i++) red_sbuf_put(&b, subj->str[i] == '_' ? " " : subj->str + i, 1);
    red_sbuf_puts(&b, ".\n\n");
    py_strip(q->str, q->len, 1, 1, &a, &z);
    red_sbuf_put(&b, q->str + a, z - a);
    for (e = ch->child, k = 0; e; e = e->next, k++) {
        red_sbuf_printf(&b, "\n%c. ", 'A' + k);
        red_sbuf_put(&b, e->str, e->len);
    }
    red_sbuf_puts(&b, "\nAnswer:");
    if (!(d->text = sbuf_take(&b)) || !set_fixed_options(d, letters, 4)) return OOM(r);
    return RED_OK;
}

static void doc_free(red_mc_doc *d) {
    int k;
    free(d->text);
    if (d->options)
        for (k = 0; k < d->n_options; k++) free(d->options[k]);
    free(d->options);
    memset(d, 0, sizeof *d);
}

/* One row (a parsed JSON object) -> one doc; `where` ("FILE: line N") starts
 * every error, which names the missing or mistyped field. */
static red_status red_lm_doc_from_json(red_lm_task t, const red_json *row, const char *where, red_mc_doc *d,
                                       int *subject, red_error *err) {
    row_ctx r;
    red_status st;
    int subj = -1;
    memset(d, 0, sizeof *d);
    r.row = row;
    r.where = where;
    r.task = t;
    r.err = err;
    if (row->type != RED_JSON_OBJECT)
        return red_error_set(err, RED_E_FORMAT, "%s: %s: expected a JSON object with %s, got %s", where, task_names[t],
                             task_schemas[t], red_json_type_name(row->type));
    switch (t) {
    case RED_LM_ARC_EASY:
    case RED_LM_ARC_CHALLENGE: st = arc_from_row(&r, d); break;
    case RED_LM_HELLASWAG: st = hellaswag_from_row(&r, d); break;
    case RED_LM_PIQA: st = piqa_from_row(&r, d); break;
    case RED_LM_WINOGRANDE: st = winogrande_from_row(&r, d); break;
    case RED_LM_SCIQ: st = sciq_from_row(&r, d); break;
    case RED_LM_BOOLQ: st = boolq_from_row(&r, d); break;
    case RED_LM_MMLU: st = mmlu_from_row(&r, d, &subj); break;
    default: st = red_error_set(err, RED_E_ARG, "%s: unknown task %d", where, (int)t);
    }
    if (subject) *subject = subj;
    if (st) doc_free(d);
    return st;
}

/* ------------------------------------------------------------------ files */

void red_lm_set_free(red_lm_set *s) {
    if (!s) return;
    red_mc_free(s->docs, s->n);
    free(s->subject);
    memset(s, 0, sizeof *s);
}

static red_status set_grow(red_lm_set *s, int *cap, const char *name, red_error *err) {
    int ncap = *cap ? 2 * *cap : 256;
    red_mc_doc *d;
    int *sub;
    if (*cap >= (1 << 29)) return red_error_set(err, RED_E_FORMAT, "%s: too many rows", name);
    d = realloc(s->docs, sizeof *d * (size_t)ncap);
    if (d) s->docs = d;
    sub = realloc(s->subject, sizeof *sub * (size_t)ncap);
    if (sub) s->subject = sub;
    if (!d || !sub) return red_error_set(err, RED_E_NOMEM, "%s: out of memory", name);
    *cap = ncap;
    return RED_OK;
}

red_status red_lm_parse(red_lm_task t, const char *text, size_t len, const char *name, int limit, red_lm_set *s,
                        red_error *err) {
    size_t pos = 0, line = 0;
    int cap = 0;
    red_status st = RED_OK;
    memset(s, 0, sizeof *s);
    s->task = t;
    while (pos < len && (limit <= 0 || s->n < limit)) {
        size_t end = pos, k;
        int blank = 1;
        char where[1100];
        red_json *row;
        while (end < len && text[end] != '\n') end++;
        line++;
        for (k = pos; k < end; k++)
            if (text[k] != ' ' && text[k] != '\t' && text[k] != '\r') blank = 0;
        snprintf(where, sizeof where, "%s:%zu", name, line);
        if (!blank) {
            if (s->n == cap && (st = set_grow(s, &cap, name, err))) break;
            if ((st = red_json_parse(text + pos, end - pos, where, &row, err))) break;
            st = red_lm_doc_from_json(t, row, where, &s->docs[s->n], &s->subject[s->n], err);
            red_json_free(row);
            if (st) break;
            s->n++;
        }
        pos = end + 1;
    }
    if (!st && s->n == 0) st = red_error_set(err, RED_E_FORMAT, "%s: no rows", name);
    if (st) red_lm_set_free(s);
    return st;
}

red_status red_lm_load(red_lm_task t, const char *path, int limit, red_lm_set *s, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st;
    memset(s, 0, sizeof *s);
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    st = red_lm_parse(t, (const char *)buf, len, path, limit, s, err);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ requests and scores */

void red_lm_requests_jsonl(const red_lm_set *s, red_sbuf *out) {
    red_sbuf c;
    int i, k;
    red_sbuf_init(&c);
    for (i = 0; i < s->n; i++)
        for (k = 0; k < s->docs[i].n_options; k++) {
            const char *cont, *ctx = red_mc_request(&s->docs[i], k, &cont);
            c.len = 0;
            red_sbuf_puts(&c, " ");  /* target_delimiter */
            red_sbuf_puts(&c, cont);
            red_sbuf_printf(out, "{\"doc\": %d, \"choice\": %d, \"context\": ", i, k);
            red_json_put_string(out, ctx, strlen(ctx));
            red_sbuf_puts(out, ", \"continuation\": ");
            red_json_put_string(out, c.p ? c.p : "", c.len);
            red_sbuf_puts(out, "}\n");
        }
    if (c.failed) out->failed = 1;
    red_sbuf_free(&c);
}

/* lm-eval's pooled_sample_stderr: sqrt(sum((n_i - 1) se_i^2 n_i) / (N - k) / N)
 * over the k parts present (n_i > 0). */
static double pooled_stderr(const double *se, const int *n, int parts) {
    double num = 0.0;
    int i, k = 0;
    int64_t total = 0;
    for (i = 0; i < parts; i++)
        if (n[i] > 0) {
            num += (double)(n[i] - 1) * se[i] * se[i] * n[i];
            total += n[i];
            k++;
        }
    return total - k > 0 ? sqrt(num / (double)(total - k) / (double)total) : 0.0;
}

void red_lm_summarize(const red_lm_set *s, const int *pred, const int *pred_norm, red_lm_summary *r) {
    double acc = 0.0, accn = 0.0, se[RED_MMLU_SUBJECTS], gse[RED_MMLU_GROUPS];
    int i, g, gn[RED_MMLU_GROUPS] = {0};
    memset(r, 0, sizeof *r);
    r->n = s->n;
    for (i = 0; i < s->n; i++) {
        acc += pred[i] == s->docs[i].gold;
        accn += pred_norm[i] == s->docs[i].gold;
        if (s->task == RED_LM_MMLU) {
            r->subj_n[s->subject[i]]++;
            r->subj_correct[s->subject[i]] += pred[i] == s->docs[i].gold;
        }
    }
    r->acc = s->n ? acc / s->n : 0.0;
    r->acc_stderr = red_mean_stderr(acc, acc, s->n);  /* 0/1 scores: sum of squares = sum */
    r->acc_norm = red_lm_has_acc_norm(s->task) && s->n ? accn / s->n : NAN;
    r->acc_norm_stderr = red_lm_has_acc_norm(s->task) ? red_mean_stderr(accn, accn, s->n) : NAN;
    if (s->task != RED_LM_MMLU) return;
    /* mmlu = size-weighted mean of its four category groups, each of its
     * subjects: acc is the micro average; the stderr is pooled twice. */
    for (g = 0; g < RED_MMLU_GROUPS; g++) {
        int sn[RED_MMLU_SUBJECTS], correct = 0;
        for (i = 0; i < RED_MMLU_SUBJECTS; i++) {
            int in = mmlu_subjects[i].group == g;
            sn[i] = in ? r->subj_n[i] : 0;
            se[i] = red_mean_stderr(r->subj_correct[i], r->subj_correct[i], r->subj_n[i]);
            gn[g] += sn[i];
            correct += in ? r->subj_correct[i] : 0;
        }
        r->group_n[g] = gn[g];
        r->group_acc[g] = gn[g] ? (double)correct / gn[g] : 0.0;
        r->group_stderr[g] = gse[g] = pooled_stderr(se, sn, RED_MMLU_SUBJECTS);
    }
    r->acc_stderr = pooled_stderr(gse, gn, RED_MMLU_GROUPS);
}

void red_lm_scores_free(red_lm_scores *sc) {
    free(sc->ll);
    free(sc->pred);
    memset(sc, 0, sizeof *sc);
}

red_status red_lm_eval(red_model *m, const red_tokenizer *tok, const red_lm_set *s, int add_bos, int batch,
                       void (*progress)(void *, int, int), void *pctx, red_lm_scores *sc, red_error *err) {
    int i, n_req = 0;
    red_status st;
    memset(sc, 0, sizeof *sc);
    for (i = 0; i < s->n; i++) n_req += s->docs[i].n_options;
    sc->n_req = n_req;
    sc->ll = malloc(sizeof *sc->ll * (size_t)(n_req ? n_req : 1));
    sc->pred = malloc(sizeof *sc->pred * 2 * (size_t)(s->n ? s->n : 1));
    if (!sc->ll || !sc->pred) {
        red_lm_scores_free(sc);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory for %d requests", task_names[s->task], n_req);
    }
    sc->pred_norm = sc->pred + s->n;
    if ((st = red_mc_eval(m, tok, s->docs, s->n, add_bos, batch, sc->ll, sc->pred, sc->pred_norm, progress, pctx, err))) {
        red_lm_scores_free(sc);
        return st;
    }
    red_lm_summarize(s, sc->pred, sc->pred_norm, &sc->summary);
    return RED_OK;
}

static void put_metric(red_sbuf *b, const char *name, double v, double se) {
    red_sbuf_printf(b, "\"%s\": ", name);
    red_json_put_number(b, v);
    red_sbuf_printf(b, ", \"%s_stderr\": ", name);
    red_json_put_number(b, se);
}

void red_lm_result_json(const red_lm_set *s, const red_lm_summary *r, const char *data, red_sbuf *b) {
    int i, g, first = 1;
    red_sbuf_puts(b, "{\"data\": ");
    if (data) red_json_put_string(b, data, strlen(data));
    else red_sbuf_puts(b, "null");
    red_sbuf_printf(b, ", \"n\": %d, ", r->n);
    put_metric(b, "acc", r->acc, r->acc_stderr);
    if (red_lm_has_acc_norm(s->task)) {
        red_sbuf_puts(b, ", ");
        put_metric(b, "acc_norm", r->acc_norm, r->acc_norm_stderr);
    }
    if (s->task == RED_LM_MMLU) {
        red_sbuf_puts(b, ", \"groups\": {");
        for (g = 0; g < RED_MMLU_GROUPS; g++) {
            if (!r->group_n[g]) continue;
            red_sbuf_printf(b, "%s\"%s\": {\"n\": %d, ", first ? "" : ", ", mmlu_groups[g], r->group_n[g]);
            put_metric(b, "acc", r->group_acc[g], r->group_stderr[g]);
            red_sbuf_puts(b, "}");
            first = 0;
        }
        red_sbuf_puts(b, "}, \"subjects\": {");
        for (i = 0, first = 1; i < RED_MMLU_SUBJECTS; i++) {
            int n = r->subj_n[i], c = r->subj_correct[i];
            if (!n) continue;
            red_sbuf_printf(b, "%s\"%s\": {\"n\": %d, ", first ? "" : ", ", mmlu_subjects[i].name, n);
            put_metric(b, "acc", (double)c / n, red_mean_stderr(c, c, n));
            red_sbuf_puts(b, "}");
            first = 0;
        }
        red_sbuf_puts(b, "}");
    }
    red_sbuf_puts(b, "}");
}

void red_lm_samples_jsonl(const red_lm_set *s, const red_lm_scores *sc, red_sbuf *b) {
    int i, k, q = 0, norm = red_lm_has_acc_norm(s->task);
    for (i = 0; i < s->n; i++) {
        const red_mc_doc *d = &s->docs[i];
        red_sbuf_printf(b, "{\"doc\": %d, \"lls\": [", i);
        for (k = 0; k < d->n_options; k++, q++) {
            if (k) red_sbuf_puts(b, ", ");
            red_json_put_number(b, sc->ll[q]);
        }
        red_sbuf_printf(b, "], \"pred\": %d, \"gold\": %d, \"acc\": %d", sc->pred[i], d->gold, sc->pred[i] == d->gold);
        if (norm) red_sbuf_printf(b, ", \"pred_norm\": %d, \"acc_norm\": %d", sc->pred_norm[i], sc->pred_norm[i] == d->gold);
        if (s->task == RED_LM_MMLU) red_sbuf_printf(b, ", \"subject\": \"%s\"", mmlu_subjects[s->subject[i]].name);
        red_sbuf_puts(b, "}\n");
    }
}
