#!/usr/bin/env bash
# ferry's library inside another project (tests/install/subproject): with
# add_subdirectory the configured build must reference none of the command's
# dependencies (CLI11, {fmt}, nlohmann-json, cpp-httplib) nor liburing, and put
# none of ferry's warning flags on anyone; with FetchContent it is built as a
# shared library without liburing and a program on it runs: a loopback round
# trip works and the io_uring model says it is not built in. The SONAME is
# versioned.
#
#     subproject_test.sh SOURCE_DIR
set -euo pipefail

source_dir=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
configure() {
    local dir=$1
    shift
    cmake -S "$source_dir/tests/install/subproject" -B "$dir" -G Ninja \
        -DFERRY_SOURCE_DIR="$source_dir" -DFERRY_WITH_URING=OFF -DFERRY_BUILD_TESTKIT=OFF "$@" \
        >"$dir.log" 2>&1 || {
        cat "$dir.log"
        fail "configure $dir"
    }
}

echo "=== add_subdirectory, library only"
configure "$work/add_subdirectory" -DFERRY_VIA_ADD_SUBDIRECTORY=ON
cache=$work/add_subdirectory/CMakeCache.txt
# Off by default when ferry is not the top-level project.
for option in FERRY_BUILD_CLI FERRY_BUILD_TESTS FERRY_BUILD_EXAMPLES FERRY_INSTALL; do
    grep -qx "$option:BOOL=OFF" "$cache" || fail "$option is not OFF in a subproject"
done
# No package of the command's was looked for, and nothing links against one.
if grep -E '^(fmt|CLI11|nlohmann_json|GTest|Python3)_DIR|^(FERRY_URING|HTTPLIB)_' "$cache"; then
    fail "the library-only configuration looked for the command's dependencies"
fi
if grep -E -- '-lfmt|-luring|liburing|libfmt|CLI11|nlohmann|httplib' "$work/add_subdirectory/build.ninja"; then
    fail "the library-only build references the command's dependencies"
fi
if grep -E -- '-Werror|-Wall|-Wextra|-Wpedantic' "$work/add_subdirectory/build.ninja"; then
    fail "ferry's warning flags reach a build it is a subproject of"
fi

echo "=== FetchContent, shared library, built and run"
configure "$work/fetch_content" -DBUILD_SHARED_LIBS=ON
cmake --build "$work/fetch_content" -j 2 || fail "build the FetchContent consumer"
library=$(find "$work/fetch_content" -name 'libferry.so.*.*.*' | head -n 1)
[[ -n $library ]] || fail "no versioned libferry.so was built"
soname=$(readelf -d "$library" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname =~ ^libferry\.so\.[0-9]+\.[0-9]+$ ]] || fail "SONAME of $library: '$soname'"
readelf -d "$work/fetch_content/consumer" | grep -q "NEEDED.*\[$soname\]" ||
    fail "the consumer does not load $soname"
timeout 60 "$work/fetch_content/consumer" || fail "the consumer exited $?"

echo "PASS: library-only subproject without the command's dependencies or warning flags; shared $soname"
