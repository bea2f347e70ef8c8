# red - build, test, bench.
#   make                 build ./red (SIMD path auto-detected from the build host)
#   make test            build and run the Criterion suite (installs libcriterion-dev if missing)
#   make bench           standard matmul/svd sweep, against OpenBLAS/LAPACK when installed
#   make reproduce       the paper's experiment on the embedded teacher (red reproduce; ARGS=--quick ...)
#   make teacher         regenerate data/teacher from nothing (data/make_teacher.sh)
#   make fuzz            each libFuzzer harness of tests/fuzz/ (FUZZ_SECONDS=N each, clang)
#   make clean
# Variables:
#   SIMD=auto|avx512|avx2|neon|scalar   force a path (auto picks the best the host supports)
#   CC=clang                            any C99 compiler with GCC-style flags
#   SAN=1                               -fsanitize=address,undefined (separate build dir)
#   SAN=thread                          -fsanitize=thread (ThreadSanitizer; build/...-tsan)
#   WERROR=1                            treat warnings as errors (CI)
#   MPI=1                               build with mpicc against Open MPI (installs libopenmpi-dev if
#                                       missing): `mpirun -np N ./red train|distill|reproduce ...`

CC      ?= cc
SIMD    ?= auto
SAN     ?= 0
WERROR  ?= 0
MPI     ?= 0

# ---- Open MPI (MPI=1): mpicc, installed with apt-get when missing; the
# default build has no MPI symbols (dist.c's one-rank half) ---------------
ifeq ($(MPI),1)
  ifeq (,$(shell command -v mpicc))
    $(info red: Open MPI not found; installing libopenmpi-dev and openmpi-bin with apt-get)
    MPI_INSTALL := $(shell S=$$([ "$$(id -u)" = 0 ] || echo sudo); $$S apt-get update -qq >&2 && \
                     DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq libopenmpi-dev openmpi-bin >&2; echo done)
  endif
  CC := mpicc
  override CFLAGS += -DRED_MPI
endif

# ---- SIMD selection -------------------------------------------------------
ifeq ($(SIMD),auto)
  HOST_DEFS := $(shell $(CC) -march=native -dM -E -x c /dev/null 2>/dev/null || $(CC) -dM -E -x c /dev/null 2>/dev/null)
  ifneq (,$(findstring __AVX512F__,$(HOST_DEFS)))
    SIMD_PATH := avx512
  else ifneq (,$(and $(findstring __AVX2__,$(HOST_DEFS)),$(findstring __FMA__,$(HOST_DEFS))))
    SIMD_PATH := avx2
  else ifneq (,$(findstring __aarch64__,$(HOST_DEFS)))
    SIMD_PATH := neon
  else
    SIMD_PATH := scalar
  endif
  SIMD_HOW := auto-detected
else
  SIMD_PATH := $(SIMD)
  SIMD_HOW := forced
endif

ifeq ($(SIMD_PATH),avx512)
  SIMD_FLAGS := -mavx512f -mavx2 -mfma -DRED_SIMD_AVX512
else ifeq ($(SIMD_PATH),avx2)
  SIMD_FLAGS := -mavx2 -mfma -DRED_SIMD_AVX2
else ifeq ($(SIMD_PATH),neon)
  SIMD_FLAGS := -DRED_SIMD_NEON
else ifeq ($(SIMD_PATH),scalar)
  SIMD_FLAGS :=
else
  $(error SIMD must be auto, avx512, avx2, neon or scalar (got '$(SIMD)'))
endif
ifeq ($(filter clean print-bench-bin print-build,$(MAKECMDGOALS)),)
  $(info red: SIMD=$(SIMD_PATH) ($(SIMD_HOW)), CC=$(CC))
endif

# ---- flags ----------------------------------------------------------------
# -ffp-contract=off: no FMA contraction behind our back (clang contracts by
# default), so scalar code rounds the same way everywhere; the kernels put
# their FMAs in by hand. -fno-math-errno lets sqrt be one instruction; it is
# not -ffast-math (no reassociation, no finite-math assumptions).
CFLAGS_BASE := -std=c99 -pedantic -Wall -Wextra -O3 -ffp-contract=off -fno-math-errno -pthread
ifeq ($(WERROR),1)
  CFLAGS_BASE += -Werror
endif
# one build directory per configuration, so switching SIMD, compiler or
# sanitizers never mixes objects: build/<simd>-<compiler>[-san]/
# (CC="gcc -m32" builds in build/<simd>-gcc-m32/)
EMPTY :=
BUILD := build/$(SIMD_PATH)-$(subst $(EMPTY) $(EMPTY),,$(notdir $(CC)))
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
  LDFLAGS_SAN := -fsanitize=address,undefined
  BUILD := $(BUILD)-san
endif
ifeq ($(SAN),thread)
  CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer -g
  LDFLAGS_SAN := -fsanitize=thread
  BUILD := $(BUILD)-tsan
endif
CFLAGS_ALL := $(CFLAGS_BASE) $(SIMD_FLAGS) $(CFLAGS)
LDLIBS_ALL := $(LDFLAGS_SAN) $(LDFLAGS) -pthread -lm

LIB_SRC   := red.c tensor.c linalg.c io.c json.c model.c optim.c dist.c hfdir.c tokenizer.c unicode.c data.c train.c distill.c reproduce.c eval/pyrandom.c eval/gsm8k.c eval/generate.c eval/choice.c eval/lmeval.c eval/report.c eval/tasks.c eval/svg.c
LIB_SRC   += gguf.c llama2c.c
# the benchmarks are part of the binary only, never of the library the tests link
CLI_SRC   := cli.c bench/bench.c bench/bench_tokenize.c
TEST_SRC  := $(wildcard tests/test_*.c)
HEADERS   := red.h red_internal.h simd.h
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all binary test bench clean criterion reproduce teacher
all: red

# the binary of this configuration without replacing ./red (cross builds, CI)
binary: $(BUILD)/red

# ./red is the binary of the last configuration built (default: auto); always
# copied (phony), since an older configuration's binary has an older mtime.
# Copied then renamed, so a long run of the old ./red (training) is not disturbed.
.PHONY: red
red: $(BUILD)/red
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/red: $(LIB_OBJ) $(CLI_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/%.o: %.c $(HEADERS) | $(BUILD)/.dirs
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/.dirs:
	mkdir -p $(BUILD)/bench $(BUILD)/tests $(BUILD)/eval
	touch $@

# ---- tests ----------------------------------------------------------------
CRITERION_H := $(firstword $(wildcard /usr/include/criterion/criterion.h /usr/local/include/criterion/criterion.h))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

criterion:
	@if [ ! -f /usr/include/criterion/criterion.h ] && [ ! -f /usr/local/include/criterion/criterion.h ]; then \
	  echo "red: Criterion not found; installing libcriterion-dev with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libcriterion-dev; \
	fi

$(BUILD)/tests/%.o: tests/%.c $(HEADERS) tests/testutil.h tests/testmodel.h | $(BUILD)/.dirs criterion
	$(CC) $(CFLAGS_ALL) -Wno-pedantic -c -o $@ $<

$(BUILD)/red-tests: $(LIB_OBJ) $(TEST_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ -lcriterion $(LDLIBS_ALL)

# Criterion runs each test in its own process, two at a time (the CI machine has 2 cores).
test: criterion red $(BUILD)/red-tests
	$(BUILD)/red-tests --jobs 2 $(TEST_ARGS)

# ---- benchmarks -----------------------------------------------------------
# The peer binary links OpenBLAS (its bundled LAPACK too) and is never part of ./red.
HASH := \#
HAVE_OPENBLAS := $(shell printf '$(HASH)include <cblas.h>\nint main(void){return 0;}\n' | $(CC) -x c - -o /dev/null -lopenblas 2>/dev/null && echo 1)

$(BUILD)/red-bench-peer: bench/bench.c $(LIB_OBJ) $(BUILD)/bench/bench_tokenize.o $(HEADERS)
	$(CC) $(CFLAGS_ALL) -DRED_BENCH_PEER -o $@ bench/bench.c $(LIB_OBJ) $(BUILD)/bench/bench_tokenize.o -lopenblas $(LDLIBS_ALL)

ifeq ($(HAVE_OPENBLAS),1)
BENCH_BIN := $(BUILD)/red-bench-peer
else
BENCH_BIN := $(BUILD)/red
endif

.PHONY: peer print-bench-bin print-build
peer: $(BENCH_BIN)
print-bench-bin:
	@echo $(BENCH_BIN)
print-build:
	@echo $(BUILD)

bench: red $(BENCH_BIN)
	BENCH_BIN=$(BENCH_BIN) SIMD_PATH=$(SIMD_PATH) sh bench/sweep.sh

# ---- fuzzing ----------------------------------------------------------------
# make fuzz [FUZZ_SECONDS=N] [FUZZ="json npy"] [FUZZ_ARGS=-runs=10000000]:
# every libFuzzer harness tests/fuzz/fuzz_<name>.c (or those named) for N
# seconds each, from the seeds in tests/fuzz/corpus/<name>/ (+ the flags in
# tests/fuzz/<name>.options and tests/fuzz/<name>.dict when present). clang
# builds the library with coverage and ASan+UBSan in build/fuzz/; inputs found
# go to build/fuzz/corpus/<name>/, crashes to build/fuzz/crash-<name>-*.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZ         ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BUILD   := build/fuzz
FUZZ_FLAGS   := -std=c99 -Wall -Wextra -O1 -g -ffp-contract=off -fno-math-errno -pthread -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all $(if $(filter 1,$(WERROR)),-Werror)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-build
.SECONDARY: $(FUZZ_LIB_OBJ)
$(FUZZ_BUILD)/.dirs:
	mkdir -p $(FUZZ_BUILD)/bench $(FUZZ_BUILD)/eval $(FUZZ_BUILD)/corpus
	touch $@

$(FUZZ_BUILD)/%.o: %.c $(HEADERS) | $(FUZZ_BUILD)/.dirs
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) -lm

fuzz-build: $(FUZZ:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: fuzz-build
	@for h in $(FUZZ); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$h; \
	  dict=; [ -f tests/fuzz/$$h.dict ] && dict=-dict=tests/fuzz/$$h.dict; \
	  opts=; [ -f tests/fuzz/$$h.options ] && opts=$$(cat tests/fuzz/$$h.options); \
	  echo "== fuzz $$h: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	      $$dict $$opts $(FUZZ_ARGS) -artifact_prefix=$(FUZZ_BUILD)/crash-$$h- $(FUZZ_BUILD)/corpus/$$h tests/fuzz/corpus/$$h \
	      > $(FUZZ_BUILD)/$$h.log 2>&1 || { tail -40 $(FUZZ_BUILD)/$$h.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_BUILD)/$$h.log; \
	done

# ---- the experiment --------------------------------------------------------
reproduce: red
	./red reproduce $(ARGS)

teacher: red
	sh data/make_teacher.sh

clean:
	rm -rf build red
