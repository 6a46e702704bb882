"""Helpers shared by the end-to-end tests of the classic programs
(test_udp_local.py ... test_tour.py).  Not a test module itself: ctest runs
only test_*.py.

Everything here builds on ferrytest: no sleeps, every wait has a deadline,
every port is chosen by the kernel (-p 0 or bind to port 0), and all traffic
stays on 127.0.0.0/8 (or inside TwoHosts namespaces).
"""

import select
import signal
import socket

from ferrytest import TestCase, ferry, server_address

# How long a raw test socket waits for one datagram or one recv.
IO_TIMEOUT = 10.0

# Addresses as ferry prints them, and as the textbook renditions do.
ADDR = r'127\.0\.0\.1:(\d+)'
PY_ADDR = r"\('127\.0\.0\.1', (\d+)\)"

# C ctime() without the newline, as the timestamp servers send it.
CTIME = r'\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}'
TIMESTAMP_RE = r'^\[' + CTIME + r'\] %s$'

WAITS = ('0.1', '0.2', '0.4', '0.8', '1.6')   # the textbook's backoff


def waiting(d):
    """The udp-remote client's line for one try."""
    return 'Waiting up to %s seconds for a reply' % d


def udp_socket(host='127.0.0.1', port=0):
    """A bound UDP socket with a time limit on every call."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(IO_TIMEOUT)
    sock.bind((host, port))
    return sock


def tcp_listener(host='127.0.0.1'):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(IO_TIMEOUT)
    sock.bind((host, 0))
    sock.listen(1)
    return sock


def tcp_connect(port, host='127.0.0.1'):
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    sock.settimeout(IO_TIMEOUT)
    return sock


def recv_until_eof(sock, limit=1 << 24):
    data = b''
    while len(data) <= limit:
        more = sock.recv(65536)
        if not more:
            return data
        data += more
    raise AssertionError('peer sent more than %d bytes' % limit)


def recv_exactly(sock, n):
    data = b''
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise AssertionError('peer closed after %d of %d bytes: %r'
                                 % (len(data), n, data))
        data += more
    return data


def pending_datagrams(sock):
    """Every datagram already queued on ``sock``, without waiting."""
    got = []
    while select.select([sock], [], [], 0)[0]:
        got.append(sock.recvfrom(65535))
    return got


def closed_port(kind=socket.SOCK_DGRAM):
    """A port on 127.0.0.1 that nothing is bound to (bound, then released:
    the kernel does not hand it out again at once)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ClassicTest(TestCase):
    """TestCase with the moves every classic-program test makes."""

    def server(self, *args, netns=None, port=0):
        """Start ``ferry ARGS -p PORT`` and return (proc, host, port) once
        it prints where it listens."""
        proc = self.spawn(ferry(*args, '-p', port), netns=netns)
        host, bound = server_address(proc)
        return proc, host, bound

    def assert_ok(self, result, stdout_lines=None):
        self.assertEqual(result.returncode, 0,
                         'stdout: %r\nstderr: %r' % (result.stdout,
                                                     result.stderr))
        self.assertEqual(result.stderr, '')
        if stdout_lines is not None:
            self.assertEqual(result.stdout.splitlines(), stdout_lines)

    def assert_one_error_line(self, stderr, *fragments):
        """stderr is exactly one line, `ferry: ...`, holding every fragment."""
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, 'not one line on stderr: %r' % stderr)
        self.assertTrue(lines[0].startswith('ferry: '), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        return lines[0]

    def assert_fails(self, result, code, *fragments):
        """Exit ``code`` (1 run time, 2 usage) with one clear line."""
        self.assertEqual(result.returncode, code,
                         'stdout: %r\nstderr: %r' % (result.stdout,
                                                     result.stderr))
        return self.assert_one_error_line(result.stderr, *fragments)

    def assert_waits(self, lines, count=None):
        """``lines`` are the udp-remote client's waits, doubling from 0.1."""
        if count is not None:
            self.assertEqual(len(lines), count, lines)
        self.assertGreaterEqual(len(lines), 1)
        self.assertEqual(lines, [waiting(d) for d in WAITS[:len(lines)]])

    def check_stops_on_signals(self, *args):
        """The server ``ferry ARGS -p 0`` ends with exit 0 and nothing on
        stderr on SIGTERM and on SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                proc, _, _ = self.server(*args)
                self.assertEqual(proc.stop(sig=sig), 0, proc.describe())
                self.assertEqual(proc.stderr_text(), '')
