"""--json: standard output is one JSON document and nothing else, for every
command that offers the flag.

The commands are found in the command line's own option table (`ferry
--option-table`), so a command that gains --json without a case here fails
test_every_json_command_has_a_case until one is added.  Each case runs the
command the way a script would (to its end, or stopped by SIGTERM for the
ones that run until stopped) and loads the whole of its standard output with
json.loads: a "Listening at" line, a progress line or a blank line there is a
failure.  What is for people goes to standard error.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import unittest

from ferrytest import TestCase, ferry, run, server_port

IO_TIMEOUT = 10.0


def json_commands():
    """The command paths ('bench', 'proxy', ...) whose options include --json."""
    table = json.loads(subprocess.run(ferry('--option-table'), stdout=subprocess.PIPE,
                                      check=True, timeout=30).stdout)
    found = []

    def walk(command, path):
        if any('--json' in option['names'] for option in command['options']):
            found.append(' '.join(path))
        for sub in command['subcommands']:
            walk(sub, path + [sub['name']])

    walk(table, [])
    return found


def icmp_unavailable():
    """Why this process can open no ICMP socket (as test_ping decides), or None."""
    if os.geteuid() == 0:
        return None
    with open('/proc/sys/net/ipv4/ping_group_range') as f:
        low, high = map(int, f.read().split())
    if any(low <= g <= high for g in os.getgroups() + [os.getegid()]):
        return None
    return 'no ICMP socket for this user (not root, not in net.ipv4.ping_group_range)'


class JsonAlone(TestCase):

    def assert_json_alone(self, stdout, what):
        """stdout is exactly one JSON document (whitespace around it allowed)."""
        try:
            return json.loads(stdout)
        except ValueError as e:
            self.fail('%s: standard output is not JSON alone (%s):\n%s' % (what, e, stdout))

    def echo_server(self):
        proc = self.spawn(ferry('echo', 'server', '-p', 0))
        return server_port(proc)

    def test_every_json_command_has_a_case(self):
        cases = {'bench', 'proxy', 'ping'}
        self.assertEqual(set(json_commands()), cases,
                         'a command with --json needs a case in this file')

    def test_bench_tcp_and_udp(self):
        port = self.echo_server()
        for args in ([], ['-c', 2, '--pipeline', 4]):
            with self.subTest(args=args):
                result = run(ferry('bench', '127.0.0.1', port, '-n', 50, '--warmup', 0,
                                   '--json', *args), timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                report = self.assert_json_alone(result.stdout, 'bench --json')
                self.assertEqual(report['end']['replies'], 50)
        udp = self.spawn(ferry('echo', 'server', '-u', '-p', 0))
        result = run(ferry('bench', '-u', '127.0.0.1', server_port(udp), '-n', 20, '--warmup', 0,
                           '--json'), timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_json_alone(result.stdout, 'bench -u --json')

    def test_proxy_with_routes_api_and_config(self):
        upstream = self.echo_server()
        config = os.path.join(self.tmpdir(), 'routes.json')
        with open(config, 'w') as f:
            json.dump([{'listen': '127.0.0.1:0', 'upstream': '127.0.0.1:%d' % upstream}], f)
        proc = self.spawn(ferry('proxy', '127.0.0.1:0', '127.0.0.1:%d' % upstream,
                                '--config', config, '--api', '127.0.0.1:0', '--json'))
        # Where it listens is told on standard error: a script reads the port there.
        ports = [server_port(proc, stderr=True), server_port(proc, stderr=True)]
        server_port(proc, r'^API listening', stderr=True)
        for port in ports:
            with socket.create_connection(('127.0.0.1', port), timeout=IO_TIMEOUT) as c:
                c.sendall(b'hello\n')
                self.assertEqual(c.recv(6), b'hello\n')
        self.assertEqual(proc.stop(), 0, proc.describe())
        report = self.assert_json_alone(proc.output(), 'proxy --json')
        self.assertEqual(report['total']['connections'], 2)
        self.assertIn('Listening at', proc.stderr_text())

    def test_proxy_udp(self):
        udp = self.spawn(ferry('echo', 'server', '-u', '-p', 0))
        upstream = server_port(udp)
        proc = self.spawn(ferry('proxy', '-u', '127.0.0.1:0', '127.0.0.1:%d' % upstream,
                                '--json'))
        port = server_port(proc, stderr=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(IO_TIMEOUT)
            u.sendto(b'hello', ('127.0.0.1', port))
            self.assertEqual(u.recv(100), b'hello')
        self.assertEqual(proc.stop(sig=signal.SIGINT), 0, proc.describe())
        self.assert_json_alone(proc.output(), 'proxy -u --json')

    def test_ping(self):
        reason = icmp_unavailable()
        if reason:
            self.skipTest(reason)
        result = run(ferry('ping', '-c', 2, '-i', 0.05, '--json', '127.0.0.1'), timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        report = self.assert_json_alone(result.stdout, 'ping --json')
        self.assertEqual(report['transmitted'], 2, report)

    def tmpdir(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        return d.name


if __name__ == '__main__':
    unittest.main()
