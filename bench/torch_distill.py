#!/usr/bin/env python3
"""PyTorch peer for `red bench distill`: the same LRC distillation step in
plain torch, fp32, CPU. Teacher = config (b) of bench/torch_model.py with
random weights (frozen); student of half width whose weights are the
teacher's through trainable projections (W P input side, Pᵀ W output side,
E P_e); loss CE + KL(tau=10, sum / sequences) + 0.2 * clone MSE on q, k, v,
attention out (d_t), gate, up and FFN out (target y_T P_d); clip 1.0; AdamW.
Prints one key=value line like red's.

  python3 bench/torch_distill.py --config b --threads 1 [--steps 3]
"""
import argparse, math, time
import torch
import torch.nn.functional as Fn

from torch_model import PRESETS


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w


def forward(W, tok, h, cos, sin):
    """Llama forward on a dict of weights; returns logits and per-layer clone taps."""
    B, T = tok.shape
    x = W["emb"][tok]
    taps = []
    for l in W["layers"]:
        a = rms(x, l["n1"])
        q, k, v = a @ l["q"].T, a @ l["k"].T, a @ l["v"].T
        hd = q.shape[-1] // h
        qh, kh, vh = (t.view(B, T, h, hd).transpose(1, 2) for t in (q, k, v))
        rot = lambda t: torch.cat((-t[..., hd // 2:], t[..., :hd // 2]), -1)
        qh, kh = qh * cos + rot(qh) * sin, kh * cos + rot(kh) * sin
        att = qh @ kh.transpose(-1, -2) / math.sqrt(hd)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        A = (torch.softmax(att, -1) @ vh).transpose(1, 2).reshape(B, T, -1)
        x = x + A @ l["o"].T
        m = rms(x, l["n2"])
        g, u = m @ l["g"].T, m @ l["u"].T
        act = Fn.silu(g) * u
        y = act @ l["d"].T
        x = x + y
        taps.append(dict(q=q, k=k, v=v, A=A, g=g, u=u, act=act, y=y))
    return rms(x, W["nf"]) @ W["emb"].T, taps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="b", choices=list(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    d, L, h, f, T, B, V = PRESETS[a.config]
    ds, tau, alpha = d // 2, 10.0, 0.2
    n = lambda *s: torch.randn(*s) * 0.02
    teacher = dict(emb=n(V, d), nf=torch.ones(d), layers=[dict(n1=torch.ones(d), n2=torch.ones(d), q=n(d, d), k=n(d, d),
                   v=n(d, d), o=n(d, d), g=n(f, d), u=n(f, d), d=n(d, f)) for _ in range(L)])
    orth = lambda: torch.nn.Parameter(torch.linalg.qr(torch.randn(d, ds))[0].contiguous())
    P = [{s: orth() for s in "qkvogud"} for _ in range(L)]
    Pe = orth()
    norms = [(torch.nn.Parameter(torch.ones(ds)), torch.nn.Parameter(torch.ones(ds))) for _ in range(L)]
    nf = torch.nn.Parameter(torch.ones(ds))
    params = [p for l in P for p in l.values()] + [Pe, nf] + [p for nn in norms for p in nn]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
    hd = d // h
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    e = torch.arange(T).float()[:, None] * inv[None]
    e = torch.cat((e, e), -1)
    cos, sin = e.cos(), e.sin()
    motif = torch.randint(0, V, (B, 32))
    tok = motif.repeat(1, T // 32)
    tgt = torch.cat((tok[:, 1:], torch.full((B, 1), -1)), 1)
    times, first, last = [], None, None
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            zt, tt = forward(teacher, tok, h, cos, sin)
        S = dict(emb=teacher["emb"] @ Pe, nf=nf, layers=[])
        for tl, pl, (n1, n2) in zip(teacher["layers"], P, norms):
            S["layers"].append(dict(n1=n1, n2=n2, q=tl["q"] @ pl["q"], k=tl["k"] @ pl["k"], v=tl["v"] @ pl["v"],
                                    o=pl["o"].T @ tl["o"], g=tl["g"] @ pl["g"], u=tl["u"] @ pl["u"], d=pl["d"].T @ tl["d"]))
        zs, ts = forward(S, tok, h, cos, sin)
        ce = Fn.cross_entropy(zs.reshape(-1, V), tgt.reshape(-1), ignore_index=-1)
        lt, ls = Fn.log_softmax(zt / tau, -1), Fn.log_softmax(zs / tau, -1)
        kl = (lt.exp() * (lt - ls)).sum() / B
        clone = 0.0
        for tl, a_t, a_s, pl in zip(teacher["layers"], tt, ts, P):
            for key in "qkvgu":
                clone = clone + Fn.mse_loss(a_s[key], a_t[key])
            clone = clone + Fn.mse_loss(a_s["A"] @ tl["o"].T, a_t["A"] @ tl["o"].T)
            clone = clone + Fn.mse_loss(a_s["y"], a_t["y"] @ pl["d"])
        loss = ce + kl + alpha * clone
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s == 0: first = loss.item()
        else: times.append(dt)
        last = loss.item()
    tot = sum(times)
    print(f"op=distill impl=torch-{torch.__version__} config={a.config} teacher_dim={d} student_dim={ds} "
          f"threads={a.threads} steps={a.steps} ms_per_step={1e3 * tot / a.steps:.2f} "
          f"tok_per_s={B * T * a.steps / tot:.0f} loss_first={first:.4f} loss_last={last:.4f} pass={int(last < first)}")


if __name__ == "__main__":
    main()
