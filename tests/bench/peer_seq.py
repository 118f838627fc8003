#!/usr/bin/python3
"""Peer check of the sequence models (issue #12): trains the char-LSTM and the
char-transformer (models/char_lstm.json, models/char_transformer.json) with
nnrun and with PyTorch on the same corpus bytes and recipe, and prints the
validation bits per character of each seed, the means and their ratio.

    OMP_WAIT_POLICY=passive nice -n 5 tests/bench/peer_seq.py            # make peer
    tests/bench/peer_seq.py --models lstm --seeds 1 --epochs 2 --limit 35000

What "the same" means here:
- the PyTorch nets are built from the model JSON itself (embedding with learned
  positions, lstm/gru, dense per position, layernorm, causal
  nn.MultiheadAttention, gelu, add; softmax fused into the loss), with
  PyTorch's own default initialisation, which is what "init": "torch" gives in
  nnrun (the `torch` variant sets it on every layer that takes it);
- the corpus: the file's bytes, the first --limit of them (default 35000, the
  first 35 kB of data/genesis.txt: ten epochs of both models, three seeds, both
  frameworks then fit in well under an hour on this 2-core machine; --limit 0
  takes the whole file); the vocabulary is the sorted set of bytes present; the
  last 10% (train.validation_split) by position is the validation part; both
  parts are cut into non-overlapping windows of sequence_length (+1 for the
  shifted labels), as nnrun's text loader does;
- the recipe of the JSON: optimizer (adam / adamw with its weight_decay, on every
  parameter), lr, batch size (reshuffled every epoch, the last batch partial),
  epochs; loss: cross-entropy averaged over every position of the batch;
  validation: mean cross-entropy over every validation position after the last
  epoch, in bits.
nnrun runs as `nnrun train COPY.json --json --seed S` on a temporary copy of
the model (absolute data path, the limit, the epochs, the init variant) and the
last epoch event's val_bits_per_char is taken. PyTorch uses
torch.set_num_threads(2) (OMP_WAIT_POLICY=passive is set when missing).
nnrun runs the models as they are (--variants default); --variants
default,torch runs them as they are and with
"init": "torch" added to every layer that takes it; torch:embedding+lstm
adds it to those layer types only, default:lstm removes it from them (the
ablations behind the README's table). --json FILE appends one
JSON line per run (model, framework, variant, seed, bpc, seconds).
Bits per character are compared, never timings (the machine is shared)."""
import argparse, copy, json, math, os, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODELS = {"lstm": "models/char_lstm.json", "transformer": "models/char_transformer.json"}
INIT_TYPES = ("dense", "conv2d", "embedding", "lstm", "gru", "attention", "layernorm")


def load_spec(name):
    path = os.path.join(ROOT, MODELS.get(name, name))
    with open(path) as f:
        spec = json.load(f)
    src = spec["data"]["train"]
    src["path"] = os.path.normpath(os.path.join(os.path.dirname(path), src["path"]))
    return spec


def corpus(spec, limit):
    with open(spec["data"]["train"]["path"], "rb") as f:
        buf = f.read()
    return buf[:limit] if limit > 0 else buf


# ---------------------------------------------------------------- nnrun

def nnrun_variant(spec, variant):
    """default: the JSON as it is; torch: "init": "torch" on every layer that
    takes it; torch:TYPE+TYPE...: on those layer types only (ablations);
    default:TYPE+...: "init" removed from those types (their nnrun default)."""
    s = copy.deepcopy(spec)
    kind, _, only = variant.partition(":")
    types = only.split("+") if only else INIT_TYPES
    if kind not in ("default", "torch") or any(t not in INIT_TYPES for t in types):
        raise SystemExit("unknown variant %r (default, torch, torch:TYPE+TYPE, default:TYPE+TYPE)" % variant)
    if kind == "default" and not only:
        return s
    for L in s["layers"]:
        if L["type"] in types:
            if kind == "torch":
                L["init"] = "torch"
            else:
                L.pop("init", None)
    return s


def run_nnrun(nnrun, spec, variant, seed, epochs, limit, tmp):
    s = nnrun_variant(spec, variant)
    s["train"]["epochs"] = epochs
    if limit > 0:
        s["data"]["train"]["limit"] = limit
    s["output"] = os.path.join(tmp, "peer.bin")
    mpath = os.path.join(tmp, "peer.json")
    with open(mpath, "w") as f:
        json.dump(s, f)
    p = subprocess.run([nnrun, "train", mpath, "--json", "--seed", str(seed)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode:
        raise SystemExit("nnrun train failed (exit %d): %s" % (p.returncode, p.stderr.strip()))
    bpc = None
    for line in p.stdout.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "epoch" and "val_bits_per_char" in ev:
            bpc = ev["val_bits_per_char"]
    if bpc is None:
        raise SystemExit("nnrun train printed no val_bits_per_char")
    return bpc


# ---------------------------------------------------------------- PyTorch

def torch_net(spec, V, T):
    import torch
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}

    class Layer(nn.Module):
        def __init__(self, L, F):
            super().__init__()
            self.t = L["type"]
            self.act = None
            units = lambda k: V if L.get(k) == "vocab" else L.get(k)
            if self.t == "embedding":
                D = L["output_dim"]
                self.emb = nn.Embedding(units("input_dim"), D)
                self.pos = nn.Embedding(T, D) if L.get("positional") else None
                self.out = D
            elif self.t in ("lstm", "gru"):
                cls = nn.LSTM if self.t == "lstm" else nn.GRU
                self.rnn = cls(F, L["units"], batch_first=True, bias=L.get("use_bias", True))
                self.seq = L.get("return_sequences", False)
                self.out = L["units"]
            elif self.t == "dense":
                self.lin = nn.Linear(F, units("units"), bias=L.get("use_bias", True))
                a = L.get("activation")
                self.act = acts[a]() if a and a not in ("linear", "none") else None
                self.out = self.lin.out_features
            elif self.t == "layernorm":
                self.ln = nn.LayerNorm(F, eps=L.get("eps", 1e-5))
                self.out = F
            elif self.t == "attention":
                self.att = nn.MultiheadAttention(F, L["heads"], dropout=L.get("dropout", 0.0),
                                                 bias=L.get("use_bias", True), batch_first=True)
                self.mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if L.get("causal") else None
                self.out = F
            elif self.t in acts:
                self.act = acts[self.t]()
                self.out = F
            elif self.t == "dropout":
                self.drop = nn.Dropout(L.get("rate", 0.5))
                self.out = F
            elif self.t in ("add", "softmax"):
                self.out = F
            else:
                raise SystemExit("peer_seq.py: no PyTorch mirror for layer type %r" % self.t)

        def forward(self, xs):
            x = xs[0]
            if self.t == "embedding":
                y = self.emb(x)
                if self.pos is not None:
                    y = y + self.pos.weight[: x.shape[1]]
                return y
            if self.t in ("lstm", "gru"):
                y, _ = self.rnn(x)
                return y if self.seq else y[:, -1]
            if self.t == "dense":
                y = self.lin(x)
                return self.act(y) if self.act else y
            if self.t == "layernorm":
                return self.ln(x)
            if self.t == "attention":
                return self.att(x, x, x, attn_mask=self.mask, need_weights=False)[0]
            if self.act is not None:
                return self.act(x)
            if self.t == "dropout":
                return self.drop(x)
            if self.t == "add":
                return sum(xs)
            return x  # softmax: fused into the loss

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.names, self.inputs, layers = [], [], []
            dims = {}
            prev = None
            for i, L in enumerate(spec["layers"]):
                name = L.get("name", "#%d" % i)
                ins = L.get("inputs", [prev] if prev is not None else [None])
                F = dims[ins[0]] if ins[0] is not None else None
                layers.append(Layer(L, F))
                dims[name] = layers[-1].out
                self.names.append(name)
                self.inputs.append(ins)
                prev = name
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            out = {None: x}
            for name, ins, L in zip(self.names, self.inputs, self.layers):
                out[name] = L([out[k] for k in ins])
            return out[self.names[-1]]

    return Net()


def windows(ids, T):
    import torch
    n = (len(ids) - 1) // T if len(ids) > T else 0
    t = torch.tensor(list(ids[: n * T + 1]), dtype=torch.long)
    return t[: n * T].view(n, T), t[1 : n * T + 1].view(n, T)


def run_torch(spec, seed, epochs, limit):
    import torch
    import torch.nn.functional as Fn

    torch.set_num_threads(2)
    buf = corpus(spec, limit)
    vocab = sorted(set(buf))
    m = {b: i for i, b in enumerate(vocab)}
    ids = bytes(m[b] for b in buf)
    T = spec["data"]["train"]["sequence_length"]
    nval = int(len(ids) * spec["train"].get("validation_split", 0.1))
    xtr, ytr = windows(ids[: len(ids) - nval], T)
    xva, yva = windows(ids[len(ids) - nval :], T)
    torch.manual_seed(seed)
    net = torch_net(spec, len(vocab), T)
    o = spec["optimizer"]
    kind = o.get("type", "adam")
    if kind == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=o["lr"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)),
                               eps=o.get("eps", 1e-8), weight_decay=o.get("weight_decay", 0.0))
    elif kind == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=o["lr"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)),
                                eps=o.get("eps", 1e-8), weight_decay=o.get("weight_decay", 0.01))
    else:
        raise SystemExit("peer_seq.py: optimizer %r not mirrored" % kind)
    B = spec["train"]["batch_size"]
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        for s in range(0, len(xtr), B):
            idx = perm[s : s + B]
            logits = net(xtr[idx])
            loss = Fn.cross_entropy(logits.reshape(-1, logits.shape[-1]), ytr[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(xva), 256):
            logits = net(xva[s : s + 256])
            tot += Fn.cross_entropy(logits.reshape(-1, logits.shape[-1]), yva[s : s + 256].reshape(-1),
                                    reduction="sum").item()
            cnt += yva[s : s + 256].numel()
    return tot / cnt / math.log(2)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="lstm,transformer", help="lstm, transformer or model JSON paths")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=35000, help="corpus bytes used (0: all)")
    ap.add_argument("--variants", default="default", help="nnrun init variants: default, torch, torch:TYPE+TYPE, default:TYPE+TYPE (comma-separated)")
    ap.add_argument("--only", choices=("nnrun", "torch"), help="run one framework only")
    ap.add_argument("--nnrun", default=os.path.join(ROOT, "nnrun"))
    ap.add_argument("--json", help="append one JSON line per run to this file")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    variants = [v for v in a.variants.split(",") if v]

    def log(rec):
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(rec) + "\n")

    print("corpus: %s" % ("first %d bytes" % a.limit if a.limit > 0 else "whole file"))
    for name in a.models.split(","):
        spec = load_spec(name)
        res = {}
        for seed in seeds:
            if a.only != "torch":
                for v in variants:
                    with tempfile.TemporaryDirectory() as tmp:
                        t0 = time.time()
                        bpc = run_nnrun(a.nnrun, spec, v, seed, a.epochs, a.limit, tmp)
                    res.setdefault("nnrun " + v, {})[seed] = bpc
                    log({"model": name, "framework": "nnrun", "variant": v, "seed": seed, "epochs": a.epochs,
                         "limit": a.limit, "bpc": bpc, "seconds": round(time.time() - t0, 1)})
                    print("  %s seed %d nnrun (init %s): %.4f bits/char" % (name, seed, v, bpc), flush=True)
            if a.only != "nnrun":
                t0 = time.time()
                bpc = run_torch(spec, seed, a.epochs, a.limit)
                res.setdefault("pytorch", {})[seed] = bpc
                log({"model": name, "framework": "pytorch", "seed": seed, "epochs": a.epochs, "limit": a.limit,
                     "bpc": bpc, "seconds": round(time.time() - t0, 1)})
                print("  %s seed %d pytorch: %.4f bits/char" % (name, seed, bpc), flush=True)
        cols = list(res)
        print("\n%s (%s, %d epochs), validation bits/char" % (name, MODELS.get(name, name), a.epochs))
        w = max([16] + [len(c) + 2 for c in cols])
        print("%-6s" % "seed" + "".join("%*s" % (w, c) for c in cols))
        for seed in seeds:
            print("%-6d" % seed + "".join("%*.4f" % (w, res[c][seed]) for c in cols))
        means = {c: sum(res[c].values()) / len(res[c]) for c in cols}
        print("%-6s" % "mean" + "".join("%*.4f" % (w, means[c]) for c in cols))
        if "pytorch" in means:
            for c in cols:
                if c != "pytorch":
                    print("%s / pytorch: %.4f" % (c, means[c] / means["pytorch"]))
        print(flush=True)


if __name__ == "__main__":
    main()
