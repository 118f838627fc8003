#!/usr/bin/python3
"""PyTorch reference for `make bench`: the same workloads nnrun bench runs,
on synthetic data of the same shapes, and GEMM: OpenBLAS's SGEMM rate through
torch.matmul at the shapes `nnrun bench --gemm` times. Prints one JSON object
per workload.
Run with OMP_WAIT_POLICY=passive (set by the Makefile): on 2 cores PyTorch's
spinning OpenMP threads otherwise fight its BLAS threads."""
import json, os, sys, time

import torch
import torch.nn as nn

torch.manual_seed(0)
torch.set_num_threads(os.cpu_count() or 1)  # the best-configured peer: every core
# NNRUN_TORCH_DEVICE=cuda compares against PyTorch on the GPU (tests/gpu/run.sh)
DEV = torch.device(os.environ.get("NNRUN_TORCH_DEVICE", "cpu"))


def sync():
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10))


def train_rate(net, opt, batch, steps=50):
    x = torch.rand(batch * 4, 1, 28, 28, device=DEV)
    y = torch.randint(0, 10, (batch * 4,), device=DEV)
    lossf = nn.CrossEntropyLoss()

    def step(i):
        j = (i % 4) * batch
        opt.zero_grad()
        loss = lossf(net(x[j:j + batch]), y[j:j + batch])
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    sync()
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    sync()
    return steps * batch / (time.perf_counter() - t)


def infer(net, big=256):
    net.eval()
    x1 = torch.rand(1, 1, 28, 28, device=DEV)
    xb = torch.rand(big, 1, 28, 28, device=DEV)
    lat = []
    with torch.no_grad():
        for i in range(210):
            a = time.perf_counter()
            torch.softmax(net(x1), 1).cpu().numpy()
            if i >= 10:
                lat.append(time.perf_counter() - a)
        net(xb)
        sync()
        t = time.perf_counter()
        for _ in range(10):
            torch.softmax(net(xb), 1).cpu().numpy()
        ips = 10 * big / (time.perf_counter() - t)
    lat.sort()
    return lat[len(lat) // 2] * 1e3, lat[len(lat) * 99 // 100] * 1e3, ips


# (M, N, K, ta, tb) of C = op(A) op(B), the shapes `nnrun bench --gemm` times:
# W1's MLP (forward, dW = X^T dY, dX = dY W^T), W2's LeNet convolutions as GEMMs, 1024^3
GEMM_SHAPES = [(128, 512, 784, 0, 0), (784, 512, 128, 1, 0), (128, 784, 512, 0, 1), (32, 50176, 25, 0, 0),
               (64, 12544, 800, 0, 0), (64, 800, 12544, 0, 1), (1024, 1024, 1024, 0, 0)]


def gemm_rate(m, n, k, ta, tb, samples=7):
    """GFLOP/s of torch.matmul(op(A), op(B)): the median of `samples` timings,
    each of back-to-back calls lasting >= ~20 ms (idle gaps between calls lower
    the rate). Transposes are .t() views of contiguous tensors, so that BLAS
    gets the transposed operand (sgemm with 'T'), as nnrun's GEMM does. Also
    returns the CPU time the process got over threads x wall time (CPU only):
    well below 1 means other processes took cores during the timings."""
    a = torch.rand((k, m) if ta else (m, k), device=DEV)
    b = torch.rand((n, k) if tb else (k, n), device=DEV)
    a, b = (a.t() if ta else a), (b.t() if tb else b)
    c = torch.matmul(a, b)  # warm-up (thread pool, page faults)
    sync()
    t = time.perf_counter()
    reps = 0
    while reps < 3 or time.perf_counter() - t < 0.02:
        torch.matmul(a, b, out=c)
        reps += 1
    sync()
    times = []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b, out=c)
        sync()
        times.append((time.perf_counter() - t) / reps)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    times.sort()
    share = cpu / (wall * torch.get_num_threads()) if DEV.type == "cpu" else None
    return 2.0 * m * n * k / times[len(times) // 2] * 1e-9, share


which = sys.argv[1:] or ["W1", "W2", "W3", "GEMM"]
for w in which:
    if w == "W1":
        net = mlp().to(DEV)
        sps = train_rate(net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), 128)
        print(json.dumps({"workload": "W1", "train_samples_per_s": sps, "threads": torch.get_num_threads()}))
    elif w == "W2":
        net = lenet().to(DEV)
        sps = train_rate(net, torch.optim.Adam(net.parameters(), lr=1e-3), 64)
        print(json.dumps({"workload": "W2", "train_samples_per_s": sps}))
    elif w == "W3":
        p50, p99, ips = infer(lenet().to(DEV))
        print(json.dumps({"workload": "W3", "infer_batch1_p50_ms": p50, "infer_batch1_p99_ms": p99,
                          "infer_samples_per_s": ips}))
    elif w == "GEMM":
        print(json.dumps({"workload": "GEMM", "device": DEV.type, "threads": torch.get_num_threads(),
                          "shapes": [dict(zip(("m", "n", "k", "ta", "tb", "gflops", "cpu_share"), s + gemm_rate(*s)))
                                     for s in GEMM_SHAPES]}))
    sys.stdout.flush()
