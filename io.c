/* io.c - files: whole-file reads, atomic writes, and NumPy .npy.
 * Every multi-byte field is decoded byte by byte as little-endian, so the code
 * is the same on big-endian hosts; offsets and sizes are 64-bit.
 * .npy layout (NEP 1): "\x93NUMPY", major, minor, header length (u16 LE for
 * v1, u32 LE for v2/v3), a Python dict literal padded with spaces and ending
 * in '\n' so the data starts 64-byte aligned, then the raw data.
 */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ files */

red_status red_make_dir(const char *path, red_error *err) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return red_error_set(err, RED_E_IO, "%s: cannot create directory: %s", path, strerror(errno));
    return RED_OK;
}

/* The directory part of path ("." when there is none), trailing slashes
 * ignored; 0 if it does not fit. */
static int parent_dir(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    while (n > 0 && path[n - 1] != '/') n--;
    while (n > 1 && path[n - 1] == '/') n--;
    if (n == 0) return snprintf(out, cap, ".") < (int)cap;
    if (n >= cap) return 0;
    memcpy(out, path, n);
    out[n] = 0;
    return 1;
}

/* The last component of path, trailing slashes ignored (length in *len). */
static const char *base_name(const char *path, size_t *len) {
    size_t n = strlen(path), b;
    while (n > 1 && path[n - 1] == '/') n--;
    b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    *len = n - b;
    return path + b;
}

int red_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    char pa[4096], pb[4096];
    const char *na, *nb;
    size_t la, lb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return 0;  /* one exists, the other does not yet */
    /* neither exists yet (two outputs): same directory and same name */
    na = base_name(a, &la);
    nb = base_name(b, &lb);
    if (la != lb || memcmp(na, nb, la) != 0) return 0;
    if (!parent_dir(a, pa, sizeof pa) || !parent_dir(b, pb, sizeof pb)) return strcmp(a, b) == 0;
    if (stat(pa, &sa) != 0 || stat(pb, &sb) != 0) return strcmp(pa, pb) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

red_status red_check_output(const char *path, int is_dir, red_error *err) {
    struct stat st;
    char parent[4096];
    if (stat(path, &st) == 0) {
        if (is_dir && !S_ISDIR(st.st_mode))
            return red_error_set(err, RED_E_IO, "%s: exists and is not a directory", path);
        if (!is_dir && S_ISDIR(st.st_mode))
            return red_error_set(err, RED_E_IO, "%s: is a directory, expected a file name", path);
        /* files are replaced by rename: what matters is the directory they are in */
        if (is_dir && access(path, W_OK | X_OK) != 0)
            return red_error_set(err, RED_E_IO, "%s: directory is not writable: %s", path, strerror(errno));
        if (is_dir) return RED_OK;
    }
    if (!parent_dir(path, parent, sizeof parent)) return red_error_set(err, RED_E_ARG, "%s: path too long", path);
    if (stat(parent, &st) != 0)
        return red_error_set(err, RED_E_IO, "%s: cannot create it: directory %s: %s", path, parent, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return red_error_set(err, RED_E_IO, "%s: cannot create it: %s is not a directory", path, parent);
    if (access(parent, W_OK | X_OK) != 0)
        return red_error_set(err, RED_E_IO, "%s: cannot create it in %s: %s", path, parent, strerror(errno));
    return RED_OK;
}

red_status red_read_file(const char *path, unsigned char **buf, size_t *len, red_error *err) {
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    size_t cap = 0, n = 0;
    *buf = NULL;
    *len = 0;
    if (!f) return red_error_set(err, RED_E_IO, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {  /* grow geometrically; works for pipes and files alike */
        size_t got;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nd = realloc(data, ncap);
            if (!nd) {
                free(data);
                fclose(f);
                return red_error_set(err, RED_E_NOMEM, "%s: out of memory after %zu bytes", path, n);
            }
            data = nd;
            cap = ncap;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(data);
        fclose(f);
        return red_error_set(err, RED_E_IO, "%s: read error at byte %zu", path, n);
    }
    fclose(f);
    *buf = data;
    *len = n;
    return RED_OK;
}

red_status red_write_file_atomic(const char *path, const void *buf, size_t len, red_error *err) {
    char tmp[4096];
    FILE *f;
    int ok;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return red_error_set(err, RED_E_ARG, "%s: path too long", path);
    f = fopen(tmp, "wb");
    if (!f) return red_error_set(err, RED_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    ok = fwrite(buf, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        remove(tmp);
        return red_error_set(err, RED_E_IO, "%s: write failed (%zu bytes): %s", tmp, len,
                             strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return red_error_set(err, RED_E_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    return RED_OK;
}

/* ------------------------------------------------------------------ .npy */

static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const unsigned char *p) {
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

static void store_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A cursor over the header's dict literal; off is relative to the file start. */
typedef struct {
    const char *s;
    size_t pos, len, base;
    const char *name;
    red_error *err;
} npy_cursor;

static void npy_skip_ws(npy_cursor *c) {
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' ||
                               c->s[c->pos] == '\r'))
        c->pos++;
}

static red_status npy_fail(npy_cursor *c, const char *expected) {
    char found[24];
    size_t i, n = 0;
    for (i = c->pos; i < c->len && n < 12; i++, n++)
        found[n] = (c->s[i] >= 32 && c->s[i] < 127) ? c->s[i] : '?';
    found[n] = '\0';
    return red_error_set(c->err, RED_E_FORMAT, "%s: byte offset %zu: npy header: expected %s, found \"%s\"%s",
                         c->name, c->base + c->pos, expected, c->pos < c->len ? found : "end of header",
                         "");
}

static int npy_eat(npy_cursor *c, char ch) {
    npy_skip_ws(c);
    if (c->pos < c->len && c->s[c->pos] == ch) {
        c->pos++;
        return 1;
    }
    return 0;
}

/* 'text' or "text" without escapes (numpy never writes any in these fields). */
static red_status npy_string(npy_cursor *c, char *out, size_t outlen) {
    char q;
    size_t n = 0;
    npy_skip_ws(c);
    if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"'))
        return npy_fail(c, "a quoted string");
    q = c->s[c->pos++];
    while (c->pos < c->len && c->s[c->pos] != q) {
        if (c->s[c->pos] == '\\') return npy_fail(c, "a string without escapes");
        if (n + 1 >= outlen) return npy_fail(c, "a short string (at most 31 bytes)");
        out[n++] = c->s[c->pos++];
    }
    if (c->pos >= c->len) return npy_fail(c, "a closing quote");
    c->pos++;
    out[n] = '\0';
    return RED_OK;
}

static red_status npy_shape(npy_cursor *c, int *ndim, int64_t *shape) {
    *ndim = 0;
    if (!npy_eat(c, '(')) return npy_fail(c, "'(' starting the shape tuple");
    for (;;) {
        int64_t v = 0;
        int digits = 0;
        if (npy_eat(c, ')')) break;
        npy_skip_ws(c);
        while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
            if (v > (INT64_MAX - 9) / 10) return npy_fail(c, "a dimension below 2^63");
            v = v * 10 + (c->s[c->pos++] - '0');
            digits++;
        }
        if (c->pos < c->len && c->s[c->pos] == 'L') c->pos++;  /* Python 2 longs */
        if (!digits) return npy_fail(c, "a non-negative integer dimension");
        if (*ndim == RED_MAX_DIMS) return npy_fail(c, "at most 4 dimensions");
        shape[(*ndim)++] = v;
        if (npy_eat(c, ',')) continue;
        if (npy_eat(c, ')')) break;
        return npy_fail(c, "',' or ')' in the shape tuple");
    }
    return RED_OK;
}

/* The header of an in-memory .npy: dtype string, C order checked, shape, and
 * where the data starts. */
typedef struct {
    char descr[32];
    int ndim;
    int64_t shape[RED_MAX_DIMS];
    uint64_t numel;
    size_t data_off;
} npy_header;

static red_status npy_read_header(const unsigned char *buf, size_t len, const char *name, npy_header *h,
                                  red_error *err) {
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    size_t hstart, hlen, data_off;
    npy_cursor c;
    char *descr = h->descr, key[32];
    int fortran = -1, have_shape = 0, ndim = 0, major, i;
    int64_t *shape = h->shape;
    red_status st;

    memset(h, 0, sizeof *h);
    if (len < 10 || memcmp(buf, magic, 6) != 0)
        return red_error_set(err, RED_E_FORMAT, "%s: byte offset 0: expected the .npy magic \\x93NUMPY%s",
                             name, len < 6 ? " (file shorter than 6 bytes)" : "");
    major = buf[6];
    if (major < 1 || major > 3 || buf[7] != 0)
        return red_error_set(err, RED_E_UNSUPPORTED,
                             "%s: byte offset 6: .npy version %d.%d; expected 1.0, 2.0 or 3.0", name,
                             buf[6], buf[7]);
    if (major == 1) {
        hstart = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else {
        if (len < 12)
            return red_error_set(err, RED_E_FORMAT, "%s: byte offset 8: truncated header length", name);
        hstart = 12;
        hlen = load_le32(buf + 8);
    }
    if (hlen > len - hstart)
        return red_error_set(err, RED_E_FORMAT,
                             "%s: byte offset %zu: header of %zu bytes runs past the end of the file (%zu bytes)",
                             name, hstart, hlen, len);
    data_off = hstart + hlen;

    c.s = (const char *)buf + hstart;
    c.pos = 0;
    c.len = hlen;
    c.base = hstart;
    c.name = name;
    c.err = err;
    if (!npy_eat(&c, '{')) return npy_fail(&c, "'{' starting the header dict");
    for (;;) {
        if (npy_eat(&c, '}')) break;
        if ((st = npy_string(&c, key, sizeof key)) != RED_OK) return st;
        if (!npy_eat(&c, ':')) return npy_fail(&c, "':' after a key");
        if (strcmp(key, "descr") == 0) {
            if (descr[0]) return npy_fail(&c, "each key once ('descr' repeated)");
            if ((st = npy_string(&c, descr, sizeof h->descr)) != RED_OK) return st;
            if (!descr[0]) return npy_fail(&c, "a non-empty dtype");
        } else if (strcmp(key, "fortran_order") == 0) {
            if (fortran >= 0) return npy_fail(&c, "each key once ('fortran_order' repeated)");
            npy_skip_ws(&c);
            if (c.len - c.pos >= 4 && memcmp(c.s + c.pos, "True", 4) == 0) {
                fortran = 1;
                c.pos += 4;
            } else if (c.len - c.pos >= 5 && memcmp(c.s + c.pos, "False", 5) == 0) {
                fortran = 0;
                c.pos += 5;
            } else
                return npy_fail(&c, "True or False");
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape) return npy_fail(&c, "each key once ('shape' repeated)");
            if ((st = npy_shape(&c, &ndim, shape)) != RED_OK) return st;
            have_shape = 1;
        } else {
            return red_error_set(err, RED_E_FORMAT,
                                 "%s: byte offset %zu: npy header: unexpected key '%s'; expected only "
                                 "'descr', 'fortran_order', 'shape'",
                                 name, hstart + c.pos, key);
        }
        if (npy_eat(&c, ',')) continue;
        if (npy_eat(&c, '}')) break;
        return npy_fail(&c, "',' or '}' after a value");
    }
    npy_skip_ws(&c);
    if (c.pos != c.len) return npy_fail(&c, "only padding after the header dict");
    if (!descr[0] || fortran < 0 || !have_shape)
        return red_error_set(err, RED_E_FORMAT,
                             "%s: byte offset %zu: npy header lacks %s", name, hstart,
                             !descr[0] ? "'descr'" : fortran < 0 ? "'fortran_order'" : "'shape'");

    if (fortran)
        return red_error_set(err, RED_E_UNSUPPORTED,
                             "%s: Fortran-order arrays are not supported; save with "
                             "np.ascontiguousarray(a)", name);
    h->numel = 1;
    for (i = 0; i < ndim; i++) {
        if (shape[i] != 0 && h->numel > (UINT64_MAX / 16) / (uint64_t)shape[i])
            return red_error_set(err, RED_E_FORMAT, "%s: shape too large", name);
        h->numel *= (uint64_t)shape[i];
    }
    h->ndim = ndim;
    h->data_off = data_off;
    return RED_OK;
}

red_status red_npy_parse(const unsigned char *buf, size_t len, const char *name, red_tensor *t,
                         red_error *err) {
    npy_header h;
    size_t data_off, itemsize = 0;
    uint64_t numel, need;
    const char *descr = h.descr;
    int i;
    red_status st;

    t->data = NULL;
    t->ndim = 0;
    for (i = 0; i < RED_MAX_DIMS; i++) t->shape[i] = 1;
    if ((st = npy_read_header(buf, len, name, &h, err)) != RED_OK) return st;
    data_off = h.data_off;
    numel = h.numel;
    if (strcmp(descr, "<f4") == 0) itemsize = 4;
    else if (strcmp(descr, "<f8") == 0) itemsize = 8;
    else if (strcmp(descr, ">f4") == 0 || strcmp(descr, ">f8") == 0)
        return red_error_set(err, RED_E_UNSUPPORTED,
                             "%s: dtype '%s' is big-endian; red reads '<f4' or '<f8' "
                             "(convert with a.astype('<f4'))", name, descr);
    else
        return red_error_set(err, RED_E_UNSUPPORTED,
                             "%s: dtype '%s' not supported; expected '<f4' (float32) or '<f8' (float64)",
                             name, descr);
    need = numel * itemsize;
    if ((uint64_t)(len - data_off) != need)
        return red_error_set(err, RED_E_FORMAT,
                             "%s: byte offset %zu: expected %llu bytes of data for the shape, found %zu",
                             name, data_off, (unsigned long long)need, len - data_off);
    if ((st = red_tensor_heap(t, h.ndim, h.shape)) != RED_OK)
        return red_error_set(err, st, "%s: cannot allocate %llu floats", name,
                             (unsigned long long)numel);
    {
        const unsigned char *p = buf + data_off;
        uint64_t j;
        if (itemsize == 4)
            for (j = 0; j < numel; j++) {
                uint32_t u = load_le32(p + 4 * j);
                memcpy(&t->data[j], &u, 4);
            }
        else
            for (j = 0; j < numel; j++) {
                uint64_t u = load_le64(p + 8 * j);
                double d;
                memcpy(&d, &u, 8);
                t->data[j] = (float)d;
            }
    }
    return RED_OK;
}

red_status red_npy_load(const char *path, red_tensor *t, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st = red_read_file(path, &buf, &len, err);
    t->data = NULL;
    if (st != RED_OK) return st;
    st = red_npy_parse(buf, len, path, t, err);
    free(buf);
    return st;
}

/* Integer labels (token ids) of any shape, flattened: signed/unsigned 1-8
 * byte integers, or floats holding whole numbers. */
red_status red_npy_parse_ids(const unsigned char *buf, size_t len, const char *name, int64_t **ids, int64_t *n,
                             red_error *err) {
    npy_header h;
    size_t itemsize;
    int is_float, is_signed;
    const unsigned char *p;
    uint64_t j;
    red_status st;
    *ids = NULL;
    *n = 0;
    if ((st = npy_read_header(buf, len, name, &h, err)) != RED_OK) return st;
    if (strlen(h.descr) != 3 || (h.descr[0] != '<' && h.descr[0] != '|') || !strchr("iuf", h.descr[1]) ||
        !strchr("1248", h.descr[2]) || (h.descr[1] == 'f' && h.descr[2] != '4' && h.descr[2] != '8') ||
        (h.descr[0] == '|' && h.descr[2] != '1'))
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: dtype '%s' not supported for ids; expected little-endian "
                             "integers ('<i4', '<i8', '|u1', ...) or floats ('<f4', '<f8') holding whole numbers",
                             name, h.descr);
    itemsize = (size_t)(h.descr[2] - '0');
    is_float = h.descr[1] == 'f';
    is_signed = h.descr[1] == 'i';
    if ((uint64_t)(len - h.data_off) != h.numel * itemsize)
        return red_error_set(err, RED_E_FORMAT, "%s: byte offset %zu: expected %llu bytes of data for the shape, found %zu",
                             name, h.data_off, (unsigned long long)(h.numel * itemsize), len - h.data_off);
    *ids = malloc((size_t)(h.numel ? h.numel : 1) * sizeof **ids);
    if (!*ids) return red_error_set(err, RED_E_NOMEM, "%s: cannot allocate %llu ids", name, (unsigned long long)h.numel);
    for (j = 0, p = buf + h.data_off; j < h.numel; j++, p += itemsize) {
        uint64_t u = 0;
        size_t b;
        int64_t v;
        for (b = 0; b < itemsize; b++) u |= (uint64_t)p[b] << (8 * b);
        if (is_float) {
            double d;
            if (itemsize == 4) {
                float f;
                uint32_t w = (uint32_t)u;
                memcpy(&f, &w, 4);
                d = f;
            } else memcpy(&d, &u, 8);
            if (!(d == floor(d)) || d < -9.2e18 || d > 9.2e18) {
                free(*ids);
                *ids = NULL;
                return red_error_set(err, RED_E_FORMAT, "%s: byte offset %llu: id %llu is %g, not a whole number", name,
                                     (unsigned long long)(h.data_off + j * itemsize), (unsigned long long)j, d);
            }
            v = (int64_t)d;
        } else if (is_signed) {  /* sign-extend from itemsize bytes */
            if (itemsize < 8 && (u >> (8 * itemsize - 1)) & 1) u |= ~(uint64_t)0 << (8 * itemsize);
            v = (int64_t)u;
        } else {
            if (u > (uint64_t)INT64_MAX) {
                free(*ids);
                *ids = NULL;
                return red_error_set(err, RED_E_FORMAT, "%s: byte offset %llu: id %llu exceeds 2^63 - 1", name,
                                     (unsigned long long)(h.data_off + j * itemsize), (unsigned long long)j);
            }
            v = (int64_t)u;
        }
        (*ids)[j] = v;
    }
    *n = (int64_t)h.numel;
    return RED_OK;
}

red_status red_npy_load_ids(const char *path, int64_t **ids, int64_t *n, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status st = red_read_file(path, &buf, &len, err);
    *ids = NULL;
    *n = 0;
    if (st != RED_OK) return st;
    st = red_npy_parse_ids(buf, len, path, ids, n, err);
    free(buf);
    return st;
}

red_status red_npy_save(const char *path, const red_tensor *t, red_error *err) {
    char dict[256];
    int n, i;
    size_t hlen, total, j;
    uint64_t numel;
    unsigned char *buf;
    red_status st;
    if (t->ndim < 0 || t->ndim > RED_MAX_DIMS)
        return red_error_set(err, RED_E_ARG, "%s: tensor has %d dims", path, t->ndim);
    n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (i = 0; i < t->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i + 1 < t->ndim ? "%lld, " : "%lld",
                      (long long)t->shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->ndim == 1 ? "," : "");
    /* pad with spaces so that 10 + header (ending in '\n') is a multiple of 64 */
    hlen = (size_t)n + 1;
    hlen += (64 - (10 + hlen) % 64) % 64;
    numel = (uint64_t)red_tensor_numel(t);
    total = 10 + hlen + (size_t)numel * 4;
    buf = malloc(total);
    if (!buf) return red_error_set(err, RED_E_NOMEM, "%s: cannot allocate %zu bytes", path, total);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[10 + hlen - 1] = '\n';
    for (j = 0; j < numel; j++) {
        uint32_t u;
        memcpy(&u, &t->data[j], 4);
        store_le32(buf + 10 + hlen + 4 * j, u);
    }
    st = red_write_file_atomic(path, buf, total, err);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ little-endian fields */

void red_put_u64le(unsigned char *p, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t red_get_u64le(const unsigned char *p) {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void red_put_f32le(unsigned char *p, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++, p += 4) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8); p[2] = (unsigned char)(u >> 16); p[3] = (unsigned char)(u >> 24);
    }
}

void red_get_f32le(float *x, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&x[i], &u, 4);
    }
}

/* ------------------------------------------------------------------ half floats */

float red_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even; NaN stays a (quiet) NaN, as ggml and PyTorch do. */
uint16_t red_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float red_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    float f;
    if (exp == 0x1F) u = sign | 0x7F800000u | (man << 13);           /* inf / nan */
    else if (exp) u = sign | ((exp + 112u) << 23) | (man << 13);       /* normal */
    else if (!man) u = sign;                                           /* zero */
    else {                                                             /* subnormal: m * 2^-24 */
        f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16, round to nearest even, overflow to inf, subnormals kept. */
uint16_t red_f32_to_f16(float f) {
    uint32_t u, sign, absu;
    memcpy(&u, &f, 4);
    sign = (u >> 16) & 0x8000u;
    absu = u & 0x7FFFFFFFu;
    if (absu > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((absu >> 13) & 0x3FFu));  /* NaN */
    if (absu >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  /* >= 65520 rounds to inf */
    if (absu < 0x38800000u) {  /* below 2^-14: subnormal half, value = m * 2^-24 */
        float a;
        double scaled;
        uint32_t m;
        memcpy(&a, &absu, 4);
        scaled = (double)a * 16777216.0;  /* exact */
        m = (uint32_t)scaled;
        if (scaled - m > 0.5 || (scaled - m == 0.5 && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    } else {
        uint32_t mant = absu & 0x7FFFFFu, exp = (absu >> 23) - 112u;
        uint32_t h = (exp << 10) | (mant >> 13), rest = mant & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;  /* carry may bump the exponent: fine */
        return (uint16_t)(sign | h);
    }
}
