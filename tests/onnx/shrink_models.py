"""tests/onnx/shrink_models.py MODELS_DIR OUT_DIR - every models/*.json made quick
for tests/onnx.sh: data paths made absolute, the training data limited to 256
samples (text: 8192 bytes) and the test data to 64, so that one epoch
trains in seconds; the layers are unchanged. Prints the names written."""
import glob
import json
import os
import sys

src, out = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    name = os.path.splitext(os.path.basename(path))[0]
    m = json.load(open(path))
    for split, lim in (("train", 256), ("test", 64)):
        d = m.get("data", {}).get(split)
        if not d:
            continue
        for k in ("path", "images", "labels"):
            if k in d and not os.path.isabs(d[k]):
                d[k] = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), d[k]))
        d["limit"] = 8192 if d.get("format") == "text" else lim  # text: bytes
    m.pop("output", None)
    json.dump(m, open(os.path.join(out, name + ".json"), "w"), indent=1)
    print(name)
