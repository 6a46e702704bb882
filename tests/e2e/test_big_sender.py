"""ferry big-sender: one datagram of --size bytes of '#' with fragmentation
forbidden; when the kernel refuses it, the path MTU from IP_MTU."""

import re
import socket
import unittest

from classicutil import ADDR, PY_ADDR, ClassicTest, udp_socket
from ferrytest import TwoHosts, ferry, run, server_port, textbook

SENT = 'The big datagram was sent!'


def big_receiver():
    """A UDP socket on 127.0.0.1 with room for a 65000-byte datagram."""
    sock = udp_socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


class Server(ClassicTest):

    def test_prints_the_size_of_each_datagram(self):
        server, host, port = self.server('big-sender', 'server', '127.0.0.1')
        self.assertEqual(host, '127.0.0.1')
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            for size in (1234, 0, 65000):
                peer.sendto(b'#' * size, ('127.0.0.1', port))
                got = server.expect(r'^Received a datagram of (\d+) bytes '
                                    r'from %s$' % ADDR)
                self.assertEqual(int(got.group(1)), size)
                self.assertEqual(int(got.group(2)), me)

    def test_binds_every_ipv4_interface_by_default(self):
        server, host, port = self.server('big-sender', 'server')
        self.assertEqual(host, '0.0.0.0')
        with udp_socket() as peer:
            peer.sendto(b'#' * 10, ('127.0.0.1', port))
            server.expect(r'^Received a datagram of 10 bytes from %s$' % ADDR)

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('big-sender', 'server', '127.0.0.1')


class Client(ClassicTest):

    def check_wire(self, size):
        with big_receiver() as receiver:
            port = receiver.getsockname()[1]
            args = ['big-sender', 'client', '127.0.0.1', '-p', port]
            if size is not None:
                args += ['--size', size]
            client = run(ferry(*args))
            self.assert_ok(client, [SENT])
            data, source = receiver.recvfrom(65535)
        self.assertEqual(source[0], '127.0.0.1')
        self.assertEqual(data, b'#' * (65000 if size is None else size))

    def test_1000_bytes_on_the_wire(self):
        self.check_wire(1000)

    def test_default_65000_bytes_fit_loopback(self):
        self.check_wire(None)

    def test_largest_udp_payload_fits_loopback(self):
        self.check_wire(65507)


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('big_sender.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        for size in (1000, 65000):
            client = run(ferry('big-sender', 'client', '127.0.0.1', '-p', port,
                               '--size', size))
            self.assert_ok(client, [SENT])
            server.expect(r'^Received a datagram of %d bytes from %s$'
                          % (size, PY_ADDR))

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('big-sender', 'server', '127.0.0.1')
        for size in (1000, 65000):
            client = run(textbook('big_sender.py', 'client', '127.0.0.1', '-p',
                                  port, '--size', size))
            self.assertEqual(client.returncode, 0, client.stderr)
            self.assertEqual(client.stdout, SENT + '\n')
            server.expect(r'^Received a datagram of %d bytes from %s$'
                          % (size, ADDR))


class BetweenHosts(ClassicTest):
    """Across a veth link with MTU 1400: fragmentation is forbidden, so a
    2000-byte datagram cannot leave host b."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls, mtu=1400)

    def test_path_mtu(self):
        a, b = self.hosts.a, self.hosts.b
        server, host, port = self.server('big-sender', 'server', a.ip,
                                         netns=a.ns)
        self.assertEqual(host, a.ip)
        too_big = b.run(ferry('big-sender', 'client', a.ip, '-p', port,
                              '--size', 2000))
        self.assert_ok(too_big, ['Alas, the datagram did not make it',
                                 'Actual MTU: 1400'])
        fits = b.run(ferry('big-sender', 'client', a.ip, '-p', port,
                           '--size', 1000))
        self.assert_ok(fits, [SENT])
        got = server.expect(r'^Received a datagram of (\d+) bytes from '
                            r'%s:\d+$' % re.escape(b.ip))
        self.assertEqual(got.group(1), '1000')   # the 2000 never left b

    def test_largest_datagram_that_fits_the_link(self):
        # 1400 - 20 (IP header) - 8 (UDP header) = 1372 bytes of payload.
        a, b = self.hosts.a, self.hosts.b
        server, _, port = self.server('big-sender', 'server', netns=a.ns)
        fits = b.run(ferry('big-sender', 'client', a.ip, '-p', port,
                           '--size', 1372))
        self.assert_ok(fits, [SENT])
        too_big = b.run(ferry('big-sender', 'client', a.ip, '-p', port,
                              '--size', 1373))
        self.assert_ok(too_big, ['Alas, the datagram did not make it',
                                 'Actual MTU: 1400'])
        server.expect(r'^Received a datagram of 1372 bytes from %s:\d+$'
                      % re.escape(b.ip))


if __name__ == '__main__':
    unittest.main()
