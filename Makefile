# nnrun - see README.md.  `make` builds ./nnrun; `make demo` and `make test`
# first install any missing Debian packages (.ci/deps).
CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -MMD -MP \
           -DCL_TARGET_OPENCL_VERSION=120 -Isrc -I/usr/include/stb
LDLIBS  += -lclblast -lOpenCL -lcjson -lstb -lz -lm -lpthread
BUILD   ?= build

SRC    := $(wildcard src/*.c src/cli/*.c src/layers/*.c src/data/*.c)
LIBSRC := $(filter-out src/main.c,$(SRC))
OBJ    := $(SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/cl_embed.o
LIBOBJ := $(LIBSRC:src/%.c=$(BUILD)/%.o) $(BUILD)/cl_embed.o
CLSRC  := $(sort $(wildcard cl/*.cl))
TESTSRC := $(wildcard tests/unit/*.c)

.PHONY: all deps demo test test-unit bench clean
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

$(BUILD)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

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
	@$(MAKE) --no-print-directory nnrun $(BUILD)/unit_tests
	@tests/run.sh

# Benchmarks (never part of the tests): nnrun vs PyTorch on W1, W2, W3.
bench: deps
	@$(MAKE) --no-print-directory nnrun
	@tests/bench/run.sh

clean:
	rm -rf $(BUILD) nnrun

-include $(OBJ:.o=.d)
