// A harness that can reach name resolution or bind sockets runs in a network namespace of its
// own: whatever the fuzzer writes, no packet leaves the process's private loopback.
#pragma once

namespace ferry::fuzz {

/// The exit status of a harness that cannot isolate itself: run_fuzzers.py reports it as
/// skipped (as the tests that need root skip), not as a failure.
inline constexpr int kCannotIsolate = 69;  // EX_UNAVAILABLE; libFuzzer itself exits 77 on a crash

/// Moves the process into a new network namespace whose only interface is
/// loopback, brought up (so binding 127.0.0.1 works; every other address is
/// unreachable and a DNS query fails at once). Needs root, or unprivileged
/// user namespaces; otherwise prints why and exits with kCannotIsolate. Call
/// it before any thread starts (LLVMFuzzerInitialize).
void isolate_network();

}  // namespace ferry::fuzz
