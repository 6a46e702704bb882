"""ferry ping: ICMP echo over loopback and between two test hosts, in both socket modes.

The two hosts are network namespaces joined by a veth pair (ferrytest.TwoHosts)
with IPv6 addresses added by this test.  The kernel setting that decides the
mode, net.ipv4.ping_group_range, is per namespace: the tests switch it inside
their own.  Loss comes from an nftables rule on the answering host; bad
checksums and duplicates from icmp_responder.py answering instead of the
kernel.  iputils ping (`ping -n`) is run on the same targets and its output
compared line by line, numbers of time masked.
"""

import json
import os
import re
import shutil
import unittest

import ferrytest
from ferrytest import PY, TestCase, TwoHosts, ferry, run

HERE = os.path.dirname(os.path.abspath(__file__))
RESPONDER = os.path.join(HERE, 'icmp_responder.py')
REPLY_RE = re.compile(r'^(\d+) bytes from (\S+): icmp_seq=(\d+) ttl=(\d+)'
                      r'(?: time=[\d.]+ ms)?( \(DUP!\))?$')
SANITIZER_RE = re.compile(r'Sanitizer|runtime error:')


def summary(stdout):
    """The statistics line as a dict: transmitted, received, duplicates, loss."""
    m = re.search(r'^(\d+) packets transmitted, (\d+) received'
                  r'(?:, \+(\d+) duplicates)?(?:, \+\d+ errors)?, ([\d.]+)% packet loss',
                  stdout, re.M)
    if not m:
        raise AssertionError('no statistics line in:\n' + stdout)
    return {'transmitted': int(m.group(1)), 'received': int(m.group(2)),
            'duplicates': int(m.group(3) or 0), 'loss': float(m.group(4))}


def masked(stdout):
    """Output with what differs from run to run hidden: times and rtt figures."""
    text = re.sub(r'time=[\d.]+ ms', 'time=T ms', stdout)
    text = re.sub(r'time \d+ms', 'time Tms', text)
    text = re.sub(r'= [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms', '= R ms', text)
    return text.splitlines()


def icmp_unavailable():
    """Why this process can open no ICMP socket at all, or None."""
    if os.geteuid() == 0:
        return None
    with open('/proc/sys/net/ipv4/ping_group_range') as f:
        low, high = map(int, f.read().split())
    if any(low <= g <= high for g in os.getgroups() + [os.getegid()]):
        return None
    return 'neither a raw socket (not root) nor an ICMP datagram socket (ping_group_range) is allowed'


class Loopback(TestCase):

    @classmethod
    def setUpClass(cls):
        if icmp_unavailable():
            raise unittest.SkipTest(icmp_unavailable())

    def ping(self, *args, timeout=20):
        result = run(ferry('ping', *args), timeout=timeout)
        self.assertNotRegex(result.stderr, SANITIZER_RE)
        return result

    def test_three_requests_three_replies_on_127_0_0_1(self):
        result = self.ping('-c', 3, '-i', 0.05, '127.0.0.1')
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], 'PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.')
        replies = [REPLY_RE.match(l) for l in lines if REPLY_RE.match(l)]
        self.assertEqual([int(m.group(3)) for m in replies], [1, 2, 3])
        self.assertTrue(all(m.group(1) == '64' for m in replies))
        self.assertEqual(summary(result.stdout),
                         {'transmitted': 3, 'received': 3, 'duplicates': 0, 'loss': 0})
        self.assertRegex(result.stdout, r'(?m)^rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms$')

    def test_ipv6_loopback(self):
        result = self.ping('-6', '-c', 2, '-i', 0.05, '::1')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[0], 'PING ::1(::1) 56 data bytes')
        self.assertEqual(summary(result.stdout)['received'], 2)

    def test_size_below_a_timestamp_prints_no_time(self):
        result = self.ping('-c', 1, '-s', 0, '127.0.0.1')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('8 bytes from 127.0.0.1: icmp_seq=1 ttl=64\n', result.stdout)
        self.assertNotIn('rtt', result.stdout)

    def test_json_is_the_only_output(self):
        result = self.ping('-c', 2, '-i', 0.05, '--json', '127.0.0.1')
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual((report['transmitted'], report['received'],
                          report['loss_percent']), (2, 2, 0))
        self.assertIn(report['mode'], ('datagram', 'raw'))
        self.assertGreater(report['rtt_ms']['max'], 0)

    def test_bad_input_is_one_line(self):
        cases = [
            (['-c', 0, '127.0.0.1'], 2),
            (['-s', 70000, '127.0.0.1'], 2),
            (['-t', 0, '127.0.0.1'], 2),
            (['-i', 0.0001, '127.0.0.1'], 2),
            (['--mode', 'cooked', '127.0.0.1'], 2),
            (['-4', '-6', '127.0.0.1'], 2),
            ([], 2),
            (['-4', '-c', 1, '::1'], 1),
        ]
        for args, code in cases:
            with self.subTest(args=args):
                result = self.ping(*args)
                self.assertEqual(result.returncode, code, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertEqual(result.stdout, '')

    def test_unknown_host_is_one_line_exit_1(self):
        if ferrytest.offline_unavailable():
            self.skipTest(ferrytest.offline_unavailable())
        result = run(ferrytest.offline(ferry('ping', '-c', 1, 'nosuch.invalid')), timeout=20)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('nosuch.invalid', result.stderr)


class TwoHostPing(TestCase):
    """Host a pings host b across the veth."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls)
        subnet = cls.hosts.subnet
        cls.ip6_a = 'fd00:77:%x::1' % subnet
        cls.ip6_b = 'fd00:77:%x::2' % subnet
        for host, ip6 in ((cls.hosts.a, cls.ip6_a), (cls.hosts.b, cls.ip6_b)):
            result = run(['ip', '-n', host.ns, 'addr', 'add', ip6 + '/64', 'dev',
                          host.ifname, 'nodad'])
            if result.returncode != 0:
                raise unittest.SkipTest('cannot add an IPv6 address: ' + result.stderr)

    def sysctl(self, host, name, value):
        result = host.run(['sysctl', '-q', '-w', '%s=%s' % (name, value)])
        self.assertEqual(result.returncode, 0, result.stderr)

    def allow_datagram(self, allowed):
        self.sysctl(self.hosts.a, 'net.ipv4.ping_group_range',
                    '0 2147483647' if allowed else '1 0')
        self.addCleanup(self.sysctl, self.hosts.a, 'net.ipv4.ping_group_range', '1 0')

    def ping_from_a(self, *args, timeout=30):
        result = self.hosts.a.run(ferry('ping', *args), timeout=timeout)
        self.assertNotRegex(result.stderr, SANITIZER_RE)
        return result

    def nft_on_b(self, *rules):
        if shutil.which('nft') is None:
            self.skipTest('nft (nftables) is not installed')
        script = 'table inet ferrytest {\n chain input {\n' \
                 '  type filter hook input priority 0; policy accept;\n' + \
                 ''.join('  %s\n' % r for r in rules) + ' }\n}\n'
        result = self.hosts.b.run(['nft', '-f', '-'], input=script)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.addCleanup(self.hosts.b.run, ['nft', 'delete', 'table', 'inet', 'ferrytest'])

    def responder_on_b(self, plan):
        self.sysctl(self.hosts.b, 'net.ipv4.icmp_echo_ignore_all', 1)
        self.addCleanup(self.sysctl, self.hosts.b, 'net.ipv4.icmp_echo_ignore_all', 0)
        proc = self.spawn([PY, RESPONDER, plan], netns=self.hosts.b.ns)
        proc.expect(r'^ready$')
        return proc

    def test_both_modes_ipv4_and_ipv6(self):
        for mode in ('datagram', 'raw'):
            for target, family in ((self.hosts.ip_b, '-4'), (self.ip6_b, '-6')):
                with self.subTest(mode=mode, target=target):
                    self.allow_datagram(mode == 'datagram')
                    result = self.ping_from_a(family, '--mode', mode, '-c', 3, '-i', 0.05,
                                              '--json', target)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    report = json.loads(result.stdout)
                    self.assertEqual(report['mode'], mode)
                    self.assertEqual((report['transmitted'], report['received']), (3, 3))

    def test_the_kernel_setting_chooses_the_mode(self):
        for allowed, mode in ((True, 'datagram'), (False, 'raw')):
            with self.subTest(datagram_allowed=allowed):
                self.allow_datagram(allowed)
                result = self.ping_from_a('-c', 1, '--json', self.hosts.ip_b)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(json.loads(result.stdout)['mode'], mode)

    def test_datagram_mode_when_the_kernel_forbids_it_is_one_line(self):
        self.allow_datagram(False)
        result = self.ping_from_a('--mode', 'datagram', '-c', 1, self.hosts.ip_b)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('ping_group_range', result.stderr)

    def test_every_request_dropped_is_full_loss_exit_1(self):
        self.nft_on_b('icmp type echo-request drop')
        for mode in ('datagram', 'raw'):
            with self.subTest(mode=mode):
                self.allow_datagram(mode == 'datagram')
                result = self.ping_from_a('--mode', mode, '-c', 3, '-i', 0.05, '-W', 0.3,
                                          self.hosts.ip_b)
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertEqual(summary(result.stdout),
                                 {'transmitted': 3, 'received': 0, 'duplicates': 0,
                                  'loss': 100})
                self.assertNotIn('rtt', result.stdout)

    def test_every_other_request_dropped_is_half_loss(self):
        self.nft_on_b('icmp type echo-request numgen inc mod 2 == 0 drop')
        result = self.ping_from_a('-c', 4, '-i', 0.05, '-W', 0.3, self.hosts.ip_b)
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertEqual(summary(result.stdout),
                         {'transmitted': 4, 'received': 2, 'duplicates': 0, 'loss': 50})

    def test_a_reply_with_a_bad_checksum_is_not_counted(self):
        responder = self.responder_on_b('bad,good,bad,good')
        for mode in ('raw', 'datagram'):
            with self.subTest(mode=mode):
                self.allow_datagram(mode == 'datagram')
                result = self.ping_from_a('--mode', mode, '-c', 2, '-i', 0.05, '-W', 0.5,
                                          self.hosts.ip_b)
                responder.expect(r'^bad icmp_seq=1$')
                responder.expect(r'^good icmp_seq=2$')
                self.assertEqual(summary(result.stdout),
                                 {'transmitted': 2, 'received': 1, 'duplicates': 0,
                                  'loss': 50}, result.stdout)
                replies = [m for m in map(REPLY_RE.match, result.stdout.splitlines()) if m]
                self.assertEqual([int(m.group(3)) for m in replies], [2])
                if mode == 'raw':    # the kernel drops it before a datagram socket sees it
                    self.assertIn('icmp_seq=1: bad checksum, not counted', result.stdout)

    def test_a_duplicated_reply_is_reported_as_ping_does(self):
        # Two requests: ping ends once every request is answered, so the copy
        # must come before the last answer (the responder sends both copies of
        # the first answer before the second request is even sent).
        self.responder_on_b('dup,good')
        result = self.ping_from_a('-c', 2, '-i', 0.2, '-W', 0.5, self.hosts.ip_b)
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertEqual(summary(result.stdout),
                         {'transmitted': 2, 'received': 2, 'duplicates': 1, 'loss': 0})
        self.assertRegex(result.stdout, r'(?m)^64 bytes from .*icmp_seq=1 .*\(DUP!\)$')

    def test_two_pings_at_once_each_count_only_their_own_replies(self):
        for mode in ('raw', 'datagram'):
            with self.subTest(mode=mode):
                self.allow_datagram(mode == 'datagram')
                argv = ferry('ping', '--mode', mode, '-c', 20, '-i', 0.01, self.hosts.ip_b)
                first = self.spawn(argv, netns=self.hosts.a.ns)
                second = self.spawn(argv, netns=self.hosts.a.ns)
                for proc in (first, second):
                    self.assertEqual(proc.wait(timeout=30), 0, proc.describe())
                    out = '\n'.join(proc.lines())
                    self.assertNotIn('DUP!', out)
                    self.assertEqual(summary(out)['received'], 20, out)

    def test_output_matches_iputils_line_by_line(self):
        if shutil.which('ping') is None:
            self.skipTest('iputils ping is not installed')
        self.allow_datagram(False)
        cases = [
            ['-c', 3, '-i', 0.2, self.hosts.ip_b],
            ['-c', 2, '-i', 0.2, '-s', 0, self.hosts.ip_b],
            ['-c', 2, '-i', 0.2, '-s', 100, '-t', 5, self.hosts.ip_b],
            ['-6', '-c', 2, '-i', 0.2, self.ip6_b],
        ]
        for args in cases:
            with self.subTest(args=args):
                theirs = self.hosts.a.run(['ping', '-n'] + [str(a) for a in args], timeout=20)
                ours = self.ping_from_a(*args)
                self.assertEqual(theirs.returncode, 0, theirs.stderr)
                self.assertEqual(ours.returncode, theirs.returncode, ours.stderr)
                self.assertEqual(masked(ours.stdout), masked(theirs.stdout))

    def test_full_loss_output_matches_iputils(self):
        if shutil.which('ping') is None:
            self.skipTest('iputils ping is not installed')
        self.nft_on_b('icmp type echo-request drop')
        args = ['-c', 2, '-i', 0.2, '-W', 0.3, self.hosts.ip_b]
        theirs = self.hosts.a.run(['ping', '-n'] + [str(a) for a in args], timeout=20)
        ours = self.ping_from_a(*args)
        self.assertEqual((ours.returncode, theirs.returncode), (1, 1))
        self.assertEqual(masked(ours.stdout), masked(theirs.stdout))


if __name__ == '__main__':
    unittest.main()
