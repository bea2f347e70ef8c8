/* tests/test_optim.c - the state file every training loop resumes from: a
 * round trip is exact; a resume with other settings is refused naming the
 * setting; truncated files, lying sizes and wrapping record lengths are
 * rejected with the byte offset and leave the arrays untouched. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

static char dir[64];
static char path[128];

static void setup(void) {
    strcpy(dir, "/tmp/red-test-optim-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.bin", dir);
}

static void teardown(void) {
    unlink(path);
    rmdir(dir);
}

static const char *record = "kind=test\nlr=0.003\nseq=32\n";

static void write_state(float *a, size_t na, float *b, size_t nb) {
    red_state_array arr[2] = {{a, na, "a"}, {b, nb, "b"}};
    red_loop_pos pos = {7, 9, 2, 1234};
    red_error err;
    cr_assert(red_state_save(path, "REDTEST!", &pos, record, arr, 2, &err) == RED_OK, "%s", err.msg);
}

static unsigned char *slurp(size_t *len) {
    unsigned char *buf;
    red_error err;
    cr_assert(red_read_file(path, &buf, len, &err) == RED_OK, "%s", err.msg);
    return buf;
}

static void spit(const unsigned char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
}

TestSuite(optim, .init = setup, .fini = teardown);

Test(optim, state_round_trip_is_exact) {
    float a[5] = {1.5f, -0.0f, 3e-38f, 1e30f, -7.25f}, b[2] = {0.1f, 0.2f}, ra[5], rb[2];
    red_state_array arr[2] = {{ra, 5, "a"}, {rb, 2, "b"}};
    red_loop_pos pos;
    red_error err;
    write_state(a, 5, b, 2);
    cr_assert(red_state_load(path, "REDTEST!", record, &pos, arr, 2, &err) == RED_OK, "%s", err.msg);
    cr_assert(pos.step == 7 && pos.adam_t == 9 && pos.epoch == 2 && pos.offset == 1234);
    cr_assert(!memcmp(a, ra, sizeof a) && !memcmp(b, rb, sizeof b));
}

Test(optim, resume_with_other_settings_names_the_setting) {
    float a[3] = {1, 2, 3}, b[1] = {4}, ra[3] = {0}, rb[1] = {0};
    red_state_array arr[2] = {{ra, 3, "a"}, {rb, 1, "b"}};
    red_loop_pos pos;
    red_error err;
    write_state(a, 3, b, 1);
    cr_assert(red_state_load(path, "REDTEST!", "kind=test\nlr=0.003\nseq=64\n", &pos, arr, 2, &err) == RED_E_ARG);
    cr_assert(strstr(err.msg, "seq is 32 in the saved run but 64"), "%s", err.msg);
    cr_assert(red_state_load(path, "REDTEST!", "kind=test\nlr=0.003\nseq=32\ninit=red\n", &pos, arr, 2, &err) == RED_E_ARG);
    cr_assert(strstr(err.msg, "init is (missing)"), "%s", err.msg);
    cr_assert(ra[0] == 0 && rb[0] == 0, "arrays untouched on failure");
}

Test(optim, wrong_sizes_and_truncation_are_rejected_untouched) {
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, ra[4] = {0}, rb[3] = {0};
    red_state_array arr[2] = {{ra, 4, "a"}, {rb, 3, "b"}};
    red_loop_pos pos;
    red_error err;
    unsigned char *buf;
    size_t len, cut;
    write_state(a, 4, b, 2);
    cr_assert(red_state_load(path, "REDTEST!", record, &pos, arr, 2, &err) == RED_E_FORMAT);
    cr_assert(strstr(err.msg, "b: expected 3 values, found 2"), "%s", err.msg);
    arr[1].n = 2;
    buf = slurp(&len);
    for (cut = 0; cut < len; cut++) {  /* every truncation */
        spit(buf, cut);
        cr_assert(red_state_load(path, "REDTEST!", record, &pos, arr, 2, &err) == RED_E_FORMAT, "cut at %zu", cut);
    }
    cr_assert(ra[0] == 0 && rb[0] == 0);
    spit(buf, len);
    cr_assert(red_state_load(path, "REDTEST", record, &pos, arr, 2, &err) == RED_E_FORMAT, "magic of another loop");
    free(buf);
}

Test(optim, record_length_that_wraps_is_rejected) {
    float a[2] = {1, 2}, ra[2] = {0};
    red_state_array arr[1] = {{ra, 2, "a"}};
    red_loop_pos pos = {1, 1, 0, 0};
    red_error err;
    unsigned char *buf;
    size_t len;
    arr[0].p = a;
    cr_assert(red_state_save(path, "REDTEST!", &pos, record, arr, 1, &err) == RED_OK);
    arr[0].p = ra;
    buf = slurp(&len);
    red_put_u64le(buf + 44, ~(uint64_t)0 - 10);  /* record_len near 2^64: offset arithmetic must not wrap */
    spit(buf, len);
    cr_assert(red_state_load(path, "REDTEST!", record, &pos, arr, 1, &err) == RED_E_FORMAT);
    cr_assert(strstr(err.msg, "byte 44"), "%s", err.msg);
    red_put_u64le(buf + 44, strlen(record));
    red_put_u64le(buf + 44 + 8 + strlen(record) + 8, ~(uint64_t)0 / 4 + 1);  /* array count that wraps 4n */
    spit(buf, len);
    cr_assert(red_state_load(path, "REDTEST!", record, &pos, arr, 1, &err) == RED_E_FORMAT);
    cr_assert(ra[0] == 0);
    free(buf);
}

Test(optim, adamw_first_step_closed_form) {
    /* step 1: mhat = g, vhat = g^2, so p -= lr*wd*p + lr * g/(|g| + eps) */
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.3f, -4.0f, 0.0f}, m[3] = {0}, v[3] = {0};
    red_adamw_cfg c = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f};
    red_adamw_update(p, g, m, v, 3, &c, 0.5f, 1);
    cr_expect(fabs(p[0] - (1.0 - 0.05 - 0.1)) < 1e-6, "%g", p[0]);
    cr_expect(fabs(p[1] - (-2.0 + 0.1 + 0.1)) < 1e-6, "%g", p[1]);
    cr_expect(fabs(p[2] - (0.5 - 0.025)) < 1e-6, "%g", p[2]);
}

Test(optim, clip_grad_norm) {
    float g[2] = {3.0f, 4.0f};
    double n = red_clip_grad_norm(NULL, g, 2, 1.0);
    cr_expect(fabs(n - 5.0) < 1e-12);
    cr_expect(fabs(g[0] - 0.6f) < 1e-6 && fabs(g[1] - 0.8f) < 1e-6);
    n = red_clip_grad_norm(NULL, g, 2, 10.0);
    cr_expect(fabs(g[0] - 0.6f) < 1e-6, "no scaling below the threshold");
}

Test(optim, lr_schedules) {
    red_lr_sched s = {RED_SCHED_LINEAR, 1.0f, 10, 110, 0.0f};
    cr_expect(fabs(red_lr_at(&s, 0) - 0.1f) < 1e-7);
    cr_expect(fabs(red_lr_at(&s, 9) - 1.0f) < 1e-7);
    cr_expect(fabs(red_lr_at(&s, 60) - 0.5f) < 1e-6);
    cr_expect(red_lr_at(&s, 110) == 0.0f && red_lr_at(&s, 500) == 0.0f);
    s.kind = RED_SCHED_COSINE;
    s.min_lr = 0.1f;
    cr_expect(fabs(red_lr_at(&s, 10) - 1.0f) < 1e-6);
    cr_expect(fabs(red_lr_at(&s, 60) - 0.55f) < 1e-6);
    cr_expect(fabs(red_lr_at(&s, 110) - 0.1f) < 1e-6);
}
