# v4v: thin wrapper over meson/ninja.  Every target sets itself up.
#   make            build (build/)
#   make check      the whole suite, then again under ASan+UBSan (build-asan/)
#   make demo       the guided tour
#   make install PREFIX=DIR
#   make fuzz       libFuzzer smoke run of every target (clang, build-fuzz/)
PREFIX ?= /usr/local
BUILD ?= build
DEBS = meson ninja-build gcc g++ pkg-config libxen-dev libsystemd-dev python3 socat ncat groff-base man-db
FUZZ_DEBS = clang libclang-rt-14-dev
BENCH_DEBS = gnuplot-nox
# The VM tests' QEMU and guest userland (tests/vm; they skip without them).
VM_DEBS = qemu-system-x86 busybox-static

.PHONY: all deps check check-plain check-asan demo install fuzz bench clean

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/need-debs $(DEBS)

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --prefix=$(abspath $(PREFIX))

check: deps
	@scripts/need-debs $(VM_DEBS) || echo "make check: without $(VM_DEBS) the VM tests skip" >&2
	@scripts/check

check-plain: all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

demo: all
	@scripts/demo

install: deps $(BUILD)/build.ninja
	meson configure $(BUILD) --prefix=$(abspath $(PREFIX))
	ninja -C $(BUILD) install

fuzz: deps
	@scripts/need-debs $(FUZZ_DEBS)
	@scripts/fuzz

bench: all
	@scripts/need-debs $(BENCH_DEBS)
	$(BUILD)/v4v-bench

clean:
	rm -rf build build-asan build-fuzz
