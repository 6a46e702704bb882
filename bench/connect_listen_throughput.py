#!/usr/bin/env python3
"""Throughput of `ferry connect` -> `ferry listen` over loopback TCP, against cat.

    head -c N /dev/zero | ferry connect 127.0.0.1 PORT      (ferry listen 127.0.0.1 0 > /dev/null)
    head -c N /dev/zero | cat > /dev/null                    (the baseline: one pipe, no socket)

Each is timed from the start of `head` until every process of the pipeline
has exited, the best of --runs is kept, and MB/s (10^6 bytes per second) of
both are printed with their ratio.  The listener is started first and its
`Listening at` line read from stderr, so no time is spent waiting for it.

Usage: bench/connect_listen_throughput.py [--ferry build/ferry] [--bytes N] [--runs R]
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pipeline(size, consumer):
    """Runs `head -c size /dev/zero | consumer` (stdout to /dev/null); returns seconds."""
    start = time.perf_counter()
    head = subprocess.Popen(['head', '-c', str(size), '/dev/zero'], stdout=subprocess.PIPE)
    try:
        sink = subprocess.Popen(consumer, stdin=head.stdout, stdout=subprocess.DEVNULL)
    finally:
        head.stdout.close()
    rc = sink.wait(), head.wait()
    elapsed = time.perf_counter() - start
    if rc != (0, 0):
        sys.exit('%s failed: exit codes %s' % (' '.join(consumer), rc))
    return start, elapsed


def ferry_once(ferry, size):
    listen = subprocess.Popen([ferry, 'listen', '127.0.0.1', '0'], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = listen.stderr.readline()
        match = re.search(r'^Listening at 127\.0\.0\.1:(\d+)', line)
        if not match:
            sys.exit('ferry listen did not say where it listens: %r' % line)
        start, _ = pipeline(size, [ferry, 'connect', '127.0.0.1', match.group(1)])
        rest = listen.communicate(timeout=600)[1]
        elapsed = time.perf_counter() - start
        if listen.returncode != 0:
            sys.exit('ferry listen failed (exit %d): %s' % (listen.returncode, rest))
        return elapsed
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ferry', default=os.path.join(HERE, '..', 'build', 'ferry'),
                        help='the ferry binary (default: build/ferry, from `make build`)')
    parser.add_argument('--bytes', type=int, default=1 << 30, help='bytes to move (default 1 GiB)')
    parser.add_argument('--runs', type=int, default=3, help='runs of each, best kept (default 3)')
    args = parser.parse_args()
    if not os.access(args.ferry, os.X_OK):
        sys.exit('no ferry binary at %s: run `make build` or pass --ferry' % args.ferry)

    ferry_s = min(ferry_once(args.ferry, args.bytes) for _ in range(args.runs))
    cat_s = min(pipeline(args.bytes, ['cat'])[1] for _ in range(args.runs))
    ferry_mbs = args.bytes / ferry_s / 1e6
    cat_mbs = args.bytes / cat_s / 1e6
    print('bytes:                  %d (best of %d runs)' % (args.bytes, args.runs))
    print('ferry connect -> listen: %8.0f MB/s  (%.3f s)' % (ferry_mbs, ferry_s))
    print('cat through a pipe:      %8.0f MB/s  (%.3f s)' % (cat_mbs, cat_s))
    print('ratio ferry / cat:       %8.2f' % (ferry_mbs / cat_mbs))


if __name__ == '__main__':
    main()
