#!/usr/bin/env python3
"""Throughput of `ferry proxy` (no toxics) against a direct connection and socat.

Pushes --size bytes (default 2 GiB) over loopback TCP from a sender into a
sink, directly and through each relay, in interleaved rounds (direct, ferry,
socat, ...; --rounds of them), so that a change in the machine's load hits all
alike. The sender and the sink are bench/stream_pump.c, plain blocking C loops
(compiled here with cc), so neither end is the bottleneck and both
measurements share the same end costs; only the relay differs:

    direct        sender -> sink
    ferry         sender -> ferry proxy 127.0.0.1:0 127.0.0.1:SINK -> sink
    ferry-copy    the same with --no-splice (every byte copied through the proxy)
    socat         sender -> socat TCP-LISTEN:P,fork,reuseaddr TCP:127.0.0.1:SINK -> sink

socat is measured when installed (Debian package socat), as it runs by
default. Per round, each relay's MB/s (10^6 bytes per second) is divided by
the same round's direct MB/s (and ferry's by socat's); the summary gives the
median ratio, its min-max over the rounds and how many rounds were above and
below 1. The last line is `RESULT {json}` for bench/compare.

    python3 bench/proxy_throughput.py --ferry build/ferry [--size BYTES] [--rounds N]
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 10.0


def build_pump(ferry):
    """Compiles bench/stream_pump.c next to the ferry binary (once); returns its path."""
    source = os.path.join(HERE, 'stream_pump.c')
    out_dir = os.path.join(os.path.dirname(os.path.abspath(ferry)), 'peers')
    binary = os.path.join(out_dir, 'stream_pump')
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(source):
        return binary
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([os.environ.get('CC', 'cc'), '-O2', '-Wall', '-o', binary, source], check=True)
    return binary


def wait_listening(port):
    """Connects (bounded) until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit('nothing listens on port %d after %gs' % (port, START_TIMEOUT))
            time.sleep(0.01)  # a start-up poll with a deadline, not a measurement


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_ferry(ferry, sink_port, *extra):
    proc = subprocess.Popen([ferry, 'proxy', '127.0.0.1:0', '127.0.0.1:%d' % sink_port, *extra],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.match(r'Listening at 127\.0\.0\.1:(\d+) ', line)
    if not match:
        proc.kill()
        raise SystemExit('ferry proxy did not start: %r' % line)
    return proc, int(match.group(1))


def start_socat(sink_port):
    port = free_port()
    proc = subprocess.Popen(['socat', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % port,
                             'TCP:127.0.0.1:%d' % sink_port], stdout=subprocess.DEVNULL)
    wait_listening(port)
    return proc, port


def push(pump, port, size):
    """MB/s of one stream of `size` bytes to 127.0.0.1:port (sink's count checked)."""
    result = subprocess.run([pump, 'send', str(port), str(size)], stdout=subprocess.PIPE,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit('stream_pump send to port %d failed' % port)
    return size / float(result.stdout) / 1e6


def summary(ratios):
    return {'median': round(statistics.median(ratios), 3), 'min': round(min(ratios), 3),
            'max': round(max(ratios), 3), 'above_1': sum(r > 1 for r in ratios),
            'below_1': sum(r < 1 for r in ratios)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ferry', default=os.environ.get('FERRY_BIN',
                                                          os.path.join(HERE, '..', 'build', 'ferry')))
    parser.add_argument('--size', type=int, default=2 << 30, help='bytes per stream (default 2 GiB)')
    parser.add_argument('--rounds', '--runs', type=int, default=5,
                        help='interleaved rounds (default 5)')
    parser.add_argument('--no-socat', action='store_true', help='leave socat out')
    parser.add_argument('--no-copy', action='store_true', help='leave ferry --no-splice out')
    args = parser.parse_args()
    if not os.access(args.ferry, os.X_OK):
        raise SystemExit('no ferry binary at %s: run `make build` or pass --ferry' % args.ferry)

    pump = build_pump(args.ferry)
    sink = subprocess.Popen([pump, 'sink'], stdout=subprocess.PIPE, text=True)
    procs = [sink]
    try:
        sink_port = int(sink.stdout.readline())
        relays = {}
        proc, relays['ferry'] = start_ferry(args.ferry, sink_port)
        procs.append(proc)
        if not args.no_copy:
            proc, relays['ferry-copy'] = start_ferry(args.ferry, sink_port, '--no-splice')
            procs.append(proc)
        if not args.no_socat and shutil.which('socat'):
            proc, relays['socat'] = start_socat(sink_port)
            procs.append(proc)

        mbs = {name: [] for name in ['direct', *relays]}
        for _ in range(args.rounds):
            mbs['direct'].append(push(pump, sink_port, args.size))
            for name, port in relays.items():
                mbs[name].append(push(pump, port, args.size))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)

    ratios = {}
    for name in relays:
        ratios['%s/direct' % name] = summary([r / d for r, d in zip(mbs[name], mbs['direct'])])
    if 'socat' in relays:
        for name in ('ferry', 'ferry-copy'):
            if name in relays:
                ratios['%s/socat' % name] = summary([f / s for f, s in zip(mbs[name], mbs['socat'])])

    print('bytes per stream %d, %d interleaved rounds (MB/s = 10^6 bytes/s)' % (args.size, args.rounds))
    for name, runs in mbs.items():
        print('%-12s median %6.0f MB/s  (rounds: %s)'
              % (name, statistics.median(runs), ', '.join('%.0f' % x for x in runs)))
    for name, s in ratios.items():
        print('%-18s median %.2f  min-max %.2f-%.2f  rounds above 1: %d, below 1: %d'
              % (name, s['median'], s['min'], s['max'], s['above_1'], s['below_1']))
    print('RESULT ' + json.dumps({'benchmark': 'proxy_throughput', 'bytes': args.size,
                                  'rounds': args.rounds,
                                  'mbs': {k: [round(x, 1) for x in v] for k, v in mbs.items()},
                                  'ratios': ratios}, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
