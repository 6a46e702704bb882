"""ferry timestamp: each line of standard input comes back prefixed with the
server's time in ctime format, over TCP or (--udp) UDP."""

import re
import socket
import time
import unittest

from classicutil import (ADDR, CTIME, IO_TIMEOUT, PY_ADDR, TIMESTAMP_RE,
                         ClassicTest, closed_port, tcp_connect, tcp_listener,
                         udp_socket)
from ferrytest import ferry, run, server_port, textbook

REPLY_RE = rb'^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] hello$'


def stamp():
    """A reply prefix as the original server makes it."""
    return b'[%s] ' % time.ctime().encode()


class Server(ClassicTest):

    def test_tcp_replies_on_the_wire(self):
        server, host, port = self.server('timestamp', 'server', '127.0.0.1')
        self.assertEqual(host, '127.0.0.1')
        server.expect(r'^waiting for connection\.\.\.$')
        with tcp_connect(port) as conn:
            conn.sendall(b'hello')
            reply = conn.recv(1024)
            self.assertRegex(reply, REPLY_RE)
            conn.sendall(b'second')
            self.assertRegex(conn.recv(1024), rb'^\[[^]]+\] second$')
            me = conn.getsockname()[1]
        server.expect(r'^\.\.\.connected from: 127\.0\.0\.1:%d$' % me)
        server.expect(r'^waiting for connection\.\.\.$')   # the next one

    def test_udp_replies_on_the_wire(self):
        server, _, port = self.server('timestamp', 'server', '127.0.0.1',
                                      '--udp')
        server.expect(r'^waiting for message\.\.\.$')
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            for _ in range(2):
                peer.sendto(b'hello', ('127.0.0.1', port))
                reply, source = peer.recvfrom(65535)
                self.assertEqual(source, ('127.0.0.1', port))
                self.assertRegex(reply, REPLY_RE)
                server.expect(r'^\.\.\.received from and returned to: '
                              r'127\.0\.0\.1:%d$' % me)
                server.expect(r'^waiting for message\.\.\.$')

    def test_binds_every_ipv4_interface_by_default(self):
        for flags in ([], ['--udp']):
            with self.subTest(flags=flags):
                _, host, _ = self.server('timestamp', 'server', *flags)
                self.assertEqual(host, '0.0.0.0')

    def test_reads_at_most_1024_bytes_at_a_time(self):
        server, _, port = self.server('timestamp', 'server', '127.0.0.1',
                                      '--udp')
        with udp_socket() as peer:
            peer.sendto(b'x' * 1500, ('127.0.0.1', port))
            reply = peer.recv(65535)
        self.assertRegex(reply, rb'^\[' + CTIME.encode() + rb'\] x{1024}$')

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('timestamp', 'server', '127.0.0.1')
        self.check_stops_on_signals('timestamp', 'server', '127.0.0.1',
                                    '--udp')

    def test_stops_on_a_signal_while_a_client_is_connected(self):
        server, _, port = self.server('timestamp', 'server', '127.0.0.1')
        with tcp_connect(port) as conn:
            server.expect(r'^\.\.\.connected from: ')
            self.assertEqual(server.stop(), 0, server.describe())
            self.assertEqual(conn.recv(1024), b'')


class Client(ClassicTest):

    def test_tcp_lines_on_the_wire(self):
        with tcp_listener() as listener:
            port = listener.getsockname()[1]
            client = self.spawn(ferry('timestamp', 'client', '127.0.0.1',
                                      '-p', port))
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(IO_TIMEOUT)
                for line in (b'hello', b'second line'):
                    client.send(line.decode() + '\n')
                    # One line per send, without its line ending.
                    self.assertEqual(conn.recv(1024), line)
                    conn.sendall(stamp() + line)
                    client.expect(TIMESTAMP_RE % re.escape(line.decode()))
                client.send('\n')              # an empty line ends it
                self.assertEqual(client.wait(), 0, client.describe())
                self.assertEqual(conn.recv(1024), b'')
        self.assertEqual(client.stderr_text(), '')
        self.assertEqual(len(client.lines()), 2)
        self.assertNotIn('> ', client.output())   # no prompt into a pipe

    def test_udp_lines_on_the_wire(self):
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            client = self.spawn(ferry('timestamp', 'client', '127.0.0.1',
                                      '-p', port, '--udp'))
            for line in (b'hello', b'world'):
                client.send(line.decode() + '\n')
                data, source = fake.recvfrom(65535)
                self.assertEqual(data, line)
                fake.sendto(stamp() + line, source)
                client.expect(TIMESTAMP_RE % line.decode())
            client.close_stdin()                # end of input ends it too
            self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.stderr_text(), '')

    def test_connection_refused(self):
        port = closed_port(socket.SOCK_STREAM)
        client = run(ferry('timestamp', 'client', '127.0.0.1', '-p', port),
                     input='hello\n')
        self.assert_fails(client, 1, 'Connection refused')


class FerryWithFerry(ClassicTest):

    def check(self, *flags):
        server, _, port = self.server('timestamp', 'server', '127.0.0.1',
                                      *flags)
        client = run(ferry('timestamp', 'client', '127.0.0.1', '-p', port,
                           *flags), input='hello\nworld\n\nnot sent\n')
        self.assert_ok(client)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], TIMESTAMP_RE % 'hello')
        self.assertRegex(lines[1], TIMESTAMP_RE % 'world')
        return server

    def test_tcp(self):
        server = self.check()
        server.expect(r'^\.\.\.connected from: %s$' % ADDR)
        server.expect(r'^waiting for connection\.\.\.$')

    def test_udp(self):
        server = self.check('--udp')
        for _ in range(2):
            server.expect(r'^\.\.\.received from and returned to: %s$' % ADDR)
        server.expect(r'^waiting for message\.\.\.$')
        self.assertEqual(server.output().count('received from'), 2)

    def test_client_defaults_to_localhost(self):
        server, _, port = self.server('timestamp', 'server')
        client = run(ferry('timestamp', 'client', '-p', port),
                     input='hello\n')
        self.assert_ok(client)
        self.assertRegex(client.stdout.rstrip('\n'), TIMESTAMP_RE % 'hello')


class Interop(ClassicTest):

    def ferry_client_textbook_server(self, *flags):
        server = self.spawn(textbook('timestamp.py', 'server', '127.0.0.1',
                                     '-p', 0, *flags))
        port = server_port(server)
        client = run(ferry('timestamp', 'client', '127.0.0.1', '-p', port,
                           *flags), input='hello\nsecond line\n')
        self.assert_ok(client)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], TIMESTAMP_RE % 'hello')
        self.assertRegex(lines[1], TIMESTAMP_RE % 'second line')
        return server

    def textbook_client_ferry_server(self, *flags):
        server, _, port = self.server('timestamp', 'server', '127.0.0.1',
                                      *flags)
        client = run(textbook('timestamp.py', 'client', '127.0.0.1', '-p',
                              port, '--timeout', 5, *flags),
                     input='hello\nsecond line\n\nnot sent\n')
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], TIMESTAMP_RE % 'hello')
        self.assertRegex(lines[1], TIMESTAMP_RE % 'second line')
        return server

    def test_tcp_ferry_client_textbook_server(self):
        server = self.ferry_client_textbook_server()
        server.expect(r'^\.\.\.connected from: %s$' % PY_ADDR)

    def test_udp_ferry_client_textbook_server(self):
        server = self.ferry_client_textbook_server('--udp')
        server.expect(r'^\.\.\.received from and returned to: %s$' % PY_ADDR)

    def test_tcp_textbook_client_ferry_server(self):
        server = self.textbook_client_ferry_server()
        server.expect(r'^\.\.\.connected from: %s$' % ADDR)

    def test_udp_textbook_client_ferry_server(self):
        server = self.textbook_client_ferry_server('--udp')
        server.expect(r'^\.\.\.received from and returned to: %s$' % ADDR)
        self.assertNotIn('not sent', server.output())


if __name__ == '__main__':
    unittest.main()
