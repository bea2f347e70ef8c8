/* eval/report.c - what the harnesses report: a summary for people, the JSON
 * summary and one JSON line per doc (samples), as red eval writes them.
 *
 * Each writer appends to buffers the caller owns (summary, json, samples;
 * json and samples may be NULL) and writes no file: red eval and red
 * score-gsm8k write the buffers atomically where --json and --samples say.
 * Scores are lm-eval's (eval.md): exact_match under the two GSM8K filters,
 * acc and acc_norm for multiple choice, each with the standard error of the
 * mean. */
#include "../red_internal.h"

#include <string.h>

static red_status report_status(const red_sbuf *a, const red_sbuf *b, const red_sbuf *c, red_error *err) {
    if (a->failed || (b && b->failed) || (c && c->failed)) return red_error_set(err, RED_E_NOMEM, "report: out of memory");
    return RED_OK;
}

static void put_string_or_null(red_sbuf *b, const char *s, size_t len) {
    if (s) red_json_put_string(b, s, len);
    else red_sbuf_puts(b, "null");
}

/* {"doc": i, "prompt", "completion", "strict", "flexible", "gold", "strict_correct", "flexible_correct"} */
static void gsm8k_sample(red_gsm8k_task task, int i, const red_gsm8k_doc *doc, const red_sbuf *completion,
                         const red_sbuf *prompt, const red_gsm8k_scored *sc, red_sbuf *samples) {
    red_sbuf gold;
    red_sbuf_init(&gold);
    red_sbuf_puts(&gold, "");
    red_gsm8k_gold(task, doc->answer, &gold);
    red_sbuf_printf(samples, "{\"doc\": %d, \"prompt\": ", i);
    put_string_or_null(samples, prompt ? prompt->p : NULL, prompt ? prompt->len : 0);
    red_sbuf_puts(samples, ", \"completion\": ");
    red_json_put_string(samples, completion->p ? completion->p : "", completion->len);
    red_sbuf_puts(samples, ", \"strict\": ");
    red_json_put_string(samples, sc->strict.p, sc->strict.len);
    red_sbuf_puts(samples, ", \"flexible\": ");
    red_json_put_string(samples, sc->flexible.p, sc->flexible.len);
    red_sbuf_puts(samples, ", \"gold\": ");
    red_json_put_string(samples, gold.p, gold.len);
    red_sbuf_printf(samples, ", \"strict_correct\": %d, \"flexible_correct\": %d}\n", sc->strict_ok, sc->flexible_ok);
    red_sbuf_free(&gold);
}

static void gsm8k_json(const red_gsm8k_report_opts *o, int n, const double acc[2], const double se[2], red_sbuf *js) {
    red_sbuf_puts(js, "{\"task\": ");
    red_json_put_string(js, o->task_name, strlen(o->task_name));
    red_sbuf_puts(js, ", \"model\": ");
    put_string_or_null(js, o->model, o->model ? strlen(o->model) : 0);
    if (o->shots >= 0)
        red_sbuf_printf(js, ", \"n\": %d, \"num_fewshot\": %d, \"fewshot_seed\": 1234, \"max_gen_toks\": %d, "
                            "\"bos\": %s, \"calculator\": %s, \"results\": {\"exact_match,strict-match\": ",
                        n, o->shots, o->max_gen, o->bos ? "true" : "false", o->calculator ? "true" : "false");
    else  /* scored external completions: no generation settings to report */
        red_sbuf_printf(js, ", \"n\": %d, \"source\": \"external completions\", "
                            "\"results\": {\"exact_match,strict-match\": ", n);
    red_json_put_number(js, acc[0]);
    red_sbuf_puts(js, ", \"exact_match_stderr,strict-match\": ");
    red_json_put_number(js, se[0]);
    red_sbuf_puts(js, ", \"exact_match,flexible-extract\": ");
    red_json_put_number(js, acc[1]);
    red_sbuf_puts(js, ", \"exact_match_stderr,flexible-extract\": ");
    red_json_put_number(js, se[1]);
    red_sbuf_puts(js, "}}\n");
}

red_status red_gsm8k_report(const red_gsm8k_report_opts *o, red_gsm8k_task task, const red_gsm8k_doc *docs,
                            const red_sbuf *completions, const red_sbuf *prompts, int n, red_sbuf *summary,
                            red_sbuf *json, red_sbuf *samples, red_error *err) {
    double ss = 0, fs = 0, acc[2], se[2];
    int i;
    for (i = 0; i < n; i++) {
        red_gsm8k_scored sc;
        red_gsm8k_score_one(task, completions[i].p ? completions[i].p : "", docs[i].answer, &sc);
        ss += sc.strict_ok;
        fs += sc.flexible_ok;
        if (samples) gsm8k_sample(task, i, &docs[i], &completions[i], prompts ? &prompts[i] : NULL, &sc, samples);
        red_gsm8k_scored_free(&sc);
    }
    acc[0] = n ? ss / n : 0;
    acc[1] = n ? fs / n : 0;
    se[0] = red_mean_stderr(ss, ss, n);
    se[1] = red_mean_stderr(fs, fs, n);
    if (o->shots >= 0)
        red_sbuf_printf(summary, "%s (%d-shot, %d docs, greedy, max %d new tokens, bos %s%s)\n", o->task_name, o->shots,
                        n, o->max_gen, o->bos ? "yes" : "no", o->calculator ? ", WITH CALCULATOR (not lm-eval)" : "");
    else
        red_sbuf_printf(summary, "%s (%d docs, completions scored as given)\n", o->task_name, n);
    red_sbuf_printf(summary, "  exact_match,strict-match      %.4f ± %.4f\n", acc[0], se[0]);
    red_sbuf_printf(summary, "  exact_match,flexible-extract  %.4f ± %.4f\n", acc[1], se[1]);
    if (json) gsm8k_json(o, n, acc, se, json);
    return report_status(summary, json, samples, err);
}

static void mc_json(const char *model, const char *data, int n, int bos, int with_norm, double acc, double accn,
                    red_sbuf *js) {
    red_sbuf_puts(js, "{\"task\": \"choice\", \"model\": ");
    red_json_put_string(js, model, strlen(model));
    red_sbuf_puts(js, ", \"data\": ");
    red_json_put_string(js, data, strlen(data));
    red_sbuf_printf(js, ", \"n\": %d, \"num_fewshot\": 0, \"bos\": %s, \"results\": {\"acc\": ", n, bos ? "true" : "false");
    red_json_put_number(js, n ? acc / n : 0);
    red_sbuf_puts(js, ", \"acc_stderr\": ");
    red_json_put_number(js, red_mean_stderr(acc, acc, n));
    if (with_norm) {
        red_sbuf_puts(js, ", \"acc_norm\": ");
        red_json_put_number(js, n ? accn / n : 0);
        red_sbuf_puts(js, ", \"acc_norm_stderr\": ");
        red_json_put_number(js, red_mean_stderr(accn, accn, n));
    }
    red_sbuf_puts(js, "}}\n");
}

red_status red_mc_report(const char *model, const char *data, const red_mc_doc *docs, int n, const double *ll,
                         const int *pred, const int *pred_norm, int bos, red_sbuf *summary, red_sbuf *json,
                         red_sbuf *samples, red_error *err) {
    double acc = 0, accn = 0;
    int i, k, q, any_multi = 0;
    for (i = 0, q = 0; i < n; q += docs[i].n_options, i++) {
        any_multi |= docs[i].multi_context;
        acc += pred[i] == docs[i].gold;
        accn += pred_norm[i] == docs[i].gold;
        if (!samples) continue;
        red_sbuf_printf(samples, "{\"doc\": %d, \"lls\": [", i);
        for (k = 0; k < docs[i].n_options; k++) {
            if (k) red_sbuf_puts(samples, ", ");
            red_json_put_number(samples, ll[q + k]);
        }
        red_sbuf_printf(samples, "], \"pred\": %d, \"pred_norm\": %d, \"gold\": %d, \"acc\": %d, \"acc_norm\": %d}\n",
                        pred[i], pred_norm[i], docs[i].gold, pred[i] == docs[i].gold, pred_norm[i] == docs[i].gold);
    }
    red_sbuf_printf(summary, "choice (%d docs, 0-shot, bos %s)\n  acc       %.4f ± %.4f\n", n, bos ? "yes" : "no",
                    n ? acc / n : 0, red_mean_stderr(acc, acc, n));
    /* acc_norm is meaningless when the choices share no context (WinoGrande's form) */
    if (!any_multi) red_sbuf_printf(summary, "  acc_norm  %.4f ± %.4f\n", n ? accn / n : 0, red_mean_stderr(accn, accn, n));
    if (json) mc_json(model, data, n, bos, !any_multi, acc, accn, json);
    return report_status(summary, json, samples, err);
}

void red_lm_report_begin(const char *model, int bos, red_sbuf *json) {
    red_sbuf_puts(json, "{\"model\": ");
    red_json_put_string(json, model, strlen(model));
    red_sbuf_printf(json, ", \"num_fewshot\": 0, \"bos\": %s, \"results\": {", bos ? "true" : "false");
}

red_status red_lm_report_task(const red_lm_set *s, const red_lm_summary *r, const char *data, int bos,
                              red_sbuf *summary, red_sbuf *json, red_error *err) {
    const char *name = red_lm_task_name(s->task);
    int j;
    red_sbuf_printf(summary, "%s (%d docs, 0-shot, bos %s)\n  acc       %.4f ± %.4f\n", name, r->n, bos ? "yes" : "no",
                    r->acc, r->acc_stderr);
    if (red_lm_has_acc_norm(s->task))
        red_sbuf_printf(summary, "  acc_norm  %.4f ± %.4f\n", r->acc_norm, r->acc_norm_stderr);
    for (j = 0; j < RED_MMLU_GROUPS && s->task == RED_LM_MMLU; j++)
        if (r->group_n[j])
            red_sbuf_printf(summary, "  %-16s acc %.4f ± %.4f (%d docs)\n", red_mmlu_group_name(j), r->group_acc[j],
                            r->group_stderr[j], r->group_n[j]);
    /* the first task follows the opening '{' of "results" */
    red_sbuf_printf(json, "%s\"%s\": ", json->len && json->p[json->len - 1] == '{' ? "" : ", ", name);
    red_lm_result_json(s, r, data, json);
    return report_status(summary, json, NULL, err);
}

red_status red_lm_report_end(red_sbuf *json, red_error *err) {
    red_sbuf_puts(json, "}}\n");
    return report_status(json, NULL, NULL, err);
}
