/* tests/test_io.c - io.c: .npy files written by numpy itself (all header
 * versions, f4/f8, 0-D..4-D), our own round trips, and rejection of malformed
 * or unsupported files with a message naming the file and the problem; same-file
 * and output checks; half-float conversions. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static void load_ok(const char *name, int ndim, const int64_t *shape, red_tensor *t) {
    red_error err;
    int i;
    cr_assert_eq(red_npy_load(name, t, &err), RED_OK, "%s: %s", name, err.msg);
    cr_assert_eq(t->ndim, ndim, "%s: ndim %d", name, t->ndim);
    for (i = 0; i < ndim; i++) cr_assert_eq(t->shape[i], shape[i], "%s: dim %d", name, i);
}

Test(io, npy_reads_numpy_files_of_every_version) {
    red_tensor v1, v2, v3, t;
    int64_t s35[2] = {3, 5}, s234[3] = {2, 3, 4}, s7[1] = {7}, s4d[4] = {2, 3, 4, 5}, s04[2] = {0, 4};
    int i;
    load_ok(FIXTURE("npy_v1_f4_3x5.npy"), 2, s35, &v1);
    load_ok(FIXTURE("npy_v2_f4_3x5.npy"), 2, s35, &v2);
    load_ok(FIXTURE("npy_v3_f4_3x5.npy"), 2, s35, &v3);
    cr_assert(memcmp(v1.data, v2.data, 15 * 4) == 0 && memcmp(v1.data, v3.data, 15 * 4) == 0);
    load_ok(FIXTURE("npy_v1_f8_2x3x4.npy"), 3, s234, &t);
    red_tensor_free(&t);
    load_ok(FIXTURE("npy_v1_f4_0d.npy"), 0, NULL, &t);
    cr_assert_eq(t.data[0], 2.5f);
    red_tensor_free(&t);
    load_ok(FIXTURE("npy_v1_f4_1d.npy"), 1, s7, &t);
    for (i = 0; i < 7; i++) cr_assert_eq(t.data[i], (float)i);
    red_tensor_free(&t);
    load_ok(FIXTURE("npy_v1_f4_4d.npy"), 4, s4d, &t);
    for (i = 0; i < 120; i++) cr_assert_eq(t.data[i], (float)i, "C order");
    red_tensor_free(&t);
    load_ok(FIXTURE("npy_v1_f4_empty.npy"), 2, s04, &t);
    red_tensor_free(&t);
    red_tensor_free(&v1); red_tensor_free(&v2); red_tensor_free(&v3);
}

/* Our own writer matches numpy's bytes exactly for the same array. */
Test(io, npy_writer_is_byte_identical_to_numpy) {
    red_tensor t;
    red_error err;
    unsigned char *a, *b;
    size_t la, lb;
    char dir[] = "/tmp/red-test-npy-XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.npy", dir);
    load_ok(FIXTURE("npy_v1_f4_3x5.npy"), 2, (int64_t[]){3, 5}, &t);
    cr_assert_eq(red_npy_save(path, &t, &err), RED_OK, "%s", err.msg);
    cr_assert_eq(red_read_file(path, &a, &la, &err), RED_OK);
    cr_assert_eq(red_read_file(FIXTURE("npy_v1_f4_3x5.npy"), &b, &lb, &err), RED_OK);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(a, b, la) == 0, "bytes differ from numpy's");
    free(a); free(b);
    red_tensor_free(&t);
    load_ok(FIXTURE("npy_v1_f4_1d.npy"), 1, (int64_t[]){7}, &t);
    red_npy_save(path, &t, &err);
    red_read_file(path, &a, &la, &err);
    red_read_file(FIXTURE("npy_v1_f4_1d.npy"), &b, &lb, &err);
    cr_assert(la == lb && memcmp(a, b, la) == 0, "1-D header '(7,)' differs from numpy's");
    free(a); free(b);
    red_tensor_free(&t);
    remove(path);
    rmdir(dir);
}

Test(io, npy_round_trips) {
    int64_t shapes[5][4] = {{1}, {0}, {4, 6}, {2, 3, 5}, {2, 2, 3, 2}};
    int nd[5] = {0, 1, 2, 3, 4}, s, i;
    char dir[] = "/tmp/red-test-npy-XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.npy", dir);
    for (s = 0; s < 5; s++) {
        red_tensor t, u;
        red_error err;
        red_rng r;
        int64_t n;
        cr_assert_eq(red_tensor_heap(&t, nd[s], shapes[s]), RED_OK);
        n = red_tensor_numel(&t);
        red_rng_seed(&r, s);
        red_rng_fill_normal(&r, t.data, (size_t)n, 0, 1e10f);
        if (n > 1) t.data[1] = -0.0f;
        cr_assert_eq(red_npy_save(path, &t, &err), RED_OK, "%s", err.msg);
        cr_assert_eq(red_npy_load(path, &u, &err), RED_OK, "%s", err.msg);
        cr_assert_eq(u.ndim, t.ndim);
        for (i = 0; i < t.ndim; i++) cr_assert_eq(u.shape[i], t.shape[i]);
        cr_assert(n == 0 || memcmp(u.data, t.data, (size_t)n * 4) == 0, "data differs (bitwise)");
        red_tensor_free(&t);
        red_tensor_free(&u);
    }
    remove(path);
    rmdir(dir);
}

/* A malformed image must fail with the given status and a message containing
 * `needle`, and never leave data allocated. */
static void expect_reject(const void *buf, size_t len, red_status want, const char *needle) {
    red_tensor t;
    red_error err;
    red_status st = red_npy_parse(buf, len, "case.npy", &t, &err);
    cr_assert_eq(st, want, "status %s, want %s (%s)", red_status_name(st), red_status_name(want), err.msg);
    cr_assert_null(t.data);
    cr_assert(strstr(err.msg, "case.npy") != NULL, "message lacks the file name: %s", err.msg);
    cr_assert(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
}

/* builds a v1 file with the given header text (padded) and data bytes */
static size_t make_npy(unsigned char *out, const char *header, size_t ndata) {
    size_t h = strlen(header), i;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(h & 255);
    out[9] = (unsigned char)(h >> 8);
    memcpy(out + 10, header, h);
    for (i = 0; i < ndata; i++) out[10 + h + i] = 0;
    return 10 + h + ndata;
}

Test(io, npy_rejects_malformed_files) {
    unsigned char b[512];
    size_t n;
    red_tensor t;
    red_error err;
    expect_reject("hello", 5, RED_E_FORMAT, "magic");
    expect_reject("\x93NUMPX\x01\x00\x00\x00", 10, RED_E_FORMAT, "magic");
    expect_reject("\x93NUMPY\x04\x00\x00\x00", 10, RED_E_UNSUPPORTED, "version 4.0");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 20);
    expect_reject(b, n, RED_E_FORMAT, "expected 24 bytes");                  /* truncated data */
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 28);
    expect_reject(b, n, RED_E_FORMAT, "expected 24 bytes");                  /* trailing bytes */
    n = make_npy(b, "{'descr': '<f4', 'shape': (2,), }\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "fortran_order");                      /* missing key */
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "unexpected key");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,), }\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "True or False");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "non-negative integer");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "only padding");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n", 8);
    expect_reject(b, n, RED_E_FORMAT, "byte offset");
    n = make_npy(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8);
    b[8] = 200;  /* header length past the end of the file */
    expect_reject(b, n, RED_E_FORMAT, "runs past the end");
    /* numpy-written files of unsupported kinds */
    cr_assert_eq(red_npy_load(FIXTURE("npy_bad_bigendian.npy"), &t, &err), RED_E_UNSUPPORTED);
    cr_assert(strstr(err.msg, "big-endian"), "%s", err.msg);
    cr_assert_eq(red_npy_load(FIXTURE("npy_bad_fortran.npy"), &t, &err), RED_E_UNSUPPORTED);
    cr_assert(strstr(err.msg, "Fortran"), "%s", err.msg);
    cr_assert_eq(red_npy_load(FIXTURE("npy_bad_int32.npy"), &t, &err), RED_E_UNSUPPORTED);
    cr_assert(strstr(err.msg, "<i4"), "%s", err.msg);
    cr_assert_eq(red_npy_load(FIXTURE("npy_bad_5d.npy"), &t, &err), RED_E_FORMAT);
    cr_assert(strstr(err.msg, "at most 4 dimensions"), "%s", err.msg);
    cr_assert_eq(red_npy_load("/nonexistent/x.npy", &t, &err), RED_E_IO);
    cr_assert(strstr(err.msg, "/nonexistent/x.npy"), "%s", err.msg);
}

/* Every truncation of a valid file is rejected cleanly (never a crash). */
Test(io, npy_every_truncation_is_rejected) {
    unsigned char *buf;
    size_t len, cut;
    red_error err;
    cr_assert_eq(red_read_file(FIXTURE("npy_v2_f4_3x5.npy"), &buf, &len, &err), RED_OK);
    for (cut = 0; cut < len; cut++) {
        red_tensor t;
        cr_assert_neq(red_npy_parse(buf, cut, "cut.npy", &t, &err), RED_OK, "prefix of %zu bytes accepted", cut);
        cr_assert_null(t.data);
    }
    free(buf);
}

Test(io, npy_atomic_write_leaves_no_temp_file_and_reports_errors) {
    red_tensor t;
    red_error err;
    int64_t s[1] = {3};
    char dir[] = "/tmp/red-test-npy-XXXXXX", path[64], tmp[96];
    red_tensor_heap(&t, 1, s);
    t.data[0] = t.data[1] = t.data[2] = 1.0f;
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.npy", dir);
    cr_assert_eq(red_npy_save(path, &t, &err), RED_OK);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    cr_assert_neq(access(path, F_OK), -1);
    cr_assert_eq(access(tmp, F_OK), -1, "temp file left behind");
    cr_assert_eq(red_npy_save("/nonexistent-dir/x.npy", &t, &err), RED_E_IO);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.npy"), "%s", err.msg);
    remove(path);
    rmdir(dir);
    red_tensor_free(&t);
}

/* ------------------------------------------------------------------ token ids (red_npy_load_ids) */

static void ids_ok(const char *name, int64_t n, const int64_t *want) {
    int64_t *ids, got, i;
    red_error err;
    cr_assert_eq(red_npy_load_ids(name, &ids, &got, &err), RED_OK, "%s: %s", name, err.msg);
    cr_assert_eq(got, n, "%s: %lld ids", name, (long long)got);
    for (i = 0; i < n; i++) cr_expect_eq(ids[i], want[i], "%s: id %lld is %lld", name, (long long)i, (long long)ids[i]);
    free(ids);
}

Test(io, npy_reads_integer_and_whole_float_ids) {
    ids_ok(FIXTURE("npy_ids_i8_2x3.npy"), 6, (int64_t[]){3, -1, 70000, 3, (int64_t)1 << 40, 0});
    ids_ok(FIXTURE("npy_ids_i4.npy"), 5, (int64_t[]){5, -7, 5, 2147483647, -2147483647 - 1});
    ids_ok(FIXTURE("npy_ids_i2.npy"), 2, (int64_t[]){-2, 300});
    ids_ok(FIXTURE("npy_ids_u1.npy"), 3, (int64_t[]){0, 255, 7});
    ids_ok(FIXTURE("npy_ids_u4.npy"), 2, (int64_t[]){4000000000LL, 1});
    ids_ok(FIXTURE("npy_ids_f4.npy"), 4, (int64_t[]){1, 2, -3, 16777216});
    ids_ok(FIXTURE("npy_ids_f8.npy"), 2, (int64_t[]){9007199254740992LL, -5});
}

Test(io, npy_rejects_ids_it_cannot_read_exactly) {
    int64_t *ids = (int64_t *)1, n = 5;
    red_error err;
    unsigned char b[256];
    size_t len;
    cr_assert_eq(red_npy_load_ids(FIXTURE("npy_bad_ids_fraction.npy"), &ids, &n, &err), RED_E_FORMAT);
    cr_assert(strstr(err.msg, "not a whole number") && strstr(err.msg, "npy_bad_ids_fraction.npy"), "%s", err.msg);
    cr_assert_null(ids);
    cr_assert_eq(n, 0);
    cr_assert_eq(red_npy_load_ids(FIXTURE("npy_bad_ids_bigendian.npy"), &ids, &n, &err), RED_E_UNSUPPORTED);
    cr_assert(strstr(err.msg, ">i4"), "%s", err.msg);
    cr_assert_eq(red_npy_load_ids(FIXTURE("npy_bad_fortran.npy"), &ids, &n, &err), RED_E_UNSUPPORTED);
    len = make_npy(b, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }\n", 8);
    memset(b + len - 8, 0xff, 8);  /* 2^64 - 1 does not fit an int64 */
    cr_assert_eq(red_npy_parse_ids(b, len, "big.npy", &ids, &n, &err), RED_E_FORMAT);
    cr_assert(strstr(err.msg, "exceeds"), "%s", err.msg);
    len = make_npy(b, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n", 11);
    cr_assert_eq(red_npy_parse_ids(b, len, "short.npy", &ids, &n, &err), RED_E_FORMAT);
    cr_assert(strstr(err.msg, "expected 12 bytes"), "%s", err.msg);
    len = make_npy(b, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", 8);
    cr_assert_eq(red_npy_parse_ids(b, len, "complex.npy", &ids, &n, &err), RED_E_UNSUPPORTED);
    /* every truncation of a valid ids file fails cleanly */
    {
        unsigned char *buf;
        size_t flen, cut;
        cr_assert_eq(red_read_file(FIXTURE("npy_ids_i8_2x3.npy"), &buf, &flen, &err), RED_OK);
        for (cut = 0; cut < flen; cut++) {
            cr_assert_neq(red_npy_parse_ids(buf, cut, "cut.npy", &ids, &n, &err), RED_OK, "cut at %zu", cut);
            cr_assert_null(ids);
        }
        free(buf);
    }
}

/* ------------------------------------------------------------------ same file, writable outputs */

/* Inputs and outputs may never be the same file (distill --out = --teacher
 * overwrote the teacher; eval --samples = --data the test set), whatever
 * the spelling; two outputs that do not exist yet collide by directory and
 * name. */
Test(io, same_file_by_device_and_inode) {
    char dir[] = "/tmp/red-test-same-XXXXXX", a[256], b[256], link[256], sub[128], x[256], y[256];
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/data.jsonl", dir);
    snprintf(b, sizeof b, "%s/./sub/../data.jsonl", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(link, sizeof link, "%s/alias.jsonl", dir);
    cr_assert(mkdir(sub, 0777) == 0);
    f = fopen(a, "w");
    fputs("{}\n", f);
    fclose(f);
    cr_assert(symlink(a, link) == 0);
    cr_expect(red_same_file(a, a) && red_same_file(a, b) && red_same_file(link, a), "spellings and links of one file");
    cr_expect(red_same_file(dir, sub) == 0 && red_same_file(a, sub) == 0);
    snprintf(x, sizeof x, "%s/out.json", sub);
    snprintf(y, sizeof y, "%s/../sub/out.json", sub);
    cr_expect(red_same_file(x, a) == 0, "an output that does not exist yet is not an existing input");
    cr_expect(red_same_file(x, y) == 1, "two outputs to be created at the same place");
    snprintf(y, sizeof y, "%s/out2.json", sub);
    cr_expect(red_same_file(x, y) == 0);
    {   /* a directory given with a trailing slash */
        char d2[300];
        snprintf(d2, sizeof d2, "%s/", sub);
        cr_expect(red_same_file(d2, sub) == 1);
    }
    unlink(link);
    unlink(a);
    rmdir(sub);
    rmdir(dir);
}

/* Outputs are checked before the work: a file's directory must exist, a
 * directory must be creatable, and neither may be the other kind. */
Test(io, outputs_checked_before_work) {
    char dir[] = "/tmp/red-test-out-XXXXXX", p[300];
    red_error err;
    FILE *f;
    cr_assert(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/new.json", dir);
    cr_expect(red_check_output(p, 0, &err) == RED_OK, "%s", err.msg);
    cr_expect(red_check_output(dir, 0, &err) == RED_E_IO, "a directory is not a file output");
    cr_expect(red_check_output(dir, 1, &err) == RED_OK, "%s", err.msg);
    snprintf(p, sizeof p, "%s/missing/new.json", dir);
    cr_expect(red_check_output(p, 0, &err) == RED_E_IO);
    cr_expect(strstr(err.msg, "missing") != NULL, "%s", err.msg);
    snprintf(p, sizeof p, "%s/newdir", dir);
    cr_expect(red_check_output(p, 1, &err) == RED_OK, "%s", err.msg);
    snprintf(p, sizeof p, "%s/file", dir);
    f = fopen(p, "w");
    fclose(f);
    cr_expect(red_check_output(p, 1, &err) == RED_E_IO, "a file is not a directory output");
    snprintf(p, sizeof p, "%s/file/x.json", dir);
    cr_expect(red_check_output(p, 0, &err) == RED_E_IO, "a file cannot hold an output");
    snprintf(p, sizeof p, "%s/file", dir);
    unlink(p);
    if (geteuid() != 0) {  /* root writes anywhere */
        cr_assert(chmod(dir, 0500) == 0);
        snprintf(p, sizeof p, "%s/new.json", dir);
        cr_expect(red_check_output(p, 0, &err) == RED_E_IO, "read-only directory");
        chmod(dir, 0700);
    }
    rmdir(dir);
}

/* ------------------------------------------------------------------ half floats */

Test(io, half_f16_known_values_and_exhaustive_round_trip) {
    uint32_t h;
    cr_expect(red_f32_to_f16(1.0f) == 0x3C00);
    cr_expect(red_f32_to_f16(-2.0f) == 0xC000);
    cr_expect(red_f32_to_f16(65504.0f) == 0x7BFF);
    cr_expect(red_f32_to_f16(65520.0f) == 0x7C00, "65520 rounds to inf");
    cr_expect(red_f32_to_f16(65519.0f) == 0x7BFF);
    cr_expect(red_f32_to_f16(5.9604645e-08f) == 0x0001, "smallest subnormal");
    cr_expect(red_f32_to_f16(2.9802322e-08f) == 0x0000, "half of it ties to even (0)");
    cr_expect(red_f32_to_f16(6.1035156e-05f) == 0x0400, "smallest normal");
    cr_expect(red_f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00, "tie to even");
    cr_expect(red_f32_to_f16(1.0f + 3.0f / 2048) == 0x3C02, "tie to even (up)");
    for (h = 0; h < 65536; h++) {
        float f = red_f16_to_f32((uint16_t)h);
        if (f != f) continue;  /* NaN payloads */
        cr_assert(red_f32_to_f16(f) == h, "f16 0x%04x -> %g -> 0x%04x", h, f, red_f32_to_f16(f));
    }
    cr_expect(red_f16_to_f32(0x0001) == 5.9604645e-08f);
    cr_expect(red_f16_to_f32(0x7C00) == INFINITY);
}

Test(io, half_bf16_rounding) {
    cr_expect(red_f32_to_bf16(1.0f) == 0x3F80);
    cr_expect(red_f32_to_bf16(1.0f + 1.0f / 256) == 0x3F80, "tie to even");
    cr_expect(red_f32_to_bf16(1.0f + 3.0f / 256) == 0x3F82, "tie to even (up)");
    cr_expect(red_f32_to_bf16(-3.0f) == 0xC040);
    cr_expect(red_bf16_to_f32(0x4049) == 3.140625f);
    cr_expect(red_bf16_to_f32(red_f32_to_bf16(NAN)) != red_bf16_to_f32(red_f32_to_bf16(NAN)), "NaN stays NaN");
}

