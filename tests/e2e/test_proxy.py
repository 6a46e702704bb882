"""ferry proxy: a TCP/UDP relay that injects faults.

Every test runs real `ferry proxy` processes on 127.0.0.1 port 0 in front of
servers that live in this process (Python threads) or in a child process, and
checks what a client sees: bytes and message boundaries kept without toxics,
each toxic's effect with a stated tolerance, failures confined to the client
they concern, usage errors as one line and exit 2.

Timing tolerances are for a loaded two-core machine running the ASan build.
Statistical tests use +-4 standard deviations (a false alarm about once in
16,000 runs), and every random choice of the proxy is seeded (--seed).
"""

import json
import math
import os
import random
import select
import signal
import socket
import statistics
import struct
import tempfile
import threading
import time
import unittest

import ferrytest

from ferrytest import PY, TestCase, ferry, run, server_port
from relay_peers import TcpServer, UdpEcho, echo

HOST = '127.0.0.1'
IO_TIMEOUT = 20.0


# -- servers living in the test process ------------------------------------

class Recorder:
    """A TCP handler that records what each connection received: the sizes
    of its recv() calls, the bytes, how it ended and when."""

    def __init__(self, greeting=b'', then_close=False):
        self.greeting = greeting
        self.then_close = then_close
        self.done = threading.Event()
        self.chunks = []
        self.ended = None        # 'eof' or 'reset'
        self.ended_at = None
        self.first_at = None

    def __call__(self, conn):
        try:
            if self.greeting:
                conn.sendall(self.greeting)
            if self.then_close:
                conn.shutdown(socket.SHUT_WR)
            while True:
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:
                    self.ended = 'reset'
                    break
                if not data:
                    self.ended = 'eof'
                    break
                if self.first_at is None:
                    self.first_at = time.monotonic()
                self.chunks.append(data)
            self.ended_at = time.monotonic()
        finally:
            self.done.set()

    @property
    def data(self):
        return b''.join(self.chunks)


def recv_all(sock, limit=1 << 30):
    """Everything until end of stream."""
    chunks = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b''.join(chunks)
        chunks.append(data)
        if sum(map(len, chunks)) > limit:
            raise AssertionError('more than %d bytes' % limit)


def echo_through(port, payload):
    """Send payload and half-close while reading the echo until EOF."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
        sender = threading.Thread(target=lambda: (c.sendall(payload),
                                                  c.shutdown(socket.SHUT_WR)))
        sender.start()
        got = recv_all(c)
        sender.join(IO_TIMEOUT)
        return got


def binomial_bounds(n, p, sigmas=4):
    mean = n * p
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return mean - spread, mean + spread


class ProxyTestCase(TestCase):

    def tcp_server(self, handler):
        server = TcpServer(handler)
        self.addCleanup(server.close)
        return server

    def udp_echo(self):
        server = UdpEcho()
        self.addCleanup(server.close)
        return server

    def proxy(self, upstream_port, *args, udp=False):
        """Starts ferry proxy 127.0.0.1:0 -> 127.0.0.1:upstream_port and
        returns (Proc, the port it listens on)."""
        argv = ['proxy', '%s:0' % HOST, '%s:%d' % (HOST, upstream_port),
                '--seed', 1060]
        if udp:
            argv.append('-u')
        proc = self.spawn(ferry(*(argv + list(args))))
        self.addCleanup(self.check_clean_exit, proc)
        # With --json the Listening line is on stderr: stdout is the report alone.
        return proc, server_port(proc, stderr='--json' in args)

    def stop_with_json(self, proc):
        """SIGINT; the exit code must be 0; returns the --json report."""
        self.assertEqual(proc.stop(sig=signal.SIGINT), 0, proc.describe())
        return json.loads(proc.output())


# -- TCP without toxics -----------------------------------------------------

class TcpRelay(ProxyTestCase):

    def test_no_toxics_round_trips_every_byte(self):
        server = self.tcp_server(echo)
        proc, port = self.proxy(server.port, '--json')
        rng = random.Random(1)
        sizes = [0, 1, 1460, 65536 + 7, 1000003, 8 << 20]
        for size in sizes:
            payload = rng.randbytes(size)
            with self.subTest(size=size):
                self.assertEqual(echo_through(port, payload), payload)
        report = self.stop_with_json(proc)
        route = report['routes'][0]
        self.assertEqual(route['connections'], len(sizes))
        self.assertEqual(route['bytes_up'], sum(sizes))
        self.assertEqual(route['bytes_down'], sum(sizes))

    def test_half_close_passes_through_and_the_answer_comes_back(self):
        # The server answers only after end of stream: the proxy must pass
        # the client's half-close on and keep relaying the other way.
        def count_then_answer(conn):
            total = len(recv_all(conn))
            conn.sendall(b'got %d bytes' % total)

        server = self.tcp_server(count_then_answer)
        _, port = self.proxy(server.port)
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            c.sendall(b'x' * 100000)
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(c), b'got 100000 bytes')

    def test_ipv6_route(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(('::1', 0))
        except OSError:
            self.skipTest('no IPv6 loopback')
        listener = socket.socket(socket.AF_INET6)
        self.addCleanup(listener.close)
        listener.bind(('::1', 0))
        listener.listen(1)
        proc = self.spawn(ferry('proxy', '[::1]:0',
                                '[::1]:%d' % listener.getsockname()[1]))
        self.addCleanup(self.check_clean_exit, proc)
        line = proc.expect(r'^Listening at \[::1\]:(\d+) -> \[::1\]:\d+$')
        with socket.create_connection(('::1', int(line.group(1))),
                                      timeout=IO_TIMEOUT) as c:
            conn, _ = listener.accept()
            with conn:
                c.sendall(b'over six')
                self.assertEqual(conn.recv(100), b'over six')

    def test_hundred_connections_at_once_lose_no_byte(self):
        server = self.tcp_server(echo)
        _, port = self.proxy(server.port)
        results = [None] * 100
        payloads = [random.Random(i).randbytes(random.Random(-i).randint(
            1, 300000)) for i in range(100)]

        def client(i):
            try:
                results[i] = echo_through(port, payloads[i]) == payloads[i]
            except OSError as exc:
                results[i] = exc

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results, [True] * 100)

    def test_flow_control_bounds_what_the_proxy_holds(self):
        # The upstream reads nothing until told to: the proxy must stop
        # reading from the client rather than buffer without bound.  What the
        # client can push is then the kernel's socket buffers on the way
        # (tens of MiB with loopback autotuning) plus the proxy's 1 MiB
        # high-water mark; a proxy that buffers everything would take all
        # 256 MiB.
        go = threading.Event()
        received = []

        def late_reader(conn):
            go.wait(IO_TIMEOUT)
            received.append(len(recv_all(conn)))

        server = self.tcp_server(late_reader)
        _, port = self.proxy(server.port)
        chunk = b'\xab' * 65536
        sent = 0
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            c.setblocking(False)
            while sent < 256 << 20:
                _, writable, _ = select.select([], [c], [], 1.0)
                if not writable:
                    break              # stalled for a second: backpressure
                try:
                    sent += c.send(chunk)
                except BlockingIOError:
                    pass
            self.assertLess(sent, 96 << 20,
                            'the proxy kept reading from a client whose '
                            'upstream reads nothing')
            go.set()
            c.setblocking(True)
            c.settimeout(IO_TIMEOUT)
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(c.recv(1), b'')   # the server's close, relayed
        self.assertEqual(received, [sent])     # resumed, and lost nothing


# -- TCP toxics ---------------------------------------------------------------

def median_rtt(port, rounds=9):
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for _ in range(rounds):
            start = time.monotonic()
            c.sendall(b'p')
            if c.recv(1) != b'p':
                raise AssertionError('echo broke')
            samples.append(time.monotonic() - start)
        return statistics.median(samples)


class TcpToxics(ProxyTestCase):

    def test_latency_adds_to_the_round_trip(self):
        server = self.tcp_server(echo)
        direct = median_rtt(server.port)
        for direction, expected in (('down', 0.1), ('up', 0.1),
                                    ('both', 0.2)):
            with self.subTest(direction=direction):
                _, port = self.proxy(
                    server.port,
                    '--toxic', 'latency:%s:latency=100,jitter=5' % direction)
                added = median_rtt(port) - direct
                # 100 ms per direction, -10 % for clock granularity, +150 ms
                # for a loaded machine.
                self.assertGreaterEqual(added, expected * 0.9)
                self.assertLessEqual(added, expected + 0.15)

    def test_bandwidth_paces_each_direction(self):
        # rate is in KB/s of 1000 bytes (as Toxiproxy).  Transfers last 2-3 s
        # so that the 20 ms pacing granule and start-up are within 10 %.
        server = self.tcp_server(echo)
        _, port = self.proxy(server.port, '--toxic',
                             'bandwidth:down:rate=100')
        payload = os.urandom(300000)
        start = time.monotonic()
        self.assertEqual(echo_through(port, payload), payload)
        self.assertAlmostEqual(time.monotonic() - start, 3.0, delta=0.3)

        recorder = Recorder()
        sink = self.tcp_server(recorder)
        _, port = self.proxy(sink.port, '--toxic', 'bandwidth:up:rate=200')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            start = time.monotonic()
            c.sendall(os.urandom(400000))
            c.shutdown(socket.SHUT_WR)
            self.assertTrue(recorder.done.wait(IO_TIMEOUT))
        self.assertEqual(len(recorder.data), 400000)
        self.assertAlmostEqual(recorder.ended_at - start, 2.0, delta=0.2)

    def test_slicer_cuts_the_stream_into_small_pieces(self):
        # About 30 slices of 50 to 150 bytes, 20 ms apart: a reader sees them
        # one by one unless it is held off the CPU for over 20 ms, which a
        # loaded machine does now and then (with 2 ms the reads merged).
        payload = os.urandom(3000)
        # down: the client sees many small reads.
        server = self.tcp_server(Recorder(greeting=payload, then_close=True))
        _, port = self.proxy(server.port, '--toxic',
                             'slicer:down:average_size=100,'
                             'size_variation=50,delay=20000')
        sizes = []
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                sizes.append(data)
        self.assertEqual(b''.join(sizes), payload)
        self.assertGreaterEqual(len(sizes), 15)           # ~30 slices
        self.assertLessEqual(statistics.median(map(len, sizes)), 300)

        # up: the server sees them.
        recorder = Recorder()
        sink = self.tcp_server(recorder)
        _, port = self.proxy(sink.port, '--toxic',
                             'slicer:up:average_size=100,'
                             'size_variation=50,delay=20000')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            self.assertTrue(recorder.done.wait(IO_TIMEOUT))
        self.assertEqual(recorder.data, payload)
        self.assertGreaterEqual(len(recorder.chunks), 15)

    def test_limit_data_closes_after_exactly_n_bytes(self):
        # down: the server sends 5000 bytes, the client gets 1000 and EOF.
        server = self.tcp_server(Recorder(greeting=os.urandom(5000)))
        _, port = self.proxy(server.port, '--toxic',
                             'limit_data:down:bytes=1000')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            self.assertEqual(len(recv_all(c)), 1000)

        # up: the client sends 5000, the server gets 1000 and EOF.
        recorder = Recorder()
        sink = self.tcp_server(recorder)
        _, port = self.proxy(sink.port, '--toxic', 'limit_data:up:bytes=1000')
        payload = os.urandom(5000)
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            c.sendall(payload)
            self.assertTrue(recorder.done.wait(IO_TIMEOUT))
        self.assertEqual(recorder.data, payload[:1000])
        self.assertEqual(recorder.ended, 'eof')

    def test_reset_peer_resets_after_the_timeout(self):
        # down: the client is reset; data flows until then.
        server = self.tcp_server(echo)
        _, port = self.proxy(server.port, '--toxic',
                             'reset_peer:down:timeout=500')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            start = time.monotonic()
            c.sendall(b'still fine')
            self.assertEqual(c.recv(100), b'still fine')
            with self.assertRaises(ConnectionResetError):
                c.recv(100)
            self.assertGreaterEqual(time.monotonic() - start, 0.45)
            self.assertLessEqual(time.monotonic() - start, 2.0)

        # up: the server is reset, the client sees the connection end.
        recorder = Recorder()
        sink = self.tcp_server(recorder)
        _, port = self.proxy(sink.port, '--toxic',
                             'reset_peer:up:timeout=300')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            start = time.monotonic()
            self.assertEqual(c.recv(100), b'')
            self.assertTrue(recorder.done.wait(IO_TIMEOUT))
        self.assertEqual(recorder.ended, 'reset')
        self.assertGreaterEqual(recorder.ended_at - start, 0.25)

    def test_timeout_lets_nothing_through_then_closes(self):
        for direction in ('down', 'up'):
            with self.subTest(direction=direction):
                recorder = Recorder()
                server = self.tcp_server(
                    echo if direction == 'down' else recorder)
                _, port = self.proxy(server.port, '--toxic',
                                     'timeout:%s:timeout=500' % direction)
                with socket.create_connection((HOST, port),
                                              timeout=IO_TIMEOUT) as c:
                    start = time.monotonic()
                    c.sendall(b'anyone there?')
                    self.assertEqual(c.recv(100), b'')   # no data, then EOF
                    elapsed = time.monotonic() - start
                self.assertGreaterEqual(elapsed, 0.45)
                self.assertLessEqual(elapsed, 2.0)
                if direction == 'up':
                    self.assertTrue(recorder.done.wait(IO_TIMEOUT))
                    self.assertEqual(recorder.data, b'')

    def test_slow_close_delays_the_end_of_stream(self):
        # down: the server sends and closes at once; the client gets the
        # data at once and the end of stream 600 ms later.
        server = self.tcp_server(Recorder(greeting=b'bye', then_close=True))
        _, port = self.proxy(server.port, '--toxic',
                             'slow_close:down:delay=600')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            start = time.monotonic()
            self.assertEqual(c.recv(100), b'bye')
            self.assertLess(time.monotonic() - start, 0.4)
            self.assertEqual(c.recv(100), b'')
            self.assertGreaterEqual(time.monotonic() - start, 0.55)

        # up: the client's half-close reaches the server 600 ms late.
        recorder = Recorder()
        sink = self.tcp_server(recorder)
        _, port = self.proxy(sink.port, '--toxic', 'slow_close:up:delay=600')
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            start = time.monotonic()
            c.sendall(b'hello')
            c.shutdown(socket.SHUT_WR)
            self.assertTrue(recorder.done.wait(IO_TIMEOUT))
        self.assertEqual(recorder.data, b'hello')
        self.assertLess(recorder.first_at - start, 0.4)
        self.assertGreaterEqual(recorder.ended_at - start, 0.55)

    def test_toxicity_picks_a_fraction_of_connections(self):
        # limit_data:bytes=0 closes a connection before any byte: with
        # toxicity 0.5 about half of 200 connections are cut.
        server = self.tcp_server(echo)
        _, port = self.proxy(server.port, '--toxic',
                             'limit_data:down:bytes=0,toxicity=0.5')
        cut = 0
        for _ in range(200):
            try:
                if echo_through(port, b'ping') == b'':
                    cut += 1
            except ConnectionResetError:
                cut += 1
        low, high = binomial_bounds(200, 0.5)
        self.assertTrue(low <= cut <= high, cut)


# -- TCP failures and the command line ---------------------------------------

class TcpFailures(ProxyTestCase):

    def test_upstream_refusing_closes_the_client_and_the_proxy_goes_on(self):
        # A bound socket that does not listen refuses connections (RST).
        closed = socket.socket()
        self.addCleanup(closed.close)
        closed.bind((HOST, 0))
        proc, port = self.proxy(closed.getsockname()[1])
        for _ in range(2):
            with socket.create_connection((HOST, port),
                                          timeout=IO_TIMEOUT) as c:
                try:
                    self.assertEqual(c.recv(100), b'')
                except ConnectionResetError:
                    pass
        self.assertIsNone(proc.returncode)
        self.assertEqual(proc.stop(), 0)
        self.assertIn('Connection refused', proc.stderr_text())

    def test_upstream_dying_midstream_closes_only_its_clients(self):
        # Two routes in one proxy: A to an upstream in a child process,
        # B to one in this process.  Killing A's upstream ends A's client;
        # B's client, and the proxy, go on.
        child = self.spawn([PY, '-c', CHILD_ECHO])
        child_port = int(child.expect(r'^(\d+)$').group(1))
        server = self.tcp_server(echo)
        proc = self.spawn(ferry(
            'proxy', '--route', '%s:0=%s:%d' % (HOST, HOST, child_port),
            '--route', '%s:0=%s:%d' % (HOST, HOST, server.port)))
        self.addCleanup(self.check_clean_exit, proc)
        port_a = server_port(proc)
        port_b = server_port(proc)
        a = socket.create_connection((HOST, port_a), timeout=IO_TIMEOUT)
        b = socket.create_connection((HOST, port_b), timeout=IO_TIMEOUT)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        # ... and a third client on B's route that its upstream resets.
        c = socket.create_connection((HOST, port_b), timeout=IO_TIMEOUT)
        self.addCleanup(c.close)
        for s in (a, b, c):
            s.sendall(b'hello')
            self.assertEqual(s.recv(100), b'hello')
        child.kill()
        try:
            self.assertEqual(a.recv(100), b'')
        except ConnectionResetError:
            pass
        c.sendall(b'DIE')
        with self.assertRaises(ConnectionResetError):
            c.recv(100)
        for i in range(20):
            b.sendall(b'still here %d' % i)
            self.assertEqual(b.recv(100), b'still here %d' % i)
        self.assertIsNone(proc.returncode)
        self.assertEqual(proc.stop(), 0)

    def test_bad_command_lines_are_one_line_and_exit_2(self):
        cases = [
            (['127.0.0.1:0', '127.0.0.1:9', '--toxic', 'lose:up'],
             "unknown toxic 'lose'"),
            (['-u', '127.0.0.1:0', '127.0.0.1:9', '--toxic',
              'loss:up:probability=1.5'], 'between 0 and 1'),
            (['127.0.0.1:0', '127.0.0.1:9', '--toxic',
              'latency:down:latncy=5'], "unknown key 'latncy'"),
            (['127.0.0.1:0', '127.0.0.1:9', '--toxic', 'latency:sideways:'
              'latency=5'], 'direction must be up, down or both'),
            (['127.0.0.1:0', '127.0.0.1:9', '--toxic',
              'loss:up:probability=0.1'], 'UDP toxic'),
            (['-u', '127.0.0.1:0', '127.0.0.1:9', '--toxic',
              'loss:both:p=0.1'], 'needs both p= and r='),
            (['127.0.0.1', '127.0.0.1:9'], 'not HOST:PORT'),
            (['::1:0', '127.0.0.1:9'], 'brackets'),
            (['127.0.0.1:0', '127.0.0.1:99999'], '99999'),
            (['127.0.0.1:0', 'nosuch.invalid:9'], 'nosuch.invalid'),
            (['--route', '127.0.0.1:0'], 'LISTEN=UPSTREAM'),
            ([], 'nothing to relay'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                argv = ferry('proxy', *args)
                if 'nosuch.invalid:9' in args:
                    # Offline: looking a name up would query the machine's nameserver.
                    if ferrytest.offline_unavailable():
                        continue
                    argv = ferrytest.offline(argv)
                result = run(argv, timeout=20)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1,
                                 result.stderr)
                self.assertIn(message, result.stderr)
                self.assertEqual(result.stdout, '')

    def test_port_in_use_is_a_runtime_error(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        result = run(ferry('proxy', '%s:%d' % (HOST, taken.getsockname()[1]),
                           '127.0.0.1:9'), timeout=20)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn('Address already in use', result.stderr)

    def test_config_file_runs_tcp_and_udp_routes(self):
        server = self.tcp_server(echo)
        udp = self.udp_echo()
        config = os.path.join(self.tmpdir(), 'routes.json')
        with open(config, 'w') as f:
            json.dump([
                {'listen': '127.0.0.1:0', 'upstream': '127.0.0.1:%d' % server.port,
                 'toxics': [{'type': 'latency', 'direction': 'down',
                             'attributes': {'latency': 1}}]},
                {'listen': '127.0.0.1:0', 'upstream': '127.0.0.1:%d' % udp.port,
                 'protocol': 'udp',
                 'toxics': ['duplicate:down:probability=1']},
            ], f)
        proc = self.spawn(ferry('proxy', '--config', config, '--json'))
        self.addCleanup(self.check_clean_exit, proc)
        tcp_port = server_port(proc, stderr=True)
        udp_port = server_port(proc, stderr=True)
        self.assertEqual(echo_through(tcp_port, b'tcp!'), b'tcp!')
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(IO_TIMEOUT)
            u.sendto(b'udp!', (HOST, udp_port))
            self.assertEqual(u.recv(100), b'udp!')
            self.assertEqual(u.recv(100), b'udp!')    # duplicated
        report = self.stop_with_json(proc)
        self.assertEqual([r['protocol'] for r in report['routes']],
                         ['tcp', 'udp'])
        self.assertEqual(report['routes'][1]['duplicated'], 1)
        self.assertEqual(report['total']['flows'], 1)
        self.assertEqual(report['total']['connections'], 1)

        with open(config, 'w') as f:
            json.dump([{'listen': '127.0.0.1:0', 'upstream': '127.0.0.1:9',
                        'toxics': [{'type': 'latency', 'direction': 'down',
                                    'attributes': {'latency': -1}}]}], f)
        result = run(ferry('proxy', '--config', config), timeout=20)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn('route 1, toxic 1', result.stderr)

    def tmpdir(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        return d.name


CHILD_ECHO = r'''
import socket, threading
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


# -- UDP --------------------------------------------------------------------

FENCE = b'F'
DATA = b'D'


def udp_run(port, count, burst=100, size=16, seed=7):
    """Sends `count` datagrams (b'D' + 4-byte sequence + padding) through
    an echo behind the proxy, in bursts, and returns the sequence numbers
    received, in order of arrival.

    After each burst a fence datagram is sent, and resent every 20 ms, until
    its echo comes back: the proxy handles a flow's datagrams in order and
    the echo server answers in order, so by then every echo of the burst
    has come back, except one a reorder toxic held, which the fence itself
    released and which comes back next.  A last fence collects that one.
    Bursts are small enough that no socket buffer overflows."""
    rng = random.Random(seed)
    received = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect((HOST, port))
        deadline = time.monotonic() + 60

        def fence(tag):
            marker = FENCE + struct.pack('!I', tag)
            u.send(marker)
            resend = time.monotonic() + 0.02
            while True:
                if time.monotonic() > deadline:
                    raise AssertionError('the UDP run took over 60 s')
                ready, _, _ = select.select([u], [], [],
                                            max(0, resend - time.monotonic()))
                if not ready:
                    u.send(marker)
                    resend = time.monotonic() + 0.02
                    continue
                data = u.recv(65535)
                if data == marker:
                    return
                if data[:1] == DATA:
                    received.append(struct.unpack('!I', data[1:5])[0])

        for start in range(0, count, burst):
            for seq in range(start, min(count, start + burst)):
                u.send(DATA + struct.pack('!I', seq) + rng.randbytes(size))
            fence(start)
        fence(count)
    return received


class UdpRelay(ProxyTestCase):

    def test_no_toxics_keeps_message_boundaries(self):
        server = self.udp_echo()
        proc, port = self.proxy(server.port, '--json', udp=True)
        rng = random.Random(3)
        sizes = [0, 1, 100, 1472, 9000, 65507]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(IO_TIMEOUT)
            for size in sizes:
                payload = rng.randbytes(size)
                u.sendto(payload, (HOST, port))
                self.assertEqual(u.recv(65535), payload)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.settimeout(IO_TIMEOUT)
            other.sendto(b'second client', (HOST, port))
            self.assertEqual(other.recv(100), b'second client')
        report = self.stop_with_json(proc)['routes'][0]
        self.assertEqual(report['flows'], 2)
        self.assertEqual(report['datagrams_up'], len(sizes) + 1)
        self.assertEqual(report['datagrams_down'], len(sizes) + 1)
        self.assertEqual(report['dropped'], 0)

    def test_loss_and_duplication_rates_are_binomial(self):
        server = self.udp_echo()
        proc, port = self.proxy(server.port, '--json', '--toxic',
                                'loss:up:probability=0.3', '--toxic',
                                'duplicate:up:probability=0.2', udp=True)
        n = 10000
        seqs = udp_run(port, n)
        unique = set(seqs)
        lost = n - len(unique)
        duplicates = len(seqs) - len(unique)
        low, high = binomial_bounds(n, 0.3)
        self.assertTrue(low <= lost <= high, 'lost %d of %d' % (lost, n))
        low, high = binomial_bounds(len(unique), 0.2)
        self.assertTrue(low <= duplicates <= high,
                        '%d duplicates of %d' % (duplicates, len(unique)))
        report = self.stop_with_json(proc)['routes'][0]
        self.assertGreaterEqual(report['dropped'], lost)
        self.assertGreaterEqual(report['duplicated'], duplicates)

    def test_gilbert_elliott_loss_is_bursty_at_the_stationary_rate(self):
        p, r, good, bad = 0.05, 0.5, 0.0, 0.8
        server = self.udp_echo()
        _, port = self.proxy(
            server.port, '--toxic',
            'loss:up:p=%g,r=%g,good=%g,bad=%g' % (p, r, good, bad), udp=True)
        n = 10000
        got = set(udp_run(port, n))
        lost = [seq not in got for seq in range(n)]
        rate = sum(lost) / n
        stationary = (r * good + p * bad) / (p + r)      # 0.0727
        # The chain's losses are correlated: the standard deviation of the
        # rate over 10,000 datagrams is about 0.004 (by simulation); 5 of them.
        self.assertAlmostEqual(rate, stationary, delta=0.02)
        # Bursts: a loss is far likelier right after a loss than on average
        # (about (1 - r) * bad = 0.4 here, against 0.07).
        after_loss = [lost[i + 1] for i in range(n - 1) if lost[i]]
        self.assertGreater(sum(after_loss) / len(after_loss), 3 * rate)

    def test_reorder_lets_later_datagrams_overtake(self):
        server = self.udp_echo()
        proc, port = self.proxy(server.port, '--json', '--toxic',
                                'reorder:up:probability=0.2,hold=50',
                                udp=True)
        n = 2000
        seqs = udp_run(port, n)
        self.assertEqual(sorted(seqs), list(range(n)))   # nothing lost
        overtaken = sum(1 for a, b in zip(seqs, seqs[1:]) if a > b)
        self.assertGreater(overtaken, n * 0.05)
        report = self.stop_with_json(proc)['routes'][0]
        self.assertGreater(report['reordered'], 0)

    def test_corrupt_flips_exactly_one_bit(self):
        server = self.udp_echo()
        _, port = self.proxy(server.port, '--toxic',
                             'corrupt:up:probability=0.1', udp=True)
        n = 2000
        rng = random.Random(5)
        sent = [rng.randbytes(32) for _ in range(n)]
        replies = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect((HOST, port))
            u.settimeout(IO_TIMEOUT)
            # Nothing is lost or reordered: each burst's replies come back
            # whole and in order.
            for start in range(0, n, 50):
                for body in sent[start:start + 50]:
                    u.send(body)
                for _ in sent[start:start + 50]:
                    replies.append(u.recv(100))
        flipped = []
        for a, b in zip(sent, replies):
            self.assertEqual(len(a), len(b))
            flipped.append(bin(int.from_bytes(a, 'big') ^
                               int.from_bytes(b, 'big')).count('1'))
        self.assertLessEqual(set(flipped), {0, 1})
        low, high = binomial_bounds(n, 0.1)
        self.assertTrue(low <= sum(flipped) <= high, sum(flipped))

    def test_seed_makes_the_faults_reproducible(self):
        # Duplication loses nothing, so every datagram takes exactly one
        # random draw whatever the timing: datagram, then a fence sent once,
        # and the next datagram only once the fence is back.
        server = self.udp_echo()

        def duplicated_with(seed):
            proc = self.spawn(ferry(
                'proxy', '-u', '%s:0' % HOST, '%s:%d' % (HOST, server.port),
                '--seed', seed, '--toxic', 'duplicate:down:probability=0.5'))
            self.addCleanup(self.check_clean_exit, proc)
            port = server_port(proc)
            copies = [0] * 200
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.connect((HOST, port))
                u.settimeout(IO_TIMEOUT)
                for seq in range(200):
                    u.send(DATA + struct.pack('!I', seq))
                    u.send(FENCE + struct.pack('!I', seq))
                    while True:
                        data = u.recv(100)
                        if data == FENCE + struct.pack('!I', seq):
                            break
                        if data[:1] == DATA:
                            copies[struct.unpack('!I', data[1:5])[0]] += 1
            self.assertEqual(proc.stop(), 0)
            return copies

        first = duplicated_with(11)
        self.assertLessEqual(set(first), {1, 2})
        self.assertEqual(duplicated_with(11), first)
        self.assertNotEqual(duplicated_with(12), first)

    def test_idle_flow_is_dropped(self):
        server = self.udp_echo()
        proc, port = self.proxy(server.port, '--udp-idle', '0.2', '--json',
                                udp=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(IO_TIMEOUT)
            u.sendto(b'one', (HOST, port))
            self.assertEqual(u.recv(10), b'one')
            time.sleep(0.8)     # the idle time itself is under test
            u.sendto(b'two', (HOST, port))
            self.assertEqual(u.recv(10), b'two')
        self.assertNotEqual(server.peers[0], server.peers[1])
        self.assertEqual(self.stop_with_json(proc)['routes'][0]['flows'], 2)

    def test_upstream_refusing_udp_is_reported_and_survived(self):
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind((HOST, 0))
        dead_port = closed.getsockname()[1]
        closed.close()          # nothing listens there now: ICMP unreachable
        proc, port = self.proxy(dead_port, udp=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for _ in range(3):
                u.sendto(b'hello?', (HOST, port))
        deadline = time.monotonic() + IO_TIMEOUT
        while 'refused' not in proc.stderr_text():
            self.assertLess(time.monotonic(), deadline, proc.describe())
            select.select([], [], [], 0.02)
        self.assertIsNone(proc.returncode)
        self.assertEqual(proc.stop(), 0)

    def test_reliable_udp_client_gets_through_a_bad_network(self):
        server = self.spawn(ferry('udp-remote', 'server', HOST, '-p', 0,
                                  '--drop', 0, '--request-ids'))
        _, port = self.proxy(
            server_port(server),
            '--toxic', 'loss:both:probability=0.3',
            '--toxic', 'duplicate:both:probability=0.2',
            '--toxic', 'reorder:both:probability=0.2,hold=50', udp=True)
        client = run(ferry('udp-remote', 'client', HOST, '-p', port,
                           '--request-ids', '--count', 50, '--cap', 0.4,
                           '--tries', 30), timeout=80)
        self.assertEqual(client.returncode, 0, client.stderr)
        said = [l for l in client.stdout.splitlines()
                if l.startswith('The server says')]
        self.assertEqual(len(said), 50, client.stdout)


if __name__ == '__main__':
    unittest.main()
