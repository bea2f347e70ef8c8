#!/usr/bin/env python3
"""PyTorch peer for `red bench train` / `red bench infer`: the same configs,
the same step (forward, cross-entropy, backward, clip 1.0, AdamW), fp32, on
CPU, plain torch (no transformers). Prints one key=value line like red's.

  python3 bench/torch_model.py train --config a --threads 1 [--steps 5]
  python3 bench/torch_model.py infer --config a --threads 1 [--batch 1] [--gen 64] [--reps 5]
"""
import argparse, math, time
import torch
import torch.nn.functional as Fn

PRESETS = {"a": (128, 4, 4, 384, 256, 16, 512), "b": (256, 6, 8, 768, 256, 16, 512),
           "c": (512, 8, 8, 1536, 512, 8, 512)}


class Block(torch.nn.Module):
    def __init__(s, d, h, f):
        super().__init__()
        s.h, s.hd = h, d // h
        s.n1, s.n2 = torch.nn.Parameter(torch.ones(d)), torch.nn.Parameter(torch.ones(d))
        s.q, s.k, s.v, s.o = (torch.nn.Linear(d, d, bias=False) for _ in range(4))
        s.g, s.u = torch.nn.Linear(d, f, bias=False), torch.nn.Linear(d, f, bias=False)
        s.dn = torch.nn.Linear(f, d, bias=False)

    @staticmethod
    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(s, x, cos, sin, cache=None, pos=0):
        B, T, D = x.shape
        n = s.norm(x, s.n1)
        q = s.q(n).view(B, T, s.h, s.hd).transpose(1, 2)
        k = s.k(n).view(B, T, s.h, s.hd).transpose(1, 2)
        v = s.v(n).view(B, T, s.h, s.hd).transpose(1, 2)
        rot = lambda t: torch.cat((-t[..., s.hd // 2:], t[..., :s.hd // 2]), -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if cache is not None:
            kc, vc = cache
            kc[:, :, pos:pos + T], vc[:, :, pos:pos + T] = k, v
            k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
            a = Fn.scaled_dot_product_attention(q, k, v, is_causal=(T > 1)) if hasattr(Fn, "scaled_dot_product_attention") \
                else torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(s.hd), -1) @ v
        else:
            att = q @ k.transpose(-1, -2) / math.sqrt(s.hd)
            att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            a = torch.softmax(att, -1) @ v
        x = x + s.o(a.transpose(1, 2).reshape(B, T, D))
        m = s.norm(x, s.n2)
        return x + s.dn(Fn.silu(s.g(m)) * s.u(m))


class Model(torch.nn.Module):
    def __init__(s, d, L, h, f, V):
        super().__init__()
        s.emb = torch.nn.Embedding(V, d)
        s.blocks = torch.nn.ModuleList(Block(d, h, f) for _ in range(L))
        s.nf = torch.nn.Parameter(torch.ones(d))
        s.hd = d // h
        for p in s.parameters():
            if p.dim() == 2: torch.nn.init.normal_(p, std=0.02)

    def rope(s, T, pos=0):
        inv = 1.0 / (10000 ** (torch.arange(0, s.hd, 2).float() / s.hd))
        ang = torch.arange(pos, pos + T).float()[:, None] * inv[None]
        e = torch.cat((ang, ang), -1)
        return e.cos(), e.sin()

    def forward(s, tok, caches=None, pos=0):
        x = s.emb(tok)
        cos, sin = s.rope(tok.shape[1], pos)
        for i, b in enumerate(s.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i], pos)
        return Block.norm(x, s.nf) @ s.emb.weight.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "infer"])
    ap.add_argument("--config", default="a", choices=list(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    d, L, h, f, T, B, V = PRESETS[a.config]
    m = Model(d, L, h, f, V)
    if a.what == "train":
        motif = torch.randint(0, V, (B, 32))
        tok = motif.repeat(1, T // 32)
        tgt = torch.cat((tok[:, 1:], torch.full((B, 1), -1)), 1)
        opt = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
        times, first, last = [], None, None
        for s in range(a.steps + 1):
            t0 = time.perf_counter()
            logits = m(tok)
            loss = Fn.cross_entropy(logits.view(-1, V), tgt.reshape(-1), ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            dt = time.perf_counter() - t0
            if s == 0: first = loss.item()
            else: times.append(dt)
            last = loss.item()
        tot = sum(times)
        print(f"op=train impl=torch-{torch.__version__} config={a.config} threads={a.threads} steps={a.steps} "
              f"ms_per_step={1e3 * tot / a.steps:.2f} tok_per_s={B * T * a.steps / tot:.0f} "
              f"loss_first={first:.4f} loss_last={last:.4f} pass={int(last < first)}")
    else:
        # like red bench infer: one untimed round, then --reps timed rounds
        # (prefill, then --gen decode steps) over the same caches; medians
        P, Bq = T // 2, a.batch
        tps, tds = [], []
        with torch.no_grad():
            caches = [(torch.zeros(Bq, h, P + a.gen, d // h), torch.zeros(Bq, h, P + a.gen, d // h)) for _ in range(L)]
            tok = torch.randint(0, V, (Bq, P))
            for rep in range(a.reps + 1):
                t0 = time.perf_counter()
                cur = m(tok, caches, 0)[:, -1].argmax(-1, keepdim=True)
                tp = time.perf_counter() - t0
                t0 = time.perf_counter()
                for s in range(a.gen):
                    cur = m(cur, caches, P + s)[:, -1].argmax(-1, keepdim=True)
                td = time.perf_counter() - t0
                if rep > 0: tps.append(tp); tds.append(td)
        tp, td = sorted(tps)[len(tps) // 2], sorted(tds)[len(tds) // 2]
        print(f"op=infer impl=torch-{torch.__version__} config={a.config} threads={a.threads} batch={Bq} prompt={P} "
              f"gen={a.gen} reps={a.reps} prefill_tok_per_s={Bq * P / tp:.0f} decode_tok_per_s={Bq * a.gen / td:.0f}")


if __name__ == "__main__":
    main()
