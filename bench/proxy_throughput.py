#!/usr/bin/env python3
"""Throughput of `ferry proxy` (no toxics) against a direct connection.

Pushes --size bytes (default 1 GiB) over loopback TCP into a sink, directly
and through `ferry proxy 127.0.0.1:0 127.0.0.1:SINK`, --runs times each.
The sender and the sink are this Python process (two threads; the socket
calls release the GIL), so both measurements share the same client cost and
only the relay differs.  Runs alternate direct and proxied, so that a change
in the machine's load hits both alike; it prints the best MB/s of each and
the ratios.

    cmake -S . -B build-proxy-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
    cmake --build build-proxy-rel -j2 --target ferry
    python3 bench/proxy_throughput.py --ferry build-proxy-rel/ferry
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

CHUNK = 1 << 20


class Sink:
    """Accepts connections on 127.0.0.1:0 and reads each to its end; the
    byte count is sent back once the sender has shut down its side."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,),
                             daemon=True).start()

    @staticmethod
    def _drain(conn):
        buf = bytearray(CHUNK)
        total = 0
        with conn:
            while True:
                n = conn.recv_into(buf)
                if n == 0:
                    break
                total += n
            conn.sendall(b'%d' % total)


def push(port, size):
    """Seconds to send `size` bytes to 127.0.0.1:port and hear the count back."""
    block = memoryview(os.urandom(CHUNK))
    with socket.create_connection(('127.0.0.1', port)) as c:
        start = time.perf_counter()
        left = size
        while left > 0:
            n = min(left, CHUNK)
            c.sendall(block[:n])
            left -= n
        c.shutdown(socket.SHUT_WR)
        answer = b''
        while True:
            data = c.recv(64)
            if not data:
                break
            answer += data
        elapsed = time.perf_counter() - start
    if int(answer) != size:
        raise SystemExit('the sink counted %s bytes of %d' % (answer, size))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ferry', default=os.environ.get('FERRY_BIN',
                                                          'build/ferry'))
    parser.add_argument('--size', type=int, default=1 << 30,
                        help='bytes per run (default 1 GiB)')
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()

    sink = Sink()
    proxy = subprocess.Popen([args.ferry, 'proxy', '127.0.0.1:0',
                              '127.0.0.1:%d' % sink.port],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = proxy.stdout.readline()
        match = re.match(r'Listening at 127\.0\.0\.1:(\d+) ', line)
        if not match:
            raise SystemExit('ferry proxy did not start: %r' % line)
        proxy_port = int(match.group(1))

        # Alternated, so that a change in the machine's load hits both alike.
        mb = args.size / 1e6
        direct, relayed = [], []
        for _ in range(args.runs):
            direct.append(mb / push(sink.port, args.size))
            relayed.append(mb / push(proxy_port, args.size))
    finally:
        proxy.terminate()
        proxy.wait(10)

    best_direct, best_relayed = max(direct), max(relayed)
    pairs = sorted(r / d for d, r in zip(direct, relayed))
    print('bytes per run  %d (%d runs each, alternated)' % (args.size, args.runs))
    print('direct         %8.0f MB/s best   (runs: %s)'
          % (best_direct, ', '.join('%.0f' % x for x in direct)))
    print('through proxy  %8.0f MB/s best   (runs: %s)'
          % (best_relayed, ', '.join('%.0f' % x for x in relayed)))
    print('ratio          %8.2f best/best, %.2f median of the pairs'
          % (best_relayed / best_direct, pairs[len(pairs) // 2]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
