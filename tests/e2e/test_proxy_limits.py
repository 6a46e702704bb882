"""ferry proxy keeps its resources bounded: a cap on TCP connections, an idle
timeout, a cap on UDP flows that evicts the least recently used one, and
warnings that cannot flood stderr.

The servers behind the proxy live in this process (relay_peers.py).  Every
proxy runs on 127.0.0.1 port 0 and must stop on a signal with exit 0 and
nothing from the sanitizers.
"""

import json
import re
import select
import signal
import socket
import time
import unittest

from ferrytest import TestCase, ferry, run, server_port
from relay_peers import TcpServer, UdpEcho, echo

HOST = '127.0.0.1'
TIMEOUT = 10.0
FLOOD = 3000            # distinct UDP clients, one datagram each
FLOOD_LIMIT = 512       # the proxy's descriptor limit during the flood


def closed_by_proxy(sock, timeout=TIMEOUT):
    """True when the connection ends (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b''
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def round_trip(sock, data):
    sock.sendall(data)
    got = b''
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        if not chunk:
            return got
        got += chunk
    return got


class LimitsCase(TestCase):

    def proxy(self, argv, limit=None):
        """ferry proxy ARGV..., under `ulimit -n LIMIT` if given: (Proc, port)."""
        args = ferry('proxy', *argv)
        if limit is not None:
            args = ['sh', '-c', 'ulimit -n %d && exec "$0" "$@"' % limit] + args
        proc = self.spawn(args)
        self.addCleanup(self.check_clean_exit, proc)
        # With --json, standard output is the JSON alone: Listening goes to stderr.
        return proc, server_port(proc, stderr='--json' in argv)

    def stop_with_json(self, proc):
        self.assertEqual(proc.stop(sig=signal.SIGINT), 0, proc.describe())
        return json.loads(proc.lines()[-1])

    def tcp_echo(self):
        server = TcpServer(echo)
        self.addCleanup(server.close)
        return server


class TcpLimits(LimitsCase):

    def test_the_connection_over_the_maximum_is_closed_and_room_comes_back(self):
        server = self.tcp_echo()
        proc, port = self.proxy(['%s:0' % HOST, '%s:%d' % (HOST, server.port),
                                 '--max-connections', 2, '--json'])
        first = socket.create_connection((HOST, port), timeout=TIMEOUT)
        second = socket.create_connection((HOST, port), timeout=TIMEOUT)
        try:
            for sock in (first, second):
                self.assertEqual(round_trip(sock, b'served'), b'served')
            with socket.create_connection((HOST, port), timeout=TIMEOUT) as third:
                self.assertTrue(closed_by_proxy(third), 'a third connection was kept')
            for sock in (first, second):  # the two are untouched
                self.assertEqual(round_trip(sock, b'still'), b'still')
        finally:
            first.close()
        try:
            # Once the proxy has seen the first one go, a new one is served.
            deadline = time.monotonic() + TIMEOUT
            while True:
                with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
                    try:
                        if round_trip(sock, b'again') == b'again':
                            break
                    except ConnectionResetError:
                        pass
                self.assertLess(time.monotonic(), deadline, 'no room after a close')
        finally:
            second.close()
        # Said before the third was closed; waited for, as the pipe's reader may lag.
        proc.expect(r'too many connections \(max 2\)', stderr=True, timeout=TIMEOUT)
        route = self.stop_with_json(proc)['routes'][0]
        self.assertGreaterEqual(route['shed'], 1)

    def test_an_idle_connection_is_closed_and_an_active_one_is_not(self):
        server = self.tcp_echo()
        proc, port = self.proxy(['%s:0' % HOST, '%s:%d' % (HOST, server.port),
                                 '--idle-timeout', 1, '--json'])
        idle = socket.create_connection((HOST, port), timeout=TIMEOUT)
        active = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.addCleanup(idle.close)
        self.addCleanup(active.close)
        for sock in (idle, active):
            self.assertEqual(round_trip(sock, b'hello'), b'hello')
        start = time.monotonic()
        ended = None
        while time.monotonic() - start < TIMEOUT:
            # The active one talks at least every 50 ms, while the wait for
            # the idle one's end is the pause between its round trips.
            self.assertEqual(round_trip(active, b'tick'), b'tick')
            readable, _, _ = select.select([idle], [], [], 0.05)
            if readable:
                self.assertTrue(closed_by_proxy(idle, 0))
                ended = time.monotonic() - start
                break
        self.assertIsNotNone(ended, 'the idle connection was kept')
        self.assertGreaterEqual(ended, 0.9)
        self.assertEqual(round_trip(active, b'after'), b'after')
        route = self.stop_with_json(proc)['routes'][0]
        self.assertEqual(route['idle_closed'], 1)


    def test_an_unreachable_upstream_is_said_once_a_second_with_the_count(self):
        # A port nothing listens on: every connection is refused upstream.
        with socket.socket() as holder:
            holder.bind((HOST, 0))
            dead = holder.getsockname()[1]
        proc, port = self.proxy(['%s:0' % HOST, '%s:%d' % (HOST, dead), '--json'])
        clients = 200
        for _ in range(clients):
            with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
                self.assertTrue(closed_by_proxy(sock), 'a connection was kept')
        route = self.stop_with_json(proc)['routes'][0]
        self.assertEqual(route['refused'], clients)
        lines = [line for line in proc.stderr_text().splitlines() if 'Connection refused' in line]
        # The first at once, then one line per second with the count: 200 refusals on
        # loopback take well under the seconds that would allow 200 lines.
        self.assertGreaterEqual(len(lines), 1)
        self.assertLess(len(lines), clients // 2, '\n'.join(lines[:5]))
        self.assertIn('closed the connection from', lines[0])
        counts = [re.search(r'(\d+) connections closed in the last second', line)
                  for line in lines[1:]]
        self.assertTrue(all(counts), '\n'.join(lines))
        counted = 1 + sum(int(m.group(1)) for m in counts)
        self.assertEqual(counted, clients, '\n'.join(lines))


class UdpLimits(LimitsCase):

    def test_a_flood_of_source_ports_cannot_lock_a_new_client_out(self):
        upstream = UdpEcho()
        self.addCleanup(upstream.close)
        proc, port = self.proxy(['-u', '%s:0' % HOST, '%s:%d' % (HOST, upstream.port),
                                 '--json'], limit=FLOOD_LIMIT)
        ports = set()
        for i in range(FLOOD):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((HOST, 0))
                ports.add(sock.getsockname()[1])
                sock.sendto(b'flood %d' % i, (HOST, port))
        # Ports are reused once their socket is closed, but most are new.
        self.assertGreater(len(ports), FLOOD // 2)
        # A client behind the whole flood: once it has its echo, the proxy
        # and the echo server have been through every datagram before it.
        # (The flood overflows the proxy's receive buffer, so the marker
        # itself may be lost: it is sent again until it comes back.)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.settimeout(0.5)
            deadline = time.monotonic() + TIMEOUT
            while True:
                marker.sendto(b'marker', (HOST, port))
                try:
                    self.assertEqual(marker.recv(100), b'marker')
                    break
                except socket.timeout:
                    self.assertLess(time.monotonic(), deadline, 'the proxy went silent')
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as newcomer:
            newcomer.settimeout(1.0)
            newcomer.sendto(b'let me in', (HOST, port))
            self.assertEqual(newcomer.recv(100), b'let me in')
        lines = proc.stderr_text().splitlines()
        self.assertLess(len(lines), 30, '\n'.join(lines[:40]))
        self.assertTrue(any('least recently used' in line for line in lines), lines)
        route = self.stop_with_json(proc)['routes'][0]
        self.assertGreater(route['evicted'], 0)
        # The cap: half of what 512 descriptors leave after 64.
        self.assertLessEqual(route['flows'] - route['evicted'], (FLOOD_LIMIT - 64) // 2)

    def test_an_unreachable_upstream_is_said_once_a_second_across_flows(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
            holder.bind((HOST, 0))
            dead = holder.getsockname()[1]
        proc, port = self.proxy(['-u', '%s:0' % HOST, '%s:%d' % (HOST, dead), '--json'])
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(200)]
        for sock in clients:
            self.addCleanup(sock.close)
            sock.bind((HOST, 0))    # kept open: 200 distinct sources, 200 flows
            sock.sendto(b'anyone?', (HOST, port))
        # The first flow's refusal is said at once, the others' counted: at most
        # one line a second, until every flow has been said.
        said, lines = 0, 0
        while said < len(clients):
            m = proc.expect(r'(\d+) flows in trouble in the last second|refused datagrams from',
                            stderr=True, timeout=TIMEOUT)
            said += int(m.group(1)) if m.group(1) else 1
            lines += 1
        self.assertEqual(said, len(clients))        # each flow once
        self.assertLess(lines, 10)
        route = self.stop_with_json(proc)['routes'][0]
        self.assertEqual(route['flows'], len(clients))
        self.assertGreaterEqual(route['refused'], said)


class Options(TestCase):

    def test_help_documents_the_limits(self):
        result = run(ferry('proxy', '--help'))
        self.assertEqual(result.returncode, 0, result.stderr)
        for option in ('--max-connections', '--idle-timeout', '--udp-max-flows'):
            self.assertIn(option, result.stdout)

    def test_bad_limits_are_one_line_and_exit_2(self):
        cases = [
            (['--max-connections', '0'], '--max-connections'),
            (['--udp-max-flows', '0'], '--udp-max-flows'),
            (['--idle-timeout', '-1'], '--idle-timeout'),
            (['--toxic', 'latency:down:latency=1e300'], 'latency toxic: latency must be between 0 and'),
            (['--toxic', 'bandwidth:up:rate=1e-20'], 'bandwidth toxic: rate must be 0'),
            (['--toxic', 'latency:down:latency=10,jitter=nan'], 'jitter=nan: not a number'),
            (['--toxic', 'slicer:up:average_size=1e400'], 'not a number'),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                result = run(ferry('proxy', '%s:0' % HOST, '%s:9' % HOST, *extra))
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertIn(message, result.stderr)


if __name__ == '__main__':
    unittest.main()
