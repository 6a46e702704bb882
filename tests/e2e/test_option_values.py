"""Numbers and other values on the command line (cli/common/numbers): what
was found wrong, one test each.  nan and inf are not durations; -1 is not
wrapped into a huge count; "1e9" (out of range) and "abc" (not a number) get
different messages, with the range in words; 10s and 500ms are durations;
a duration too large for a Duration is refused rather than meaning "at once".
Also the other usage errors: framing specs, port 0 for a client, an empty
host to resolve, the toxic range message, and the echo client's own timeout.

Every run is bounded (a command that wrongly starts serving is killed at the
limit and the test fails); nothing sleeps; ports come from the kernel.
"""

import os
import re
import socket
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from classicutil import ClassicTest, udp_socket
from ferrytest import ferry, run, server_port

LIMIT = 15      # seconds a refusal may take on a loaded machine (it should take one)


def run_all(argvs, input=None):
    """run() each argv, a few at a time; results in order."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda argv: run(ferry(*argv), timeout=LIMIT, input=input),
                             argvs))


def held_tcp_port():
    """A TCP socket bound on 127.0.0.1 and not listening: nothing answers there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    return s


class OptionValues(ClassicTest):

    def setUp(self):
        self.held = held_tcp_port()
        self.addCleanup(self.held.close)
        self.port = self.held.getsockname()[1]

    def check_usage_errors(self, cases, *fragments):
        """Each of ``cases`` (argvs) exits 2 with one line holding ``fragments``
        (each may use {option}, the case's option name) and prints nothing;
        returns the last one's line."""
        line = None
        for (option, argv), result in zip(cases, run_all([argv for _, argv in cases])):
            with self.subTest(argv=' '.join(str(a) for a in argv)):
                line = self.assert_fails(result, 2, *(f.format(option=option) for f in fragments))
                self.assertEqual(result.stdout, '')
                self.assertNotIn('Sanitizer', result.stderr)
        return line

    # -- numbers ----------------------------------------------------------

    def test_nan_and_inf_are_not_durations(self):
        upstream = '127.0.0.1:%d' % self.port
        where = {
            '--duration': ['bench', '127.0.0.1', self.port],
            '--warmup': ['bench', '127.0.0.1', self.port],
            '--rate': ['bench', '127.0.0.1', self.port],
            '--timeout': ['udp-local', 'client'],
            '--stall-timeout': ['tcp-deadlock', 'server', '127.0.0.1', '-p', 0],
            '--connect-timeout': ['proxy', '127.0.0.1:0', upstream],
            '--udp-idle': ['proxy', '-u', '127.0.0.1:0', upstream],
            '--drop': ['udp-remote', 'server', '127.0.0.1', '-p', 0],
        }
        tcp_sixteen = ('--timeout', ['tcp-sixteen', 'server', '127.0.0.1', '-p', 0])
        cases = [(option, args + [option, value])
                 for value in ('nan', 'inf', '-inf', 'NaN', 'infinity')
                 for option, args in list(where.items()) + [tcp_sixteen]]
        self.check_usage_errors(cases, '{option}: ', "' is not a")

    def test_a_negative_count_is_refused_not_wrapped(self):
        line = self.check_usage_errors(
            [('--bytes', ['chaos', 'garbage', '-p', 0, '--bytes', -1])],
            '--bytes: -1 is out of range (0 bytes to 1 TiB)')
        self.assertNotIn('18446744073709551615', line)
        self.check_usage_errors([
            ('--count', ['udp-remote', 'client', '127.0.0.1', '-p', 1, '--count', -1]),
            ('--threads', ['echo', 'server', '-p', 0, '--threads', -1]),
            ('--ttl', ['ping', '127.0.0.1', '--ttl', -1]),
        ], '{option}: -1 is out of range')

    def test_out_of_range_and_not_a_number_are_told_apart(self):
        out_of_range = self.check_usage_errors(
            [('--timeout', ['udp-local', 'client', '--timeout', '1e9'])])
        self.assertEqual(out_of_range,
                         'ferry: --timeout: 1e9 is out of range (0.001 s to 1 day)')
        not_a_number = self.check_usage_errors(
            [('--timeout', ['udp-local', 'client', '--timeout', 'abc'])])
        self.assertEqual(not_a_number,
                         "ferry: --timeout: 'abc' is not a duration (a number of seconds, "
                         "or with a unit: 250us, 500ms, 10s, 1m, 2h, 1d)")

    def test_the_range_is_said_in_words_never_as_dbl_max(self):
        cases = [
            ('--timeout', ['udp-local', 'client', '--timeout', -1]),
            ('--initial-wait', ['udp-remote', 'client', '127.0.0.1', '--initial-wait', -1]),
            ('--idle-timeout', ['echo', 'server', '-p', 0, '--idle-timeout', -1]),
            ('--interval', ['multicast', 'sender', '239.255.0.1', '--interval', -1]),
            ('--size', ['big-sender', 'client', '127.0.0.1', '--size', -1]),
        ]
        for (option, argv), result in zip(cases, run_all([argv for _, argv in cases])):
            with self.subTest(option=option):
                line = self.assert_fails(result, 2, option, 'out of range')
                self.assertLess(len(line), 120, line)
                self.assertIsNone(re.search(r'\d{25}', line), line)

    def test_durations_take_units(self):
        # 500ms: the client gives up after half a second, and says so.
        with udp_socket() as silent:
            port = silent.getsockname()[1]
            start = time.monotonic()
            result = run(ferry('udp-local', 'client', '-p', port, '--timeout', '500ms'),
                         timeout=LIMIT)
            took = time.monotonic() - start
        self.assert_fails(result, 1, 'no reply from 127.0.0.1:%d within 0.5 s' % port)
        self.assertGreaterEqual(took, 0.5)
        # 10s is read, then used: the refused connection is the run-time error.
        result = run(ferry('tcp-sixteen', 'client', '127.0.0.1', '-p', self.port,
                           '--timeout', '10s'), timeout=LIMIT)
        self.assert_fails(result, 1, 'Connection refused')
        # Milliseconds through the backoff: 100ms doubled while under 250ms.
        with udp_socket() as silent:
            result = run(ferry('udp-remote', 'client', '127.0.0.1', '-p',
                               silent.getsockname()[1], '--initial-wait', '100ms',
                               '--max-wait', '250ms'), timeout=LIMIT)
        self.assert_fails(result, 1, 'I think the server is down')
        self.assertEqual(result.stdout.splitlines()[1:],
                         ['Waiting up to 0.1 seconds for a reply',
                          'Waiting up to 0.2 seconds for a reply'])

    def test_sizes_take_units(self):
        with udp_socket() as receiver:
            port = receiver.getsockname()[1]
            result = run(ferry('big-sender', 'client', '127.0.0.1', '-p', port,
                               '--size', '1.5K'), timeout=LIMIT)
            self.assertEqual(result.returncode, 0, result)
            data, _ = receiver.recvfrom(65535)
        self.assertEqual(data, b'#' * 1536)

    def test_huge_durations_are_refused_not_at_once(self):
        upstream = '127.0.0.1:%d' % self.port
        self.check_usage_errors([
            ('--connect-timeout', ['proxy', '127.0.0.1:0', upstream, '--connect-timeout',
                                   '1e300']),
            ('--idle-timeout', ['echo', 'server', '-p', 0, '--model', 'epoll',
                                '--idle-timeout', '1e10']),
            ('--udp-idle', ['proxy', '-u', '127.0.0.1:0', upstream, '--udp-idle', '1e10']),
            ('--wait', ['connect', '-w', '1e10', '127.0.0.1', self.port]),
        ], '{option}: ', 'is out of range')

    def test_the_longest_idle_timeout_is_a_day_not_at_once(self):
        server = self.spawn(ferry('echo', 'server', '-p', 0, '--model', 'epoll',
                                  '--idle-timeout', '1d'))
        port = server_port(server)
        with socket.create_connection(('127.0.0.1', port), timeout=10) as conn:
            for message in (b'first', b'second'):
                conn.sendall(message)
                got = b''
                while len(got) < len(message):
                    more = conn.recv(100)
                    self.assertTrue(more, 'the server closed the connection')
                    got += more
                self.assertEqual(got, message)
        self.assertEqual(server.stop(), 0)
        self.assertIn('0 dropped idle', server.output())

    # -- other usage errors -----------------------------------------------

    def test_framing_specs_are_checked_before_running(self):
        self.check_usage_errors([
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:99999999999999']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:0']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:-1']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:abc']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'fixed:2000000']),
            ('--framing', ['echo', 'client', '-p', self.port, '--framing', 'fixed:0']),
            ('--framing', ['echo', 'server', '-p', 0, '--framing', 'lines']),
        ], '{option}')
        # A size with its unit is a frame size.
        server = self.spawn(ferry('echo', 'server', '-p', 0, '--framing', 'fixed:4K'))
        server.expect(r'^Listening at .*framing fixed:4096\)$')
        self.assertEqual(server.stop(), 0)

    def test_control_bytes_in_a_value_are_shown_escaped_on_one_line(self):
        # A newline or a terminal escape typed into a value must not split the
        # error into two lines, nor reach the terminal raw.
        for argv in (['echo', 'server', '-p', 0, '--framing', 'a\nb\x1b[31m'],
                     ['resolve', 'x', '--type', 'no\tsuch'],
                     ['no\x1bsuch-command']):
            with self.subTest(argv=argv):
                line = self.assert_fails(run(ferry(*argv), timeout=LIMIT), 2)
                self.assertNotRegex(line, '[\x00-\x1f\x7f]')
                self.assertTrue('\\x1b' in line or '\\n' in line or '\\t' in line, line)

    def test_port_0_is_no_destination_for_any_client(self):
        clients = [
            ['udp-local', 'client'], ['udp-remote', 'client', '127.0.0.1'],
            ['udp-broadcast', 'client', '127.255.255.255'],
            ['big-sender', 'client', '127.0.0.1'], ['tcp-sixteen', 'client', '127.0.0.1'],
            ['tcp-deadlock', 'client', '127.0.0.1', '16'], ['timestamp', 'client', '127.0.0.1'],
            ['echo', 'client'], ['echo', 'client', '-u'],
            ['multicast', 'sender', '239.255.0.1'],
        ]
        self.check_usage_errors([('--port', argv + ['-p', 0]) for argv in clients],
                                '--port: 0 cannot be connected or sent to')
        self.check_usage_errors([('port', ['bench', '127.0.0.1', 0])],
                                'port: 0 cannot be connected or sent to')

    def test_an_empty_host_to_resolve(self):
        self.check_usage_errors([('HOST', ['resolve', '']), ('HOST', ['resolve', '', '80']),
                                 ('HOST', ['resolve', '', '--passive'])], '{option}')
        result = run(ferry('resolve', '', '80', '--passive', '-4'), timeout=LIMIT)
        self.assertEqual(result.returncode, 0, result)
        self.assertIn('0.0.0.0:80', result.stdout)
        self.assertNotIn('ai_flags', result.stdout + result.stderr)

    def test_a_toxic_range_names_the_toxic_once(self):
        line = self.check_usage_errors([('--toxic', [
            'proxy', '127.0.0.1:0', '127.0.0.1:%d' % self.port,
            '--toxic', 'latency:down:latency=-5'])],
            'latency toxic: latency must be between 0 and 3600000 ms (got -5)')
        self.assertNotIn('latency latency', line)


class EchoClientTimeout(ClassicTest):
    """The echo client's own --timeout says what did not come in time,
    not "Connection timed out" as if the kernel had said it."""

    def test_no_echo_over_tcp(self):
        # Listening, never accepting: the kernel completes the handshake and
        # queues what the client sends, and no echo ever comes.
        with socket.create_server(('127.0.0.1', 0)) as mute:
            port = mute.getsockname()[1]
            result = run(ferry('echo', 'client', '-p', port, '--count', 1, '--timeout', '0.5'),
                         timeout=LIMIT)
        line = self.assert_fails(result, 1,
                                 'no echo from 127.0.0.1:%d within 0.5 s (--timeout)' % port)
        self.assertNotIn('timed out', line)

    def test_no_echo_over_seqpacket(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, 'mute.sock')
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as mute:
                mute.bind(path)
                mute.listen(1)
                result = run(ferry('echo', 'client', '-U', path, '--seqpacket', '--count', 1,
                                   '--timeout', '500ms'), timeout=LIMIT)
        line = self.assert_fails(result, 1, 'no echo from %s within 0.5 s (--timeout)' % path)
        self.assertNotIn('timed out', line)


if __name__ == '__main__':
    unittest.main()
