/* json.c - a small strict JSON (RFC 8259) reader and writer.
 *
 * Reader: a tree of nodes; objects keep member order and reject duplicate
 * keys (safetensors forbids them and a config with two "hidden_size" keys is
 * a bug to report, not to guess at). Strings are validated UTF-8 (no overlong
 * forms, no surrogates, <= U+10FFFF); \uXXXX escapes combine surrogate pairs
 * and reject lone halves. Numbers follow the RFC grammar exactly (no leading
 * zeros, no '+', no NaN/Infinity); integer literals that fit are kept exact
 * as int64. Every error names the input and the byte offset.
 * Writer: a growable string buffer with escaping and shortest round-trip
 * number formatting, shared by checkpoints, harness summaries and reports.
 */
#include "red.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 512

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    const char *name;
    red_error *err;
    int depth;
} json_parser;

static red_status json_fail(json_parser *p, const char *what) {
    return red_error_set(p->err, RED_E_FORMAT, "%s: JSON byte %zu: %s", p->name, p->pos, what);
}

static void json_skip_ws(json_parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static red_json *json_node(red_json_type t, size_t off) {
    red_json *n = calloc(1, sizeof *n);
    if (n) {
        n->type = t;
        n->offset = off;
    }
    return n;
}

void red_json_free(red_json *n) {
    while (n) {
        red_json *next = n->next;
        red_json_free(n->child);
        free(n->str);
        free(n->key);
        free(n);
        n = next;
    }
}

/* Decodes one UTF-8 sequence at s[0..avail); returns its length, 0 if invalid. */
static int utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp) {
    uint32_t c = s[0], min;
    int n, i;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { n = 2; c &= 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; c &= 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; c &= 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > avail) return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int json_hex4(json_parser *p, uint32_t *v) {
    int i;
    *v = 0;
    if (p->pos + 4 > p->len) return 0;
    for (i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = (*v << 4) | (uint32_t)d;
    }
    p->pos += 4;
    return 1;
}

/* Parses a string starting at the opening quote into a fresh NUL-terminated buffer. */
static red_status json_string(json_parser *p, char **out, size_t *outlen) {
    size_t start = ++p->pos, cap, n = 0;
    char *buf;
    /* decoded length <= raw length, so the raw span bounds the buffer */
    size_t end = start;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    cap = (end > p->len ? p->len : end) - start + 1;
    buf = malloc(cap);
    if (!buf) return red_error_set(p->err, RED_E_NOMEM, "%s: out of memory in JSON string", p->name);
    for (;;) {
        unsigned char c;
        if (p->pos >= p->len) { free(buf); return json_fail(p, "unterminated string"); }
        c = p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c < 0x20) { free(buf); return json_fail(p, "control character in string (must be escaped)"); }
        if (c == '\\') {
            uint32_t cp;
            if (p->pos + 1 >= p->len) { free(buf); return json_fail(p, "unterminated escape"); }
            c = p->s[++p->pos];
            p->pos++;
            switch (c) {
            case '"': buf[n++] = '"'; break;
            case '\\': buf[n++] = '\\'; break;
            case '/': buf[n++] = '/'; break;
            case 'b': buf[n++] = '\b'; break;
            case 'f': buf[n++] = '\f'; break;
            case 'n': buf[n++] = '\n'; break;
            case 'r': buf[n++] = '\r'; break;
            case 't': buf[n++] = '\t'; break;
            case 'u':
                if (!json_hex4(p, &cp)) { free(buf); return json_fail(p, "expected 4 hex digits after \\u"); }
                if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return json_fail(p, "lone low surrogate in \\u escape"); }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                        free(buf);
                        return json_fail(p, "high surrogate not followed by \\u low surrogate");
                    }
                    p->pos += 2;
                    if (!json_hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        free(buf);
                        return json_fail(p, "expected a low surrogate \\uDC00-\\uDFFF");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += utf8_encode(cp, buf + n);  /* 6 or 12 raw bytes give <= 4 */
                break;
            default:
                p->pos--;
                free(buf);
                return json_fail(p, "invalid escape character");
            }
        } else {
            uint32_t cp;
            int k = utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
            if (!k) { free(buf); return json_fail(p, "invalid UTF-8 in string"); }
            memcpy(buf + n, p->s + p->pos, (size_t)k);
            n += (size_t)k;
            p->pos += (size_t)k;
        }
    }
    buf[n] = 0;
    *out = buf;
    *outlen = n;
    return RED_OK;
}

static red_status json_number(json_parser *p, red_json *node) {
    size_t s = p->pos;
    const unsigned char *c = p->s;
    int integral = 1;
    char tmp[64];
    if (p->pos < p->len && c[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return json_fail(p, "expected a digit");
    if (c[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && c[p->pos] >= '0' && c[p->pos] <= '9')
            return json_fail(p, "leading zero in number");
    } else if (c[p->pos] >= '1' && c[p->pos] <= '9') {
        while (p->pos < p->len && c[p->pos] >= '0' && c[p->pos] <= '9') p->pos++;
    } else return json_fail(p, "expected a digit");
    if (p->pos < p->len && c[p->pos] == '.') {
        integral = 0;
        p->pos++;
        if (p->pos >= p->len || c[p->pos] < '0' || c[p->pos] > '9') return json_fail(p, "expected a digit after '.'");
        while (p->pos < p->len && c[p->pos] >= '0' && c[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (c[p->pos] == 'e' || c[p->pos] == 'E')) {
        integral = 0;
        p->pos++;
        if (p->pos < p->len && (c[p->pos] == '+' || c[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || c[p->pos] < '0' || c[p->pos] > '9') return json_fail(p, "expected exponent digits");
        while (p->pos < p->len && c[p->pos] >= '0' && c[p->pos] <= '9') p->pos++;
    }
    if (p->pos - s >= sizeof tmp) {
        /* very long literal: strtod needs a NUL-terminated copy */
        char *big = malloc(p->pos - s + 1);
        if (!big) return red_error_set(p->err, RED_E_NOMEM, "%s: out of memory", p->name);
        memcpy(big, c + s, p->pos - s);
        big[p->pos - s] = 0;
        node->number = strtod(big, NULL);
        free(big);
        integral = 0;
    } else {
        memcpy(tmp, c + s, p->pos - s);
        tmp[p->pos - s] = 0;
        node->number = strtod(tmp, NULL);
    }
    if (integral) {  /* exact int64 when it fits (up to 19 digits) */
        const unsigned char *d = c + s;
        int neg = *d == '-';
        uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        int fits = 1;
        for (d += neg; d < c + p->pos; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (v > (lim - dig) / 10) { fits = 0; break; }
            v = v * 10 + dig;
        }
        if (fits) {
            node->is_int = 1;
            node->ival = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
        }
    }
    if (!isfinite(node->number)) return json_fail(p, "number out of double range");
    return RED_OK;
}

static red_status json_value(json_parser *p, red_json **out);

static int json_lit(json_parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->pos + n <= p->len && memcmp(p->s + p->pos, w, n) == 0) {
        p->pos += n;
        return 1;
    }
    return 0;
}

/* Member keys of a large object (a 150k-entry vocabulary), hashed so the
 * duplicate check stays linear; small objects scan their members. */
typedef struct {
    const red_json **slot;
    size_t mask, n;
} key_set;

static size_t key_hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a, 64-bit on every host */
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return (size_t)h;
}

static int key_set_has(const key_set *ks, const char *key, size_t n) {
    size_t h;
    for (h = key_hash(key, n) & ks->mask; ks->slot[h]; h = (h + 1) & ks->mask)
        if (ks->slot[h]->key_len == n && !memcmp(ks->slot[h]->key, key, n)) return 1;
    return 0;
}

/* Adds a member (its key is known to be new); -1 out of memory. */
static int key_set_add(key_set *ks, const red_json *item) {
    size_t h;
    if ((ks->n + 1) * 2 > ks->mask + 1 || !ks->slot) {  /* grow and rehash */
        size_t cap = ks->slot ? 2 * (ks->mask + 1) : 64, i, old_cap = ks->slot ? ks->mask + 1 : 0;
        const red_json **old = ks->slot, **g = calloc(cap, sizeof *g);
        if (!g) return -1;
        ks->slot = g;
        ks->mask = cap - 1;
        for (i = 0; i < old_cap; i++)
            if (old[i]) {
                for (h = key_hash(old[i]->key, old[i]->key_len) & ks->mask; ks->slot[h]; h = (h + 1) & ks->mask) {}
                ks->slot[h] = old[i];
            }
        free(old);
    }
    for (h = key_hash(item->key, item->key_len) & ks->mask; ks->slot[h]; h = (h + 1) & ks->mask) {}
    ks->slot[h] = item;
    ks->n++;
    return 0;
}

static red_status json_members(json_parser *p, red_json *node, int is_obj, key_set *ks);

static red_status json_container(json_parser *p, red_json *node, int is_obj) {
    key_set ks;
    red_status st;
    memset(&ks, 0, sizeof ks);
    st = json_members(p, node, is_obj, &ks);
    free(ks.slot);
    return st;
}

static red_status json_members(json_parser *p, red_json *node, int is_obj, key_set *ks) {
    red_json **tail = &node->child;
    char close = is_obj ? '}' : ']';
    red_status st;
    if (++p->depth > JSON_MAX_DEPTH) return json_fail(p, "nesting deeper than 512");
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return RED_OK;
    }
    for (;;) {
        red_json *item = NULL;
        char *key = NULL;
        size_t klen = 0, koff = 0;
        json_skip_ws(p);
        if (is_obj) {
            red_json *q;
            koff = p->pos;
            if (p->pos >= p->len || p->s[p->pos] != '"') return json_fail(p, "expected a string key");
            if ((st = json_string(p, &key, &klen))) return st;
            if (node->count < 16) {
                for (q = node->child; q; q = q->next)
                    if (q->key_len == klen && memcmp(q->key, key, klen) == 0) break;
            } else {
                if (!ks->slot)  /* from now on the keys are hashed */
                    for (q = node->child; q; q = q->next)
                        if (key_set_add(ks, q)) { free(key); return red_error_set(p->err, RED_E_NOMEM, "%s: out of memory", p->name); }
                q = key_set_has(ks, key, klen) ? node->child : NULL;
            }
            if (q) {
                free(key);
                p->pos = koff;
                return json_fail(p, "duplicate key in object");
            }
            json_skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { free(key); return json_fail(p, "expected ':'"); }
            p->pos++;
        }
        if ((st = json_value(p, &item))) { free(key); return st; }
        item->key = key;
        item->key_len = klen;
        if (ks->slot && key_set_add(ks, item)) {
            red_json_free(item);
            return red_error_set(p->err, RED_E_NOMEM, "%s: out of memory", p->name);
        }
        *tail = item;
        tail = &item->next;
        node->count++;
        json_skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; break; }
        return json_fail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p->depth--;
    return RED_OK;
}

static red_status json_value(json_parser *p, red_json **out) {
    red_json *node;
    red_status st = RED_OK;
    unsigned char c;
    json_skip_ws(p);
    if (p->pos >= p->len) return json_fail(p, "unexpected end of input, expected a value");
    c = p->s[p->pos];
    node = json_node(RED_JSON_NULL, p->pos);
    if (!node) return red_error_set(p->err, RED_E_NOMEM, "%s: out of memory", p->name);
    if (c == '{') { node->type = RED_JSON_OBJECT; st = json_container(p, node, 1); }
    else if (c == '[') { node->type = RED_JSON_ARRAY; st = json_container(p, node, 0); }
    else if (c == '"') { node->type = RED_JSON_STRING; st = json_string(p, &node->str, &node->len); }
    else if (c == '-' || (c >= '0' && c <= '9')) { node->type = RED_JSON_NUMBER; st = json_number(p, node); }
    else if (json_lit(p, "true")) node->type = RED_JSON_TRUE;
    else if (json_lit(p, "false")) node->type = RED_JSON_FALSE;
    else if (json_lit(p, "null")) node->type = RED_JSON_NULL;
    else st = json_fail(p, "expected a value (object, array, string, number, true, false, null)");
    if (st) {
        red_json_free(node);
        return st;
    }
    *out = node;
    return RED_OK;
}

red_status red_json_parse(const char *text, size_t len, const char *name, red_json **root, red_error *err) {
    json_parser p;
    red_status st;
    *root = NULL;
    p.s = (const unsigned char *)text;
    p.len = len;
    p.pos = 0;
    p.name = name ? name : "<json>";
    p.err = err;
    p.depth = 0;
    if (len >= 3 && p.s[0] == 0xEF && p.s[1] == 0xBB && p.s[2] == 0xBF)
        return json_fail(&p, "byte order mark is not allowed (RFC 8259 section 8.1)");
    if ((st = json_value(&p, root))) return st;
    json_skip_ws(&p);
    if (p.pos != len) {
        red_json_free(*root);
        *root = NULL;
        return json_fail(&p, "trailing characters after the JSON value");
    }
    return RED_OK;
}

const red_json *red_json_get(const red_json *obj, const char *key) {
    const red_json *c;
    size_t n = strlen(key);
    if (!obj || obj->type != RED_JSON_OBJECT) return NULL;
    for (c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0) return c;
    return NULL;
}

const red_json *red_json_at(const red_json *arr, size_t i) {
    const red_json *c;
    if (!arr || (arr->type != RED_JSON_ARRAY && arr->type != RED_JSON_OBJECT)) return NULL;
    for (c = arr->child; c && i; c = c->next) i--;
    return c;
}

const char *red_json_type_name(red_json_type t) {
    static const char *names[] = {"null", "false", "true", "number", "string", "array", "object"};
    return (unsigned)t < 7 ? names[t] : "?";
}

/* ------------------------------------------------------------------ writer */

void red_sbuf_init(red_sbuf *b) {
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void red_sbuf_free(red_sbuf *b) {
    free(b->p);
    red_sbuf_init(b);
}

static int sbuf_reserve(red_sbuf *b, size_t extra) {
    size_t need = b->len + extra + 1, ncap;
    char *np;
    if (b->failed) return 0;
    if (need <= b->cap) return 1;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need) ncap *= 2;
    np = realloc(b->p, ncap);
    if (!np) {
        b->failed = 1;
        return 0;
    }
    b->p = np;
    b->cap = ncap;
    return 1;
}

void red_sbuf_put(red_sbuf *b, const char *s, size_t n) {
    if (!sbuf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void red_sbuf_puts(red_sbuf *b, const char *s) { red_sbuf_put(b, s, strlen(s)); }

void red_sbuf_printf(red_sbuf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        red_sbuf_put(b, small, (size_t)n);
        return;
    }
    if (!sbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Escapes as JSON requires (quote, backslash, control characters); valid
 * UTF-8 passes through; an invalid byte becomes U+FFFD so the output is
 * always valid JSON. */
void red_json_put_string(red_sbuf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    red_sbuf_put(b, "\"", 1);
    while (i < n) {
        unsigned char c = u[i];
        uint32_t cp;
        int k;
        if (c == '"') { red_sbuf_put(b, "\\\"", 2); i++; continue; }
        if (c == '\\') { red_sbuf_put(b, "\\\\", 2); i++; continue; }
        if (c < 0x20) {
            switch (c) {
            case '\n': red_sbuf_put(b, "\\n", 2); break;
            case '\t': red_sbuf_put(b, "\\t", 2); break;
            case '\r': red_sbuf_put(b, "\\r", 2); break;
            case '\b': red_sbuf_put(b, "\\b", 2); break;
            case '\f': red_sbuf_put(b, "\\f", 2); break;
            default: red_sbuf_printf(b, "\\u%04x", c);
            }
            i++;
            continue;
        }
        k = utf8_decode(u + i, n - i, &cp);
        if (!k) {
            red_sbuf_put(b, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        red_sbuf_put(b, s + i, (size_t)k);
        i += (size_t)k;
    }
    red_sbuf_put(b, "\"", 1);
}

/* Shortest "%.Ng" that reads back as the same double; non-finite -> null. */
void red_json_put_number(red_sbuf *b, double v) {
    char tmp[40];
    int prec;
    if (!isfinite(v)) {
        red_sbuf_puts(b, "null");
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    red_sbuf_puts(b, tmp);
}

void red_json_put_numbers(red_sbuf *b, const double *x, int n) {
    int i;
    red_sbuf_puts(b, "[");
    for (i = 0; i < n; i++) {
        if (i) red_sbuf_puts(b, ", ");
        red_json_put_number(b, x[i]);
    }
    red_sbuf_puts(b, "]");
}

/* Same for a float: the shortest text that reads back as the same float. */
void red_json_put_float(red_sbuf *b, float v) {
    char tmp[40];
    int prec;
    if (!isfinite(v)) {
        red_sbuf_puts(b, "null");
        return;
    }
    for (prec = 1; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if ((float)strtod(tmp, NULL) == v) break;
    }
    red_sbuf_puts(b, tmp);
}

/* ------------------------------------------------------------------ JSONL */

void red_jsonl_free(red_json **items, size_t n) {
    size_t i;
    if (!items) return;
    for (i = 0; i < n; i++) red_json_free(items[i]);
    free(items);
}

/* One JSON value per line; blank lines (only whitespace) are skipped;
 * errors name the file and line as FILE:LINE. A final line without '\n' is
 * accepted. lines (may be NULL) gets each item's line number, for the
 * messages of readers that check the items' fields. */
red_status red_jsonl_read_lines(const char *path, red_json ***items, size_t *n, size_t **lines, red_error *err) {
    unsigned char *buf;
    size_t len, pos = 0, cap = 0, line = 0, *at = NULL;
    red_status st = RED_OK;
    *items = NULL;
    *n = 0;
    if (lines) *lines = NULL;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    while (pos < len) {
        size_t end = pos, k;
        int blank = 1;
        red_json *j;
        char name[1100];
        while (end < len && buf[end] != '\n') end++;
        line++;
        for (k = pos; k < end; k++)
            if (buf[k] != ' ' && buf[k] != '\t' && buf[k] != '\r') blank = 0;
        if (!blank) {
            snprintf(name, sizeof name, "%s:%zu", path, line);
            if ((st = red_json_parse((const char *)buf + pos, end - pos, name, &j, err))) break;
            if (*n == cap) {
                size_t ncap = cap ? 2 * cap : 256;
                red_json **g = realloc(*items, ncap * sizeof *g);
                size_t *ga = g ? realloc(at, ncap * sizeof *ga) : NULL;
                if (g) *items = g;
                if (!ga) {
                    red_json_free(j);
                    st = red_error_set(err, RED_E_NOMEM, "%s:%zu: out of memory", path, line);
                    break;
                }
                at = ga;
                cap = ncap;
            }
            at[*n] = line;
            (*items)[(*n)++] = j;
        }
        pos = end + 1;
    }
    free(buf);
    if (st) {
        red_jsonl_free(*items, *n);
        *items = NULL;
        *n = 0;
        free(at);
    } else if (lines) *lines = at;
    else free(at);
    return st;
}

red_status red_jsonl_read(const char *path, red_json ***items, size_t *n, red_error *err) {
    return red_jsonl_read_lines(path, items, n, NULL, err);
}

/* ------------------------------------------------------------------ name tables (lookups: red.c) */

void red_name_list(const red_name *t, red_sbuf *out) {
    const red_name *first = t;
    for (; t->name; t++) {
        if (t != first) red_sbuf_puts(out, ", ");
        red_sbuf_puts(out, t->name);
    }
}

