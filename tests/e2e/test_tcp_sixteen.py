"""ferry tcp-sixteen: exactly sixteen octets each way over TCP; the server
(backlog 1, SO_REUSEADDR) serves one client at a time."""

import re
import signal
import socket
import time
import unittest

from classicutil import (ADDR, PY_ADDR, ClassicTest, closed_port,
                         recv_exactly, recv_until_eof, tcp_connect,
                         tcp_listener)
from ferrytest import TwoHosts, ferry, run, server_port, textbook

REQUEST = b'Hi there, server'
REPLY = b'Farewell, client'
SAID = "The server said b'Farewell, client'"


class Server(ClassicTest):

    def expect_served(self, server, port, client_port):
        server.expect(r'^We have accepted a connection from '
                      r'127\.0\.0\.1:%d$' % client_port)
        server.expect(r'^  Socket name: 127\.0\.0\.1:%d$' % port)
        server.expect(r'^  Socket peer: 127\.0\.0\.1:%d$' % client_port)
        server.expect(r"^  Incoming sixteen-octet message: "
                      r"b'Hi there, server'$")
        server.expect(r'^  Reply sent, socket closed$')

    def test_sixteen_octets_each_way_on_the_wire(self):
        server, host, port = self.server('tcp-sixteen', 'server', '127.0.0.1')
        self.assertEqual(host, '127.0.0.1')
        with tcp_connect(port) as conn:
            conn.sendall(REQUEST)
            self.assertEqual(recv_until_eof(conn), REPLY)   # then it closes
            self.expect_served(server, port, conn.getsockname()[1])

    def test_message_in_pieces_is_reassembled(self):
        server, _, port = self.server('tcp-sixteen', 'server', '127.0.0.1')
        with tcp_connect(port) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in (b'H', b'i there', b', ser', b'ver'):
                conn.sendall(piece)
            self.assertEqual(recv_until_eof(conn), REPLY)
            self.expect_served(server, port, conn.getsockname()[1])

    def test_a_failing_client_does_not_end_the_server(self):
        server, _, port = self.server('tcp-sixteen', 'server', '127.0.0.1')
        with tcp_connect(port) as conn:
            conn.sendall(b'Hi')
            conn.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(conn), b'')
        server.expect(r'^  Client failed, socket closed$')
        client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(client)
        self.assertEqual(client.stdout.splitlines()[-1], SAID)
        # stderr is complete once the server has ended.
        self.assertEqual(server.stop(), 0)
        self.assert_one_error_line(
            server.stderr_text(), 'was expecting 16 bytes but only received '
            '2 bytes before the socket closed')

    def test_a_silent_client_is_dropped_after_the_timeout(self):
        server, _, port = self.server('tcp-sixteen', 'server', '127.0.0.1',
                                      '--timeout', 0.5)
        with tcp_connect(port) as conn:
            start = time.monotonic()
            self.assertEqual(recv_until_eof(conn), b'')
            self.assertLess(time.monotonic() - start, 8)
        server.expect(r'^  Client failed, socket closed$')
        client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(client)
        self.assertEqual(server.stop(), 0)
        self.assert_one_error_line(server.stderr_text(), 'timed out')

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('tcp-sixteen', 'server', '127.0.0.1')

    def test_stops_on_a_signal_while_a_client_is_silent(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                server, _, port = self.server('tcp-sixteen', 'server',
                                              '127.0.0.1')
                with tcp_connect(port) as conn:
                    conn.sendall(b'Hi')    # and nothing more
                    server.expect(r'^  Socket peer: ')
                    start = time.monotonic()
                    self.assertEqual(server.stop(sig=sig), 0,
                                     server.describe())
                    self.assertLess(time.monotonic() - start, 5)
                    # Closed: FIN, or RST when 'Hi' was still unread.
                    try:
                        self.assertEqual(recv_until_eof(conn), b'')
                    except ConnectionResetError:
                        pass


class Client(ClassicTest):

    def test_sixteen_octets_each_way_on_the_wire(self):
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            client = self.spawn(ferry('tcp-sixteen', 'client', '127.0.0.1',
                                      '-p', port))
            conn, peer = listener.accept()
            with conn:
                conn.settimeout(10)
                self.assertEqual(recv_exactly(conn, 16), REQUEST)
                conn.sendall(REPLY)
                self.assertEqual(client.wait(), 0, client.describe())
                self.assertEqual(recv_until_eof(conn), b'')   # nothing more
        self.assertEqual(client.stderr_text(), '')
        self.assertEqual(client.lines(), [
            'Client has been assigned socket name 127.0.0.1:%d' % peer[1],
            SAID])

    def test_reply_in_pieces(self):
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            client = self.spawn(ferry('tcp-sixteen', 'client', '127.0.0.1',
                                      '-p', port))
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                recv_exactly(conn, 16)
                for piece in (b'Fare', b'well', b', client'):
                    conn.sendall(piece)
                self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.lines()[-1], SAID)

    def test_short_reply_is_reported(self):
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            client = self.spawn(ferry('tcp-sixteen', 'client', '127.0.0.1',
                                      '-p', port))
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                recv_exactly(conn, 16)
                conn.sendall(b'Fare')
            self.assertEqual(client.wait(), 1, client.describe())
        self.assertEqual(client.stderr_text(),
                         'ferry: recv from 127.0.0.1:%d: was expecting 16 '
                         'bytes but only received 4 bytes before the socket '
                         'closed\n' % port)
        self.assertNotIn('The server said', client.output())

    def test_connection_refused(self):
        port = closed_port(socket.SOCK_STREAM)
        client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', port))
        self.assert_fails(client, 1, 'connect to 127.0.0.1:%d' % port,
                          'Connection refused')

    def test_silent_server_times_out(self):
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            start = time.monotonic()
            client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p',
                               port, '--timeout', 0.5), timeout=10)
            elapsed = time.monotonic() - start
        self.assert_fails(client, 1, 'timed out')
        self.assertLess(elapsed, 8)


class FerryWithFerry(ClassicTest):

    def test_two_clients_one_after_the_other(self):
        server, _, port = self.server('tcp-sixteen', 'server', '127.0.0.1')
        for _ in range(2):
            client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p',
                               port))
            self.assert_ok(client)
            lines = client.stdout.splitlines()
            me = re.fullmatch(r'Client has been assigned socket name %s'
                              % ADDR, lines[0])
            self.assertTrue(me, lines[0])
            self.assertEqual(lines[1:], [SAID])
            server.expect(r'^We have accepted a connection from '
                          r'127\.0\.0\.1:%s$' % me.group(1))
            server.expect(r'^  Reply sent, socket closed$')


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('tcp_sixteen.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        client = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(client)
        lines = client.stdout.splitlines()
        me = re.fullmatch(r'Client has been assigned socket name %s' % ADDR,
                          lines[0])
        self.assertTrue(me, lines[0])
        self.assertEqual(lines[1:], [SAID])
        server.expect(r"^We have accepted a connection from \('127\.0\.0\.1',"
                      r" %s\)$" % me.group(1))
        server.expect(r"^  Incoming sixteen-octet message: "
                      r"b'Hi there, server'$")
        server.expect(r'^  Reply sent, socket closed$')

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('tcp-sixteen', 'server', '127.0.0.1')
        client = run(textbook('tcp_sixteen.py', 'client', '127.0.0.1', '-p',
                              port, '--timeout', 5))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        me = re.fullmatch(r'Client has been assigned socket name %s'
                          % PY_ADDR, lines[0])
        self.assertTrue(me, lines[0])
        self.assertEqual(lines[1:], [SAID])
        server.expect(r'^We have accepted a connection from 127\.0\.0\.1:%s$'
                      % me.group(1))
        server.expect(r"^  Incoming sixteen-octet message: "
                      r"b'Hi there, server'$")
        server.expect(r'^  Reply sent, socket closed$')


class BetweenHosts(ClassicTest):
    """A server bound to 127.0.0.1 is reachable only from its own host."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls, mtu=1400)

    def test_loopback_server_is_unreachable_from_the_other_host(self):
        a, b = self.hosts.a, self.hosts.b
        server, host, port = self.server('tcp-sixteen', 'server', '127.0.0.1',
                                         netns=a.ns)
        self.assertEqual(host, '127.0.0.1')
        client = b.run(ferry('tcp-sixteen', 'client', a.ip, '-p', port,
                             '--timeout', 5))
        self.assert_fails(client, 1, 'Connection refused',
                          '%s:%d' % (a.ip, port))
        self.assertNotIn('accepted', server.output())
        # On its own host the same server answers.
        local = a.run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(local)
        self.assertEqual(local.stdout.splitlines()[-1], SAID)

    def test_server_on_the_link_address_is_reachable(self):
        a, b = self.hosts.a, self.hosts.b
        server, host, port = self.server('tcp-sixteen', 'server', a.ip,
                                         netns=a.ns)
        self.assertEqual(host, a.ip)
        client = b.run(ferry('tcp-sixteen', 'client', a.ip, '-p', port,
                             '--timeout', 5))
        self.assert_ok(client)
        self.assertEqual(client.stdout.splitlines()[-1], SAID)
        server.expect(r'^We have accepted a connection from %s:\d+$'
                      % re.escape(b.ip))


if __name__ == '__main__':
    unittest.main()
