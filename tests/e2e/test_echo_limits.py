"""Every server model of `ferry echo` keeps a client from taking its memory or its time."""

import socket
import struct
import time
import unittest

import ferrytest
from echo_support import (CONCURRENT, MODELS, TIMEOUT, connect, recv_exactly, rss_kib,
                          start_server)

REFUSAL = b'ERR max number of clients reached\r\n'
# How much a client that never reads may make a server grow. Its replies wait
# in a queue bounded by --high-water (64 KiB here) plus the socket buffers,
# which are kernel memory; the rest is allocator slack, and ASan's.
RSS_BOUND_KIB = 16 * 1024


def closed_by_server(sock, timeout):
    """True when the server ends the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Limits:
    MODEL = None

    def test_the_connection_over_the_maximum_is_told_and_closed(self):
        if self.MODEL not in CONCURRENT:
            self.skipTest('the iterative model serves one client at a time: the rest wait in the backlog')
        proc, port = start_server(self, self.MODEL, '--max-conns', '2', '--threads', '2')
        first, second = connect(port), connect(port)
        try:
            for s in (first, second):  # both really being served
                s.sendall(b'hi')
                self.assertEqual(recv_exactly(s, 2), b'hi')
            with connect(port) as third:
                self.assertEqual(recv_exactly(third, len(REFUSAL)), REFUSAL)
                self.assertTrue(closed_by_server(third, TIMEOUT))
        finally:
            first.close()
            second.close()
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b1 refused\b')

    def test_an_idle_connection_is_dropped_after_the_idle_timeout(self):
        proc, port = start_server(self, self.MODEL, '--idle-timeout', '1')
        with connect(port) as s:
            start = time.monotonic()
            self.assertTrue(closed_by_server(s, 10))
            self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b1 dropped idle\b')

    def test_an_announced_frame_over_the_maximum_drops_the_connection_unechoed(self):
        proc, port = start_server(self, self.MODEL, '--framing', 'length', '--max-frame', '1000')
        with connect(port) as s:
            s.sendall(struct.pack('!I', 2000) + b'x' * 10)
            self.assertTrue(closed_by_server(s, TIMEOUT))
        with connect(port) as s:  # the server itself is fine
            s.sendall(struct.pack('!I', 3) + b'abc')
            self.assertEqual(recv_exactly(s, 7), struct.pack('!I', 3) + b'abc')
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b1 dropped for bad frames\b')

    def test_a_line_over_the_maximum_drops_the_connection(self):
        proc, port = start_server(self, self.MODEL, '--framing', 'line', '--max-frame', '1000')
        with connect(port) as s:
            s.sendall(b'y' * 5000)
            self.assertTrue(closed_by_server(s, TIMEOUT))

    def test_a_client_that_never_reads_is_dropped_and_memory_stays_bounded(self):
        proc, port = start_server(self, self.MODEL, '--high-water', '65536', '--stalled-timeout', '1')
        with connect(port) as s:
            s.sendall(b'warm up')
            recv_exactly(s, 7)
            before = rss_kib(proc.pid)
            s.setblocking(False)
            chunk = b'z' * 65536
            pushed = 0
            peak = before
            dropped = False
            deadline = time.monotonic() + 20
            # Push up to 64 MiB without ever reading; the server must stop
            # reading (its queue is full), then drop us.
            while pushed < (64 << 20) and time.monotonic() < deadline:
                try:
                    pushed += s.send(chunk)
                except BlockingIOError:
                    import select
                    select.select([], [s], [], 0.2)
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
                peak = max(peak, rss_kib(proc.pid))
            if not dropped:
                s.setblocking(True)
                dropped = closed_by_server(s, TIMEOUT)
            self.assertTrue(dropped, 'the server kept a client that never reads (%d bytes pushed)' % pushed)
            self.assertLess(peak - before, RSS_BOUND_KIB,
                            'server RSS grew by %d KiB for a client that never reads' % (peak - before))
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b1 dropped for not reading\b')


for _model in MODELS:
    _name = 'Limits_%s' % _model
    globals()[_name] = type(_name, (Limits, ferrytest.TestCase), {'MODEL': _model})


if __name__ == '__main__':
    unittest.main()
