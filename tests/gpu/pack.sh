#!/bin/sh
# tests/gpu/pack.sh - run HERE (Debian 12, no GPU) before using a lent GPU
# machine: builds ./nnrun and build/unit_tests and fills the git-ignored
# folder .gpu/ with everything tests/gpu/run.sh needs over there, where
# nothing can be installed or downloaded:
#   .gpu/lib/            the shared libraries nnrun needs that such a machine
#                        lacks (ocl-icd's libOpenCL, CLBlast, cJSON), unpacked
#                        from Debian's packages (apt-get download + dpkg -x)
#   .gpu/fashion-mnist/  the Fashion-MNIST files (package dataset-fashion-mnist)
# Then call the device tool with carry [".gpu", "nnrun", "build/unit_tests"]
# and the command `sh tests/gpu/run.sh` (see that file).
set -eu
cd "$(dirname "$0")/../.."
make --no-print-directory nnrun build/unit_tests
rm -rf .gpu
mkdir -p .gpu/lib .gpu/deb .gpu/fashion-mnist
(cd .gpu/deb && apt-get download ocl-icd-libopencl1 libclblast1 libcjson1)
for f in .gpu/deb/*.deb; do dpkg -x "$f" .gpu/root; done
find .gpu/root -name '*.so*' ! -name '*.gz' \( -type f -o -type l \) -exec cp -P {} .gpu/lib/ \;
rm -rf .gpu/root .gpu/deb
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fashion-mnist/
ls -l .gpu/lib
du -sh .gpu
