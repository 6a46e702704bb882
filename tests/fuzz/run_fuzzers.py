#!/usr/bin/env python3
"""Runs each libFuzzer harness for a while on its seed corpus (what `make fuzz` does).

Each harness starts from tests/fuzz/corpus/<name>/ but writes what it finds into a fresh
temporary directory (the first corpus directory libFuzzer is given), so the tree never
changes. A crash, a leak, a sanitizer report or a time-out fails the run: the input is
kept as <build>/fuzz-artifacts/<name>-crash-... and the end of the log is printed.
A harness that needs a network namespace of its own and cannot create one (not root, no
user namespaces) exits 69 saying so, and is reported as skipped.
Up to --jobs harnesses run at once. Prints one line per harness with libFuzzer's figures.
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESSES = ["framing", "address", "toxic", "toxiproxy_json", "reliable_udp", "api"]
CANNOT_ISOLATE = 69  # isolated_network.hpp's kCannotIsolate (a crash is libFuzzer's 77)


def final_figures(log):
    """executions, exec/s, cov, ft from libFuzzer's last status line and final stats."""
    figures = {}
    for key in ("number_of_executed_units", "average_exec_per_sec"):
        m = re.findall(r"stat::%s:\s*(\d+)" % key, log)
        if m:
            figures[key] = int(m[-1])
    status = re.findall(r"^#\d+\s+\w+\s+cov: (\d+) ft: (\d+)", log, re.M)
    if status:
        figures["cov"], figures["ft"] = (int(v) for v in status[-1])
    return figures


def run_one(name, build, seconds, extra):
    binary = os.path.join(build, "fuzz_" + name)
    corpus = os.path.join(HERE, "corpus", name)
    artifacts = os.path.join(build, "fuzz-artifacts")
    logs = os.path.join(build, "fuzz-logs")
    os.makedirs(artifacts, exist_ok=True)
    os.makedirs(logs, exist_ok=True)
    log_path = os.path.join(logs, name + ".log")
    with tempfile.TemporaryDirectory(prefix="ferry-fuzz-%s-" % name) as scratch:
        command = [binary, "-max_total_time=%d" % seconds, "-print_final_stats=1",
                   "-timeout=10", "-rss_limit_mb=2048",
                   "-artifact_prefix=%s/%s-" % (artifacts, name)] + extra + [scratch, corpus]
        started = time.monotonic()
        with open(log_path, "w") as log_file:
            # The hard limit covers a harness that hangs outside libFuzzer's own timer.
            try:
                rc = subprocess.call(command, stdout=log_file, stderr=subprocess.STDOUT,
                                     timeout=seconds + 120)
            except subprocess.TimeoutExpired:
                rc = -1  # subprocess.call has killed it
                log_file.write("\nrun_fuzzers: killed after %d s\n" % (seconds + 120))
        elapsed = time.monotonic() - started
    with open(log_path, errors="replace") as f:
        log = f.read()
    return name, rc, elapsed, final_figures(log), log, log_path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", default="build-fuzz", help="the FERRY_FUZZ build directory")
    parser.add_argument("--seconds", type=int, default=30, help="run time of each harness")
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run at once")
    parser.add_argument("harness", nargs="*", default=HARNESSES, help="which (default: all)")
    args, extra = parser.parse_known_args()
    unknown = [h for h in args.harness if h not in HARNESSES]
    if unknown:
        parser.error("unknown harness %s (known: %s)" % (", ".join(unknown), ", ".join(HARNESSES)))

    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = [pool.submit(run_one, h, args.build, args.seconds, extra) for h in args.harness]
        for run in runs:
            name, rc, elapsed, figures, log, log_path = run.result()
            if rc == CANNOT_ISOLATE and "cannot create a network namespace" in log:
                print("fuzz %-15s skipped: %s" % (name, log.strip().splitlines()[-1]), flush=True)
                continue
            summary = ", ".join("%s %s" % (k, v) for k, v in figures.items())
            print("fuzz %-15s %s in %.0f s: %s" % (name, "ok" if rc == 0 else "FAILED (rc %d)" % rc,
                                                  elapsed, summary), flush=True)
            if rc != 0:
                failed.append(name)
                print("---- last lines of %s ----" % log_path)
                print("\n".join(log.splitlines()[-40:]))
    if failed:
        print("fuzzing failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
