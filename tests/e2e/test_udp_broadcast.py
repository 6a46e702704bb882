"""ferry udp-broadcast: one datagram with SO_BROADCAST to a network's
broadcast address; every server on that network prints it."""

import unittest

from classicutil import ADDR, PY_ADDR, ClassicTest, udp_socket
from ferrytest import TwoHosts, ferry, run, server_port, textbook

MESSAGE = b'Broadcast datagram!'
SAYS = "'Broadcast datagram!'"


class Server(ClassicTest):

    def test_prints_every_datagram(self):
        server, host, port = self.server('udp-broadcast', 'server', '0.0.0.0')
        self.assertEqual(host, '0.0.0.0')
        with udp_socket() as peer:
            me = peer.getsockname()[1]
            for payload in (MESSAGE, b'second one'):
                peer.sendto(payload, ('127.0.0.1', port))
                said = server.expect(r'^The client at %s says: (.*)$' % ADDR)
                self.assertEqual(int(said.group(1)), me)
                self.assertEqual(said.group(2), repr(payload.decode()))

    def test_binds_the_given_interface(self):
        _, host, _ = self.server('udp-broadcast', 'server', '127.0.0.1')
        self.assertEqual(host, '127.0.0.1')

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('udp-broadcast', 'server', '0.0.0.0')


class Client(ClassicTest):

    def test_datagram_on_the_wire(self):
        # A receiver bound to the wildcard address gets broadcasts; the
        # datagram itself goes to lo's 127.255.255.255 and stays there.
        with udp_socket('0.0.0.0') as receiver:
            port = receiver.getsockname()[1]
            client = run(ferry('udp-broadcast', 'client', '127.255.255.255',
                               '-p', port))
            self.assert_ok(client, ["Sent 'Broadcast datagram!' to "
                                    "127.255.255.255:%d" % port])
            data, source = receiver.recvfrom(65535)
        self.assertEqual(data, MESSAGE)
        self.assertEqual(source[0], '127.0.0.1')


class FerryWithFerry(ClassicTest):

    def test_loopback_broadcast(self):
        server, _, port = self.server('udp-broadcast', 'server', '0.0.0.0')
        client = run(ferry('udp-broadcast', 'client', '127.255.255.255',
                           '-p', port))
        self.assert_ok(client)
        server.expect(r'^The client at %s says: %s$' % (ADDR, SAYS))


class Interop(ClassicTest):

    def test_ferry_client_textbook_server(self):
        server = self.spawn(textbook('udp_broadcast.py', 'server', '', '-p',
                                     0))
        port = server_port(server)
        client = run(ferry('udp-broadcast', 'client', '127.255.255.255',
                           '-p', port))
        self.assert_ok(client)
        server.expect(r'^The client at %s says: %s$' % (PY_ADDR, SAYS))

    def test_textbook_client_ferry_server(self):
        server, _, port = self.server('udp-broadcast', 'server', '0.0.0.0')
        client = run(textbook('udp_broadcast.py', 'client', '127.255.255.255',
                              '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        server.expect(r'^The client at %s says: %s$' % (ADDR, SAYS))


class BetweenHosts(ClassicTest):
    """Two namespaces joined by a veth pair (MTU 1400): a real subnet."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls, mtu=1400)

    def test_subnet_broadcast_reaches_the_other_host(self):
        a, b = self.hosts.a, self.hosts.b
        server, host, port = self.server('udp-broadcast', 'server', '0.0.0.0',
                                         netns=a.ns)
        self.assertEqual(host, '0.0.0.0')
        client = b.run(ferry('udp-broadcast', 'client', self.hosts.broadcast,
                             '-p', port))
        self.assert_ok(client, ["Sent 'Broadcast datagram!' to %s:%d"
                                % (self.hosts.broadcast, port)])
        server.expect(r'^The client at %s:\d+ says: %s$'
                      % (b.ip.replace('.', r'\.'), SAYS))

    def test_textbook_client_on_the_other_host(self):
        a, b = self.hosts.a, self.hosts.b
        server, _, port = self.server('udp-broadcast', 'server', '0.0.0.0',
                                      netns=a.ns)
        client = b.run(textbook('udp_broadcast.py', 'client',
                                self.hosts.broadcast, '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        server.expect(r'^The client at %s:\d+ says: %s$'
                      % (b.ip.replace('.', r'\.'), SAYS))

    def test_limited_broadcast_without_a_route_is_one_clear_error(self):
        # '<broadcast>' is 255.255.255.255; the namespaces have no default
        # route, so the kernel refuses it (as it refuses the textbook).
        b = self.hosts.b
        client = b.run(ferry('udp-broadcast', 'client', '<broadcast>', '-p',
                             1060))
        self.assert_fails(client, 1, 'sendto 255.255.255.255:1060',
                          'Network is unreachable')


if __name__ == '__main__':
    unittest.main()
