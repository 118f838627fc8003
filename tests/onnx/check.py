"""tests/onnx/check.py - helpers of tests/onnx.sh, run with Debian's /usr/bin/python3
(onnx from python3-onnx, numpy; onnxruntime from PYTHONPATH).

  check.py checker MODEL.onnx
      onnx.checker.check_model(full_check=True); prints the opset.
  check.py compare MODEL.onnx DATA.csv INFER.jsonl [--drop COL,...] [--window W]
      runs onnxruntime on the CSV's feature rows (every column but --drop,
      cut into windows of W rows when given) and compares each row's output
      with the `nnrun infer --json --top K` line for it: classification lines
      carry {"index", "probability"} for every class, regression lines
      "values"; a one-unit binary model's output is the second class's
      probability. Passes when |ort - nnrun| <= 1e-4 * max(1, |nnrun|) everywhere
      (nnrun prints 6 significant digits). Prints the largest difference.
      --outputs K compares only the first K outputs of each row (a text
      model's first position: what `nnrun infer` prints for a row of ids).
  check.py random MODEL.onnx OUT.csv [--ids V]
      writes 8 rows of random inputs for the model (uniform [0, 1), or
      integer token ids below V), one flattened sample per row, with a header.
  check.py expect EXPECTED.csv|EXPECTED.jsonl INFER.jsonl
      the same comparison against reference outputs, one CSV row per input
      (PyTorch's, from tests/onnx/torch_models.py) or another nnrun infer
      output (a round trip through ONNX).
"""
import json
import sys

import numpy as np


def read_csv(path, drop):
    with open(path) as f:
        rows = [line.rstrip("\n").split(",") for line in f if line.strip()]
    head = rows[0]
    try:
        [float(v) for v in head]
        body = rows
        head = [str(i) for i in range(len(head))]
    except ValueError:
        body = rows[1:]
    keep = [i for i, h in enumerate(head) if h not in drop]
    return np.array([[float(r[i]) for i in keep] for r in body], dtype=np.float32)


def nnrun_rows(path, width):
    out = []
    for line in open(path):
        o = json.loads(line)
        if "values" in o:
            out.append(np.array(o["values"], dtype=np.float64))
        else:
            k = max([width, 2] + [p["index"] + 1 for p in o["predictions"]])
            v = np.full(k, np.nan)
            for p in o["predictions"]:
                v[p["index"]] = p["probability"]
            out.append(v)
    return np.array(out)


def compare(y, ref):
    if y.shape[1] == 1 and ref.shape[1] == 2:  # binary: the probability of the second class
        ref = ref[:, 1:]
    if ref.shape != y.shape:
        print("shape mismatch: reference %s, nnrun %s" % (y.shape, ref.shape))
        return 1
    d = np.abs(y - ref) / np.maximum(1.0, np.abs(ref))
    worst = float(np.nanmax(d)) if d.size else 0.0
    print("rows %d outputs %d max difference %.3g" % (y.shape[0], y.shape[1], worst))
    return 0 if np.all(np.isfinite(ref)) and worst <= 1e-4 else 1


def main():
    a = sys.argv[1:]
    if a[0] == "expect":
        if a[1].endswith(".jsonl"):  # another nnrun infer --json output
            y = nnrun_rows(a[1], 0)
        else:
            y = np.loadtxt(a[1], delimiter=",", ndmin=2)
        return compare(y, nnrun_rows(a[2], y.shape[1]))
    import onnx
    if a[0] == "checker":
        m = onnx.load(a[1])
        onnx.checker.check_model(m, full_check=True)
        print("checker ok, opset", m.opset_import[0].version)
        return 0
    if a[0] == "random":
        m = onnx.load(a[1])
        dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:]]
        n = int(np.prod(dims))
        rng = np.random.default_rng(1)
        ids = int(a[4]) if len(a) > 4 and a[3] == "--ids" else 0
        x = rng.integers(0, ids, (8, n)) if ids else rng.random((8, n))
        with open(a[2], "w") as f:
            f.write(",".join("x%d" % i for i in range(n)) + "\n")
            for r in x:
                f.write(",".join(("%d" if ids else "%.6f") % v for v in r) + "\n")
        return 0
    model, data, infer = a[1], a[2], a[3]
    drop, window, outputs = [], 0, 0
    i = 4
    while i < len(a):
        if a[i] == "--drop":
            drop = a[i + 1].split(",")
        elif a[i] == "--window":
            window = int(a[i + 1])
        elif a[i] == "--outputs":
            outputs = int(a[i + 1])
        i += 2
    import onnxruntime as ort
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [int(d) for d in inp.shape[1:]]
    x = read_csv(data, drop)
    if window:
        x = np.stack([x[k:k + window] for k in range(len(x) - window + 1)])
    x = x.reshape([len(x)] + shape)
    y = s.run(None, {inp.name: x})[0].reshape(len(x), -1).astype(np.float64)
    if outputs:
        y = y[:, :outputs]
    return compare(y, nnrun_rows(infer, y.shape[1]))


if __name__ == "__main__":
    sys.exit(main())
