#!/usr/bin/env bash
# What `cmake --install` gives a user, used as a user would: installs a build
# into a temporary prefix, checks what landed where, then builds the programs
# of examples/ out of tree against that prefix, once through find_package(ferry)
# and once through pkg-config on a plain g++ command line, and runs each (they
# exit 0 only when they did what they show).
#
#     package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
cache_value() {
    sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"
}
# Each program is bounded in time: a hang fails the test instead of stalling CI.
run_example() {
    echo "--- $*"
    timeout 60 "$@" || fail "$* exited $?"
}

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
    cat "$work/install.log"
    fail "cmake --install"
}
libdir=$(cache_value CMAKE_INSTALL_LIBDIR)
for file in include/ferry/ferry.hpp include/ferry/socket.hpp include/ferry/server/stream_server.hpp \
    include/ferry/testkit/fault_proxy.hpp bin/ferry share/man/man1/ferry.1 share/man/man1/ferry-connect.1 share/man/man1/ferry-echo.1 \
    share/bash-completion/completions/ferry "$libdir/cmake/ferry/ferryConfig.cmake" \
    "$libdir/cmake/ferry/ferryConfigVersion.cmake" "$libdir/cmake/ferry/ferryTargets.cmake" \
    "$libdir/cmake/ferry/ferryTestkitTargets.cmake" "$libdir/pkgconfig/ferry.pc" \
    "$libdir/pkgconfig/ferry-testkit.pc"; do
    [[ -f $prefix/$file ]] || fail "not installed: $file"
done
for library in libferry libferry-testkit; do
    [[ -f $prefix/$libdir/$library.a || -f $prefix/$libdir/$library.so ]] ||
        fail "not installed: $libdir/$library.a or .so"
done
# Only the public API: what is internal (src/, cli/) stays out.
if find "$prefix/include" -type f ! -path "$prefix/include/ferry/*.hpp" | grep .; then
    fail "files other than include/ferry/**.hpp in include/"
fi
[[ $("$prefix/bin/ferry" --version) == "ferry $(cache_value CMAKE_PROJECT_VERSION)" ]] ||
    fail "the installed ferry --version"

# A sanitized build's library needs the sanitizer runtime in whatever links it.
consumer_flags=""
if [[ $(cache_value FERRY_SANITIZE) == ON ]]; then
    consumer_flags="-fsanitize=address,undefined"
fi
cxx=$(cache_value CMAKE_CXX_COMPILER)

echo "=== find_package(ferry)"
cmake -S "$source_dir/tests/install/find_package" -B "$work/find_package" -G Ninja \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
    -DFERRY_EXAMPLES_DIR="$source_dir/examples" \
    -DCMAKE_CXX_FLAGS="$consumer_flags" -DCMAKE_EXE_LINKER_FLAGS="$consumer_flags" \
    >"$work/find_package.log" || {
    cat "$work/find_package.log"
    fail "configure the find_package consumer"
}
cmake --build "$work/find_package" -j 2 || fail "build the find_package consumer"
run_example "$work/find_package/roundtrip"
run_example "$work/find_package/fault_proxy"

echo "=== pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
[[ $(pkg-config --modversion ferry) == "$(cache_value CMAKE_PROJECT_VERSION)" ]] ||
    fail "pkg-config --modversion ferry"
# Word splitting of the flags is intended, as on any g++ command line.
# shellcheck disable=SC2046
"$cxx" -std=c++20 $consumer_flags "$source_dir/examples/roundtrip.cpp" -o "$work/roundtrip" \
    $(pkg-config --cflags --libs ferry) || fail "g++ with pkg-config ferry"
# shellcheck disable=SC2046
"$cxx" -std=c++20 $consumer_flags "$source_dir/examples/fault_proxy.cpp" -o "$work/fault_proxy" \
    $(pkg-config --cflags --libs ferry-testkit) || fail "g++ with pkg-config ferry-testkit"
run_example "$work/roundtrip"
run_example "$work/fault_proxy"

echo "PASS: installed into a temporary prefix; examples built with find_package and pkg-config, and ran"
