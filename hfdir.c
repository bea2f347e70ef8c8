/* hfdir.c - Hugging Face model directories: config.json and
 * model.safetensors (facts: ../shared/docs/formats.md sections 1 and 3).
 *
 * safetensors = u64 LE header length N, N bytes of JSON, then the tensor
 * bytes. The reader validates like the reference Rust reader: N bounded, the
 * header is an object of {"dtype","shape","data_offsets"} entries (plus an
 * optional string->string "__metadata__"), sizes agree with shape x dtype, and
 * the entries sorted by offset tile the buffer exactly with no hole and
 * nothing after the last tensor. Every field is decoded byte by byte, so the
 * code is the same on big-endian hosts. Writes are atomic.
 */
#define _POSIX_C_SOURCE 200809L
#include "red_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ull  /* the reference reader's limit */

/* ------------------------------------------------------------------ safetensors read */

static const struct { const char *name; red_dtype dt; int bits; } st_dtypes[] = {
    {"F32", RED_DT_F32, 32}, {"F16", RED_DT_F16, 16}, {"BF16", RED_DT_BF16, 16},
    {"BOOL", RED_DT_OTHER, 8}, {"U8", RED_DT_OTHER, 8}, {"I8", RED_DT_OTHER, 8},
    {"F8_E5M2", RED_DT_OTHER, 8}, {"F8_E4M3", RED_DT_OTHER, 8}, {"F8_E8M0", RED_DT_OTHER, 8},
    {"F8_E4M3FNUZ", RED_DT_OTHER, 8}, {"F8_E5M2FNUZ", RED_DT_OTHER, 8},
    {"I16", RED_DT_OTHER, 16}, {"U16", RED_DT_OTHER, 16}, {"I32", RED_DT_OTHER, 32},
    {"U32", RED_DT_OTHER, 32}, {"C64", RED_DT_OTHER, 64}, {"F64", RED_DT_OTHER, 64},
    {"I64", RED_DT_OTHER, 64}, {"U64", RED_DT_OTHER, 64}, {"F4", RED_DT_OTHER, 4},
    {"F6_E2M3", RED_DT_OTHER, 6}, {"F6_E3M2", RED_DT_OTHER, 6},
};

void red_st_close(red_safetensors *st) {
    int i;
    if (st->e)
        for (i = 0; i < st->n; i++) free(st->e[i].name);
    free(st->e);
    free(st->file);
    memset(st, 0, sizeof *st);
}

static int st_cmp_begin(const void *a, const void *b) {
    const red_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;  /* empty tensors first at a shared offset */
}

static red_status st_fail(const char *name, red_error *err, const red_json *at, uint64_t hdr_base,
                          const char *fmt, const char *what) {
    char msg[400];
    snprintf(msg, sizeof msg, fmt, what);
    return red_error_set(err, RED_E_FORMAT, "%s: header byte %llu: %s", name,
                         (unsigned long long)(hdr_base + (at ? at->offset : 0)), msg);
}

red_status red_st_parse(red_safetensors *st, unsigned char *file, size_t len, const char *name,
                        red_error *err) {
    red_json *root = NULL;
    const red_json *it;
    uint64_t N = 0, pos;
    red_status rc;
    size_t i;
    int k;
    memset(st, 0, sizeof *st);
    st->file = file;
    st->file_len = len;
    snprintf(st->path, sizeof st->path, "%s", name);
    if (len < 8) {
        rc = red_error_set(err, RED_E_FORMAT, "%s: %zu bytes, too short for the 8-byte header length", name, len);
        goto fail;
    }
    for (i = 0; i < 8; i++) N |= (uint64_t)file[i] << (8 * i);
    if (N > ST_MAX_HEADER || N > len - 8) {
        rc = red_error_set(err, RED_E_FORMAT, "%s: byte 0: header length %llu exceeds %s (file is %zu bytes)",
                           name, (unsigned long long)N, N > ST_MAX_HEADER ? "the 100000000 limit" : "the file",
                           len);
        goto fail;
    }
    if (N < 2 || file[8] != '{') {
        rc = red_error_set(err, RED_E_FORMAT, "%s: byte 8: header must be a JSON object starting with '{'", name);
        goto fail;
    }
    st->header_len = N;
    st->data = file + 8 + N;
    {
        /* trailing spaces are padding (the reference writer pads to 8) */
        size_t hl = (size_t)N;
        while (hl > 0 && file[8 + hl - 1] == ' ') hl--;
        char jname[1100];
        snprintf(jname, sizeof jname, "%s header (file byte = JSON byte + 8)", name);
        if ((rc = red_json_parse((const char *)file + 8, hl, jname, &root, err))) goto fail;
    }
    if (root->type != RED_JSON_OBJECT) {
        rc = st_fail(name, err, root, 8, "%s", "header is not a JSON object");
        goto fail;
    }
    st->e = calloc(root->count ? root->count : 1, sizeof *st->e);
    if (!st->e) {
        rc = red_error_set(err, RED_E_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    for (it = root->child; it; it = it->next) {
        const red_json *dt, *shape, *offs, *d;
        red_st_entry *e;
        uint64_t numel = 1, bits = 0, nbytes;
        size_t t;
        if (strcmp(it->key, "__metadata__") == 0) {
            if (it->type != RED_JSON_OBJECT) {
                rc = st_fail(name, err, it, 8, "%s", "__metadata__ must be an object");
                goto fail;
            }
            for (d = it->child; d; d = d->next)
                if (d->type != RED_JSON_STRING) {
                    rc = st_fail(name, err, d, 8, "__metadata__ value of \"%s\" must be a string", d->key);
                    goto fail;
                }
            continue;
        }
        if (it->type != RED_JSON_OBJECT) {
            rc = st_fail(name, err, it, 8, "tensor \"%s\" must be an object", it->key);
            goto fail;
        }
        for (d = it->child; d; d = d->next)
            if (strcmp(d->key, "dtype") && strcmp(d->key, "shape") && strcmp(d->key, "data_offsets")) {
                rc = st_fail(name, err, d, 8, "unknown field \"%s\" in a tensor entry", d->key);
                goto fail;
            }
        dt = red_json_get(it, "dtype");
        shape = red_json_get(it, "shape");
        offs = red_json_get(it, "data_offsets");
        if (!dt || dt->type != RED_JSON_STRING || !shape || shape->type != RED_JSON_ARRAY || !offs ||
            offs->type != RED_JSON_ARRAY) {
            rc = st_fail(name, err, it, 8,
                         "tensor \"%s\" needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)", it->key);
            goto fail;
        }
        e = &st->e[st->n];
        e->name = malloc(it->key_len + 1);
        if (!e->name) {
            rc = red_error_set(err, RED_E_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        memcpy(e->name, it->key, it->key_len + 1);
        st->n++;
        for (t = 0; t < sizeof st_dtypes / sizeof st_dtypes[0]; t++)
            if (strcmp(dt->str, st_dtypes[t].name) == 0) {
                e->dtype = st_dtypes[t].dt;
                bits = (uint64_t)st_dtypes[t].bits;
                snprintf(e->dtype_name, sizeof e->dtype_name, "%s", st_dtypes[t].name);
            }
        if (!bits) {
            rc = st_fail(name, err, dt, 8, "unknown dtype \"%s\"", dt->str);
            goto fail;
        }
        if (shape->count > 8) {
            rc = st_fail(name, err, shape, 8, "tensor \"%s\" has more than 8 dimensions", it->key);
            goto fail;
        }
        for (d = shape->child; d; d = d->next) {
            if (d->type != RED_JSON_NUMBER || !d->is_int || d->ival < 0) {
                rc = st_fail(name, err, d, 8, "shape of \"%s\" must hold non-negative integers", it->key);
                goto fail;
            }
            if (d->ival && numel > UINT64_MAX / 64 / (uint64_t)d->ival) {
                rc = st_fail(name, err, d, 8, "shape of \"%s\" overflows", it->key);
                goto fail;
            }
            e->shape[e->ndim++] = d->ival;
            numel *= (uint64_t)d->ival;
        }
        if (offs->count != 2 || offs->child->type != RED_JSON_NUMBER || !offs->child->is_int ||
            offs->child->ival < 0 || offs->child->next->type != RED_JSON_NUMBER || !offs->child->next->is_int ||
            offs->child->next->ival < offs->child->ival) {
            rc = st_fail(name, err, offs, 8, "data_offsets of \"%s\" must be [begin, end] with 0 <= begin <= end",
                         it->key);
            goto fail;
        }
        e->begin = (uint64_t)offs->child->ival;
        e->end = (uint64_t)offs->child->next->ival;
        if ((numel * bits) % 8) {
            rc = st_fail(name, err, shape, 8, "tensor \"%s\" does not fill whole bytes", it->key);
            goto fail;
        }
        nbytes = numel * bits / 8;
        if (e->end - e->begin != nbytes) {
            char what[300];
            snprintf(what, sizeof what, "tensor \"%s\": data_offsets span %llu bytes but shape x %s needs %llu",
                     it->key, (unsigned long long)(e->end - e->begin), e->dtype_name, (unsigned long long)nbytes);
            rc = st_fail(name, err, offs, 8, "%s", what);
            goto fail;
        }
    }
    /* sorted by offset the tensors must tile the buffer exactly */
    qsort(st->e, (size_t)st->n, sizeof *st->e, st_cmp_begin);
    pos = 0;
    for (k = 0; k < st->n; k++) {
        if (st->e[k].begin != pos) {
            rc = red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" starts at data byte %llu, expected %llu "
                               "(tensors must be contiguous without holes or overlap)",
                               name, st->e[k].name, (unsigned long long)st->e[k].begin, (unsigned long long)pos);
            goto fail;
        }
        pos = st->e[k].end;
    }
    if (8 + N + pos != len) {
        rc = red_error_set(err, RED_E_FORMAT, "%s: the header describes %llu data bytes ending at file byte %llu, "
                           "but the file has %zu bytes (%s)", name, (unsigned long long)pos,
                           (unsigned long long)(8 + N + pos), len, 8 + N + pos > len ? "truncated" : "trailing bytes");
        goto fail;
    }
    red_json_free(root);
    return RED_OK;
fail:
    red_json_free(root);
    st->file = NULL;  /* caller still owns nothing: free here */
    red_st_close(st);
    free(file);
    return rc;
}

red_status red_st_open(red_safetensors *st, const char *path, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_status rc;
    memset(st, 0, sizeof *st);
    if ((rc = red_read_file(path, &buf, &len, err))) return rc;
    return red_st_parse(st, buf, len, path, err);
}

const red_st_entry *red_st_find(const red_safetensors *st, const char *name) {
    int i;
    for (i = 0; i < st->n; i++)
        if (strcmp(st->e[i].name, name) == 0) return &st->e[i];
    return NULL;
}

red_status red_st_read_f32(const red_safetensors *st, const red_st_entry *e, float *out, red_error *err) {
    const unsigned char *p = st->data + e->begin;
    uint64_t i, n;
    if (e->dtype == RED_DT_OTHER)
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s; red reads F32, F16 and BF16",
                             st->path, e->name, e->dtype_name);
    n = (e->end - e->begin) / (e->dtype == RED_DT_F32 ? 4 : 2);
    for (i = 0; i < n; i++) {
        if (e->dtype == RED_DT_F32) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &u, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = e->dtype == RED_DT_F16 ? red_f16_to_f32(h) : red_bf16_to_f32(h);
        }
    }
    return RED_OK;
}

/* ------------------------------------------------------------------ safetensors write */

red_status red_st_save(const char *path, const red_st_tensor *t, int n, red_dtype dtype, red_error *err) {
    red_sbuf h;
    unsigned char *buf;
    uint64_t off = 0, N, total;
    size_t esize = dtype == RED_DT_F32 ? 4 : 2, i;
    int k, d;
    red_status rc;
    if (dtype != RED_DT_F32 && dtype != RED_DT_F16 && dtype != RED_DT_BF16)
        return red_error_set(err, RED_E_ARG, "%s: can only write F32, F16 or BF16", path);
    red_sbuf_init(&h);
    red_sbuf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (k = 0; k < n; k++) {
        uint64_t numel = 1;
        for (d = 0; d < t[k].ndim; d++) numel *= (uint64_t)t[k].shape[d];
        red_sbuf_puts(&h, ",");
        red_json_put_string(&h, t[k].name, strlen(t[k].name));
        red_sbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype == RED_DT_F32 ? "F32" : dtype == RED_DT_F16 ? "F16" : "BF16");
        for (d = 0; d < t[k].ndim; d++) red_sbuf_printf(&h, "%s%lld", d ? "," : "", (long long)t[k].shape[d]);
        red_sbuf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                        (unsigned long long)(off + numel * esize));
        off += numel * esize;
    }
    red_sbuf_puts(&h, "}");
    while (h.len % 8) red_sbuf_put(&h, " ", 1);  /* data starts 8-aligned */
    if (h.failed) {
        red_sbuf_free(&h);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory for the header", path);
    }
    N = h.len;
    total = 8 + N + off;
    buf = malloc((size_t)total);
    if (!buf) {
        red_sbuf_free(&h);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory (%llu bytes)", path, (unsigned long long)total);
    }
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)(N >> (8 * i));
    memcpy(buf + 8, h.p, (size_t)N);
    red_sbuf_free(&h);
    {
        unsigned char *p = buf + 8 + N;
        for (k = 0; k < n; k++) {
            size_t numel = 1, j;
            for (d = 0; d < t[k].ndim; d++) numel *= (size_t)t[k].shape[d];
            for (j = 0; j < numel; j++) {
                float f = t[k].data[j];
                if (dtype == RED_DT_F32) {
                    uint32_t u;
                    memcpy(&u, &f, 4);
                    p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8);
                    p[2] = (unsigned char)(u >> 16); p[3] = (unsigned char)(u >> 24);
                    p += 4;
                } else {
                    uint16_t u = dtype == RED_DT_F16 ? red_f32_to_f16(f) : red_f32_to_bf16(f);
                    p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8);
                    p += 2;
                }
            }
        }
    }
    rc = red_write_file_atomic(path, buf, (size_t)total, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ config.json */

static red_status cfg_int(const red_json *j, const char *key, int required, int *out, const char *name,
                          red_error *err) {
    const red_json *v = red_json_get(j, key);
    if (!v || v->type == RED_JSON_NULL) {
        if (required) return red_error_set(err, RED_E_FORMAT, "%s: missing required key \"%s\"", name, key);
        return RED_OK;
    }
    if (v->type == RED_JSON_ARRAY && v->count > 0) v = v->child;  /* eos_token_id may be a list: take the first */
    if (v->type != RED_JSON_NUMBER || !v->is_int || v->ival < INT32_MIN || v->ival > INT32_MAX)
        return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be an integer", name, v->offset, key);
    *out = (int)v->ival;
    return RED_OK;
}

static red_status cfg_float(const red_json *j, const char *key, float *out, const char *name, red_error *err) {
    const red_json *v = red_json_get(j, key);
    if (!v || v->type == RED_JSON_NULL) return RED_OK;
    if (v->type != RED_JSON_NUMBER)
        return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be a number", name, v->offset, key);
    *out = (float)v->number;
    return RED_OK;
}

static red_status cfg_bool(const red_json *j, const char *key, int *out, const char *name, red_error *err) {
    const red_json *v = red_json_get(j, key);
    if (!v || v->type == RED_JSON_NULL) return RED_OK;
    if (v->type != RED_JSON_TRUE && v->type != RED_JSON_FALSE)
        return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: \"%s\" must be true or false", name, v->offset, key);
    *out = v->type == RED_JSON_TRUE;
    return RED_OK;
}

red_status red_config_from_json(red_config *c, const red_json *j, const char *name, red_error *err) {
    const red_json *mt, *rs;
    red_status st;
    int head_dim = 0, bias = -1;
    red_config_default(c);
    if (j->type != RED_JSON_OBJECT) return red_error_set(err, RED_E_FORMAT, "%s: config must be a JSON object", name);
    mt = red_json_get(j, "model_type");
    if (!mt || mt->type != RED_JSON_STRING)
        return red_error_set(err, RED_E_FORMAT, "%s: missing \"model_type\" (llama or qwen2)", name);
    if (strcmp(mt->str, "llama") == 0) c->arch = RED_ARCH_LLAMA;
    else if (strcmp(mt->str, "qwen2") == 0) c->arch = RED_ARCH_QWEN2;
    else
        return red_error_set(err, RED_E_UNSUPPORTED, "%s: byte %zu: model_type \"%s\" is not supported (llama, qwen2)",
                             name, mt->offset, mt->str);
    if ((st = cfg_int(j, "hidden_size", 1, &c->dim, name, err)) ||
        (st = cfg_int(j, "intermediate_size", 1, &c->ffn, name, err)) ||
        (st = cfg_int(j, "num_hidden_layers", 1, &c->n_layers, name, err)) ||
        (st = cfg_int(j, "num_attention_heads", 1, &c->n_heads, name, err)) ||
        (st = cfg_int(j, "vocab_size", 1, &c->vocab, name, err)))
        return st;
    c->n_kv_heads = c->n_heads;
    c->max_pos = 2048;
    if ((st = cfg_int(j, "num_key_value_heads", 0, &c->n_kv_heads, name, err)) ||
        (st = cfg_int(j, "head_dim", 0, &head_dim, name, err)) ||
        (st = cfg_int(j, "max_position_embeddings", 0, &c->max_pos, name, err)) ||
        (st = cfg_int(j, "bos_token_id", 0, &c->bos_id, name, err)) ||
        (st = cfg_int(j, "eos_token_id", 0, &c->eos_id, name, err)) ||
        (st = cfg_float(j, "rms_norm_eps", &c->norm_eps, name, err)) ||
        (st = cfg_float(j, "rope_theta", &c->rope_theta, name, err)) ||
        (st = cfg_bool(j, "tie_word_embeddings", &c->tied, name, err)) ||
        (st = cfg_bool(j, "attention_bias", &bias, name, err)))
        return st;
    if (c->n_heads > 0) c->head_dim = head_dim > 0 ? head_dim : c->dim / c->n_heads;
    /* Qwen2 hard-codes q/k/v biases; Llama has them only with attention_bias */
    c->qkv_bias = c->arch == RED_ARCH_QWEN2 ? 1 : bias == 1;
    {
        const red_json *mb = red_json_get(j, "mlp_bias"), *act = red_json_get(j, "hidden_act");
        if (mb && mb->type == RED_JSON_TRUE)
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: byte %zu: mlp_bias true is not supported", name, mb->offset);
        if (act && (act->type != RED_JSON_STRING || strcmp(act->str, "silu")))
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: byte %zu: hidden_act must be \"silu\"", name, act->offset);
    }
    /* newer transformers: rope_parameters {rope_type, rope_theta, ...} */
    rs = red_json_get(j, "rope_scaling");
    if (!rs || rs->type == RED_JSON_NULL) {
        rs = red_json_get(j, "rope_parameters");
        if (rs && rs->type == RED_JSON_OBJECT && (st = cfg_float(rs, "rope_theta", &c->rope_theta, name, err)))
            return st;
    }
    if (rs && rs->type == RED_JSON_OBJECT) {
        const red_json *ty = red_json_get(rs, "rope_type");
        if (!ty) ty = red_json_get(rs, "type");
        if (!ty || ty->type != RED_JSON_STRING)
            return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: rope_scaling needs a \"rope_type\" string", name, rs->offset);
        if (strcmp(ty->str, "llama3") == 0) {
            c->rope_llama3 = 1;
            if ((st = cfg_float(rs, "factor", &c->rope_factor, name, err)) ||
                (st = cfg_float(rs, "low_freq_factor", &c->rope_low_freq, name, err)) ||
                (st = cfg_float(rs, "high_freq_factor", &c->rope_high_freq, name, err)) ||
                (st = cfg_int(rs, "original_max_position_embeddings", 0, &c->rope_orig_ctx, name, err)))
                return st;
        } else if (strcmp(ty->str, "default") != 0) {
            return red_error_set(err, RED_E_UNSUPPORTED, "%s: byte %zu: rope type \"%s\" is not supported (default, llama3)",
                                 name, ty->offset, ty->str);
        }
    } else if (rs && rs->type != RED_JSON_NULL) {
        return red_error_set(err, RED_E_FORMAT, "%s: byte %zu: rope_scaling must be an object or null", name, rs->offset);
    }
    {
        red_error e2;
        if ((st = red_config_check(c, &e2)))
            return red_error_set(err, st, "%s: %s", name, e2.msg);
    }
    return RED_OK;
}

void red_config_to_json(const red_config *c, red_sbuf *b) {
    int q = c->arch == RED_ARCH_QWEN2;
    red_sbuf_printf(b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n",
                    q ? "Qwen2ForCausalLM" : "LlamaForCausalLM", red_arch_name(c->arch));
    red_sbuf_printf(b, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                       "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n",
                    c->dim, c->ffn, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    red_sbuf_puts(b, "  \"rms_norm_eps\": ");
    red_json_put_float(b, c->norm_eps);
    red_sbuf_puts(b, ",\n  \"rope_theta\": ");
    red_json_put_float(b, c->rope_theta);
    red_sbuf_puts(b, ",\n  \"rope_scaling\": ");
    if (c->rope_llama3) {
        red_sbuf_puts(b, "{\"rope_type\": \"llama3\", \"factor\": ");
        red_json_put_float(b, c->rope_factor);
        red_sbuf_puts(b, ", \"low_freq_factor\": ");
        red_json_put_float(b, c->rope_low_freq);
        red_sbuf_puts(b, ", \"high_freq_factor\": ");
        red_json_put_float(b, c->rope_high_freq);
        red_sbuf_printf(b, ", \"original_max_position_embeddings\": %d}", c->rope_orig_ctx);
    } else {
        red_sbuf_puts(b, "null");
    }
    red_sbuf_printf(b, ",\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->vocab, c->max_pos);
    red_sbuf_printf(b, "  \"tie_word_embeddings\": %s,\n  \"attention_bias\": %s,\n  \"mlp_bias\": false,\n",
                    c->tied ? "true" : "false", c->qkv_bias ? "true" : "false");
    red_sbuf_puts(b, "  \"hidden_act\": \"silu\",\n  \"torch_dtype\": \"float32\",\n");
    if (c->bos_id >= 0) red_sbuf_printf(b, "  \"bos_token_id\": %d,\n", c->bos_id);
    else red_sbuf_puts(b, "  \"bos_token_id\": null,\n");
    if (c->eos_id >= 0) red_sbuf_printf(b, "  \"eos_token_id\": %d\n}\n", c->eos_id);
    else red_sbuf_puts(b, "  \"eos_token_id\": null\n}\n");
}

red_status red_config_read(red_config *c, const char *path, red_error *err) {
    unsigned char *buf;
    size_t len;
    red_json *j;
    red_status st;
    if ((st = red_read_file(path, &buf, &len, err))) return st;
    st = red_json_parse((const char *)buf, len, path, &j, err);
    free(buf);
    if (st) return st;
    st = red_config_from_json(c, j, path, err);
    red_json_free(j);
    return st;
}

red_status red_config_load(red_config *c, const char *dir, red_error *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    return red_config_read(c, path, err);
}

/* ------------------------------------------------------------------ model directory */

/* NaN or Inf weights would only show later as NaN logits, a NaN loss, or a
 * multiple-choice score computed from NaN comparisons: refuse them here. */
static red_status check_finite(const float *x, size_t n, const red_st_entry *e, const char *path, red_error *err) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" element %zu is %s (weights must be finite)",
                                 path, e->name, i, isnan(x[i]) ? "NaN" : "infinite");
    return RED_OK;
}

/* Reads every parameter of m found in st (marking it in `done`); every
 * tensor of the file must be one (a tied model may still carry lm_head, HF
 * may keep rotary inv_freq buffers) and appear in one file only. */
static red_status st_fill(red_model *m, const red_safetensors *st, unsigned char *done, red_error *err) {
    const red_config *c = &m->cfg;
    red_status rc;
    int i, j;
    for (i = 0; i < st->n; i++) {
        const red_st_entry *e = &st->e[i];
        const red_param *p = NULL;
        for (j = 0; j < m->n_tensors && !p; j++)
            if (strcmp(e->name, m->table[j].name) == 0) p = &m->table[j];
        if (!p) {
            if ((c->tied && strcmp(e->name, "lm_head.weight") == 0) || strstr(e->name, "rotary_emb.inv_freq")) continue;
            return red_error_set(err, RED_E_FORMAT, "%s: unexpected tensor \"%s\" for this config.json", st->path, e->name);
        }
        if (done[j - 1])
            return red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" is also in an earlier shard", st->path, e->name);
        if (e->ndim != p->ndim || e->shape[0] != p->shape[0] || (p->ndim == 2 && e->shape[1] != p->shape[1]))
            return red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" has shape [%lld%s%lld] (%d-D), config.json implies [%lld, %lld]",
                                 st->path, p->name, (long long)e->shape[0], e->ndim > 1 ? ", " : "", e->ndim > 1 ? (long long)e->shape[1] : 0LL,
                                 e->ndim, (long long)p->shape[0], (long long)(p->ndim == 2 ? p->shape[1] : 1));
        if ((rc = red_st_read_f32(st, e, m->params + p->offset, err)) ||
            (rc = check_finite(m->params + p->offset, p->numel, e, st->path, err)))
            return rc;
        done[j - 1] = 1;
    }
    return RED_OK;
}

/* The shard files of model.safetensors.index.json in order of first mention
 * (names must stay inside the directory); *files is one NUL-separated list. */
static red_status shard_list(const char *index, char **files, int *n_files, red_error *err) {
    unsigned char *buf;
    size_t len, used = 0;
    red_json *j = NULL;
    const red_json *map, *e;
    red_status rc;
    char *out;
    *files = NULL;
    *n_files = 0;
    if ((rc = red_read_file(index, &buf, &len, err))) return rc;
    rc = red_json_parse((const char *)buf, len, index, &j, err);
    free(buf);
    if (rc) return rc;
    map = red_json_get(j, "weight_map");
    if (j->type != RED_JSON_OBJECT || !map || map->type != RED_JSON_OBJECT || !map->count) {
        red_json_free(j);
        return red_error_set(err, RED_E_FORMAT, "%s: expected an object with a non-empty \"weight_map\" object", index);
    }
    for (len = 0, e = map->child; e; e = e->next) len += e->type == RED_JSON_STRING ? e->len + 1 : 0;
    if (!(out = malloc(len + 1))) {
        red_json_free(j);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory", index);
    }
    for (e = map->child; e; e = e->next) {
        size_t k;
        int seen = 0;
        if (e->type != RED_JSON_STRING || !e->len || memchr(e->str, '/', e->len) || memchr(e->str, '\\', e->len) ||
            memchr(e->str, 0, e->len) || !strcmp(e->str, "..") || !strcmp(e->str, ".")) {
            rc = red_error_set(err, RED_E_FORMAT, "%s: byte %zu: the file of \"%s\" must be a plain file name in the "
                               "same directory", index, e->offset, e->key);
            free(out);
            red_json_free(j);
            return rc;
        }
        for (k = 0; k < used && !seen; k += strlen(out + k) + 1) seen = strcmp(out + k, e->str) == 0;
        if (!seen) {
            memcpy(out + used, e->str, e->len + 1);
            used += e->len + 1;
            (*n_files)++;
        }
    }
    red_json_free(j);
    *files = out;
    return RED_OK;
}

/* Loads DIR/model.safetensors, or every shard of
 * DIR/model.safetensors.index.json (one open at a time). */
static int st_cmp_name(const void *a, const void *b) {
    return strcmp((*(const red_st_entry *const *)a)->name, (*(const red_st_entry *const *)b)->name);
}

/* Matches the file's tensors to the parameter table of config c, before any
 * parameter memory exists: every tensor the config implies is present once,
 * with its shape and a float dtype, and the file holds nothing else (a tied
 * model may still carry lm_head, and old checkpoints rotary inv_freq).
 * found[i] gets the entry of tab[i]. Lookups go through a name-sorted index,
 * so a header of 10^5 tensors costs O(n log n). */
static red_status model_match_file(const red_config *c, const red_param *tab, int n_tab, const red_safetensors *st,
                                   const red_st_entry **found, red_error *err) {
    const red_st_entry **by_name = malloc((size_t)(st->n ? st->n : 1) * sizeof *by_name);
    unsigned char *used = calloc((size_t)(st->n ? st->n : 1), 1);
    red_status rc = RED_OK;
    int i;
    if (!by_name || !used) {
        rc = red_error_set(err, RED_E_NOMEM, "%s: out of memory", st->path);
        goto done;
    }
    for (i = 0; i < st->n; i++) by_name[i] = &st->e[i];
    qsort(by_name, (size_t)st->n, sizeof *by_name, st_cmp_name);
    for (i = 0; i < n_tab && !rc; i++) {
        const red_param *p = &tab[i];
        red_st_entry key, *kp = &key;
        const red_st_entry **hit, *e;
        key.name = (char *)p->name;
        hit = bsearch(&kp, by_name, (size_t)st->n, sizeof *by_name, st_cmp_name);
        if (!hit) {
            rc = red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" is missing (config.json says %d layers, %s)",
                               st->path, p->name, c->n_layers, c->qkv_bias ? "with q/k/v biases" : "no biases");
            break;
        }
        e = found[i] = *hit;
        used[e - st->e] = 1;
        if (e->ndim != p->ndim || e->shape[0] != p->shape[0] || (p->ndim == 2 && e->shape[1] != p->shape[1]))
            rc = red_error_set(err, RED_E_FORMAT,
                               "%s: tensor \"%s\" has shape [%lld%s%lld] (%d-D), config.json implies [%lld, %lld]",
                               st->path, p->name, (long long)(e->ndim ? e->shape[0] : 0), e->ndim > 1 ? ", " : "",
                               e->ndim > 1 ? (long long)e->shape[1] : 0LL, e->ndim, (long long)p->shape[0],
                               (long long)(p->ndim == 2 ? p->shape[1] : 1));
        else if (e->dtype == RED_DT_OTHER)
            rc = red_error_set(err, RED_E_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s; red reads F32, F16 and BF16",
                               st->path, e->name, e->dtype_name);
    }
    for (i = 0; i < st->n && !rc; i++)
        if (!used[i] && !(c->tied && strcmp(st->e[i].name, "lm_head.weight") == 0) &&
            strstr(st->e[i].name, "rotary_emb.inv_freq") == NULL)
            rc = red_error_set(err, RED_E_FORMAT, "%s: unexpected tensor \"%s\" for this config.json", st->path,
                               st->e[i].name);
done:
    free(by_name);
    free(used);
    return rc;
}

/* A sharded model (model.safetensors.index.json): the parameter memory
 * first, then each shard read and checked in turn. */
static red_status model_load_shards(red_model *m, const red_config *c, const char *dir, const char *index,
                                    red_pool *pool, red_error *err) {
    red_safetensors st;
    char path[2048], *files = NULL;
    const char *f;
    unsigned char *done = NULL;
    int i, n_files = 1, k;
    red_status rc;
    if ((rc = shard_list(index, &files, &n_files, err))) return rc;
    if ((rc = red_model_alloc(m, c, pool, err))) {
        free(files);
        return rc;
    }
    if (!(done = calloc((size_t)m->n_tensors, 1))) {
        rc = red_error_set(err, RED_E_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    for (k = 0, f = files; k < n_files; k++, f += strlen(f) + 1) {
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if ((rc = red_st_open(&st, path, err))) goto fail;
        rc = st_fill(m, &st, done, err);
        red_st_close(&st);
        if (rc) goto fail;
    }
    for (i = 0; i < m->n_tensors; i++)
        if (!done[i]) {
            rc = red_error_set(err, RED_E_FORMAT, "%s: tensor \"%s\" is missing (config.json says %d layers, %s)", index,
                               m->table[i].name, c->n_layers, c->qkv_bias ? "with q/k/v biases" : "no biases");
            goto fail;
        }
    free(done);
    free(files);
    return RED_OK;
fail:
    free(done);
    free(files);
    red_model_free(m);
    return rc;
}

/* config.json, then model.safetensors checked against it, and only then the
 * parameter memory: a 0.5 MB file can no longer make red allocate (and zero)
 * what a lying config asks for. */
red_status red_model_load(red_model *m, const char *dir, red_pool *pool, red_error *err) {
    red_config c;
    red_safetensors st;
    red_param *tab = NULL;
    const red_st_entry **found = NULL;
    red_status rc;
    char path[2048];
    int i, n_tab;
    memset(m, 0, sizeof *m);
    if ((rc = red_config_load(&c, dir, err))) return rc;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, F_OK) != 0) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (access(path, F_OK) != 0)
            return red_error_set(err, RED_E_IO, "%s: neither model.safetensors nor model.safetensors.index.json", dir);
        return model_load_shards(m, &c, dir, path, pool, err);
    }
    if ((rc = red_st_open(&st, path, err))) return rc;
    n_tab = red_param_tensors(&c);  /* bounded by red_config_check: at most ~12,000 */
    tab = calloc((size_t)n_tab, sizeof *tab);
    found = calloc((size_t)n_tab, sizeof *found);
    if (!tab || !found) {
        rc = red_error_set(err, RED_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    red_param_table(&c, tab);
    if ((rc = model_match_file(&c, tab, n_tab, &st, found, err))) goto done;
    if ((rc = red_model_alloc(m, &c, pool, err))) goto done;
    for (i = 0; i < m->n_tensors && !rc; i++) {
        float *dst = m->params + m->table[i].offset;
        if (!(rc = red_st_read_f32(&st, found[i], dst, err)))
            rc = check_finite(dst, m->table[i].numel, found[i], path, err);
    }
    if (rc) red_model_free(m);
done:
    free(tab);
    free(found);
    red_st_close(&st);
    return rc;
}

red_status red_model_save(const red_model *m, const char *dir, red_dtype dtype, red_error *err) {
    char path[2048];
    red_st_tensor *t;
    red_sbuf b;
    red_status rc;
    int i;
    if ((rc = red_make_dir(dir, err))) return rc;
    t = calloc((size_t)m->n_tensors, sizeof *t);
    if (!t) return red_error_set(err, RED_E_NOMEM, "%s: out of memory", dir);
    for (i = 0; i < m->n_tensors; i++) {
        const red_param *p = &m->table[i];
        t[i].name = p->name;
        t[i].data = m->params + p->offset;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = red_st_save(path, t, m->n_tensors, dtype, err);
    free(t);
    if (rc) return rc;
    red_sbuf_init(&b);
    red_config_to_json(&m->cfg, &b);
    if (b.failed) {
        red_sbuf_free(&b);
        return red_error_set(err, RED_E_NOMEM, "%s: out of memory", dir);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = red_write_file_atomic(path, b.p, b.len, err);
    red_sbuf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ any model file */

red_status red_model_format_of(const char *path, red_model_format *fmt, red_error *err) {
    unsigned char magic[4] = {0};
    FILE *f;
    struct stat sb;
    if (stat(path, &sb) != 0) return red_error_set(err, RED_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        *fmt = RED_FMT_DIR;
        return RED_OK;
    }
    if (!(f = fopen(path, "rb"))) return red_error_set(err, RED_E_IO, "%s: cannot open: %s", path, strerror(errno));
    *fmt = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0 ? RED_FMT_GGUF : RED_FMT_LLAMA2C;
    fclose(f);
    return RED_OK;
}

red_status red_model_open(red_model *m, const char *path, red_pool *pool, red_error *err) {
    red_model_format fmt = RED_FMT_DIR;
    red_status st;
    red_gguf g;
    if ((st = red_model_format_of(path, &fmt, err))) return st;
    if (fmt == RED_FMT_DIR) return red_model_load(m, path, pool, err);
    if (fmt == RED_FMT_LLAMA2C) return red_llama2c_load(m, path, pool, err);
    if ((st = red_gguf_open(&g, path, err))) return st;
    st = red_gguf_model_load(m, &g, pool, err);
    red_gguf_close(&g);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

red_status red_model_write(const red_model *m, const red_tokenizer *tok, const char *path, red_dtype dtype,
                           red_error *err) {
    red_status st;
    red_tok_kind k;
    if (ends_with(path, ".gguf")) return red_gguf_model_save(m, tok, path, dtype, err);
    if (ends_with(path, ".bin")) {
        if (dtype != RED_DT_F32)
            return red_error_set(err, RED_E_ARG, "%s: llama2.c checkpoints are written as f32 only", path);
        return red_llama2c_save(m, path, 0, err);
    }
    if ((st = red_model_save(m, path, dtype, err)) || !tok) return st;
    k = red_tokenizer_kind(tok);
    return k == RED_TOK_BYTE || k == RED_TOK_BPE ? red_tokenizer_save(tok, path, err) : RED_OK;
}

red_status red_model_tokenizer(red_tokenizer **out, const char *model_path, const char *tok_path, red_error *err) {
    const char *path = tok_path ? tok_path : model_path;
    red_model_format fmt = RED_FMT_DIR;
    red_status st;
    red_gguf g;
    *out = NULL;
    if ((st = red_model_format_of(path, &fmt, err))) return st;
    if (fmt == RED_FMT_GGUF) {
        if ((st = red_gguf_open(&g, path, err))) return st;
        st = red_gguf_tokenizer(out, &g, err);
        red_gguf_close(&g);
        return st;
    }
    if (fmt == RED_FMT_LLAMA2C && !tok_path)
        return red_error_set(err, RED_E_ARG, "%s: a llama2.c checkpoint carries no tokenizer; give its tokenizer.bin "
                             "with --tokenizer (stories260K: tok512.bin)", path);
    return red_tokenizer_load(out, path, err);
}
