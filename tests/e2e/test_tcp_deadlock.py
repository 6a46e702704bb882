"""ferry tcp-deadlock: a client that sends everything before reading, a
server that echoes 1024-byte chunks upper-cased; with a large count both
block.  ferry adds --stall-timeout and --no-deadlock."""

import re
import signal
import socket
import time
import unittest

from classicutil import (ADDR, PY_ADDR, ClassicTest, closed_port,
                         recv_until_eof, tcp_connect, tcp_listener)
from ferrytest import ferry, run, server_port, textbook

MESSAGE = b'capitalize this!'
GIGABYTE = 1073741824


def client_lines(stdout):
    """A client's lines, also split at '\\r' (the textbook redraws its
    counts in place), stripped, without empty ones."""
    return [l.strip() for l in re.split(r'[\r\n]', stdout) if l.strip()]


def first_data(test, line):
    """Checks the line `The first data received says b'...'`: recv(42)
    returns up to 42 bytes of the upper-cased stream."""
    got = re.fullmatch(r"The first data received says b'([^']*)'", line)
    test.assertTrue(got, line)
    test.assertLessEqual(len(got.group(1)), 42)
    test.assertTrue(('CAPITALIZE THIS!' * 3).startswith(got.group(1)), line)
    return got.group(1)


class Server(ClassicTest):

    def test_echoes_upper_cased_on_the_wire(self):
        server, host, port = self.server('tcp-deadlock', 'server',
                                         '127.0.0.1')
        self.assertEqual(host, '127.0.0.1')
        data = MESSAGE * 100 + b'Mixed Case, 123 \xff\n'
        with tcp_connect(port) as conn:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(conn), data.upper())
            me = conn.getsockname()[1]
        server.expect(r'^Processing up to 1024 bytes at a time from '
                      r'127\.0\.0\.1:%d$' % me)
        server.expect(r'^  %d bytes processed so far$' % len(data))
        server.expect(r'^  Socket closed$')
        self.assertEqual(server.stop(), 0)
        self.assertEqual(server.stderr_text(), '')

    def test_stall_timeout_drops_a_client_that_does_not_read(self):
        # The client sends and never reads: the server's replies fill both
        # buffers, then its sends wait; after 1 s it gives up on the client.
        server, _, port = self.server('tcp-deadlock', 'server', '127.0.0.1',
                                      '--stall-timeout', 1)
        with tcp_connect(port) as conn:
            conn.settimeout(0.5)
            chunk = MESSAGE * 4096
            try:
                while True:
                    conn.sendall(chunk)
            except socket.timeout:
                pass       # no progress: the server stopped reading
            except (ConnectionResetError, BrokenPipeError):
                pass       # the server already gave up on us
            server.expect(r'^  Stalled: blocked for 1\.0 s sending replies '
                          r'the client does not read$')
            server.expect(r'^  Socket closed$')
        # ... and serves the next client.
        client = run(ferry('tcp-deadlock', 'client', '127.0.0.1', 1600, '-p',
                           port))
        self.assert_ok(client)

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('tcp-deadlock', 'server', '127.0.0.1')

    def test_stops_on_a_signal_in_the_middle_of_a_deadlock(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                server, _, port = self.server('tcp-deadlock', 'server',
                                              '127.0.0.1')
                with tcp_connect(port) as conn:
                    conn.settimeout(1.0)
                    try:
                        while True:
                            conn.sendall(MESSAGE * 4096)
                    except socket.timeout:
                        pass          # deadlocked: nobody reads
                    start = time.monotonic()
                    self.assertEqual(server.stop(sig=sig), 0,
                                     server.describe())
                    self.assertLess(time.monotonic() - start, 5)
                server.expect(r'^  Socket closed$')


class Client(ClassicTest):

    def check_wire(self, bytecount, expected):
        # A fake server that reads everything first: the client must send
        # exactly the rounded-up count, then shut down its writing side.
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            client = self.spawn(ferry('tcp-deadlock', 'client', '127.0.0.1',
                                      bytecount, '-p', port))
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                data = recv_until_eof(conn)
                self.assertEqual(data, MESSAGE * (expected // 16))
                conn.sendall(data.upper())
            self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.stderr_text(), '')
        lines = client.lines()
        self.assertEqual(lines[:3], [
            'Sending %d bytes of data, in chunks of 16 bytes' % expected,
            '  %d bytes sent' % expected,
            'Receiving all the data the server sends back'])
        self.assertEqual(len(lines), 5, lines)
        got = first_data(self, lines[3].strip())
        if expected:
            self.assertTrue(got)
        self.assertEqual(lines[4], '  %d bytes received' % expected)

    def test_1600_bytes_on_the_wire(self):
        self.check_wire(1600, 1600)

    def test_count_rounded_up_to_16(self):
        self.check_wire(1601, 1616)

    def test_zero_bytes(self):
        self.check_wire(0, 0)

    def test_connection_refused(self):
        port = closed_port(socket.SOCK_STREAM)
        client = run(ferry('tcp-deadlock', 'client', '127.0.0.1', 16, '-p',
                           port))
        self.assert_fails(client, 1, 'Connection refused')


class FerryWithFerry(ClassicTest):

    def check(self, bytecount, expected, *flags, timeout=20):
        server, _, port = self.server('tcp-deadlock', 'server', '127.0.0.1')
        client = run(ferry('tcp-deadlock', 'client', '127.0.0.1', bytecount,
                           '-p', port, *flags), timeout=timeout)
        self.assert_ok(client)
        lines = client_lines(client.stdout)
        self.assertEqual(lines[0], 'Sending %d bytes of data, in chunks of '
                         '16 bytes' % expected)
        self.assertIn('%d bytes sent' % expected, lines)
        self.assertEqual(lines[-1], '%d bytes received' % expected)
        first = [l for l in lines if l.startswith('The first data')]
        self.assertEqual(len(first), 1, lines)
        first_data(self, first[0])
        server.expect(r'^Processing up to 1024 bytes at a time from %s$'
                      % ADDR)
        server.expect(r'^  %d bytes processed so far$' % expected)
        server.expect(r'^  Socket closed$')
        return lines

    def test_small_count_completes(self):
        self.check(1601, 1616)

    def test_small_count_no_deadlock(self):
        lines = self.check(1601, 1616, '--no-deadlock')
        self.assertIn('Sending and receiving at once (--no-deadlock)', lines)

    def test_one_gigabyte_with_no_deadlock_completes(self):
        start = time.monotonic()
        # About 25 s on a loaded 2-core machine with ASan (the server's
        # 1024-byte chunks are a million recv/send pairs); bounded at 150 s.
        self.check(GIGABYTE, GIGABYTE, '--no-deadlock', timeout=150)
        # Kept in the output of a verbose run, for whoever tunes the suite.
        print(' [1 GB in %.1f s]' % (time.monotonic() - start), end=' ',
              flush=True)

    def test_one_gigabyte_stalls_and_says_so(self):
        server, _, port = self.server('tcp-deadlock', 'server', '127.0.0.1')
        start = time.monotonic()
        client = run(ferry('tcp-deadlock', 'client', '127.0.0.1', GIGABYTE,
                           '-p', port, '--stall-timeout', 2), timeout=30)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 20)
        self.assertGreaterEqual(elapsed, 2)
        line = self.assert_fails(client, 1, 'stalled', 'bytes')
        got = re.search(r'sent (\d+) of %d bytes, received 0 bytes' % GIGABYTE,
                        line)
        self.assertTrue(got, line)
        sent = int(got.group(1))
        self.assertLess(sent, GIGABYTE)
        self.assertIn('blocked in send()', line)
        self.assertEqual(client.stdout.splitlines(), [
            'Sending %d bytes of data, in chunks of 16 bytes' % GIGABYTE,
            '  %d bytes sent' % sent])
        # The server notices its client gone and serves the next one.
        server.expect(r'^  Socket closed$')
        again = run(ferry('tcp-deadlock', 'client', '127.0.0.1', 32, '-p',
                          port))
        self.assert_ok(again)


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('tcp_deadlock.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        client = run(ferry('tcp-deadlock', 'client', '127.0.0.1', 1601, '-p',
                           port))
        self.assert_ok(client)
        lines = client_lines(client.stdout)
        self.assertEqual(lines[:3], [
            'Sending 1616 bytes of data, in chunks of 16 bytes',
            '1616 bytes sent',
            'Receiving all the data the server sends back'])
        first_data(self, lines[3])
        self.assertEqual(lines[4:], ['1616 bytes received'])
        server.expect(r'^Processing up to 1024 bytes at a time from %s$'
                      % PY_ADDR)
        server.expect(r'^  Socket closed$')
        self.assertIn('1616 bytes processed so far', server.output())

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('tcp-deadlock', 'server', '127.0.0.1')
        client = run(textbook('tcp_deadlock.py', 'client', '127.0.0.1', 1601,
                              '-p', port, '--timeout', 10))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client_lines(client.stdout)
        self.assertEqual(lines[0], 'Sending 1616 bytes of data, in chunks of '
                         '16 bytes')
        self.assertIn('1616 bytes sent', lines)
        self.assertIn('Receiving all the data the server sends back', lines)
        first = [l for l in lines if l.startswith('The first data')]
        self.assertEqual(len(first), 1, lines)
        first_data(self, first[0])
        self.assertEqual(lines[-1], '1616 bytes received')
        server.expect(r'^Processing up to 1024 bytes at a time from %s$'
                      % ADDR)
        server.expect(r'^  1616 bytes processed so far$')
        server.expect(r'^  Socket closed$')


if __name__ == '__main__':
    unittest.main()
