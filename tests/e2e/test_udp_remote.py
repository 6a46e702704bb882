"""ferry udp-remote: a server that pretends to drop datagrams, and a client
that connects its socket and retransmits with exponential backoff."""

import re
import struct
import time
import unittest

from classicutil import (ADDR, PY_ADDR, ClassicTest, closed_port,
                         pending_datagrams, udp_socket, waiting)
from ferrytest import ferry, run, server_port, textbook

REQUEST = b'This is another message'
REPLY = b'Your data was 23 bytes long'
SERVER_SAYS = "The server says 'Your data was 23 bytes long'"


def split_output(stdout):
    """(socket name line, wait lines, the rest) of a client's stdout."""
    lines = stdout.splitlines()
    waits = [l for l in lines[1:] if l.startswith('Waiting up to ')]
    rest = [l for l in lines[1:] if not l.startswith('Waiting up to ')]
    return lines[0] if lines else '', waits, rest


class Server(ClassicTest):

    def test_answers_with_the_length_when_not_dropping(self):
        server, host, port = self.server('udp-remote', 'server', '127.0.0.1',
                                         '--drop', 0)
        self.assertEqual(host, '127.0.0.1')
        with udp_socket() as peer:
            for payload in (REQUEST, b'x' * 3000):
                peer.sendto(payload, ('127.0.0.1', port))
                reply, source = peer.recvfrom(65535)
                self.assertEqual(source, ('127.0.0.1', port))
                self.assertEqual(reply, b'Your data was %d bytes long'
                                 % len(payload))
                said = server.expect(r'^The client at %s says (.*)$' % ADDR)
                self.assertEqual(int(said.group(1)), peer.getsockname()[1])
                self.assertEqual(said.group(2), repr(payload.decode()))

    def test_binds_every_ipv4_interface_by_default(self):
        server, host, port = self.server('udp-remote', 'server', '--drop', 0)
        self.assertEqual(host, '0.0.0.0')
        with udp_socket() as peer:
            peer.sendto(REQUEST, ('127.0.0.1', port))
            self.assertEqual(peer.recv(65535), REPLY)

    def test_drop_1_drops_everything(self):
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 1)
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            for _ in range(3):
                peer.sendto(REQUEST, ('127.0.0.1', port))
                server.expect(r'^Pretending to drop packet from '
                              r'127\.0\.0\.1:%d$' % me)
            # The line is printed instead of answering: nothing can follow.
            self.assertEqual(pending_datagrams(peer), [])

    def test_request_ids_are_echoed(self):
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 0, '--request-ids')
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            peer.sendto(b'\x00\x01', ('127.0.0.1', port))   # no room for an ID
            server.expect(r'^Ignoring a datagram without a request ID from '
                          r'127\.0\.0\.1:%d$' % me)
            for ident in (b'\x00\x00\x01\x01', b'\xab\xcd\xef\x07'):
                peer.sendto(ident + REQUEST, ('127.0.0.1', port))
                self.assertEqual(peer.recv(65535), ident + REPLY)
                server.expect(r"^The client at 127\.0\.0\.1:%d says 'This is "
                              r"another message'$" % me)
            self.assertEqual(pending_datagrams(peer), [])

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('udp-remote', 'server', '127.0.0.1')


class Client(ClassicTest):

    def test_request_and_reply_on_the_wire(self):
        # A first wait of 5 s: one try, whatever the machine's load.
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            client = self.spawn(ferry('udp-remote', 'client', '127.0.0.1',
                                      '-p', port, '--initial-wait', 5))
            request, source = fake.recvfrom(65535)
            self.assertEqual(request, REQUEST)
            fake.sendto(REPLY, source)
            self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(client.stderr_text(), '')
        self.assertEqual(client.lines(), [
            'Client socket name is 127.0.0.1:%d' % source[1],
            'Waiting up to 5.0 seconds for a reply', SERVER_SAYS])

    def test_textbook_waits_and_retransmissions(self):
        # The fake answers the third copy: the client has printed the waits
        # 0.1, 0.2 and 0.4 (more only if this machine is very slow).
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            client = self.spawn(ferry('udp-remote', 'client', '127.0.0.1',
                                      '-p', port))
            for _ in range(3):
                request, source = fake.recvfrom(65535)
                self.assertEqual(request, REQUEST)
            fake.sendto(REPLY, source)
            self.assertEqual(client.wait(), 0, client.describe())
        name, waits, rest = split_output(client.output())
        self.assertEqual(name, 'Client socket name is 127.0.0.1:%d'
                         % source[1])
        self.assertGreaterEqual(len(waits), 3)
        self.assert_waits(waits)
        self.assertEqual(rest, [SERVER_SAYS])

    def test_gives_up_when_the_server_never_answers(self):
        with udp_socket() as silent:
            port = silent.getsockname()[1]
            start = time.monotonic()
            client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p',
                               port), timeout=20)
            elapsed = time.monotonic() - start
            copies = pending_datagrams(silent)
        self.assert_fails(client, 1)
        self.assertEqual(client.stderr, 'ferry: I think the server is down\n')
        name, waits, rest = split_output(client.stdout)
        self.assertRegex(name, r'^Client socket name is %s$' % ADDR)
        self.assert_waits(waits, 5)
        self.assertEqual(rest, [])
        self.assertEqual([data for data, _ in copies], [REQUEST] * 5)
        # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s, generously bounded above.
        self.assertGreaterEqual(elapsed, 2.9)
        self.assertLess(elapsed, 6.5)

    def test_tries_and_cap(self):
        with udp_socket() as silent:
            port = silent.getsockname()[1]
            start = time.monotonic()
            client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p',
                               port, '--tries', 2, '--cap', 0.1))
            elapsed = time.monotonic() - start
            copies = pending_datagrams(silent)
        self.assertEqual(client.returncode, 1, client.stderr)
        self.assertEqual(client.stderr, 'ferry: I think the server is down\n')
        _, waits, rest = split_output(client.stdout)
        self.assertEqual(waits, [waiting('0.1')] * 2)
        self.assertEqual(rest, [])
        self.assertEqual(len(copies), 2)
        self.assertLess(elapsed, 3)

    def test_connection_refused_on_a_closed_port(self):
        port = closed_port()
        start = time.monotonic()
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port))
        line = self.assert_fails(client, 1, 'Connection refused',
                                 '127.0.0.1:%d' % port)
        self.assertIn('no server is listening on that UDP port', line)
        self.assertLess(time.monotonic() - start, 3)   # not the full backoff

    def test_request_ids_on_the_wire(self):
        # Each try carries a 4-byte ID: request number in the high 24 bits,
        # try number in the low 8.  A reply with another ID is stale and
        # must be ignored; the reply to the second try is the answer.
        with udp_socket() as fake:
            port = fake.getsockname()[1]
            client = self.spawn(ferry('udp-remote', 'client', '127.0.0.1',
                                      '-p', port, '--request-ids',
                                      '--initial-wait', 0.3))
            first, source = fake.recvfrom(65535)
            second, _ = fake.recvfrom(65535)
            for datagram in (first, second):
                self.assertEqual(len(datagram), 4 + len(REQUEST))
                self.assertEqual(datagram[4:], REQUEST)
            (id1,), (id2,) = struct.unpack('>I', first[:4]), \
                struct.unpack('>I', second[:4])
            self.assertEqual(id1 & 0xff, 1)
            self.assertEqual(id2 & 0xff, 2)
            self.assertEqual(id1 >> 8, id2 >> 8)
            stale = struct.pack('>I', (id1 & ~0xff) ^ 0x100 | 1)
            fake.sendto(stale + b'Your data was 99 bytes long', source)
            fake.sendto(second[:4] + REPLY, source)
            self.assertEqual(client.wait(), 0, client.describe())
        self.assertIn(SERVER_SAYS, client.lines())
        self.assertNotIn('99 bytes', client.output())


class FerryWithFerry(ClassicTest):

    def test_lossy_server_with_a_seed(self):
        # libstdc++'s mt19937 makes seed 7 drop the first two datagrams:
        # the client doubles its wait twice and then succeeds.
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 0.5, '--seed', 7)
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(client)
        name, waits, rest = split_output(client.stdout)
        me = re.fullmatch(r'Client socket name is %s' % ADDR, name)
        self.assertTrue(me, name)
        self.assertGreaterEqual(len(waits), 2, 'seed 7 dropped nothing')
        self.assert_waits(waits)
        self.assertEqual(rest, [SERVER_SAYS])
        for _ in range(len(waits) - 1):
            server.expect(r'^Pretending to drop packet from 127\.0\.0\.1:%s$'
                          % me.group(1))
        server.expect(r"^The client at 127\.0\.0\.1:%s says 'This is another "
                      r"message'$" % me.group(1))

    def test_gives_up_against_a_server_that_drops_everything(self):
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 1)
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port),
                     timeout=20)
        self.assertEqual(client.returncode, 1)
        self.assertEqual(client.stderr, 'ferry: I think the server is down\n')
        _, waits, rest = split_output(client.stdout)
        self.assert_waits(waits, 5)
        self.assertEqual(rest, [])
        for _ in range(5):
            server.expect(r'^Pretending to drop packet from %s$' % ADDR)

    def test_request_ids_on_both_sides(self):
        # Seed 2 drops some of the seven datagrams, never five in a row.
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 0.5, '--seed', 2,
                                      '--request-ids')
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port,
                           '--request-ids', '--count', 3))
        self.assert_ok(client)
        _, waits, rest = split_output(client.stdout)
        self.assertEqual(rest, [SERVER_SAYS] * 3)
        self.assertGreater(len(waits), 3, 'seed 2 dropped nothing')
        server.expect(r'^Pretending to drop packet from %s$' % ADDR)
        for _ in range(3):
            server.expect(r"^The client at %s says 'This is another "
                          r"message'$" % ADDR)
        self.assertNotIn('without a request ID', server.output())

    def test_count_of_requests(self):
        server, _, port = self.server('udp-remote', 'server', '--drop', 0)
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port,
                           '--count', 3, '--initial-wait', 5))
        self.assert_ok(client)
        _, waits, rest = split_output(client.stdout)
        self.assertEqual(waits, ['Waiting up to 5.0 seconds for a reply'] * 3)
        self.assertEqual(rest, [SERVER_SAYS] * 3)


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('udp_remote.py', 'server', '127.0.0.1',
                                     '-p', 0, '--drop', 0))
        port = server_port(server)
        client = run(ferry('udp-remote', 'client', '127.0.0.1', '-p', port))
        self.assert_ok(client)
        name, waits, rest = split_output(client.stdout)
        me = re.fullmatch(r'Client socket name is %s' % ADDR, name)
        self.assertTrue(me, name)
        self.assert_waits(waits)
        self.assertEqual(rest, [SERVER_SAYS])
        said = server.expect(r"^The client at %s says 'This is another "
                             r"message'$" % PY_ADDR)
        self.assertEqual(said.group(1), me.group(1))

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('udp-remote', 'server', '127.0.0.1',
                                      '--drop', 0)
        client = run(textbook('udp_remote.py', 'client', '127.0.0.1', '-p',
                              port))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        me = re.fullmatch(r'Client socket name is %s' % PY_ADDR, lines[0])
        self.assertTrue(me, lines[0])
        self.assertEqual(lines[-1], SERVER_SAYS)
        said = server.expect(r"^The client at %s says 'This is another "
                             r"message'$" % ADDR)
        self.assertEqual(said.group(1), me.group(1))


if __name__ == '__main__':
    unittest.main()
