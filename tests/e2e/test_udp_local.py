"""ferry udp-local: the client sends the time to 127.0.0.1, the server
answers with its length; a reply from any other address is ignored."""

import re
import time
import unittest

from classicutil import ADDR, PY_ADDR, ClassicTest, udp_socket
from ferrytest import ferry, run, server_port, textbook

REQUEST_RE = rb'^The time is \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$'


class Server(ClassicTest):

    def test_answers_each_datagram_with_its_length(self):
        server, host, port = self.server('udp-local', 'server')
        self.assertEqual(host, '127.0.0.1')
        self.assertNotEqual(port, 0)
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            for payload in (b'The time is now', b'', b'#' * 5000):
                peer.sendto(payload, ('127.0.0.1', port))
                reply, source = peer.recvfrom(65535)
                self.assertEqual(source, ('127.0.0.1', port))
                self.assertEqual(reply, b'Your data was %d bytes long'
                                 % len(payload))
                said = server.expect(r'^The client at %s says (.*)$' % ADDR)
                self.assertEqual(int(said.group(1)), me)
                self.assertEqual(said.group(2), repr(payload.decode()))
        self.assertIsNone(server.returncode)   # a server keeps serving

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('udp-local', 'server')


class Client(ClassicTest):

    def test_request_and_reply_on_the_wire(self):
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            client = self.spawn(ferry('udp-local', 'client', '-p', port))
            request, source = fake.recvfrom(65535)
            self.assertTrue(request.startswith(b'The time is '), request)
            self.assertRegex(request, REQUEST_RE)
            self.assertEqual(source[0], '127.0.0.1')
            fake.sendto(b'Your data was %d bytes long' % len(request), source)
            self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.stderr_text(), '')
        self.assertEqual(client.lines(), [
            # An unconnected socket: the wildcard address, as in the book.
            'The OS assigned me the address 0.0.0.0:%d' % source[1],
            "The server 127.0.0.1:%d replied 'Your data was %d bytes long'"
            % (port, len(request))])

    def test_datagrams_from_other_addresses_are_ignored(self):
        # The fake server first has two strays sent to the client: one from
        # another port, one from the server's port on another address
        # (127.0.0.2); then it answers from the right socket.  Loopback
        # queues each datagram during sendto, so the strays come first.
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            with udp_socket() as stray, udp_socket('127.0.0.2', port) as twin:
                client = self.spawn(ferry('udp-local', 'client', '-p', port))
                request, source = fake.recvfrom(65535)
                stray.sendto(b'Your data was 1 bytes long', source)
                twin.sendto(b'Your data was 2 bytes long', source)
                fake.sendto(b'Your data was %d bytes long' % len(request),
                            source)
                self.assertEqual(client.wait(), 0, client.describe())
                stray_port = stray.getsockname()[1]
        self.assertEqual(client.lines(), [
            'The OS assigned me the address 0.0.0.0:%d' % source[1],
            'Ignoring a datagram from 127.0.0.1:%d (not the server)'
            % stray_port,
            'Ignoring a datagram from 127.0.0.2:%d (not the server)' % port,
            "The server 127.0.0.1:%d replied 'Your data was %d bytes long'"
            % (port, len(request))])

    def test_gives_up_when_nobody_answers(self):
        with udp_socket() as silent:
            port = silent.getsockname()[1]
            start = time.monotonic()
            client = run(ferry('udp-local', 'client', '-p', port,
                               '--timeout', 0.3), timeout=10)
            elapsed = time.monotonic() - start
            self.assertRegex(silent.recv(65535), REQUEST_RE)
        self.assert_fails(client, 1, 'no reply from 127.0.0.1:%d' % port,
                          '0.3 s')
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 8)


class FerryWithFerry(ClassicTest):

    def test_client_and_server(self):
        server, _, port = self.server('udp-local', 'server')
        client = run(ferry('udp-local', 'client', '-p', port))
        self.assert_ok(client)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        me = re.fullmatch(r'The OS assigned me the address 0\.0\.0\.0:(\d+)',
                          lines[0])
        self.assertTrue(me, lines[0])
        said = server.expect(r"^The client at %s says '(The time is [^']+)'$"
                             % ADDR)
        self.assertEqual(said.group(1), me.group(1))
        self.assertEqual(lines[1], "The server 127.0.0.1:%d replied 'Your "
                         "data was %d bytes long'" % (port,
                                                      len(said.group(2))))


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('udp_local.py', 'server', '-p', 0))
        port = server_port(server)
        client = run(ferry('udp-local', 'client', '-p', port))
        self.assert_ok(client)
        said = server.expect(r"^The client at %s says '(The time is [^']+)'$"
                             % PY_ADDR)
        self.assertEqual(client.stdout.splitlines(), [
            'The OS assigned me the address 0.0.0.0:%s' % said.group(1),
            "The server 127.0.0.1:%d replied 'Your data was %d bytes long'"
            % (port, len(said.group(2)))])

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('udp-local', 'server')
        client = run(textbook('udp_local.py', 'client', '-p', port,
                              '--timeout', 5))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        me = re.fullmatch(r"The OS assigned me the address "
                          r"\('0\.0\.0\.0', (\d+)\)", lines[0])
        self.assertTrue(me, lines[0])
        said = server.expect(r"^The client at %s says '(The time is [^']+)'$"
                             % ADDR)
        self.assertEqual(said.group(1), me.group(1))
        self.assertEqual(lines[1], "The server ('127.0.0.1', %d) replied "
                         "'Your data was %d bytes long'"
                         % (port, len(said.group(2))))


if __name__ == '__main__':
    unittest.main()
