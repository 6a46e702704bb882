"""ferry multicast sender|receiver GROUP: IPv4 and IPv6 multicast between two
hosts (network namespaces joined by a veth pair), and over loopback.

Absence is never shown by waiting: after the datagram that must not arrive, a
sentinel is sent that takes the same way (the same link, the same receiving
socket), and the receiver's next line must be the sentinel.
"""

import os
import re
import signal
import subprocess
import unittest

from classicutil import ClassicTest
from ferrytest import PY, TwoHosts, ferry, run, server_address

MESSAGE = 'Multicast datagram!'

# The groups (any will do inside the namespaces, which nobody else uses).
GROUP = '239.1.2.3'
OTHER_GROUP = '239.1.2.4'
SSM_GROUP = '232.1.2.3'
GROUP6_LINK = 'ff02::1:77'
GROUP6_GLOBAL = 'ff0e::77'
SSM_GROUP6 = 'ff3e::8000:77'

# A UDP socket that joins nothing, bound to the wildcard address and a port
# (SO_REUSEADDR, so it can share the port with receivers), printing each
# datagram it gets: what any program that did not join would see.
PLAIN_LISTENER = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
print('Listening at %s:%d' % s.getsockname(), flush=True)
while True:
    data, peer = s.recvfrom(65535)
    print('got %r from %s:%d' % (data.decode(), peer[0], peer[1]), flush=True)
'''

# One unicast datagram: the sentinel for a plain listener.
UNICAST = r'''
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
    sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
'''


def says(host, message):
    """The receiver's line for one datagram from ``host``."""
    shown = '[%s]' % host if ':' in host else host
    return r'^The client at %s:\d+ says %s$' % (re.escape(shown),
                                                re.escape(repr(message)))


def next_line(proc, timeout=10.0):
    """The next line of ``proc``'s standard output, whatever it is."""
    return proc.expect('', timeout=timeout).string


def ip(*args):
    result = subprocess.run(['ip'] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, encoding='utf-8',
                            timeout=10)
    if result.returncode != 0:
        raise RuntimeError('ip %s: %s' % (' '.join(map(str, args)),
                                          result.stderr.strip()))


class MulticastTest(ClassicTest):
    """The moves of every multicast test."""

    def receiver(self, group, *args, netns=None, port=0):
        """Start a receiver; returns (proc, port) once it has joined."""
        proc = self.spawn(ferry('multicast', 'receiver', group, '-p', port,
                                *args), netns=netns)
        host, bound = server_address(proc)
        self.assertEqual(host, group)
        return proc, bound

    def send(self, group, port, *args, netns=None, message=MESSAGE, count=1):
        """Run a sender to completion and check what it says it sent."""
        result = run(ferry('multicast', 'sender', group, '-p', port,
                           '--message', message, '--count', count,
                           '--interval', 0, *args), netns=netns)
        shown = '[%s]' % group if ':' in group else group
        self.assert_ok(result, ['Sent %r to %s:%d' % (message, shown, port)]
                       * count)

    def assert_next(self, proc, regex):
        line = next_line(proc)
        self.assertRegex(line, regex, proc.describe())


class BetweenHosts(MulticastTest):
    """Host a sends, host b receives, over a veth pair. Host a has a second
    IPv4 address, and both have IPv6 addresses (no duplicate address
    detection, so that they are usable at once)."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls, mtu=1500)
        a, b = cls.hosts.a, cls.hosts.b
        n = cls.hosts.subnet
        cls.ip_a2 = '10.77.%d.3' % n
        ip('-n', a.ns, 'addr', 'add', cls.ip_a2 + '/24', 'dev', a.ifname)
        cls.ip6_a, cls.ip6_a2, cls.ip6_b = ('fd77:%d::1' % n, 'fd77:%d::3' % n,
                                            'fd77:%d::2' % n)
        for host, address in ((a, cls.ip6_a), (a, cls.ip6_a2), (b, cls.ip6_b)):
            ip('-n', host.ns, 'addr', 'add', address + '/64', 'dev',
               host.ifname, 'nodad')

    def on_b(self, group, *args, port=0):
        """A receiver on host b, joined on its end of the veth."""
        return self.receiver(group, '--interface', self.hosts.b.ifname, *args,
                             netns=self.hosts.b.ns, port=port)

    def on_a(self, group, *args, port=0):
        return self.receiver(group, '--interface', self.hosts.a.ifname, *args,
                             netns=self.hosts.a.ns, port=port)

    def send_from_a(self, group, port, *args, **kwargs):
        """A sender on host a, sending by its end of the veth unless told."""
        if '--interface' not in args:
            args += ('--interface', self.hosts.a.ifname)
        self.send(group, port, *args, netns=self.hosts.a.ns, **kwargs)

    def plain_listener(self, port=0):
        proc = self.spawn([PY, '-c', PLAIN_LISTENER, port],
                          netns=self.hosts.b.ns)
        return proc, server_address(proc)[1]

    def unicast_from_a(self, port, message):
        result = run([PY, '-c', UNICAST, self.hosts.b.ip, port, message],
                     netns=self.hosts.a.ns)
        self.assertEqual(result.returncode, 0, result.stderr)

    # -- any-source multicast -------------------------------------------

    def test_two_receivers_on_the_other_host_both_receive(self):
        first, port = self.on_b(GROUP)
        second, _ = self.on_b(GROUP, port=port)
        self.send_from_a(GROUP, port, message='hello, group', count=2)
        for receiver in (first, second):
            for _ in range(2):
                self.assert_next(receiver, says(self.hosts.a.ip,
                                                'hello, group'))

    def test_a_host_that_did_not_join_gets_nothing(self):
        listener, port = self.plain_listener()
        self.send_from_a(GROUP, port, count=2)
        self.unicast_from_a(port, 'sentinel')
        self.assert_next(listener, r"^got 'sentinel' from %s:\d+$"
                         % re.escape(self.hosts.a.ip))

    def test_a_receiver_gets_only_the_groups_it_joined(self):
        # Two receivers of two groups on one port, and a plain socket on that
        # port. By Linux's default (IP_MULTICAST_ALL) the plain socket gets
        # every group the host joined; ferry's receivers turn that off and
        # bind their group, so each gets its own group only.
        one, port = self.on_b(GROUP)
        other, _ = self.on_b(OTHER_GROUP, port=port)
        listener, _ = self.plain_listener(port)
        self.send_from_a(GROUP, port, message='for the group')
        self.send_from_a(OTHER_GROUP, port, message='for the other group')
        self.send_from_a(GROUP, port, message='group sentinel')
        self.unicast_from_a(port, 'unicast sentinel')
        a = self.hosts.a.ip
        self.assert_next(one, says(a, 'for the group'))
        self.assert_next(one, says(a, 'group sentinel'))
        self.assert_next(other, says(a, 'for the other group'))
        for message in ('for the group', 'for the other group',
                        'group sentinel', 'unicast sentinel'):
            self.assert_next(listener, r"^got %s from %s:\d+$"
                             % (re.escape(repr(message)), re.escape(a)))

    def test_ttl_0_stays_on_the_sending_host(self):
        here, port = self.on_a(GROUP)
        there, _ = self.on_b(GROUP, port=port)
        self.send_from_a(GROUP, port, '--ttl', 0, message='ttl 0')
        self.assert_next(here, says(self.hosts.a.ip, 'ttl 0'))
        self.send_from_a(GROUP, port, '--ttl', 1, message='sentinel')
        self.assert_next(there, says(self.hosts.a.ip, 'sentinel'))
        self.assert_next(here, says(self.hosts.a.ip, 'sentinel'))

    def test_ttl_0_leaves_a_host_that_has_no_member_of_its_own(self):
        # Linux holds a TTL-0 (hop limit 0) datagram back only on the local
        # members' output path (ip_mc_output, ip6_finish_output2): with no
        # member on the sending host it goes out, and the other host accepts
        # it. This pins the behaviour that --ttl's help and the header state.
        for group, source in ((GROUP, self.hosts.a.ip),
                              (GROUP6_GLOBAL, self.ip6_a)):
            with self.subTest(group=group):
                there, port = self.on_b(group)
                args = ('--bind', source) if ':' in group else ()
                self.send_from_a(group, port, '--ttl', 0, *args,
                                 message='ttl 0, nobody here')
                self.assert_next(there, says(source, 'ttl 0, nobody here'))
                there.close()

    def test_no_loop_leaves_out_the_sending_hosts_members(self):
        here, port = self.on_a(GROUP)
        there, _ = self.on_b(GROUP, port=port)
        self.send_from_a(GROUP, port, '--no-loop', message='not looped')
        self.assert_next(there, says(self.hosts.a.ip, 'not looped'))
        self.send_from_a(GROUP, port, '--loop', message='sentinel')
        self.assert_next(here, says(self.hosts.a.ip, 'sentinel'))
        self.assert_next(there, says(self.hosts.a.ip, 'sentinel'))

    # -- source-specific multicast --------------------------------------

    def test_source_specific_join_takes_only_that_sender(self):
        # Two senders on host a, from its two addresses (an IPv4 address as
        # --interface is also the source). Any-source receiver: both, in
        # order; source-specific receiver: only the second.
        chosen, port = self.on_b(SSM_GROUP, '--source', self.ip_a2)
        every, _ = self.on_b(SSM_GROUP, port=port)
        self.send_from_a(SSM_GROUP, port, '--interface', self.hosts.a.ip,
                         message='from the first address')
        self.send_from_a(SSM_GROUP, port, '--interface', self.ip_a2,
                         message='from the second address')
        a, a2 = self.hosts.a.ip, self.ip_a2
        self.assert_next(every, says(a, 'from the first address'))
        self.assert_next(every, says(a2, 'from the second address'))
        self.assert_next(chosen, says(a2, 'from the second address'))

    def test_source_specific_join_with_two_sources(self):
        both, port = self.on_b(SSM_GROUP, '--source', self.ip_a2, '--source',
                               self.hosts.a.ip)
        self.send_from_a(SSM_GROUP, port, '--interface', self.hosts.a.ip,
                         message='one')
        self.send_from_a(SSM_GROUP, port, '--interface', self.ip_a2,
                         message='two')
        self.assert_next(both, says(self.hosts.a.ip, 'one'))
        self.assert_next(both, says(self.ip_a2, 'two'))

    # -- IPv6 -----------------------------------------------------------

    def test_ipv6_link_local_and_global_groups_across_the_veth(self):
        for group in (GROUP6_LINK, GROUP6_GLOBAL):
            with self.subTest(group=group):
                first, port = self.on_b(group)
                second, _ = self.on_b(group, port=port)
                self.send_from_a(group, port, '--bind', self.ip6_a, count=2)
                for receiver in (first, second):
                    for _ in range(2):
                        self.assert_next(receiver, says(self.ip6_a, MESSAGE))
                first.close()
                second.close()

    def test_ipv6_ttl_0_stays_on_the_sending_host(self):
        here, port = self.on_a(GROUP6_GLOBAL)
        there, _ = self.on_b(GROUP6_GLOBAL, port=port)
        self.send_from_a(GROUP6_GLOBAL, port, '--ttl', 0, '--bind', self.ip6_a,
                         message='hops 0')
        self.assert_next(here, says(self.ip6_a, 'hops 0'))
        self.send_from_a(GROUP6_GLOBAL, port, '--bind', self.ip6_a,
                         message='sentinel')
        self.assert_next(there, says(self.ip6_a, 'sentinel'))

    def test_ipv6_source_specific_join_takes_only_that_sender(self):
        chosen, port = self.on_b(SSM_GROUP6, '--source', self.ip6_a2)
        every, _ = self.on_b(SSM_GROUP6, port=port)
        self.send_from_a(SSM_GROUP6, port, '--bind', self.ip6_a,
                         message='from the first address')
        self.send_from_a(SSM_GROUP6, port, '--bind', self.ip6_a2,
                         message='from the second address')
        self.assert_next(every, says(self.ip6_a, 'from the first address'))
        self.assert_next(every, says(self.ip6_a2, 'from the second address'))
        self.assert_next(chosen, says(self.ip6_a2, 'from the second address'))

    # -- failures at run time, and checks that need a known host ----------

    def test_no_route_to_the_group_is_one_line_exit_1(self):
        # The namespaces have no multicast (or default) route: without
        # --interface the kernel finds no interface for the group.
        a = self.hosts.a
        sender = a.run(ferry('multicast', 'sender', GROUP, '-p', 1060))
        self.assert_fails(sender, 1, 'sendto %s:1060' % GROUP,
                          'Network is unreachable')
        receiver = a.run(ferry('multicast', 'receiver', GROUP, '-p', 0))
        self.assert_fails(receiver, 1, 'join group %s: No such device' % GROUP)

    def test_an_address_the_host_does_not_have_is_exit_2(self):
        b = self.hosts.b
        for role, option in (('receiver', '--interface'),
                             ('sender', '--interface'), ('sender', '--bind')):
            with self.subTest(role=role, option=option):
                result = b.run(ferry('multicast', role, GROUP, option,
                                     self.hosts.a.ip))
                self.assert_fails(result, 2, '%s %s' % (option,
                                                        self.hosts.a.ip),
                                  'no interface of this host has that address')
                self.assertEqual(result.stdout, '')


class OnLoopback(MulticastTest):
    """Loopback alone carries IPv4 multicast when both ends name lo (an
    address of lo makes it the sender's source too). Over lo every
    datagram comes back through lo itself, so --ttl and --no-loop make no
    difference there."""

    def setUp(self):
        # A group per test process: tests running side by side never share
        # one (and each receiver has a port of its own besides).
        pid = os.getpid()
        self.group = '239.255.%d.%d' % (pid % 250, 1 + pid // 250 % 250)

    def test_receiver_on_lo_gets_every_datagram(self):
        receiver, port = self.receiver(self.group, '--interface', 'lo')
        self.send(self.group, port, '--interface', '127.0.0.1', count=3)
        for _ in range(3):
            self.assert_next(receiver, says('127.0.0.1', MESSAGE))

    def test_datagrams_queued_before_the_stop_are_printed(self):
        receiver, port = self.receiver(self.group, '--interface', 'lo')
        receiver.send_signal(signal.SIGSTOP)
        self.send(self.group, port, '--interface', '127.0.0.1', count=3)
        # Stopped, the receiver cannot have read them: they wait in its queue
        # when SIGTERM arrives (delivered once SIGCONT resumes it).
        receiver.send_signal(signal.SIGTERM)
        receiver.send_signal(signal.SIGCONT)
        self.assertEqual(receiver.wait(), 0, receiver.describe())
        lines = receiver.lines()
        self.assertEqual(len(lines), 4, lines)
        for line in lines[1:]:
            self.assertRegex(line, says('127.0.0.1', MESSAGE))

    def test_stops_on_sigterm_and_sigint(self):
        self.check_stops_on_signals('multicast', 'receiver', self.group,
                                    '--interface', 'lo')


class BadInput(MulticastTest):
    """Every option is checked before a socket is opened: one line, exit 2."""

    def check(self, args, *fragments):
        result = run(ferry('multicast', *args))
        self.assert_fails(result, 2, *fragments)
        self.assertEqual(result.stdout, '')

    def test_bad_input_is_one_line_exit_2(self):
        cases = [
            (['receiver', '10.1.2.3'], '10.1.2.3 is not a multicast group'),
            (['sender', 'fe80::1'], 'fe80::1 is not a multicast group'),
            (['receiver', 'multicast.example'], "GROUP 'multicast.example'",
             'not a numeric'),
            (['sender', GROUP, '--ttl', 300], '--ttl', '300'),
            (['sender', GROUP, '--ttl', -1], '--ttl'),
            (['sender', GROUP, '--interface', 'ferry-nosuch0'],
             '--interface ferry-nosuch0: no such interface'),
            (['receiver', GROUP, '--interface', 'ferry-nosuch0'],
             '--interface ferry-nosuch0: no such interface'),
            (['receiver', GROUP6_LINK], 'link-local group', '--interface'),
            (['receiver', GROUP, '--source', '::1'], '--source ::1',
             'same family'),
            (['receiver', SSM_GROUP, '--source', OTHER_GROUP],
             'is a multicast group'),
            (['sender', GROUP, '--bind', '::1'], '--bind ::1', 'same family'),
            (['sender', GROUP, '-p', 99999], '99999'),
            (['sender', GROUP, '--count', 0], '--count'),
            (['sender', GROUP, '--interval', -1], '--interval'),
            (['receiver', GROUP, '--ttl', 3], '--ttl'),
            (['sender'], 'group'),
            ([], 'subcommand'),
        ]
        for args, *fragments in cases:
            with self.subTest(args=args):
                self.check(args, *fragments)


if __name__ == '__main__':
    unittest.main()
