# tests/fuzz/cut_seeds.py - cuts real files to fuzzing seeds of a few KB, with
# Python's json and struct only (independently of red): Hugging Face
# tokenizer.json (+ tokenizer_config.json after a NUL byte), vocabulary-only
# GGUFs (llama.cpp's GPT-2 vocabulary cut; a SentencePiece one from the cut
# Mistral tokenizer), llama2.c checkpoints v0/v1/v2 of a tiny model whose values
# are stories260K.bin's first floats. Usage: cut_seeds.py CORPUS_DIR ../shared/data
import json, struct, sys
C, D = sys.argv[1], sys.argv[2]          # corpus dir, ../shared/data

# -- Hugging Face tokenizer.json: ids below N, the merges among them, a few added tokens
def cut_hf(name, n, n_merges, n_added):
    j = json.load(open('%s/tokenizers/%s/tokenizer.json' % (D, name)))
    m = j['model']
    keep = {k for k, v in m['vocab'].items() if v < n}
    merges = []
    for x in m['merges'][:n_merges]:   # the first merges and what they join, renumbered in id order
        a, b = x.split(' ', 1) if isinstance(x, str) else x
        if a + b in m['vocab']:
            keep |= {a, b, a + b}
            merges.append(x)
    m['vocab'] = {k: i for i, k in enumerate(sorted(keep, key=lambda k: m['vocab'][k]))}
    m['merges'] = merges
    n = len(keep)
    added = []
    for t in j['added_tokens'][:n_added]:
        t = dict(t)
        if t['id'] >= n:
            t['id'] = n + len(added)
        added.append(t)
    j['added_tokens'] = added
    c = json.load(open('%s/tokenizers/%s/tokenizer_config.json' % (D, name)))
    c = {k: v for k, v in c.items() if k in ('bos_token', 'eos_token', 'pad_token', 'unk_token', 'add_bos_token',
                                             'add_eos_token')}
    tj = json.dumps(j, ensure_ascii=False).encode()
    open('%s/hf_tokenizer/%s.json' % (C, name), 'wb').write(tj)
    open('%s/hf_tokenizer/%s_config.json' % (C, name), 'wb').write(tj + b'\0' + json.dumps(c).encode())
    return j

cut_hf('qwen3', 256, 120, 4)
cut_hf('llama3', 256, 120, 3)
spm = cut_hf('spm-mistral', 259, 150, 3)

# -- GGUF (v3, little-endian): a minimal reader and writer of metadata
def rd_str(b, p):
    n = struct.unpack_from('<Q', b, p)[0]
    return b[p + 8:p + 8 + n], p + 8 + n
SIZES = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}
def rd_val(b, p, t):
    if t == 8: return rd_str(b, p)
    if t == 9:
        et, n = struct.unpack_from('<IQ', b, p)
        p += 12
        out = []
        for _ in range(n):
            v, p = rd_val(b, p, et)
            out.append(v)
        return (et, out), p
    f = '<' + SIZES[t]
    return struct.unpack_from(f, b, p)[0], p + struct.calcsize(f)
def read_kvs(path):
    b = open(path, 'rb').read()
    assert b[:4] == b'GGUF'
    nt, nkv = struct.unpack_from('<QQ', b, 8)
    assert nt == 0
    p, kvs = 24, []
    for _ in range(nkv):
        k, p = rd_str(b, p)
        t = struct.unpack_from('<I', b, p)[0]
        v, p = rd_val(b, p + 4, t)
        kvs.append((k.decode(), t, v))
    return kvs
def wr_val(t, v):
    if t == 8:
        return struct.pack('<Q', len(v)) + v
    if t == 9:
        et, xs = v
        return struct.pack('<IQ', et, len(xs)) + b''.join(wr_val(et, x) for x in xs)
    return struct.pack('<' + SIZES[t], v)
def write_gguf(path, kvs):
    out = b'GGUF' + struct.pack('<IQQ', 3, 0, len(kvs))
    for k, t, v in kvs:
        out += struct.pack('<Q', len(k)) + k.encode() + struct.pack('<I', t) + wr_val(t, v)
    open(path, 'wb').write(out)

# llama.cpp's GPT-2 vocabulary cut to its first N ids and the merges among them
N = 300
kvs = read_kvs('%s/tokenizers/llamacpp/ggml-vocab-gpt-2.gguf' % D)
d = {k: (t, v) for k, t, v in kvs}
toks = d['tokenizer.ggml.tokens'][1][1][:N]
keep = set(toks)
out = []
for k, t, v in kvs:
    if k == 'tokenizer.ggml.tokens': v = (v[0], toks)
    elif k == 'tokenizer.ggml.token_type': v = (v[0], v[1][:N])
    elif k == 'tokenizer.ggml.merges':
        v = (v[0], [m for m in v[1] if len(m.split(b' ')) == 2 and all(x in keep for x in m.split(b' '))
                    and m.replace(b' ', b'') in keep])
    elif k.endswith('_token_id') and v >= N: v = N - 1
    out.append((k, t, v))
write_gguf('%s/gguf_vocab/gpt2.gguf' % C, out)

# a SentencePiece ("llama") vocabulary from the cut Mistral tokenizer: scores, token types
items = sorted(spm['model']['vocab'].items(), key=lambda kv: kv[1])
stoks = [k.encode() for k, _ in items]
types = [3 if i < 3 and i > 0 else 2 if i == 0 else 6 if k.startswith('<0x') else 1 for i, (k, _) in enumerate(items)]
write_gguf('%s/gguf_vocab/spm.gguf' % C, [
    ('general.architecture', 8, b'llama'), ('tokenizer.ggml.model', 8, b'llama'),
    ('tokenizer.ggml.tokens', 9, (8, stoks)), ('tokenizer.ggml.scores', 9, (6, [-float(i) for i in range(len(stoks))])),
    ('tokenizer.ggml.token_type', 9, (5, types)), ('tokenizer.ggml.bos_token_id', 4, 1),
    ('tokenizer.ggml.eos_token_id', 4, 2), ('tokenizer.ggml.unknown_token_id', 4, 0),
    ('tokenizer.ggml.add_bos_token', 7, 1), ('tokenizer.ggml.add_eos_token', 7, 0)])

# -- llama2.c checkpoints v0, v1 and v2 (Q8_0) of a tiny model, values from stories260K.bin's first floats
real = open('%s/stories260K/stories260K.bin' % D, 'rb').read()
vals = list(struct.unpack_from('<4096f', real, 28))
dim, hid, nl, nh, nkv, V, seq = 8, 16, 1, 2, 1, 12, 4
hs = dim // nh
def arr(n, k=[0]):
    a = [vals[(k[0] + i) % len(vals)] for i in range(n)]
    k[0] += n
    return a
A = {'emb': arr(V * dim), 'att': arr(dim), 'wq': arr(dim * dim), 'wk': arr(hs * nkv * dim), 'wv': arr(hs * nkv * dim),
     'wo': arr(dim * dim), 'ffn': arr(dim), 'w1': arr(hid * dim), 'w2': arr(dim * hid), 'w3': arr(hid * dim),
     'fin': arr(dim), 'freq': arr(seq * hs), 'wcls': arr(V * dim)}
f32 = lambda a: struct.pack('<%df' % len(a), *a)
hdr = struct.pack('<7i', dim, hid, nl, nh, nkv, -V, seq)  # negative vocab: separate classifier
v0 = hdr + b''.join(f32(A[k]) for k in ('emb', 'att', 'wq', 'wk', 'wv', 'wo', 'ffn', 'w1', 'w2', 'w3', 'fin', 'freq', 'wcls'))
open('%s/llama2c/v0.bin' % C, 'wb').write(v0)
def header(version, extra=b''):
    h = struct.pack('<Ii7iB', 0x616b3432, version, dim, hid, nl, nh, nkv, V, seq, 0) + extra
    return h + b'\0' * (256 - len(h))
order1 = ('att', 'ffn', 'fin', 'emb', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls')
open('%s/llama2c/v1.bin' % C, 'wb').write(header(1) + b''.join(f32(A[k]) for k in order1))
GS = 8
def q8(a):
    q, s = b'', []
    for g in range(0, len(a), GS):
        m = max(abs(x) for x in a[g:g + GS]) or 1.0
        s.append(m / 127)
        q += struct.pack('<%db' % GS, *[int(round(x / (m / 127))) for x in a[g:g + GS]])
    return q + f32(s)
body = b''.join(f32(A[k]) if k in ('att', 'ffn', 'fin') else q8(A[k]) for k in order1)
open('%s/llama2c/v2.bin' % C, 'wb').write(header(2, struct.pack('<i', GS)) + body)
