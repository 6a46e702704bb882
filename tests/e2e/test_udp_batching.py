"""Batched datagrams (recvmmsg/sendmmsg) in the UDP echo and the UDP proxy.

Most tests pause the server (SIGSTOP, and wait until the kernel shows it
stopped), queue a burst in its socket from several clients, and let it go on
(SIGCONT): the server then finds many datagrams waiting at once, which is what
its batch path handles. Every datagram must come back to its own sender, in
order, with --max-frame, the toxics and the flow limit applied per datagram
as they are without batching.
"""

import json
import random
import signal
import socket
import struct
import threading
import time

import ferrytest
from echo_support import start_server
from ferrytest import TestCase, ferry, server_port
from relay_peers import UdpEcho

HOST = '127.0.0.1'
TIMEOUT = 20.0


def wait_for_state(proc, stopped, timeout=TIMEOUT):
    """Waits until /proc shows the process stopped (state T) or not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open('/proc/%d/stat' % proc.pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        if (state == 'T') == stopped:
            return
        time.sleep(0.005)  # the interval of polling a condition, not a synchronisation
    raise AssertionError('the process did not %s within %s s'
                         % ('stop' if stopped else 'go on', timeout))


def pause(test, proc):
    proc.send_signal(signal.SIGSTOP)
    # A test that fails while the process is stopped must not leave it stopped.
    test.addCleanup(proc.send_signal, signal.SIGCONT)
    wait_for_state(proc, stopped=True)


def resume(proc):
    proc.send_signal(signal.SIGCONT)


def udp_client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.settimeout(TIMEOUT)
    return s


def payload(client, seq, size):
    head = struct.pack('!HH', client, seq)
    return head + bytes((client + seq + i) & 0xff for i in range(size - len(head)))


class EchoBatches(TestCase):

    def test_a_queued_burst_comes_back_to_each_sender_in_order_without_the_oversized(self):
        # 8 clients x 10 datagrams of at most 100 bytes: far below the socket's receive buffer.
        clients, per_client, max_frame = 8, 10, 64
        rng = random.Random(11)
        for model in ('poll', 'epoll'):
            with self.subTest(model=model):
                proc, port = start_server(self, model, '-u', '--max-frame', str(max_frame))
                sockets = [udp_client() for _ in range(clients)]
                for s in sockets:
                    self.addCleanup(s.close)
                sent = {c: [] for c in range(clients)}
                pause(self, proc)
                for seq in range(per_client):
                    for c, s in enumerate(sockets):
                        data = payload(c, seq, rng.randint(4, 100))
                        s.sendto(data, (HOST, port))
                        sent[c].append(data)
                resume(proc)
                echoed = 0
                for c, s in enumerate(sockets):
                    expected = [d for d in sent[c] if len(d) <= max_frame]
                    got = [s.recv(65535) for _ in expected]
                    self.assertEqual(got, expected, 'client %d' % c)
                    echoed += len(expected)
                    # Nothing more: the oversized ones were dropped, not sent late.
                    s.settimeout(0)
                    with self.assertRaises(BlockingIOError):
                        s.recv(65535)
                self.assertEqual(proc.stop(timeout=TIMEOUT), 0, proc.describe())
                dropped = clients * per_client - echoed
                self.assertIn('Stopped: %d datagrams echoed' % echoed, proc.output())
                self.assertIn('%d over the maximum dropped' % dropped, proc.output())

    def test_stops_at_once_while_a_client_keeps_sending(self):
        proc, port = start_server(self, 'epoll', '-u')
        answered = threading.Event()
        done = threading.Event()
        count = [0]

        def ping_pong():
            with udp_client() as s:
                s.settimeout(0.5)
                deadline = time.monotonic() + 60
                while not done.is_set() and time.monotonic() < deadline and count[0] < 10**6:
                    s.sendto(b'ping', (HOST, port))
                    try:
                        s.recv(100)
                    except (socket.timeout, ConnectionRefusedError):
                        continue
                    count[0] += 1
                    if count[0] == 200:
                        answered.set()

        sender = threading.Thread(target=ping_pong, daemon=True)
        sender.start()
        self.addCleanup(sender.join, TIMEOUT)
        self.addCleanup(done.set)
        self.assertTrue(answered.wait(TIMEOUT), 'the echo did not answer 200 pings')
        started = time.monotonic()
        # Datagrams keep coming: the echo lingers for them, but not past the stop.
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0, proc.describe())
        self.assertLess(time.monotonic() - started, 5.0)


class ProxyBatches(TestCase):

    def proxy(self, upstream_port, *args):
        proc = self.spawn(ferry('proxy', '-u', '%s:0' % HOST, '%s:%d' % (HOST, upstream_port),
                                '--seed', '1060', '--json', *args))
        return proc, server_port(proc, stderr=True)

    def stop_with_report(self, proc):
        self.assertEqual(proc.stop(sig=signal.SIGINT), 0, proc.describe())
        self.assertNotIn('Sanitizer', proc.stderr_text())
        return json.loads(proc.output())['routes'][0]

    def test_a_queued_burst_from_several_clients_passes_each_datagram_through_the_toxics(self):
        upstream = UdpEcho()
        self.addCleanup(upstream.close)
        proc, port = self.proxy(upstream.port, '--toxic', 'duplicate:up:probability=1')
        clients, per_client = 4, 10
        sockets = [udp_client() for _ in range(clients)]
        for s in sockets:
            self.addCleanup(s.close)
        # One datagram each first, so that every flow exists; then the burst.
        for c, s in enumerate(sockets):
            s.sendto(b'hello %d' % c, (HOST, port))
            self.assertEqual([s.recv(100), s.recv(100)], [b'hello %d' % c] * 2)
        pause(self, proc)
        sent = {c: [] for c in range(clients)}
        for seq in range(per_client):
            for c, s in enumerate(sockets):
                data = payload(c, seq, 40)
                s.sendto(data, (HOST, port))
                sent[c].append(data)
        resume(proc)
        for c, s in enumerate(sockets):
            # Duplicated on the way up, each in its place: the echo answers both copies.
            expected = [d for d in sent[c] for _ in range(2)]
            self.assertEqual([s.recv(65535) for _ in expected], expected, 'client %d' % c)
        report = self.stop_with_report(proc)
        total = clients * (per_client + 1)
        self.assertEqual(report['datagrams_up'], total)
        self.assertEqual(report['datagrams_down'], 2 * total)
        self.assertEqual(report['dropped'], 0)

    def test_a_flow_evicted_in_the_middle_of_a_batch_still_sends_what_it_was_given(self):
        upstream = udp_client()
        self.addCleanup(upstream.close)
        proc, port = self.proxy(upstream.getsockname()[1], '--udp-max-flows', '1')
        sockets = [udp_client() for _ in range(3)]
        for s in sockets:
            self.addCleanup(s.close)
        pause(self, proc)
        for c, s in enumerate(sockets):
            s.sendto(b'from client %d' % c, (HOST, port))
        resume(proc)
        # One batch holds the three: each new client evicts the flow before it, after its
        # datagram went up.
        got = sorted(upstream.recv(100) for _ in sockets)
        self.assertEqual(got, [b'from client %d' % c for c in range(3)])
        report = self.stop_with_report(proc)
        self.assertEqual(report['flows'], 3)
        self.assertEqual(report['evicted'], 2)
        self.assertEqual(report['dropped'], 0)


if __name__ == '__main__':
    import unittest
    unittest.main()
