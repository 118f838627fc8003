#!/usr/bin/python3
"""PyTorch peer of models/fashion_lenet.json (issue #12, part 2): the same
network, initialisation and recipe, trained on Fashion-MNIST for 10 epochs
with seeds 1, 2, 3; prints the test accuracy of every seed and their mean.

    OMP_WAIT_POLICY=passive nice -n 5 tests/bench/peer_lenet.py [--seeds 1,2,3] [--epochs 10]

The same as nnrun:
- network: conv 32 5x5 + relu -> maxpool 2 -> conv 64 5x5 + relu -> maxpool 2
  -> flatten -> dense 128 + relu -> dense 10 (softmax fused into the loss);
- init: PyTorch's defaults for Conv2d/Linear (uniform +-1/sqrt(fan_in) for
  weights and biases), which is what "init": "torch" gives in nnrun;
- data: /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
  pixels / 255, then "normalize": "auto": one mean and one std (one channel)
  over the 60000 training images, applied to train and test;
- recipe: Adam lr 0.001 (PyTorch's betas and eps, as nnrun's), batch 64,
  reshuffled every epoch, the last batch partial, mean cross-entropy; no
  validation split, no augmentation; test accuracy after the last epoch.
torch.set_num_threads(2); --json FILE appends one JSON line per seed."""
import argparse, gzip, json, os, struct, time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        b = f.read()
    magic = struct.unpack(">I", b[:4])[0]
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, b[4 : 4 + 4 * nd])
    t = torch.frombuffer(bytearray(b[4 + 4 * nd :]), dtype=torch.uint8)
    return t.view(*dims)


def lenet():
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", help="append one JSON line per seed to this file")
    a = ap.parse_args()
    torch.set_num_threads(2)
    xtr = idx("train-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    ytr = idx("train-labels-idx1-ubyte.gz").long()
    xte = idx("t10k-images-idx3-ubyte.gz").float().div_(255).unsqueeze(1)
    yte = idx("t10k-labels-idx1-ubyte.gz").long()
    mean, std = xtr.mean().item(), xtr.std(unbiased=False).item()
    xtr = (xtr - mean) / std
    xte = (xte - mean) / std
    accs = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        torch.manual_seed(seed)
        net = lenet()
        opt = torch.optim.Adam(net.parameters(), lr=0.001)
        g = torch.Generator().manual_seed(seed)
        t0 = time.time()
        per_epoch = []
        for ep in range(a.epochs):
            net.train()
            perm = torch.randperm(len(xtr), generator=g)
            for s in range(0, len(xtr), 64):
                i = perm[s : s + 64]
                loss = F.cross_entropy(net(xtr[i]), ytr[i])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                correct = sum((net(xte[s : s + 1000]).argmax(1) == yte[s : s + 1000]).sum().item()
                              for s in range(0, len(xte), 1000))
            per_epoch.append(correct / len(xte))
            print("  seed %d epoch %d: test accuracy %.4f" % (seed, ep + 1, per_epoch[-1]), flush=True)
        accs.append(per_epoch[-1])
        secs = time.time() - t0
        print("seed %d: test accuracy %.4f (%.0f s)" % (seed, accs[-1], secs), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps({"model": "fashion_lenet", "framework": "pytorch", "seed": seed,
                                    "epochs": a.epochs, "accuracy": accs[-1], "per_epoch": per_epoch,
                                    "seconds": round(secs, 1)}) + "\n")
    print("mean over seeds %s: %.4f" % (a.seeds, sum(accs) / len(accs)))


if __name__ == "__main__":
    main()
