#!/bin/sh
# tests/fuzz/make_corpus.sh - regenerates the seed corpora of tests/fuzz/corpus/
# from real files: the repository's fixtures, files red itself writes, the
# first lines of ../shared/data/gsm8k, and a hand-made safetensors with every
# float dtype (written by Python's struct, independently of red).
# Run from the repository root after `make`.
set -eu
C=tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p $C/json $C/config $C/safetensors $C/model $C/npy $C/jsonl $C/tokenizer
cp tests/fixtures/model_llama_tied/config.json $C/config/llama_tied.json
cp tests/fixtures/model_qwen2_gqa/config.json $C/config/qwen2_gqa.json
echo '{"model_type": "qwen2", "hidden_size": 4, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 260, "tie_word_embeddings": false}' > $T/tiny.json
./red init --config $T/tiny.json --out $T/q --seed 1
./red init --config $T/tiny.json --out $T/qb --seed 2 --bf16
cp $T/q/model.safetensors $C/safetensors/red_qwen2_f32.safetensors
cp $T/qb/model.safetensors $C/safetensors/red_qwen2_bf16.safetensors
cp $T/q/config.json $C/config/red_written.json
cp $T/q/red_tokenizer.json $C/tokenizer/byte.json
rm -f $C/model/*.safetensors
python3 - $C <<'PY'
import json, struct, sys
C = sys.argv[1]
def save(path, tensors, meta=None):
    h, data = {}, b''
    if meta: h['__metadata__'] = meta
    for name, dt, shape, raw in tensors:
        h[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    hj = json.dumps(h).encode()
    hj += b' ' * ((8 - len(hj) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
    return hj
hj = save(C + '/safetensors/mixed.safetensors', [
    ('a', 'F32', [2, 2], struct.pack('<4f', 1, -2, 3.5, 0)),
    ('b', 'F16', [3], struct.pack('<3H', 0x3c00, 0x7bff, 0x0001)),
    ('c', 'BF16', [1, 2], struct.pack('<2H', 0x3f80, 0xc000)),
    ('e', 'F32', [0], b''),
    ('i', 'I64', [1], struct.pack('<q', 7))], {'format': 'pt'})
open(C + '/json/st_header.json', 'wb').write(hj)
# the tiny tied Llama of fuzz_model.c's config.json (8 wide, 1 layer, 2 heads, 1 KV head,
# vocab 16) in Hugging Face's names, F32 and BF16
import math
shapes = [('model.embed_tokens.weight', [16, 8]), ('model.layers.0.input_layernorm.weight', [8]),
          ('model.layers.0.self_attn.q_proj.weight', [8, 8]), ('model.layers.0.self_attn.k_proj.weight', [4, 8]),
          ('model.layers.0.self_attn.v_proj.weight', [4, 8]), ('model.layers.0.self_attn.o_proj.weight', [8, 8]),
          ('model.layers.0.post_attention_layernorm.weight', [8]), ('model.layers.0.mlp.gate_proj.weight', [8, 8]),
          ('model.layers.0.mlp.up_proj.weight', [8, 8]), ('model.layers.0.mlp.down_proj.weight', [8, 8]),
          ('model.norm.weight', [8])]
f32, ts, k = [], [], 0
for name, shape in shapes:
    n = shape[0] * (shape[1] if len(shape) > 1 else 1)
    x = [1.0 + 0.01 * i if len(shape) == 1 else 0.1 * math.sin(k + i) for i in range(n)]
    k += n
    raw = struct.pack('<%df' % n, *x)
    f32.append((name, 'F32', shape, raw))
    ts.append((name, 'BF16', shape, b''.join(struct.pack('<H', u >> 16) for u in struct.unpack('<%dI' % n, raw))))
save(C + '/model/tiny_llama.safetensors', f32)
save(C + '/model/tiny_llama_bf16.safetensors', ts)
PY
for f in v1_f4_3x5 v2_f4_3x5 v3_f4_3x5 v1_f8_2x3x4 v1_f4_0d v1_f4_empty bad_bigendian bad_fortran; do
    cp tests/fixtures/npy_$f.npy $C/npy/
done
head -2 ../shared/data/gsm8k/train.jsonl > $C/jsonl/gsm8k.jsonl
./red tasks choice --split test -n 2 --out $C/jsonl/choice.jsonl
./red tasks reasoning --split test -n 2 --out $C/jsonl/reasoning.jsonl
head -3 tests/fixtures/gsm8k_filters.jsonl > $C/jsonl/filters.jsonl
printf '{"text": "Once upon a time"}\n{"text": "a\\u00e9b"}\n' > $C/jsonl/text.jsonl
./red tasks corpus -n 2 --out $T/corpus.txt
./red tokenizer train --data $T/corpus.txt --data $C/jsonl/gsm8k.jsonl --vocab 300 --out $T/tok 2> /dev/null
cp $T/tok/red_tokenizer.json $C/tokenizer/bpe.json
for f in $C/config/*.json $C/tokenizer/*.json; do cp $f $C/json/$(basename $(dirname $f))_$(basename $f); done
head -1 $C/jsonl/choice.jsonl > $C/json/choice_line.json
# state files: one that matches fuzz_state.c's record and arrays, and a real train_state.bin
mkdir -p $C/state
python3 - $C <<'PY'
import struct, sys
rec = b"tokens=4096\nbatch=4\nseq=64\ndata=15071 tokens, 40 documents\n"
b = b"REDTRAIN" + bytes([2, 0, 0, 0]) + struct.pack('<4Q', 12, 12, 1, 640) + struct.pack('<Q', len(rec)) + rec
b += struct.pack('<Q', 2) + struct.pack('<Q', 5) + struct.pack('<5f', 0.5, -1, 2, 0, 3)
b += struct.pack('<Q', 3) + struct.pack('<3f', 1e-3, 2e-3, 0)
open(sys.argv[1] + '/state/matching.bin', 'wb').write(b)
PY
./red tasks reasoning --split train -n 40 --seed 1 --out $T/train.jsonl
./red train --data $T/train.jsonl --out $T/t --tokens 512 --dim 8 --layers 1 --heads 2 --ffn 8 --seq 16 --batch 2 \
    --threads 1 2> /dev/null
cp $T/t/train_state.bin $C/state/train_state.bin
# the model and tokenizer files of other projects: cut real files (cut_seeds.py),
# llama2.c's own tokenizer.bin, and GGUF models written by `red convert`
mkdir -p $C/hf_tokenizer $C/gguf_vocab $C/llama2c $C/tokenizer_bin $C/gguf
python3 tests/fuzz/cut_seeds.py $C ../shared/data
cat ../shared/data/stories260K/tok512.bin > $C/tokenizer_bin/tok512.bin
mkdir $T/gpt2
cp $C/hf_tokenizer/qwen3.json $T/gpt2/tokenizer.json
echo '{"model_type": "llama", "hidden_size": 4, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 384, "tie_word_embeddings": false, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}' > $T/llama.json
./red init --config $T/llama.json --out $T/l --seed 3
./red convert --from $T/l --to $C/gguf/llama3_f16_tok.gguf --dtype f16 --tokenizer $T/gpt2/tokenizer.json 2> /dev/null
./red convert --from $T/q --to $C/gguf/qwen2_f32.gguf 2> /dev/null
./red convert --from $T/qb --to $C/gguf/qwen2_bf16.gguf --dtype bf16 2> /dev/null
