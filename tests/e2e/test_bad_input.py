"""Bad input to the classic programs: one clear line on stderr and exit 2
(usage) or 1 (run time), never a crash (exit code >= 128 or a signal) and
never a hang.  Also --help, --version and ferry resolve."""

import re
import socket
import unittest

import ferrytest
from concurrent.futures import ThreadPoolExecutor

from classicutil import ClassicTest, closed_port
from ferrytest import ferry, run

# Every program and role, as a client or server would be started.
CLIENTS = {
    'udp-local': ['udp-local', 'client'],
    'udp-remote': ['udp-remote', 'client', '127.0.0.1'],
    'udp-broadcast': ['udp-broadcast', 'client', '127.255.255.255'],
    'big-sender': ['big-sender', 'client', '127.0.0.1'],
    'tcp-sixteen': ['tcp-sixteen', 'client', '127.0.0.1'],
    'tcp-deadlock': ['tcp-deadlock', 'client', '127.0.0.1', '16'],
    'timestamp': ['timestamp', 'client', '127.0.0.1'],
    'timestamp --udp': ['timestamp', 'client', '127.0.0.1', '--udp'],
}
SERVERS = {
    'udp-local': ['udp-local', 'server'],
    'udp-remote': ['udp-remote', 'server', '127.0.0.1'],
    'udp-broadcast': ['udp-broadcast', 'server', '127.0.0.1'],
    'big-sender': ['big-sender', 'server', '127.0.0.1'],
    'tcp-sixteen': ['tcp-sixteen', 'server', '127.0.0.1'],
    'tcp-deadlock': ['tcp-deadlock', 'server', '127.0.0.1'],
    'timestamp': ['timestamp', 'server', '127.0.0.1'],
    'timestamp --udp': ['timestamp', 'server', '127.0.0.1', '--udp'],
}
PROGRAMS = ['udp-local', 'udp-remote', 'udp-broadcast', 'big-sender',
            'tcp-sixteen', 'tcp-deadlock', 'timestamp']


def run_all(argvs, input=None, wrap=lambda argv: argv):
    """run() every argv, a few at a time (each ASan start costs a few
    tenths of a second on a loaded machine); results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(
            lambda args: run(wrap(ferry(*args)), timeout=20, input=input), argvs))


class BadInput(ClassicTest):

    def check_all(self, cases, code, *fragments, input=None, wrap=lambda argv: argv):
        """check() each of ``cases`` (argvs), run concurrently."""
        results = run_all(cases, input=input, wrap=wrap)
        for args, result in zip(cases, results):
            with self.subTest(args=args):
                self.check_result(result, code, *fragments)

    def check(self, args, code, *fragments, input=None):
        result = run(ferry(*args), timeout=20, input=input)
        return self.check_result(result, code, *fragments)

    def check_result(self, result, code, *fragments):
        self.assertGreaterEqual(result.returncode, 0, 'killed by a signal')
        self.assertLess(result.returncode, 128, 'crashed')
        line = self.assert_fails(result, code, *fragments)
        if code == 2:
            self.assertEqual(result.stdout, '')   # found before any work
        self.assertNotIn('Sanitizer', result.stderr)
        return line

    # -- usage errors: exit 2 -------------------------------------------

    def test_unknown_option(self):
        self.check_all([args + ['--frobnicate'] for args in
                        list(CLIENTS.values()) + list(SERVERS.values())],
                       2, '--frobnicate')

    def test_port_out_of_range(self):
        self.check_all([args + ['-p', 99999] for args in
                        list(CLIENTS.values()) + list(SERVERS.values())],
                       2, '99999')

    def test_port_that_is_no_service(self):
        self.check(CLIENTS['tcp-sixteen'] + ['-p', 'no-such-service'], 2,
                   'no-such-service')

    def test_missing_host(self):
        self.check_all([args + ['-p', 0] for args in (
            ['udp-remote', 'client'], ['udp-broadcast', 'client'],
            ['udp-broadcast', 'server'], ['big-sender', 'client'],
            ['tcp-sixteen', 'client'], ['tcp-sixteen', 'server'],
            ['tcp-deadlock', 'client'], ['tcp-deadlock', 'server'])], 2)

    def test_missing_role(self):
        self.check_all([[program] for program in PROGRAMS], 2)

    def test_unknown_role(self):
        self.check_all([[program, 'middleman'] for program in PROGRAMS], 2)

    def test_drop_out_of_range(self):
        self.check_all([['udp-remote', 'server', '127.0.0.1', '-p', 0,
                         '--drop', drop] for drop in ('2', '-0.1', 'half')],
                       2, '--drop')

    def test_negative_or_missing_bytecount(self):
        self.check(['tcp-deadlock', 'client', '127.0.0.1', '-5', '-p', 1], 2)
        self.check(['tcp-deadlock', 'client', '127.0.0.1', 'lots', '-p', 1],
                   2)
        self.check(['tcp-deadlock', 'client', '127.0.0.1', '-p', 1], 2,
                   'bytecount')

    def test_bad_numbers(self):
        self.check_all([args + ['-p', 1] for args in (
            ['big-sender', 'client', '127.0.0.1', '--size', 0],
            ['big-sender', 'client', '127.0.0.1', '--size', 70000],
            ['udp-local', 'client', '--timeout', 0],
            ['udp-remote', 'client', '127.0.0.1', '--factor', 0.5],
            ['udp-remote', 'client', '127.0.0.1', '--tries', 0],
            ['udp-remote', 'client', '127.0.0.1', '--cap', 0.1],
            ['tcp-sixteen', 'server', '127.0.0.1', '--timeout', -1],
            ['tcp-deadlock', 'client', '127.0.0.1', '16', '--stall-timeout',
             0])], 2)

    def test_unknown_command(self):
        self.check(['frobnicate'], 2, 'frobnicate')
        self.check(['udp_local', 'client'], 2, 'udp_local')

    def test_no_command(self):
        result = run(ferry(), timeout=20)
        self.assertEqual(result.returncode, 2, result)
        self.assertTrue(result.stderr.strip(), 'nothing said on stderr')

    # -- run-time errors: exit 1 ----------------------------------------

    def test_unknown_host(self):
        # Offline: looking up a name would query the machine's nameserver.
        reason = ferrytest.offline_unavailable()
        if reason:
            self.skipTest(reason)
        cases = []
        for name, args in CLIENTS.items():
            if name != 'udp-local':     # it always talks to 127.0.0.1
                cases.append([a if a not in ('127.0.0.1', '127.255.255.255')
                              else 'nosuch.invalid' for a in args]
                             + ['-p', 1060])
        for name in ('udp-remote', 'tcp-sixteen', 'timestamp'):
            cases.append([a if a != '127.0.0.1' else 'nosuch.invalid'
                          for a in SERVERS[name]] + ['-p', 0])
        self.check_all(cases, 1, 'nosuch.invalid', input='hello\n', wrap=ferrytest.offline)

    def test_connection_refused(self):
        port = closed_port(socket.SOCK_STREAM)
        for name in ('tcp-sixteen', 'tcp-deadlock', 'timestamp'):
            with self.subTest(program=name):
                self.check(CLIENTS[name] + ['-p', port], 1,
                           'Connection refused', '127.0.0.1:%d' % port,
                           input='hello\n')
        port = closed_port(socket.SOCK_DGRAM)
        self.check(CLIENTS['udp-remote'] + ['-p', port], 1,
                   'Connection refused')

    def test_port_in_use(self):
        for name, args in SERVERS.items():
            with self.subTest(server=name):
                first, _, port = self.server(*args)
                result = run(ferry(*args, '-p', port), timeout=20)
                self.assert_fails(result, 1, 'Address already in use')
                self.assertIsNone(first.returncode)   # still serving
                self.assertEqual(first.stop(), 0)

    def test_address_not_on_this_host(self):
        # 192.0.2.1 is TEST-NET-1: never one of our addresses.
        self.check(['tcp-sixteen', 'server', '192.0.2.1', '-p', 0], 1,
                   'Cannot assign requested address')


class Help(ClassicTest):

    def test_help_and_version(self):
        result = run(ferry('--help'))
        self.assert_ok(result)
        for program in PROGRAMS + ['tour', 'resolve']:
            self.assertIn(program, result.stdout)
        result = run(ferry('--version'))
        self.assert_ok(result)
        self.assertRegex(result.stdout, r'^ferry \d+\.\d+\.\d+\n$')

    def test_every_program_and_role_has_help(self):
        cases = [[program] + role + ['--help'] for program in PROGRAMS
                 for role in ([], ['server'], ['client'])]
        for args, result in zip(cases, run_all(cases)):
            with self.subTest(args=args):
                self.assert_ok(result)
                self.assertIn('--help', result.stdout)
                if len(args) == 3:
                    self.assertIn('--port', result.stdout)


class Resolve(ClassicTest):

    def test_localhost_domain(self):
        result = run(ferry('resolve', 'localhost', 'domain'))
        self.assert_ok(result)
        self.assertRegex(result.stdout, re.compile(r'^.*:53$', re.M))
        self.assertRegex(result.stdout,
                         re.compile(r'^IPv4 +STREAM +tcp +127\.0\.0\.1:53$',
                                    re.M))

    def test_unknown_host(self):
        reason = ferrytest.offline_unavailable()
        if reason:
            self.skipTest(reason)
        result = run(ferrytest.offline(ferry('resolve', 'nosuch.invalid')))
        self.assert_fails(result, 1, 'nosuch.invalid')
        self.assertEqual(result.stdout, '')


if __name__ == '__main__':
    unittest.main()
