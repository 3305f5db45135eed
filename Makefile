# Thin wrapper over CMake. `make demo` and `make test` install missing Debian
# packages first (apt-get, with sudo when not root).
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS  += --no-print-directory

.PHONY: all deps test-deps build asan test test-plain test-asan demo install bench bench-deps bench-ref clean

all: build

deps:
	@sh .ci/deps

test-deps:
	@sh .ci/deps test

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

test: test-plain test-asan

demo: build
	sh examples/demo.sh $(BUILD)/ghlua

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Benchmarks (not part of `make test`; a smoke run of bench/api.lua is):
# Debian packages and the Node SDK on demand, the C reference programs of
# bench/ into $(BUILD)/bench, then every bench/ script. Results go to stdout.
bench-deps:
	@sh .ci/deps bench

bench-ref:
	$(MAKE) -C bench OUT=$(abspath $(BUILD))/bench

bench: bench-deps build bench-ref
	sh bench/run.sh $(BUILD)/ghlua

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
