# ferry: `make demo` and `make test` do all the set-up on a fresh Debian machine.
.PHONY: all deps bench-deps build test fuzz demo bench format clean

# Debian packages the build and the tests need; installed only when missing.
PACKAGES := cmake ninja-build g++ pkg-config libcli11-dev libfmt-dev libgtest-dev \
            nlohmann-json3-dev liburing-dev libcpp-httplib-dev python3 iproute2 procps \
            iputils-ping nftables clang-14 libclang-rt-14-dev
NODE := yes
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS := $(shell nproc)

all: build

deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# Node.js and npm run Toxiproxy's own client against `ferry proxy --api`; a machine
	@# may already have them from another Node.js package, so only what is missing.
	@if [ -n "$(NODE)" ] && ! { command -v node && command -v npm; } >/dev/null; then \
	  echo "installing: nodejs npm"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; \
	fi

# The benchmark peers (Asio and libuv only as peers) and the chart.
BENCH_PACKAGES := libasio-dev libuv1-dev python3-matplotlib util-linux

bench-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(BENCH_PACKAGES)" NODE=

# Optimised build: the binary lands at build/ferry.
build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
	cmake --build build -j $(JOBS)

# Sanitized build (ASan + UBSan, -Werror) and every test through ctest.
test: deps
	cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON
	cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

# The libFuzzer harnesses (tests/fuzz, clang's libFuzzer with ASan + UBSan, a build
# directory of their own), each run FUZZ_SECONDS on its seed corpus, $(JOBS) at a time.
# New inputs go to a temporary directory, never into the tree.
FUZZ_SECONDS ?= 30
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DFERRY_FUZZ=ON -DBUILD_TESTING=OFF \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	python3 tests/fuzz/run_fuzzers.py --build build-fuzz --seconds $(FUZZ_SECONDS) --jobs $(JOBS)

# The main job: every classic program's server and client over loopback.
demo: build
	./build/ferry tour

# Every server model and peer under the same load: writes docs/benchmarks.md and .png.
bench: deps bench-deps build
	bench/compare

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.c')

clean:
	rm -rf build build-test build-fuzz
