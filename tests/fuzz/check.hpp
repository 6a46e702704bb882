// The harnesses' invariant check: a violation prints what failed and aborts, which libFuzzer
// records as a crash, with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ferry::fuzz {

/// Reports a broken invariant on stderr and aborts (libFuzzer saves the input).
[[noreturn]] inline void violated(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, condition);
    std::abort();
}

}  // namespace ferry::fuzz

/// Aborts the run with the condition's text when it does not hold.
#define FUZZ_CHECK(condition)                                                      \
    do {                                                                           \
        if (!(condition)) ::ferry::fuzz::violated(#condition, __FILE__, __LINE__); \
    } while (0)

/// Aborts the run with `message`: for a branch that must never be reached.
#define FUZZ_FAIL(message) ::ferry::fuzz::violated(message, __FILE__, __LINE__)
