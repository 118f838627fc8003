"""tests/onnx/gen.py DIR - small deterministic data sets and model JSONs for
tests/onnx.sh (standard library only):
  img.csv       64 features (an 8x8 picture of a bar, a cross or a ring, noisy)
                + label: 3 classes, 240 rows
  series.csv    a noisy two-feature time series (columns a, b), 160 rows
  tokens.csv    6 integer token ids in [0, 10) + label (is token 3 present)
and the models cnn.json, series_rnn.json, series_attn.json, tokens.json
covering every layer type nnrun exports."""
import json
import math
import os
import random
import sys

d = sys.argv[1]
rnd = random.Random(7)


def write(name, rows):
    with open(os.path.join(d, name), "w") as f:
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


def picture(c):
    p = [[0.0] * 8 for _ in range(8)]
    for y in range(8):
        for x in range(8):
            if c == 0:
                on = 3 <= x <= 4
            elif c == 1:
                on = x == y or x == 7 - y
            else:
                on = 2.0 <= math.hypot(x - 3.5, y - 3.5) <= 3.3
            p[y][x] = (1.0 if on else 0.0) + rnd.gauss(0, 0.3)
    return [round(v, 4) for row in p for v in row]


write("img.csv", [["p%d" % i for i in range(64)] + ["label"]] +
      [picture(i % 3) + ["c%d" % (i % 3)] for i in range(240)])
write("series.csv", [["a", "b"]] +
      [[round(math.sin(t / 5) * 50 + 60 + rnd.gauss(0, 3), 3), round(math.cos(t / 7) + rnd.gauss(0, .1), 3)]
       for t in range(160)])
rows = []
for i in range(300):
    ids = [rnd.randrange(10) for _ in range(6)]
    rows.append(ids + [int(3 in ids)])
write("tokens.csv", [["t%d" % i for i in range(6)] + ["label"]] + rows)


def model(name, layers, data, shape, loss="cross_entropy", normalize="auto", epochs=3, batch=32):
    m = {"name": name, "input": {"shape": shape, "normalize": normalize}, "layers": layers, "loss": loss,
         "optimizer": {"type": "adam", "lr": 0.01}, "train": {"epochs": epochs, "batch_size": batch, "seed": 3},
         "data": {"train": data}, "output": name + ".bin"}
    json.dump(m, open(os.path.join(d, name + ".json"), "w"), indent=1)


img = {"format": "csv", "path": "img.csv", "label": "label"}
model("cnn", [
    {"type": "conv2d", "filters": 6, "kernel": 3, "padding": "same", "name": "c1"},
    {"type": "batchnorm", "name": "bn1"},
    {"type": "relu", "name": "r1"},
    {"type": "conv2d", "filters": 6, "kernel": 3, "padding": 1, "groups": 3, "activation": "elu", "name": "c2"},
    {"type": "add", "inputs": ["r1", "c2"], "name": "res"},
    {"type": "maxpool", "pool": 2, "stride": 1, "padding": 1, "name": "mp"},
    {"type": "conv2d", "filters": 4, "kernel": [3, 2], "dilation": 2, "padding": "same", "stride": 2,
     "activation": "leaky_relu", "name": "c3"},
    {"type": "avgpool", "pool": 3, "stride": 2, "padding": 1, "name": "ap", "inputs": ["mp"]},
    {"type": "concat", "inputs": ["ap", "c3"], "name": "cat"},
    {"type": "batchnorm", "name": "bn2"},
    {"type": "gelu", "name": "g"},
    {"type": "global_avgpool", "name": "gap", "inputs": ["g"]},
    {"type": "flatten", "name": "fl", "inputs": ["cat"]},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 8, "activation": "tanh", "name": "d1"},
    {"type": "concat", "inputs": ["gap", "d1"], "name": "cat2"},
    {"type": "elu", "alpha": 0.5},
    {"type": "dense", "units": 3, "activation": "sigmoid"},
    {"type": "leaky_relu", "alpha": 0.2},
    {"type": "dense", "units": 3},
], img, [1, 8, 8])
series = {"format": "csv", "path": "series.csv", "window": 12, "target": "a"}
model("series_rnn", [
    {"type": "lstm", "units": 5, "return_sequences": True},
    {"type": "gru", "units": 4, "return_sequences": True},
    {"type": "layernorm"},
    {"type": "gru", "units": 3},
    {"type": "dense", "units": 1},
    {"type": "denormalize"},
], series, [12, 2], loss="mse")
model("series_attn", [
    {"type": "dense", "units": 8},
    {"type": "attention", "heads": 2, "causal": True},
    {"type": "layernorm"},
    {"type": "gelu"},
    {"type": "attention", "heads": 4},
    {"type": "flatten"},
    {"type": "dense", "units": 1},
    {"type": "denormalize"},
], series, [12, 2], loss="mse")
model("tokens", [
    {"type": "embedding", "input_dim": 10, "output_dim": 4, "positional": True},
    {"type": "lstm", "units": 6, "use_bias": False},
    {"type": "dense", "units": 1, "activation": "sigmoid"},
], {"format": "csv", "path": "tokens.csv", "label": "label"}, [6], loss="binary_cross_entropy", normalize="none")
