# Thin wrapper over CMake. `make demo` and `make test` install missing Debian
# packages first (apt-get, with sudo when not root).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_CC    ?= clang-14
# make fuzz: seconds per target (FUZZ_TARGETS: some of tests/fuzz/targets);
# make test: a few seconds per target, so a regression in a parser fails.
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 3
FUZZ_TARGETS      ?=
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS  += --no-print-directory

.PHONY: all deps test-deps fuzz-deps build asan fuzz-build fuzz fuzz-repro test test-plain test-asan test-fuzz \
        demo install bench bench-deps bench-ref clean

all: build

deps:
	@sh .ci/deps

test-deps:
	@sh .ci/deps test

fuzz-deps:
	@sh .ci/deps fuzz

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DGHLUA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-plain: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Sanitizer reports from every process (background simulators included) go
# to files under $(ASAN_BUILD)/sanitizer/; any such file fails the run.
SAN_LOG = $(CURDIR)/$(ASAN_BUILD)/sanitizer
test-asan: test-deps asan
	rm -rf $(SAN_LOG) && mkdir -p $(SAN_LOG)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:log_path=$(SAN_LOG)/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SAN_LOG)/ubsan \
	  ctest --output-on-failure -j $(JOBS)
	@if [ -n "$$(ls -A $(SAN_LOG))" ]; then cat $(SAN_LOG)/*; echo "sanitizer reports above"; exit 1; fi

# libFuzzer targets (tests/fuzz): clang, ASan and UBSan, in $(FUZZ_BUILD).
fuzz-build: fuzz-deps
	cmake -S . -B $(FUZZ_BUILD) -DGHLUA_FUZZ=ON -DCMAKE_C_COMPILER=$(FUZZ_CC) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-repro: fuzz-build
	sh tests/fuzz/run.sh --repro $(FUZZ_BUILD) $(FUZZ_TARGETS)

test-fuzz: fuzz-build
	FUZZ_SEED=1 sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TEST_SECONDS)

test: test-plain test-asan test-fuzz

demo: build
	sh examples/demo.sh $(BUILD)/ghlua

# The binary, ghlua(1) (share/man/man1) and the completion scripts for
# bash, zsh and fish (share/bash-completion, share/zsh, share/fish).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Benchmarks (not part of `make test`; a smoke run of bench/api.lua is):
# Debian packages and the Node SDK on demand, the C reference programs of
# bench/ into $(BUILD)/bench, then every bench/ script. Results go to stdout.
bench-deps:
	@sh .ci/deps bench

bench-ref:
	$(MAKE) -C bench OUT=$(abspath $(BUILD))/bench
	$(MAKE) -C bench/decode OUT=$(abspath $(BUILD))/bench

bench: bench-deps build bench-ref
	sh bench/run.sh $(BUILD)/ghlua

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
