#!/bin/sh
# tests/gpu/run.sh - run THERE, on a lent GPU machine, from the repository
# root, after tests/gpu/pack.sh here; the device tool's call:
#   carry: [".gpu", "nnrun", "build/unit_tests"]
#   command: sh tests/gpu/run.sh
# It registers the NVIDIA OpenCL driver through OCL_ICD_VENDORS (a folder
# holding nvidia.icd: ocl-icd then ignores /etc/OpenCL/vendors), lists the
# devices, runs every test suite on the GPU (NNRUN_DEVICE=gpu) and make
# bench's workloads (W1-W3) against PyTorch on the same GPU
# (NNRUN_TORCH_DEVICE=cuda). Logs go to $OUT (or .gpu/out). Without an
# NVIDIA library it says so and stops: PoCL is not carried.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/.gpu/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$ROOT/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
lib=$(ls /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 \
    2>/dev/null | head -n 1)
[ -n "$lib" ] || lib=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then
    echo "tests/gpu/run.sh: no libnvidia-opencl.so.1 on this machine" >&2
    exit 69
fi
mkdir -p "$ROOT/.gpu/icd"
echo "$lib" >"$ROOT/.gpu/icd/nvidia.icd"
export OCL_ICD_VENDORS=$ROOT/.gpu/icd
export NNRUN_DEVICE=gpu
export NNRUN_CACHE_DIR=$ROOT/.gpu/cache
# the models name /usr/share/datasets/fashion-mnist (we are root there)
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    mkdir -p /usr/share/datasets && cp -r "$ROOT/.gpu/fashion-mnist" /usr/share/datasets/
fi
nvidia-smi -L 2>&1 | tee "$OUT/nvidia-smi.txt"
./nnrun devices 2>&1 | tee "$OUT/devices.txt"
./nnrun devices | grep -q '^\*.*NVIDIA' || { echo "the NVIDIA OpenCL device is not the default" >&2; exit 69; }
rc=0
tests/run.sh >"$OUT/tests.log" 2>&1 || rc=1
tail -n 3 "$OUT/tests.log"
PY=$(command -v python3) NNRUN_TORCH_DEVICE=cuda tests/bench/run.sh 2>&1 | tee "$OUT/bench.txt"
./nnrun bench models/fashion_mlp.json --batch-size 8192 --json >"$OUT/w1_b8192.json" 2>&1 || rc=1
cat "$OUT/w1_b8192.json"
exit $rc
