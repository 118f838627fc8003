#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (standard library only).

    tests/fuzz/gen_seeds.py [--nnrun ./nnrun]

With --nnrun, also trains tiny models (Iris for 1 epoch, a tiny conv/batchnorm/
pool/add/concat net for 1 epoch on generated 8x8 IDX data, and a training
checkpoint) and stores their model.bin files as modelbin seeds. The committed
corpus was generated that way. Seed names have no .bin extension because
.gitignore ignores *.bin.

Layouts of the targets that take more than one file per input are described at
the top of fuzz_idx.c and fuzz_image.c.
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ spec
TINY_CNN = {
    "name": "tiny-cnn",
    "input": {"shape": [1, 8, 8], "normalize": "auto"},
    "layers": [
        {"type": "conv2d", "name": "c1", "filters": 2, "kernel": 3, "padding": "same", "activation": "relu"},
        {"type": "batchnorm", "name": "bn1"},
        {"type": "conv2d", "name": "c2", "filters": 2, "kernel": 3, "padding": 1, "use_bias": False},
        {"type": "add", "name": "a1", "inputs": ["bn1", "c2"]},
        {"type": "maxpool", "name": "p1", "pool": 2},
        {"type": "avgpool", "name": "p2", "inputs": ["a1"], "pool": 2, "stride": 2},
        {"type": "concat", "name": "cat", "inputs": ["p1", "p2"], "axis": 0},
        {"type": "leaky_relu", "alpha": 0.1},
        {"type": "global_avgpool"},
        {"type": "dropout", "rate": 0.1},
        {"type": "dense", "units": 3, "init": "glorot"},
        {"type": "softmax"},
    ],
    "loss": "cross_entropy",
    "optimizer": {"type": "adamw", "lr": 0.01, "weight_decay": 0.001},
    "train": {"epochs": 1, "batch_size": 4, "seed": 3, "validation_split": 0.25, "shuffle": True},
    "data": {"train": {"format": "idx", "images": "img.idx", "labels": "lab.idx", "limit": 12},
             "classes": ["a", "b", "c"]},
    "output": "tiny.bin",
}


TINY_TEXT = {
    "name": "tiny-text",
    "layers": [
        {"type": "embedding", "name": "emb", "input_dim": "vocab", "output_dim": 8, "positional": True},
        {"type": "layernorm", "name": "ln1", "eps": 1e-5},
        {"type": "attention", "name": "att", "heads": 2, "causal": True, "dropout": 0.1},
        {"type": "add", "name": "res", "inputs": ["att", "emb"]},
        {"type": "gru", "name": "gru", "units": 6, "return_sequences": True},
        {"type": "lstm", "name": "lstm", "units": 5, "return_sequences": True, "use_bias": True},
        {"type": "dense", "name": "head", "units": "vocab"},
        {"type": "softmax"},
    ],
    "loss": "cross_entropy",
    "optimizer": {"type": "adam", "lr": 0.01},
    "train": {"epochs": 1, "batch_size": 4, "seed": 1, "validation_split": 0.2},
    "data": {"train": {"format": "text", "path": "t.txt", "sequence_length": 8}},
    "output": "tiny_text.bin",
}


def spec_seeds():
    mdir = os.path.join(ROOT, "models")
    for f in sorted(os.listdir(mdir)):
        if f.endswith(".json"):
            with open(os.path.join(mdir, f), "rb") as fh:
                put("spec", f, fh.read())
    put("spec", "tiny_cnn.json", json.dumps(TINY_CNN, indent=1))
    put("spec", "tiny_text.json", json.dumps(TINY_TEXT, indent=1))
    regress = {
        "input": {"shape": [3], "normalize": {"mean": [0, 1, 2], "std": [1, 2, 3]}},
        "layers": [{"type": "dense", "units": 4, "activation": "tanh"}, {"type": "elu", "alpha": 1.0},
                   {"type": "gelu"}, {"type": "sigmoid"}, {"type": "dense", "units": 2}],
        "loss": "mse", "optimizer": "sgd",
        "train": {"epochs": 0, "batch_size": 1},
        "data": {"train": {"format": "csv", "path": "r.csv", "label": ["y", 1], "header": True}},
    }
    put("spec", "regress.json", json.dumps(regress))
    bce = {
        "input": {"shape": [2]},
        "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
        "loss": "binary_crossentropy",
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        "data": {"train": {"format": "list", "path": "l.csv"}, "test": {"format": "images", "path": "imgs"}},
    }
    put("spec", "bce.json", json.dumps(bce))
    put("spec", "flat.json", '{"input":{"shape":[2,3,4]},"layers":[{"type":"flatten"},{"type":"relu"},'
        '{"type":"dense","units":2}]}')


# ------------------------------------------------------------------- csv
def csv_seeds():
    with open(os.path.join(ROOT, "data", "iris.csv")) as f:
        lines = f.read().splitlines()
    put("csv", "iris_head.csv", "\n".join(lines[:12]) + "\n")
    put("csv", "iris_noheader.csv", "\n".join(lines[1:6]) + "\n")
    put("csv", "regress.csv", "x1,x2,y\n1.5,2,3.25\n-4e3,0.001,+6\n7,8,9\n")
    put("csv", "int_labels.csv", "a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,3\n")
    put("csv", "quoted_crlf_bom.csv",
        b"\xef\xbb\xbf\"f 1\",\"f,2\",species\r\n  1.0 ,\t2.0,\"set\"\"osa\"\r\n\r\n3,4,\"multi\nline\"\r\n")
    put("csv", "ints_nohdr.csv", "0,1,2,3,4\n5,6,7,8,9\n")
    put("csv", "one_row.csv", "x,y,z,w,species\n")
    put("csv", "numbers.csv", "a,b,c\n1e38,-1e-38,0.000000000000000000001\n123456789012345678901234,.5,5.\n")


# ------------------------------------------------------------------- idx
def idx_file(dtype, dims, payload):
    return struct.pack(">BBBB", 0, 0, dtype, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_input(flags, images, labels):
    return bytes([flags]) + struct.pack("<H", len(images)) + images + labels


def idx_seeds():
    n, h, w = 3, 4, 4
    pix = bytes((i * 37) % 256 for i in range(n * h * w))
    img = idx_file(0x08, [n, h, w], pix)
    lab = idx_file(0x08, [n], bytes([0, 2, 1]))
    put("idx", "raw", idx_input(0, img, lab))
    put("idx", "gzip_both", idx_input(3, img, lab))
    put("idx", "gzip_images_limit1", idx_input(1 | (1 << 3), img, lab))
    put("idx", "no_labels_limit2", idx_input(4 | (2 << 3), img, b""))
    put("idx", "pregzipped", idx_input(0, gzip.compress(img), gzip.compress(lab)))
    fl = b"".join(struct.pack(">f", v) for v in (0.0, 0.5, -1.0, 3.25, 1e-3, 2.0))
    put("idx", "float32_2d", idx_input(0, idx_file(0x0D, [2, 3], fl), idx_file(0x08, [2], bytes([1, 0]))))
    hwc = bytes(range(2 * 2 * 2 * 3))
    put("idx", "hwc_4d", idx_input(2, idx_file(0x08, [2, 2, 2, 3], hwc), idx_file(0x08, [2], bytes([5, 9]))))
    put("idx", "limit100", idx_input(3 << 3, img, lab))


# ----------------------------------------------------------------- image
def png(w, h, channels, pixels, bitdepth=8, palette=None):
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels] if palette is None else 3
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    stride = w * (1 if palette else channels) * bitdepth // 8
    raw = b"".join(b"\x00" + pixels[y * stride:(y + 1) * stride] for y in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bitdepth, ctype, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp24(w, h, rgb):
    row = (w * 3 + 3) & ~3
    data = b""
    for y in range(h - 1, -1, -1):
        r = b"".join(bytes(reversed(rgb[(y * w + x) * 3:(y * w + x) * 3 + 3])) for x in range(w))
        data += r + b"\x00" * (row - len(r))
    hdr = struct.pack("<2sIHHI", b"BM", 54 + len(data), 0, 0, 54)
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    return hdr + dib + data


def bmp8(w, h, idx):
    row = (w + 3) & ~3
    pal = b"".join(bytes([i * 60 % 256, i * 90 % 256, i * 30 % 256, 0]) for i in range(4))
    data = b"".join(idx[y * w:(y + 1) * w] + b"\x00" * (row - w) for y in range(h - 1, -1, -1))
    off = 54 + len(pal)
    return struct.pack("<2sIHHI", b"BM", off + len(data), 0, 0, off) + \
        struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, len(data), 0, 0, 4, 0) + pal + data


def gif(w, h, idx):
    """GIF89a, 2-bit palette; LZW with a clear code before every pixel (codes stay 3 bits)."""
    codes, clear, eoi, size = [], 4, 5, 3
    for p in idx:
        codes += [clear, p]
    codes.append(eoi)
    bits, nbits, out = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += size
        while nbits >= 8:
            out.append(bits & 255)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 255)
    sub = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255)) + b"\x00"
    g = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x81, 0, 0)
    g += bytes([0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255])
    g += b"\x21\xf9\x04\x01\x00\x00\x01\x00"  # graphic control: transparent index 1
    g += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02" + sub + b"\x3b"
    return g


def tga(w, h, rgb, rle=False):
    hdr = struct.pack("<BBBHHBHHHHBB", 0, 0, 10 if rle else 2, 0, 0, 0, 0, 0, w, h, 24, 0x20)
    px = [bytes(reversed(rgb[i * 3:i * 3 + 3])) for i in range(w * h)]
    if not rle:
        return hdr + b"".join(px)
    body = b""
    for p in px:  # one raw packet and one run packet alternately
        body += (b"\x80" + p) if len(body) % 2 else (b"\x00" + p)
    return hdr + body


def psd(w, h, chans, data):
    return (b"8BPS" + struct.pack(">H6xHIIHH", 1, chans, h, w, 8, 3) + struct.pack(">III", 0, 0, 0)
            + struct.pack(">H", 0) + data)


def hdr(w, h):
    return (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (h, w)) + bytes(
        (i * 50) % 256 if i % 4 != 3 else 128 for i in range(w * h * 4))


def image_seeds():
    w, h = 5, 4
    grey = bytes((i * 13) % 256 for i in range(w * h))
    rgb = bytes((i * 29) % 256 for i in range(w * h * 3))
    rgba = bytes((i * 31) % 256 for i in range(w * h * 4))
    idx = bytes(i % 4 for i in range(w * h))
    cfg = lambda c, hh, ww: bytes([c, hh - 1, ww - 1])  # channels {1,3,1,3,4}[c % 5], h, w
    put("image", "png_grey_same", cfg(0, h, w) + png(w, h, 1, grey))
    put("image", "png_rgb_resize", cfg(1, 7, 3) + png(w, h, 3, rgb))
    put("image", "png_rgba_c4", cfg(4, 2, 2) + png(w, h, 4, rgba))
    put("image", "png_palette", cfg(1, 4, 5) + png(w, h, 1, idx, palette=bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])))
    put("image", "png_greyalpha", cfg(0, 3, 3) + png(2, 2, 2, bytes([10, 255, 20, 128, 30, 0, 40, 64])))
    put("image", "png_16bit", cfg(0, 2, 2) + png(2, 2, 1, bytes([1, 2, 3, 4, 5, 6, 7, 8]), bitdepth=16))
    put("image", "bmp24", cfg(1, h, w) + bmp24(w, h, rgb))
    put("image", "bmp8", cfg(0, 8, 8) + bmp8(w, h, idx))
    put("image", "gif", cfg(3, h, w) + gif(w, h, idx))
    put("image", "tga", cfg(1, 2, 6) + tga(w, h, rgb))
    put("image", "tga_rle", cfg(0, h, w) + tga(w, h, rgb, rle=True))
    put("image", "pgm", cfg(0, 3, 3) + b"P5\n%d %d\n255\n" % (w, h) + grey)
    put("image", "ppm", cfg(1, h, w) + b"P6\n# comment\n%d %d\n255\n" % (w, h) + rgb)
    put("image", "psd", cfg(1, h, w) + psd(w, h, 3, rgb))
    put("image", "hdr", cfg(3, h, w) + hdr(w, h))
    for f in ("boot.jpg", "sneaker_photo.jpg", "dress.png"):
        with open(os.path.join(ROOT, "data", "samples", f), "rb") as fh:
            put("image", "sample_" + f.replace(".", "_"), cfg(1, 28, 28) + fh.read())


# ------------------------------------------------------------ list, text
def list_seeds():
    put("list", "header.csv", "path,label\nimgs/a.png,cat\nb.jpg,dog\n/abs/c.png,cat\n")
    put("list", "ints_crlf.csv", "a.png,0\r\nb.png,2\r\n\r\nc.png,1\r\n")
    put("list", "quoted_bom.csv", b"\xef\xbb\xbf\"x, y.png\" , \"say \"\"hi\"\"\"\n\t z.png\t,cat\n")


def text_seeds():
    corpus = b"In the beginning God created the heaven and the earth.\nAnd the earth was without form.\n"
    put("text", "derived_T8", bytes([7, 0, 0]) + corpus)
    put("text", "derived_T4_val", bytes([3, 1, 0]) + corpus)
    vocab = sorted(set(corpus))
    put("text", "given_vocab", bytes([15, 2, len(vocab)]) + bytes(vocab) + corpus)
    put("text", "missing_byte", bytes([2, 0, 3]) + b"abc" + b"abcabd")


# ------------------------------------------------------------------ tune
def tune_seeds():
    # first byte: even = clblast-*.tune (CLBlast parameters), odd = gemm-*.choice
    direct = "XGEMM_MIN_INDIRECT_SIZE 4611686018427387904 XgemmDirect"
    put("tune", "direct_ok", b"\0" + (direct + " WGD 32 MDIMCD 16 NDIMCD 16 MDIMAD 16 NDIMBD 16 KWID 2 VWMD 1 VWND 2"
                                       " PADA 1 PADB 1\n").encode())
    put("tune", "direct_wgd0", b"\0" + (direct + " WGD 0 MDIMCD 8 NDIMCD 8 MDIMAD 8 NDIMBD 8 KWID 2 VWMD 1 VWND 1"
                                         " PADA 1 PADB 1\n").encode())
    put("tune", "direct_wg65536", b"\0" + (direct + " WGD 256 MDIMCD 256 NDIMCD 256 MDIMAD 256 NDIMBD 256 KWID 2"
                                            " VWMD 1 VWND 1 PADA 1 PADB 1\n").encode())
    put("tune", "xgemm_ok", b"\2" + b"XGEMM_MIN_INDIRECT_SIZE 1000000 Xgemm GEMMK 0 KREG 1 KWG 32 KWI 2 MDIMA 16"
                                    b" MDIMC 16 MWG 64 NDIMB 16 NDIMC 16 NWG 64 SA 1 SB 1 STRM 0 STRN 0 VWM 2 VWN 2\n")
    put("tune", "choices", b"\1" + b"NNRUN_GEMM_CHOICE 1\n0 0 128 512 784 1 native 256 4\n1 0 784 512 128 1 clblast"
                                   b" 128 2\n0 1 128 784 512 1 native 64 8\n")
    put("tune", "choices_bad", b"\1" + b"NNRUN_GEMM_CHOICE 1\n0 0 1 2 3 1 quantum 0 0\n")


# ------------------------------------------------------------------ modelbin
def modelbin_seeds(nnrun):
    if not nnrun:
        print("gen_seeds: no --nnrun: modelbin seeds left as they are", file=sys.stderr)
        return
    t = tempfile.mkdtemp(prefix="nnrun-seeds.")
    try:
        env = dict(os.environ)
        run = lambda *a: subprocess.run([nnrun, *a], check=True, env=env, stdout=subprocess.DEVNULL)
        run("train", os.path.join(ROOT, "models", "iris_mlp.json"), "--epochs", "1", "--quiet",
            "--output", os.path.join(t, "iris.bin"))
        run("train", os.path.join(ROOT, "models", "iris_mlp.json"), "--epochs", "2", "--quiet",
            "--checkpoint-every", "1e", "--checkpoint", os.path.join(t, "iris.ckpt"),
            "--output", os.path.join(t, "iris2.bin"))
        n = 16
        pix = bytes((i * 7) % 256 for i in range(n * 64))
        with open(os.path.join(t, "img.idx"), "wb") as f:
            f.write(idx_file(0x08, [n, 8, 8], pix))
        with open(os.path.join(t, "lab.idx"), "wb") as f:
            f.write(idx_file(0x08, [n], bytes(i % 3 for i in range(n))))
        with open(os.path.join(t, "tiny.json"), "w") as f:
            json.dump(TINY_CNN, f)
        run("train", os.path.join(t, "tiny.json"), "--quiet", "--output", os.path.join(t, "tiny.bin"))
        with open(os.path.join(t, "t.txt"), "w") as f:
            f.write("in the beginning god created the heaven and the earth. " * 3)
        with open(os.path.join(t, "tiny_text.json"), "w") as f:
            json.dump(TINY_TEXT, f)
        run("train", os.path.join(t, "tiny_text.json"), "--quiet", "--output", os.path.join(t, "tiny_text.bin"))
        for src, name in (("iris.bin", "iris_1epoch.model"), ("iris.ckpt", "iris_train.ckpt"),
                          ("tiny.bin", "tiny_cnn.model"), ("tiny_text.bin", "tiny_text.model")):
            with open(os.path.join(t, src), "rb") as fh:
                put("modelbin", name, fh.read())
    finally:
        shutil.rmtree(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnrun", help="nnrun binary used to train the model.bin seeds")
    a = ap.parse_args()
    spec_seeds()
    csv_seeds()
    idx_seeds()
    image_seeds()
    list_seeds()
    text_seeds()
    tune_seeds()
    modelbin_seeds(os.path.abspath(a.nnrun) if a.nnrun else None)


if __name__ == "__main__":
    main()
