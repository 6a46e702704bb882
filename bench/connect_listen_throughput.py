#!/usr/bin/env python3
"""Throughput of `ferry connect` -> `ferry listen` over loopback TCP, against OpenBSD nc and cat.

    head -c N /dev/zero | ferry connect 127.0.0.1 PORT      (ferry listen 127.0.0.1 PORT > /dev/null)
    head -c N /dev/zero | nc -N 127.0.0.1 PORT              (nc -l 127.0.0.1 PORT > /dev/null)
    head -c N /dev/zero | cat > /dev/null                   (one pipe, no socket: the ceiling)

With --input file, standard input is a file of N bytes instead of the pipe
from head (written once to a temporary file, deleted at the end).

Each is timed from the start of the pipeline until every process of it (the
listener too) has exited. Rounds are interleaved (ferry, nc, cat, ferry, ...)
so that a change in the machine's load hits all alike; per round ferry's MB/s
(10^6 bytes per second) is divided by nc's and by cat's, and the summary gives
the median ratio, its min-max and how many rounds were above and below 1.
OpenBSD nc (Debian package netcat-openbsd, run as nc.openbsd or nc) is left
out when not installed. The listener is started first and the pipeline only
once it listens (ferry's `Listening at` line; nc's port seen in LISTEN state
in /proc/net/tcp). The last line is `RESULT {json}` for bench/compare.

Usage: bench/connect_listen_throughput.py [--ferry build/ferry] [--bytes N] [--rounds R]
       [--input pipe|file]
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 10.0


def pipeline(size, consumer, source):
    """Runs `head -c size /dev/zero | consumer` (or `consumer < source`), stdout
    to /dev/null; returns (start time, seconds)."""
    start = time.perf_counter()
    if source:
        with open(source, 'rb') as f:
            sink = subprocess.Popen(consumer, stdin=f, stdout=subprocess.DEVNULL)
        rc = (sink.wait(), 0)
    else:
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


def finish(listener, start, what):
    """Waits for the listener; seconds since `start`."""
    try:
        listener.wait(600)
    except subprocess.TimeoutExpired:
        listener.kill()
        listener.wait()
        sys.exit('%s did not end' % what)
    elapsed = time.perf_counter() - start
    if listener.returncode != 0:
        sys.exit('%s failed (exit %d)' % (what, listener.returncode))
    return elapsed


def ferry_once(ferry, size, source):
    listen = subprocess.Popen([ferry, 'listen', '127.0.0.1', '0'], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = listen.stderr.readline()
        match = re.search(r'^Listening at 127\.0\.0\.1:(\d+)', line)
        if not match:
            sys.exit('ferry listen did not say where it listens: %r' % line)
        start, _ = pipeline(size, [ferry, 'connect', '127.0.0.1', match.group(1)], source)
        return finish(listen, start, 'ferry listen')
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()


def listening(port):
    """Whether 127.0.0.1:port is in LISTEN state (/proc/net/tcp: state 0A)."""
    with open('/proc/net/tcp') as f:
        for row in f.readlines()[1:]:
            fields = row.split()
            if fields[1] == '0100007F:%04X' % port and fields[3] == '0A':
                return True
    return False


def nc_once(nc, size, source):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    listen = subprocess.Popen([nc, '-l', '127.0.0.1', str(port)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not listening(port):
            if listen.poll() is not None or time.monotonic() > deadline:
                sys.exit('nc -l did not listen on port %d' % port)
            time.sleep(0.005)  # a start-up poll with a deadline, not a measurement
        start, _ = pipeline(size, [nc, '-N', '127.0.0.1', str(port)], source)
        return finish(listen, start, 'nc -l')
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()


def summary(ratios):
    return {'median': round(statistics.median(ratios), 3), 'min': round(min(ratios), 3),
            'max': round(max(ratios), 3), 'above_1': sum(r > 1 for r in ratios),
            'below_1': sum(r < 1 for r in ratios)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ferry', default=os.path.join(HERE, '..', 'build', 'ferry'),
                        help='the ferry binary (default: build/ferry, from `make build`)')
    parser.add_argument('--bytes', type=int, default=1 << 30, help='bytes to move (default 1 GiB)')
    parser.add_argument('--rounds', '--runs', type=int, default=5,
                        help='interleaved rounds (default 5)')
    parser.add_argument('--input', choices=('pipe', 'file'), default='pipe',
                        help='standard input: a pipe from head (default) or a file')
    args = parser.parse_args()
    if not os.access(args.ferry, os.X_OK):
        sys.exit('no ferry binary at %s: run `make build` or pass --ferry' % args.ferry)
    nc = shutil.which('nc.openbsd') or shutil.which('nc')

    source = None
    if args.input == 'file':
        fd, source = tempfile.mkstemp(prefix='ferry-bench-')
        with os.fdopen(fd, 'wb') as f, open('/dev/zero', 'rb') as zero:
            left = args.bytes
            while left > 0:
                left -= f.write(zero.read(min(left, 1 << 20)))
    try:
        seconds = {'ferry': [], 'cat': []}
        if nc:
            seconds['nc'] = []
        for _ in range(args.rounds):
            seconds['ferry'].append(ferry_once(args.ferry, args.bytes, source))
            if nc:
                seconds['nc'].append(nc_once(nc, args.bytes, source))
            seconds['cat'].append(pipeline(args.bytes, ['cat'], source)[1])
    finally:
        if source:
            os.unlink(source)

    mbs = {k: [args.bytes / s / 1e6 for s in v] for k, v in seconds.items()}
    ratios = {'ferry/%s' % peer: summary([f / p for f, p in zip(mbs['ferry'], mbs[peer])])
              for peer in mbs if peer != 'ferry'}
    print('bytes: %d, standard input a %s, %d interleaved rounds (MB/s = 10^6 bytes/s)'
          % (args.bytes, args.input, args.rounds))
    for name, runs in mbs.items():
        print('%-6s median %6.0f MB/s  (rounds: %s)'
              % (name, statistics.median(runs), ', '.join('%.0f' % x for x in runs)))
    for name, s in ratios.items():
        print('%-10s median %.2f  min-max %.2f-%.2f  rounds above 1: %d, below 1: %d'
              % (name, s['median'], s['min'], s['max'], s['above_1'], s['below_1']))
    print('RESULT ' + json.dumps({'benchmark': 'connect_listen_throughput', 'bytes': args.bytes,
                                  'input': args.input, 'rounds': args.rounds,
                                  'mbs': {k: [round(x, 1) for x in v] for k, v in mbs.items()},
                                  'ratios': ratios}, sort_keys=True))


if __name__ == '__main__':
    main()
