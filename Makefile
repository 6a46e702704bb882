# ferry: `make demo` and `make test` do all the set-up on a fresh Debian machine.
.PHONY: all deps bench-deps docs-deps build test tsan fuzz demo bench docs install format clean

# Debian packages the build and the tests need; installed only when missing.
PACKAGES := cmake ninja-build g++ pkg-config libcli11-dev libfmt-dev libgtest-dev \
            nlohmann-json3-dev liburing-dev libcpp-httplib-dev python3 iproute2 procps \
            iputils-ping nftables groff-base clang-14 libclang-rt-14-dev strace
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

# The benchmark peers (Asio and libuv only as peers; sockperf as the independent
# load generator and a peer server; socat and OpenBSD nc for the relays), perf
# for the system calls per datagram, taskset (util-linux) and the chart.
BENCH_PACKAGES := libasio-dev libuv1-dev python3-matplotlib util-linux sockperf linux-perf \
                  socat netcat-openbsd

bench-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(BENCH_PACKAGES)" NODE=

# The API reference (docs/Doxyfile): doxygen, for `make docs` and the docs check of `make test`.
DOCS_PACKAGES := doxygen

docs-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(DOCS_PACKAGES)" NODE=

# Optimised build: the binary lands at build/ferry.
build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF
	cmake --build build -j $(JOBS)

# Sanitized build (ASan + UBSan, -Werror) and every test through ctest: the
# installed package, the man pages, the completion and the API reference included.
test: deps docs-deps
	cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON
	cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(MAKE) --no-print-directory tsan
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

# ThreadSanitizer (its own build: it excludes ASan) over the code that runs on
# several threads: the event loop and run_loops, the in-process servers, and the
# thread, pool and multi-loop epoll echo models end to end. A race aborts the
# process (halt_on_error), which fails its test.
TSAN_UNIT := EventLoopTest|RunLoopsTest|SeqpacketServerTest|StreamServerTest
TSAN_E2E := test_echo_conformance.Echo_thread test_echo_conformance.Echo_pool \
            test_echo_conformance.Echo_epoll_threads
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 \
            suppressions=$(CURDIR)/tests/tsan.supp"
tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFERRY_TSAN=ON
	cmake --build build-tsan -j $(JOBS) --target ferry unit_tests
	cd build-tsan && $(TSAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 300 \
	    -R '$(TSAN_UNIT)'
	cd tests/e2e && $(TSAN_ENV) FERRY_BIN=$(CURDIR)/build-tsan/ferry PYTHONDONTWRITEBYTECODE=1 \
	    python3 -m unittest $(TSAN_E2E)

# The libFuzzer harnesses (tests/fuzz, clang's libFuzzer with ASan + UBSan, a build
# directory of their own), each run FUZZ_SECONDS on its seed corpus, $(JOBS) at a time.
# New inputs go to a temporary directory, never into the tree.
FUZZ_SECONDS ?= 30
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DFERRY_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_WERROR=OFF \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	python3 tests/fuzz/run_fuzzers.py --build build-fuzz --seconds $(FUZZ_SECONDS) --jobs $(JOBS)

# The main job: every classic program's server and client over loopback.
demo: build
	./build/ferry tour

# The library's API reference from the headers' doc comments: build/docs/html/index.html.
# Fails on a public name left undocumented.
VERSION := $(shell grep -m1 -o -E 'ferry VERSION [0-9.]+' CMakeLists.txt | cut -d' ' -f3)
docs: docs-deps
	mkdir -p build/docs
	FERRY_SOURCE_DIR=$(CURDIR) FERRY_DOCS_DIR=$(CURDIR)/build/docs FERRY_VERSION=$(VERSION) \
	  doxygen docs/Doxyfile
	@echo "API reference: build/docs/html/index.html"

# The optimised build installed: headers, libraries, CMake package, pkg-config
# files, the ferry binary, its man pages and bash completion.
PREFIX ?= /usr/local
install: build
	cmake --install build --prefix $(PREFIX)

# Every server model and peer under the same load, every target of issue 11: writes
# docs/benchmarks.md and .png (about 20 minutes on 2 CPUs; BENCH_ARGS=--quick for a smoke test).
BENCH_ARGS ?=
bench: deps bench-deps build
	bench/compare $(BENCH_ARGS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.c')

clean:
	rm -rf build build-test build-tsan build-fuzz
