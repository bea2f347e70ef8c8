/* tests/test_data.c - the data a model reads (data.c): documents from JSONL
 * in each record shape (question/answer, text, multiple choice, contexts)
 * formatted and EOS-terminated, the answer-only target mask, and a shuffled
 * batch that depends on its own seed and not on what was read before. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

Test(data, documents_are_formatted) {
    red_tokenizer *tok;
    red_train_data d;
    red_error err;
    char tmp[] = "/tmp/red-test-data-fmt-XXXXXX", path[64];
    const char *lines = "{\"question\": \"Q1\", \"answer\": \"A1\"}\n{\"text\": \"plain\"}\n"
                        "{\"query\": \"Is it?\", \"choices\": [\"no\", \"yes\"], \"gold\": 1}\n"
                        "{\"contexts\": [\"The a\", \"The b\"], \"continuation\": \"ends.\", \"gold\": 0}\n";
    const char *want[4] = {"Question: Q1\nAnswer: A1", "plain", "Is it? yes", "The a ends."};
    size_t k;
    cr_assert(mkdtemp(tmp));
    snprintf(path, sizeof path, "%s/fmt.jsonl", tmp);
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    memset(&d, 0, sizeof d);
    cr_assert(red_write_file_atomic(path, lines, strlen(lines), &err) == RED_OK);
    cr_assert(red_train_data_add_file(&d, tok, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(d.n_docs == 4);
    for (k = 0; k < 4; k++) {
        size_t a = d.doc_start[k], b = d.doc_start[k + 1], i;
        cr_assert(b - a == strlen(want[k]) + 1, "doc %zu length", k);
        for (i = 0; i < b - a - 1; i++) cr_assert(d.tokens[a + i] == (unsigned char)want[k][i], "doc %zu byte %zu", k, i);
        cr_expect(d.tokens[b - 1] == red_tokenizer_eos(tok), "doc %zu ends with EOS", k);
    }
    red_train_data_free(&d);
    /* --answer-loss: the context part is never a target */
    memset(&d, 0, sizeof d);
    d.answer_only = 1;
    cr_assert(red_train_data_add_file(&d, tok, path, &err) == RED_OK, "%s", err.msg);
    {
        size_t ctx_len[4] = {strlen("Question: Q1\nAnswer:"), 0, strlen("Is it?"), strlen("The a")};
        for (k = 0; k < 4; k++) {
            size_t a = d.doc_start[k], b = d.doc_start[k + 1], i;
            for (i = a; i < b; i++)
                cr_assert(d.target[i] == (i - a >= ctx_len[k]), "doc %zu token %zu: target flag %d", k, i - a, d.target[i]);
        }
    }
    red_train_data_free(&d);
    unlink(path);
    rmdir(tmp);
    red_tokenizer_free(tok);
}

/* The shuffled stream is cached per (seed, epoch): reading calibration rows
 * (RED_CALIB_SEED) from the same data must not change what a later batch of
 * another seed holds (it once reused the calibration order for epoch 0). */
Test(data, batch_depends_on_its_seed_not_on_earlier_reads) {
    char dir[] = "/tmp/red-test-data-seed-XXXXXX", path[64];
    red_tokenizer *tok;
    red_train_data a, b;
    red_error err;
    int rows[2 * 32], in_a[2 * 32], tg_a[2 * 32], in_b[2 * 32], tg_b[2 * 32], in_c[2 * 32], tg_c[2 * 32], i, differ = 0;
    uint64_t ea = 0, oa = 0, eb = 0, ob = 0, ec = 0, oc = 0;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/d.jsonl", dir);
    tu_write_reasoning(path);
    cr_assert(red_tokenizer_byte_new(&tok, NULL) == RED_OK);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    cr_assert(red_train_data_add_file(&a, tok, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_train_data_add_file(&b, tok, path, &err) == RED_OK, "%s", err.msg);
    cr_assert(red_train_data_rows(&a, 2, 32, rows, &err) == RED_OK);             /* a: calibration first */
    cr_assert(red_train_data_batch(&a, 7, &ea, &oa, 2, 32, in_a, tg_a, &err) == RED_OK);
    cr_assert(red_train_data_batch(&b, 7, &eb, &ob, 2, 32, in_b, tg_b, &err) == RED_OK);  /* b: fresh */
    for (i = 0; i < 2 * 32; i++) {
        cr_assert(in_a[i] == in_b[i] && tg_a[i] == tg_b[i], "seed 7 batch differs at %d after calibration rows", i);
        differ |= in_a[i] != rows[i];
    }
    cr_assert(differ, "seed 7 and the calibration seed gave the same order");
    /* and switching seeds back and forth gives each seed its own order again */
    cr_assert(red_train_data_batch(&b, 8, &ec, &oc, 2, 32, in_c, tg_c, &err) == RED_OK);
    ea = oa = 0;
    cr_assert(red_train_data_batch(&b, 7, &ea, &oa, 2, 32, in_a, tg_a, &err) == RED_OK);
    for (i = 0; i < 2 * 32; i++) cr_assert(in_a[i] == in_b[i], "seed 7 order not restored at %d", i);
    red_tokenizer_free(tok);
    red_train_data_free(&a);
    red_train_data_free(&b);
    unlink(path);
    rmdir(dir);
}

/* A JSONL document of no known form is named by FILE:LINE, blank lines
 * counted, and a JSON syntax error by its line too. */
Test(data, errors_name_the_file_line) {
    char dir[] = "/tmp/red-test-data-l-XXXXXX", path[64], want[160];
    red_tokenizer *tok;
    red_train_data d;
    red_error err;
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/d.jsonl", dir);
    cr_assert(red_tokenizer_byte_new(&tok, &err) == RED_OK);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n\n{\"txt\": \"c\"}\n", f);
    fclose(f);
    memset(&d, 0, sizeof d);
    cr_expect(red_train_data_add_file(&d, tok, path, &err) == RED_E_FORMAT, "an unknown document form was accepted");
    snprintf(want, sizeof want, "%s:5: expected", path);
    cr_expect(strstr(err.msg, want) != NULL, "[%s] lacks [%s]", err.msg, want);
    red_train_data_free(&d);
    cr_assert((f = fopen(path, "w")) != NULL);
    fputs("{\"text\": \"a\"}\n\n{\"text\": \"b\",}\n", f);
    fclose(f);
    memset(&d, 0, sizeof d);
    cr_expect(red_train_data_add_file(&d, tok, path, &err) == RED_E_FORMAT, "bad JSON was accepted");
    snprintf(want, sizeof want, "%s:3: JSON byte 13: expected a string key", path);
    cr_expect(strstr(err.msg, want) != NULL, "[%s] lacks [%s]", err.msg, want);
    red_train_data_free(&d);
    red_tokenizer_free(tok);
    unlink(path);
    rmdir(dir);
}
