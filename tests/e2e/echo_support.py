"""Shared pieces of the echo-service tests: starting a server, talking to it."""

import os
import random
import socket
import struct
import threading

import ferrytest

MODELS = ['iterative', 'thread', 'pool', 'fork', 'select', 'poll', 'epoll', 'uring']
# The models that serve more than one client at a time.
CONCURRENT = [m for m in MODELS if m != 'iterative']
UDP_MODELS = ['iterative', 'select', 'poll', 'epoll']
TIMEOUT = 15


def start_server(test, model, *extra, host='127.0.0.1'):
    """Starts `ferry echo server` on port 0; returns (proc, port)."""
    proc = test.spawn(ferrytest.ferry('echo', 'server', host, '-p', '0', '--model', model, *extra))
    return proc, ferrytest.server_port(proc, timeout=TIMEOUT)


def connect(port, host='127.0.0.1', family=socket.AF_INET):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def recv_exactly(sock, n):
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise AssertionError('the echo ended after %d of %d bytes' % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b''.join(chunks)


def recv_until_eof(sock, limit=1 << 24):
    data = bytearray()
    while len(data) <= limit:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError('more than %d bytes and no end of stream' % limit)


def frame(framing, payload):
    """The wire form of one message under a framing (what the echo returns)."""
    if framing == 'raw':
        return payload
    if framing == 'line':
        return payload + b'\n'
    if framing.startswith('fixed:'):
        size = int(framing.split(':')[1])
        return payload.ljust(size, b' ')[:size]
    if framing == 'length':
        return struct.pack('!I', len(payload)) + payload
    raise ValueError(framing)


def random_payload(rng, size, printable=False):
    if printable:
        return bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz') for _ in range(size))
    return rng.randbytes(size)


def exchange_concurrently(sock, data):
    """Sends `data` from a thread while reading its echo here: a large message
    cannot deadlock on full socket buffers."""
    errors = []

    def send():
        try:
            sock.sendall(data)
        except OSError as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        echo = recv_exactly(sock, len(data))
    finally:
        sender.join(TIMEOUT)
    if errors:
        raise errors[0]
    return echo


def rss_kib(pid):
    """Resident memory of a process and its children, in KiB."""
    total = 0
    pids = [pid]
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open('/proc/%d/status' % p) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total
