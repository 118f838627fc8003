# nnrun - see README.md.  `make` builds ./nnrun; `make demo` and `make test`
# first install any missing Debian packages (.ci/deps).
CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -MMD -MP \
           -DCL_TARGET_OPENCL_VERSION=120 -Isrc -I/usr/include/stb -I$(BUILD)/onnx
LDLIBS  += -lclblast -lOpenCL -lcjson -lstb -lprotobuf-c -lz -lm -lpthread
# MPI (Open MPI from Debian's libopenmpi-dev): data-parallel training under
# mpirun (src/dist.c). One binary: a plain run never initialises MPI.
MPI_CFLAGS ?= $(shell mpicc --showme:compile 2>/dev/null || pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   ?= $(shell mpicc --showme:link 2>/dev/null || pkg-config --libs ompi-c 2>/dev/null)
CFLAGS  += $(MPI_CFLAGS)
LDLIBS  += $(MPI_LIBS)
BUILD   ?= build
# ONNX: C generated at build time from the onnx.proto of Debian's libonnx-dev
# by protoc-c (protobuf-c-compiler) into $(BUILD)/onnx; nothing generated is
# committed. Every build (plain, asan, fuzz) compiles that one generated file.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
ONNX_GEN   := $(BUILD)/onnx/onnx.pb-c.c

SRC    := $(wildcard src/*.c src/cli/*.c src/layers/*.c src/data/*.c)
LIBSRC := $(filter-out src/main.c,$(SRC))
OBJ    := $(SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/cl_embed.o $(BUILD)/onnx/onnx.pb-c.o
LIBOBJ := $(LIBSRC:src/%.c=$(BUILD)/%.o) $(BUILD)/cl_embed.o $(BUILD)/onnx/onnx.pb-c.o
CLSRC  := $(sort $(wildcard cl/*.cl))
TESTSRC := $(wildcard tests/unit/*.c)

.PHONY: all deps demo test test-unit test-clblast test-portability bench peer peer-lenet clean install uninstall
all: nnrun

nnrun: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

$(BUILD)/embedcl: src/tools/embedcl.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -o $@ $<

$(BUILD)/cl_embed.c: $(BUILD)/embedcl $(CLSRC)
	$(BUILD)/embedcl $@ $(CLSRC)

$(BUILD)/cl_embed.o: $(BUILD)/cl_embed.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: src/%.c | $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# protoc-c writes onnx.pb-c.c and onnx.pb-c.h beside the copied .proto.
$(ONNX_GEN): $(ONNX_PROTO)
	@mkdir -p $(BUILD)/onnx
	cp $(ONNX_PROTO) $(BUILD)/onnx/onnx.proto
	cd $(BUILD)/onnx && protoc-c --c_out=. onnx.proto

$(BUILD)/onnx/onnx.pb-c.o: $(ONNX_GEN)
	$(CC) $(filter-out -W%,$(CFLAGS)) -c $< -o $@

# Unit tests: every kernel against a plain-C reference, loaders, model.bin.
$(BUILD)/unit_tests: $(TESTSRC) $(LIBOBJ)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $(TESTSRC) $(LIBOBJ) $(LDLIBS)

deps:
	@.ci/deps

# The main job: Fashion-MNIST MLP (installed by dataset-fashion-mnist), then
# predictions on the bundled sample images; Iris from data/ as a CSV example.
demo: deps
	@$(MAKE) --no-print-directory nnrun
	./nnrun devices
	./nnrun summary models/fashion_mlp.json
	./nnrun train models/fashion_mlp.json
	./nnrun eval fashion_mlp.bin --min-accuracy 0.85
	./nnrun infer fashion_mlp.bin data/samples/shirt.png data/samples/boot.jpg data/samples/sneaker_photo.jpg --top 2
	./nnrun infer fashion_mlp.bin data/samples
	./nnrun train models/iris_mlp.json
	./nnrun infer iris.bin data/iris_test.csv --top 2 --json | head -n 3

test: deps
	@$(MAKE) --no-print-directory nnrun $(BUILD)/unit_tests $(REPLAY_BINS)
	@tests/run.sh

# The whole suite with CLBlast forced behind the GEMM seam (`make test` runs
# the device's default: nnrun's own GEMM on CPU devices). CI runs both.
test-clblast: deps
	@$(MAKE) --no-print-directory nnrun $(BUILD)/unit_tests $(REPLAY_BINS)
	@NNRUN_GEMM=clblast tests/run.sh

# The unit, cli and e2e suites on a second OpenCL implementation (Intel's CPU
# runtime from PyPI, installed into a cache folder), beside PoCL.
test-portability: deps
	@$(MAKE) --no-print-directory nnrun $(BUILD)/unit_tests
	@tests/portability.sh

# Benchmarks (never part of the tests): nnrun vs PyTorch on W1, W2, W3.
bench: deps
	@$(MAKE) --no-print-directory nnrun
	@tests/bench/run.sh

# Peer checks against PyTorch (never part of the tests; need python3-torch):
# validation bits/char of the char-LSTM and char-transformer, three seeds each
# (PEER_ARGS, e.g. PEER_ARGS="--limit 0 --variants default,torch"), and
# LeNet's test accuracy over three seeds in PyTorch.
peer: deps
	@$(MAKE) --no-print-directory nnrun
	@OMP_WAIT_POLICY=passive tests/bench/peer_seq.py $(PEER_ARGS)

peer-lenet:
	@OMP_WAIT_POLICY=passive tests/bench/peer_lenet.py

clean:
	rm -rf $(BUILD) nnrun

# `make install PREFIX=/usr/local DESTDIR=...`: the binary, the man page
# nnrun(1) and the bash completion; `make uninstall` removes exactly those.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
COMPDIR ?= $(PREFIX)/share/bash-completion/completions

install: nnrun
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPDIR)
	install -m 755 nnrun $(DESTDIR)$(BINDIR)/nnrun
	install -m 644 docs/nnrun.1 $(DESTDIR)$(MANDIR)/nnrun.1
	install -m 644 docs/nnrun.bash $(DESTDIR)$(COMPDIR)/nnrun

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nnrun $(DESTDIR)$(MANDIR)/nnrun.1 $(DESTDIR)$(COMPDIR)/nnrun

-include $(OBJ:.o=.d)

# ---------------------------------------------------------------------------
# Fuzzing and sanitizers (tests/fuzz/README.md). `make fuzz` installs clang and
# libFuzzer when missing (tests/fuzz/deps), builds the libFuzzer targets in
# $(FUZZ_BUILD) and runs each for FUZZ_SECONDS. `make test-asan` builds
# ./nnrun-asan and $(ASAN_BUILD)/unit_tests with AddressSanitizer and UBSan and
# runs tests/run.sh against them (LeakSanitizer on, tests/sanitize.supp).
# intercept_tls_get_addr=0: ASan's tracking of dynamic TLS (blocks of
# dlopen'd libraries: PoCL loads LLVM and its kernels that way) sometimes
# records a garbage range ("DTLS 7 at 0x9a5-0x800001aa7" with
# LSAN_OPTIONS=verbosity=1:log_threads=1), and LeakSanitizer's tracer then
# crashes at exit ("Tracer caught signal 11: addr=0x9a8"; 2-7 of 12 runs of
# one iris training here, 0 of 24 with the option).
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := spec csv idx image modelbin list text onnx tune
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(filter-out -O% -g,$(CFLAGS))
FUZZ_LIBOBJ  := $(LIBSRC:src/%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/cl_embed.o $(FUZZ_BUILD)/onnx/onnx.pb-c.o
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
# The same targets without libFuzzer: tests/fuzz/replay_main.c runs each on
# the reproducers in tests/fuzz/crashes/ (tests/fuzz/replay.sh, in `make test`).
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/replay/fuzz_%)

ASAN_CC      ?= $(CC)
ASAN_BUILD   ?= build-asan
ASAN_CFLAGS   = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                $(filter-out -O% -g,$(CFLAGS))
ASAN_OBJ     := $(SRC:src/%.c=$(ASAN_BUILD)/%.o) $(ASAN_BUILD)/cl_embed.o $(ASAN_BUILD)/onnx/onnx.pb-c.o
ASAN_LIBOBJ  := $(LIBSRC:src/%.c=$(ASAN_BUILD)/%.o) $(ASAN_BUILD)/cl_embed.o $(ASAN_BUILD)/onnx/onnx.pb-c.o

.PHONY: fuzz fuzz-build test-asan

fuzz-build: deps
	@FUZZ_CC=$(FUZZ_CC) tests/fuzz/deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

$(FUZZ_BUILD)/%.o: src/%.c | $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/onnx/onnx.pb-c.o: $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -W%,$(FUZZ_CFLAGS)) -c $< -o $@

$(FUZZ_BUILD)/cl_embed.c: $(BUILD)/embedcl $(CLSRC)
	@mkdir -p $(dir $@)
	$(BUILD)/embedcl $@ $(CLSRC)

$(FUZZ_BUILD)/cl_embed.o: $(FUZZ_BUILD)/cl_embed.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libnnrun.a: $(FUZZ_LIBOBJ)
	rm -f $@
	ar rcs $@ $(FUZZ_LIBOBJ)

# stb_image compiled into fuzz_image with coverage and ASan (not UBSan: stb's
# own shifts of negative values would drown everything else).
$(FUZZ_BUILD)/stb_impl.o: tests/fuzz/stb_impl.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -O1 -g -fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer -I/usr/include/stb -w -c $< -o $@

$(FUZZ_BUILD)/fuzz_image: $(FUZZ_BUILD)/stb_impl.o

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h tests/fuzz/fuzz_model.h $(FUZZ_BUILD)/libnnrun.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $(filter %.c %.o,$^) $(FUZZ_BUILD)/libnnrun.a $(LDLIBS)

$(BUILD)/replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h tests/fuzz/replay_main.c $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay_main.c $(LIBOBJ) $(LDLIBS)

test-asan: deps
	@$(MAKE) --no-print-directory nnrun-asan $(ASAN_BUILD)/unit_tests $(FUZZ_TARGETS:%=$(ASAN_BUILD)/replay/fuzz_%)
	@NNRUN=$(CURDIR)/nnrun-asan UNIT_TESTS=$(ASAN_BUILD)/unit_tests REPLAY_DIR=$(ASAN_BUILD)/replay \
	 ASAN_OPTIONS=detect_leaks=1:intercept_tls_get_addr=0 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 tests/run.sh

nnrun-asan: $(ASAN_OBJ)
	$(ASAN_CC) $(ASAN_CFLAGS) $(LDFLAGS) -o $@ $(ASAN_OBJ) $(LDLIBS)

$(ASAN_BUILD)/%.o: src/%.c | $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_CFLAGS) -c $< -o $@

$(ASAN_BUILD)/onnx/onnx.pb-c.o: $(ONNX_GEN)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(filter-out -W%,$(ASAN_CFLAGS)) -c $< -o $@

$(ASAN_BUILD)/cl_embed.c: $(BUILD)/embedcl $(CLSRC)
	@mkdir -p $(dir $@)
	$(BUILD)/embedcl $@ $(CLSRC)

$(ASAN_BUILD)/cl_embed.o: $(ASAN_BUILD)/cl_embed.c
	$(ASAN_CC) $(ASAN_CFLAGS) -c $< -o $@

$(ASAN_BUILD)/unit_tests: $(TESTSRC) $(ASAN_LIBOBJ)
	$(ASAN_CC) $(ASAN_CFLAGS) -Itests/unit -o $@ $(TESTSRC) $(ASAN_LIBOBJ) $(LDLIBS)

$(ASAN_BUILD)/replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h tests/fuzz/replay_main.c $(ASAN_LIBOBJ)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay_main.c $(ASAN_LIBOBJ) $(LDLIBS)

-include $(FUZZ_LIBOBJ:.o=.d) $(ASAN_OBJ:.o=.d)
