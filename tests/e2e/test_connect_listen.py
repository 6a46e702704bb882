"""ferry connect / ferry listen, the netcat pair, end to end on loopback.

Binary-safe round trips in both directions (0 bytes to 5 MB, every byte
value, any chunk sizes, pipes and files), the half-close and -q, listen -k,
connect -z, UDP, Unix sockets, IPv6, the -w idle timeout, and bad input
(one line on stderr, exit 2 for usage and 1 at run time).

ferry listen prints `Listening at ADDRESS` on stderr (stdout carries the
peer's bytes only), so the listeners here are ``StderrProc``s, whose stderr
lines can be waited for like stdout's.  No test sleeps to synchronise: each
waits for a line or an exit, with a deadline.
"""

import os
import queue
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import ferrytest
from ferrytest import DEFAULT_TIMEOUT, FERRY, Proc, TestCase, ferry, run

LISTENING = r'^Listening at (?:\[(?P<v6>[^\]]+)\]|(?P<host>[^\s:]+)):(?P<port>\d+)$'
BIG = 5 * 1000 * 1000


class StderrProc(Proc):
    """A Proc whose stderr lines can be waited for too (expect_stderr).

    ferrytest's Proc reads stderr in a background thread but only keeps it
    as text; this reader does the same and also queues each line.
    """

    def __init__(self, args, **kwargs):
        self._err_lines = queue.Queue()
        super().__init__(args, **kwargs)

    def _pump_stderr(self):
        empty = '' if self.text else b''
        try:
            for chunk in iter(self.popen.stderr.readline, empty):
                with self._lock:
                    self._err.append(chunk)
                if isinstance(chunk, bytes):
                    chunk = chunk.decode('utf-8', 'backslashreplace')
                self._err_lines.put(chunk.rstrip('\r\n'))
        except (OSError, ValueError):
            pass
        finally:
            self._err_lines.put(None)

    def expect_stderr(self, regex, timeout=DEFAULT_TIMEOUT):
        """Read stderr lines until one matches ``regex`` and return the match."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._err_lines.get(
                    timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError('no stderr line matching %r within %gs from %s'
                                     % (regex, timeout, self.describe())) from None
            if line is None:
                self._err_lines.put(None)
                raise AssertionError('stderr ended with no line matching %r: %s'
                                     % (regex, self.describe()))
            match = pattern.search(line)
            if match:
                return match


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(('::1', 0))
        return True
    except OSError:
        return False


def bound_port(family=socket.AF_INET, host='127.0.0.1'):
    """A TCP socket bound to a port and not listening: connects to it are refused."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s


def consecutive_ports(count):
    """``count`` TCP sockets bound to consecutive ports on 127.0.0.1 (not listening)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held = []
        try:
            for i in range(count):
                s = socket.socket()
                held.append(s)
                s.bind(('127.0.0.1', base + i))
            return held
        except OSError:
            for s in held:
                s.close()
    raise unittest.SkipTest('found no %d consecutive free ports' % count)


def temp_file(data):
    """An unnamed file holding ``data``, positioned at its start (for stdin)."""
    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return f


class NetcatTest(TestCase):

    def listen(self, *args, stdin=subprocess.PIPE, text=False):
        """Start ``ferry listen ARGS`` and return (proc, host, port) once it
        says where it listens (port is None for a Unix socket)."""
        proc = StderrProc(ferry('listen', *args), stdin=stdin, text=text)
        self.addCleanup(proc.close)
        match = proc.expect_stderr(r'^Listening at ')
        found = re.match(LISTENING, match.string)
        if not found:
            return proc, match.string[len('Listening at '):], None
        return proc, found.group('v6') or found.group('host'), int(found.group('port'))

    def connect(self, *args, stdin=subprocess.PIPE, text=False):
        proc = StderrProc(ferry('connect', *args), stdin=stdin, text=text)
        self.addCleanup(proc.close)
        return proc

    def assert_one_error_line(self, result, code, *fragments):
        stderr = result.stderr if isinstance(result.stderr, str) else \
            result.stderr.decode('utf-8', 'backslashreplace')
        self.assertEqual(result.returncode, code, 'stderr: %r' % stderr)
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, 'not one line on stderr: %r' % stderr)
        self.assertTrue(lines[0].startswith('ferry: '), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        return lines[0]


class BinarySafe(NetcatTest):

    def round_trip(self, up, down):
        """``up`` through connect's stdin to listen's stdout, ``down`` through
        listen's stdin to connect's stdout, at once."""
        with temp_file(down) as down_file:
            listener, host, port = self.listen('127.0.0.1', 0, stdin=down_file)
            result = run(ferry('connect', host, port), input=up, text=False, timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stderr, b'')
            self.assertEqual(listener.wait(timeout=60), 0, listener.describe())
        self.assertEqual(len(result.stdout), len(down))
        self.assertTrue(result.stdout == down, 'connect printed other bytes')
        received = listener.output()
        self.assertEqual(len(received), len(up))
        self.assertTrue(received == up, 'listen printed other bytes')

    def test_round_trip_of_random_data_in_both_directions(self):
        for size in (0, 1, 65536 + 7, BIG):
            with self.subTest(size=size):
                self.round_trip(os.urandom(size), os.urandom(size))

    def test_every_byte_value_both_ways(self):
        every = bytes(range(256)) * 300
        self.round_trip(every, every[::-1])

    def test_input_in_odd_chunk_sizes(self):
        listener, host, port = self.listen('127.0.0.1', 0, stdin=subprocess.DEVNULL)
        client = self.connect(host, port)
        sent = []
        for size in (1, 7, 4095, 1, 65537, 3, 200000, 13):
            chunk = os.urandom(size)
            sent.append(chunk)
            client.send(chunk)
        client.close_stdin()
        self.assertEqual(client.wait(timeout=30), 0, client.describe())
        self.assertEqual(listener.wait(timeout=30), 0, listener.describe())
        self.assertTrue(listener.output() == b''.join(sent))

    def test_files_as_standard_input_and_output(self):
        up, down = os.urandom(300000), os.urandom(400000)
        with temp_file(down) as down_file, temp_file(up) as up_file, \
                tempfile.TemporaryFile() as out:
            listener, host, port = self.listen('127.0.0.1', 0, stdin=down_file)
            result = subprocess.run(ferry('connect', host, port), stdin=up_file, stdout=out,
                                    stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(listener.wait(timeout=30), 0, listener.describe())
            out.seek(0)
            self.assertTrue(out.read() == down)
        self.assertTrue(listener.output() == up)

    def test_closed_standard_input_is_empty_input(self):
        # Started with descriptor 0 closed: no socket may take its number.
        proc = StderrProc(['sh', '-c', 'exec "$0" "$@" <&-', FERRY, 'listen', '127.0.0.1', '0'],
                          stdin=subprocess.DEVNULL, text=False)
        self.addCleanup(proc.close)
        port = int(proc.expect_stderr(LISTENING).group('port'))
        result = run(ferry('connect', '127.0.0.1', port), input=b'to a listener without stdin',
                     text=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b'')
        self.assertEqual(proc.wait(), 0, proc.describe())
        self.assertEqual(proc.output(), b'to a listener without stdin')


class HalfClose(NetcatTest):

    def test_listen_replies_after_end_of_input_and_connect_prints_it(self):
        listener, host, port = self.listen('127.0.0.1', 0)
        client = self.connect(host, port)
        client.send(b'question\n')
        client.close_stdin()
        listener.expect(b'^question$')
        # connect's input has ended, and it is still there for the reply.
        self.assertIsNone(client.returncode)
        listener.send(b'answer\n')
        listener.close_stdin()
        client.expect(b'^answer$')
        self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(listener.wait(), 0, listener.describe())
        self.assertEqual(client.output(), b'answer\n')
        self.assertEqual(listener.output(), b'question\n')

    def test_connect_sends_end_of_stream_and_reads_on(self):
        # A server that answers only once it has read to the end of the stream.
        with socket.create_server(('127.0.0.1', 0)) as server:
            server.settimeout(DEFAULT_TIMEOUT)

            def serve():
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(DEFAULT_TIMEOUT)
                    total = 0
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        total += len(data)
                    conn.sendall(b'got %d bytes\n' % total)

            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            result = run(ferry('connect', '127.0.0.1', server.getsockname()[1]),
                         input=b'x' * 100000, text=False)
            thread.join(timeout=DEFAULT_TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b'got 100000 bytes\n')

    def test_listen_sends_end_of_stream_and_reads_on(self):
        with temp_file(b'hello from listen\n') as stdin:
            listener, host, port = self.listen('127.0.0.1', 0, stdin=stdin)
            with socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT) as c:
                got = b''
                while True:
                    data = c.recv(65536)
                    if not data:
                        break      # listen's end of input reached us as end of stream...
                    got += data
                c.sendall(b'still listening\n')   # ...and it still reads
                c.shutdown(socket.SHUT_WR)
                self.assertEqual(listener.wait(), 0, listener.describe())
        self.assertEqual(got, b'hello from listen\n')
        self.assertEqual(listener.output(), b'still listening\n')


class QuitAfterEof(NetcatTest):

    def test_q0_ends_at_once_after_end_of_input(self):
        # The listener never ends its side: only -q 0 lets connect go.
        listener, host, port = self.listen('127.0.0.1', 0)
        started = time.monotonic()
        result = run(ferry('connect', '-q', 0, host, port), input=b'hello\n', text=False,
                     timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertLess(time.monotonic() - started, 8)
        listener.expect(b'^hello$')
        listener.close_stdin()
        self.assertEqual(listener.wait(), 0, listener.describe())

    def test_q_prints_what_arrives_until_it_expires(self):
        listener, host, port = self.listen('127.0.0.1', 0)
        client = self.connect('-q', 5, host, port)
        client.send(b'question\n')
        client.close_stdin()
        listener.expect(b'^question$')
        listener.send(b'late answer\n')
        client.expect(b'^late answer$')
        self.assertEqual(client.wait(timeout=15), 0, client.describe())
        listener.close_stdin()
        self.assertEqual(listener.wait(), 0, listener.describe())


class KeepOpen(NetcatTest):

    def open_descriptors(self, proc):
        return len(os.listdir('/proc/%d/fd' % proc.pid))

    def test_k_serves_three_clients_one_after_another(self):
        listener, host, port = self.listen('-k', '127.0.0.1', 0, stdin=subprocess.DEVNULL)
        before = self.open_descriptors(listener)
        for i in (1, 2, 3):
            result = run(ferry('connect', host, port), input=b'client %d\n' % i, text=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, b'')
            listener.expect(b'^client %d$' % i)
            listener.expect_stderr(r'^Connection from 127\.0\.0\.1:\d+$')
        self.assertIsNone(listener.returncode)
        self.assertEqual(self.open_descriptors(listener), before, 'a descriptor leaked')
        self.assertEqual(listener.stop(), 0, listener.describe())
        self.assertEqual(listener.output(), b'client 1\nclient 2\nclient 3\n')

    def test_sigterm_during_a_session_exits_0(self):
        listener, host, port = self.listen('127.0.0.1', 0)
        client = self.connect(host, port)
        client.send(b'busy\n')
        listener.expect(b'^busy$')
        self.assertEqual(listener.stop(), 0, listener.describe())
        client.close_stdin()     # the listener's end of stream came; now ours
        self.assertEqual(client.wait(), 0, client.describe())

    def test_without_k_one_client_then_exit(self):
        listener, host, port = self.listen('127.0.0.1', 0, stdin=subprocess.DEVNULL)
        result = run(ferry('connect', host, port), input=b'only one\n', text=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(listener.wait(), 0, listener.describe())
        again = run(ferry('connect', host, port), input='too late\n')
        self.assert_one_error_line(again, 1, 'Connection refused')

    def test_k_survives_a_client_that_resets(self):
        listener, host, port = self.listen('-k', '127.0.0.1', 0, stdin=subprocess.DEVNULL)
        rude = socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT)
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        rude.sendall(b'rude\n')
        listener.expect(b'^rude$')
        rude.close()    # SO_LINGER 0: a reset, not an end of stream
        listener.expect_stderr(r'^ferry: recv from 127\.0\.0\.1:\d+: Connection reset by peer$')
        result = run(ferry('connect', host, port), input=b'polite\n', text=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        listener.expect(b'^polite$')
        self.assertEqual(listener.stop(), 0, listener.describe())


class Scan(NetcatTest):

    def test_z_open_port(self):
        with socket.create_server(('127.0.0.1', 0)) as server:
            port = server.getsockname()[1]
            result = run(ferry('connect', '-z', '127.0.0.1', port))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, '127.0.0.1:%d open\n' % port)
        self.assertEqual(result.stderr, '')

    def test_z_closed_port(self):
        with bound_port() as closed:
            port = closed.getsockname()[1]
            result = run(ferry('connect', '-z', '127.0.0.1', port))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, '127.0.0.1:%d closed\n' % port)

    def test_z_range_one_line_per_port_in_order(self):
        held = consecutive_ports(4)
        try:
            held[0].listen()
            held[2].listen()
            base = held[0].getsockname()[1]
            result = run(ferry('connect', '-z', '127.0.0.1', '%d-%d' % (base, base + 3)))
        finally:
            for s in held:
                s.close()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [
            '127.0.0.1:%d open' % base, '127.0.0.1:%d closed' % (base + 1),
            '127.0.0.1:%d open' % (base + 2), '127.0.0.1:%d closed' % (base + 3)])

    def test_z_range_all_closed_exits_1(self):
        held = consecutive_ports(3)
        try:
            base = held[0].getsockname()[1]
            result = run(ferry('connect', '-z', '-w', 2, '127.0.0.1', '%d-%d' % (base, base + 2)))
        finally:
            for s in held:
                s.close()
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout.splitlines(),
                         ['127.0.0.1:%d closed' % p for p in range(base, base + 3)])

    def test_z_bad_ranges_are_usage_errors(self):
        for port in ('5-3', '0-10', '1-65536', 'x-y', '99999'):
            with self.subTest(port=port):
                self.assert_one_error_line(run(ferry('connect', '-z', '127.0.0.1', port)), 2)


class Udp(NetcatTest):

    def test_udp_round_trip(self):
        listener, host, port = self.listen('-u', '-q', 0, '127.0.0.1', 0)
        client = self.connect('-u', '-q', 0, host, port)
        client.send(b'ping\n')
        listener.expect(b'^ping$')
        listener.expect_stderr(r'^Datagram from 127\.0\.0\.1:\d+: replies go there$')
        listener.send(b'pong\n')
        client.expect(b'^pong$')
        client.close_stdin()
        self.assertEqual(client.wait(), 0, client.describe())
        listener.close_stdin()
        self.assertEqual(listener.wait(), 0, listener.describe())

    def test_udp_k_serves_the_next_sender_after_an_idle_session(self):
        # Port 0: the kernel forgets a port it picked when the socket is
        # unconnected, so the listener must bind it again for the next peer.
        listener, host, port = self.listen('-u', '-k', '-w', 1, '127.0.0.1', 0,
                                           stdin=subprocess.DEVNULL)
        for word in (b'one', b'two'):
            result = run(ferry('connect', '-u', '-q', 0, host, port), input=word + b'\n',
                         text=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            listener.expect(b'^%s$' % word)
            listener.expect_stderr(r'^ferry: no data either way for 1\.0 s \(-w\): closing')
        self.assertEqual(listener.stop(), 0, listener.describe())

    def test_udp_listen_port_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(('127.0.0.1', 0))
            result = run(ferry('listen', '-u', '127.0.0.1', taken.getsockname()[1]))
        self.assert_one_error_line(result, 1, 'Address already in use')


class UnixSocket(NetcatTest):

    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, 'ferry.sock')

    def test_unix_round_trip(self):
        with temp_file(b'from listen\n') as stdin:
            listener, where, _ = self.listen('-U', self.path, stdin=stdin)
            self.assertEqual(where, self.path)
            result = run(ferry('connect', '-U', self.path), input=b'from connect\n', text=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, b'from listen\n')
            self.assertEqual(listener.wait(), 0, listener.describe())
        self.assertEqual(listener.output(), b'from connect\n')
        self.assertFalse(os.path.exists(self.path), 'the socket file was left behind')

    def test_stale_socket_file_is_replaced(self):
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.path)
        stale.close()       # the file stays, nobody listens
        listener, _, _ = self.listen('-U', self.path, stdin=subprocess.DEVNULL)
        result = run(ferry('connect', '-U', self.path), input=b'hi', text=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(listener.wait(), 0, listener.describe())
        self.assertEqual(listener.output(), b'hi')

    def test_live_socket_is_left_alone(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
            live.bind(self.path)
            live.listen()
            result = run(ferry('listen', '-U', self.path))
            self.assert_one_error_line(result, 1, 'Address already in use')
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(self.path)     # still the live server's

    def test_a_file_that_is_not_a_socket_is_left_alone(self):
        with open(self.path, 'w') as f:
            f.write('precious')
        self.assert_one_error_line(run(ferry('listen', '-U', self.path)), 1, 'not a socket')
        with open(self.path) as f:
            self.assertEqual(f.read(), 'precious')

    def test_connect_to_a_missing_socket(self):
        result = run(ferry('connect', '-U', self.path))
        self.assert_one_error_line(result, 1, self.path, 'No such file or directory')


@unittest.skipUnless(have_ipv6(), 'no IPv6 loopback (::1) here')
class Ipv6(NetcatTest):

    def test_ipv6_round_trip(self):
        with temp_file(b'down over v6\n') as stdin:
            listener, host, port = self.listen('-6', '::1', 0, stdin=stdin)
            self.assertEqual(host, '::1')
            result = run(ferry('connect', '[::1]', port), input=b'up over v6\n', text=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, b'down over v6\n')
            self.assertEqual(listener.wait(), 0, listener.describe())
        self.assertEqual(listener.output(), b'up over v6\n')
        listener.expect_stderr(r'^Connection from \[::1\]:\d+$')

    def test_z_on_ipv6(self):
        with socket.create_server(('::1', 0), family=socket.AF_INET6) as server:
            port = server.getsockname()[1]
            result = run(ferry('connect', '-z', '-6', '::1', port))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, '[::1]:%d open\n' % port)


class Timeouts(NetcatTest):

    def test_w_idle_timeout_ends_a_silent_session(self):
        listener, host, port = self.listen('127.0.0.1', 0)
        started = time.monotonic()
        client = self.connect('-w', 1, host, port, text=True)
        self.assertEqual(client.wait(timeout=15), 1, client.describe())
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 12)
        lines = client.stderr_text().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('no data either way for 1.0 s (-w)', lines[0])
        # The listener sees the end of stream; its own input ends it.
        listener.close_stdin()
        self.assertEqual(listener.wait(), 0, listener.describe())

    def test_w_idle_timeout_on_listen(self):
        listener, host, port = self.listen('-w', 1, '127.0.0.1', 0)
        with socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT) as silent:
            self.assertEqual(listener.wait(timeout=15), 1, listener.describe())
            self.assertEqual(silent.recv(1), b'')    # closed by the listener
        self.assertIn('no data either way for 1.0 s (-w)', listener.stderr_text())

    def test_w_bounds_the_connect(self):
        # A listener whose accept queue is full drops further SYNs: without
        # -w the connect would wait through every SYN retransmission.
        with socket.socket() as server:
            server.bind(('127.0.0.1', 0))
            server.listen(0)
            port = server.getsockname()[1]
            fillers = [socket.create_connection(('127.0.0.1', port), timeout=DEFAULT_TIMEOUT)]
            try:
                extra = socket.socket()
                fillers.append(extra)
                extra.setblocking(False)
                extra.connect_ex(('127.0.0.1', port))
                started = time.monotonic()
                result = run(ferry('connect', '-w', 1, '127.0.0.1', port))
                elapsed = time.monotonic() - started
            finally:
                for s in fillers:
                    s.close()
        self.assert_one_error_line(result, 1, 'connect to 127.0.0.1:%d' % port, 'timed out')
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 12)

    def test_data_keeps_the_session_alive(self):
        # A reply comes within -w of each line: the idle timer restarts with each.
        listener, host, port = self.listen('127.0.0.1', 0)
        client = self.connect('-w', 2, host, port)
        for i in range(3):
            client.send(b'line %d\n' % i)
            listener.expect(b'^line %d$' % i)
            listener.send(b'ack %d\n' % i)
            client.expect(b'^ack %d$' % i)
        client.close_stdin()
        listener.close_stdin()
        self.assertEqual(client.wait(), 0, client.describe())
        self.assertEqual(listener.wait(), 0, listener.describe())


class BadInput(NetcatTest):

    def test_port_99999_is_a_usage_error(self):
        for args in (('connect', '127.0.0.1', 99999), ('listen', 99999),
                     ('listen', '127.0.0.1', 99999), ('connect', '-u', '127.0.0.1', 99999)):
            with self.subTest(args=args):
                self.assert_one_error_line(run(ferry(*args)), 2, "'99999'")

    def test_service_name_as_the_port(self):
        try:
            port = socket.getservbyname('tcpmux', 'tcp')
        except OSError:
            self.skipTest('no services database here')
        # Whatever the state of that port, the line names it by number.
        result = run(ferry('connect', '-z', '-w', 1, '127.0.0.1', 'tcpmux'))
        self.assertIn(result.returncode, (0, 1), result.stderr)
        self.assertRegex(result.stdout, r'^127\.0\.0\.1:%d (open|closed|timed out)\n$' % port)
        result = run(ferry('connect', '127.0.0.1', 'nosuchservice'))
        self.assert_one_error_line(result, 2, "'nosuchservice'")

    def test_unknown_host_is_a_run_time_error(self):
        # Offline: looking a name up would query the machine's nameserver.
        reason = ferrytest.offline_unavailable()
        if reason:
            self.skipTest(reason)
        result = run(ferrytest.offline(ferry('connect', 'nosuch.invalid', 80)))
        self.assert_one_error_line(result, 1, 'nosuch.invalid')

    def test_connection_refused(self):
        with bound_port() as closed:
            port = closed.getsockname()[1]
            result = run(ferry('connect', '127.0.0.1', port))
        self.assert_one_error_line(result, 1, 'connect to 127.0.0.1:%d: Connection refused' % port)

    def test_port_in_use_for_listen(self):
        with socket.create_server(('127.0.0.1', 0)) as taken:
            result = run(ferry('listen', '127.0.0.1', taken.getsockname()[1]))
        self.assert_one_error_line(result, 1, 'Address already in use')

    def test_bad_combinations_are_usage_errors(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, 'never.sock')
            cases = [
                ('connect',), ('connect', '127.0.0.1'), ('listen',),
                ('listen', 'a', 'b', 'c'),
                ('connect', '-U', path, '127.0.0.1', 80), ('listen', '-U', path, 80),
                ('listen', '-U', path, '-u'), ('listen', '-U', path, '-6'),
                ('connect', '-4', '-6', '127.0.0.1', 80), ('connect', '-z', '-u', '127.0.0.1', 80),
                ('connect', '-z', '-q', 1, '127.0.0.1', 80), ('connect', '127.0.0.1', 0),
                ('connect', '-w', 0, '127.0.0.1', 80), ('connect', '-w', 'nan', '127.0.0.1', 80),
                ('connect', '-q', -1, '127.0.0.1', 80), ('listen', '-k', '-w', 'inf', 0),
                ('connect', '-k', '127.0.0.1', 80), ('listen', '-z', 0),
                ('listen', '-U', 'x' * 200),
            ]
            for args in cases:
                with self.subTest(args=args):
                    self.assert_one_error_line(run(ferry(*args)), 2)
            self.assertFalse(os.path.exists(path), 'a socket was opened before validation')

    def test_reset_by_peer(self):
        with socket.create_server(('127.0.0.1', 0)) as server:
            server.settimeout(DEFAULT_TIMEOUT)
            port = server.getsockname()[1]
            client = self.connect('127.0.0.1', port, text=True)
            conn, _ = server.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b'\x01\x00\x00\x00\x00\x00\x00\x00')
            conn.close()    # SO_LINGER 0: RST
            self.assertEqual(client.wait(), 1, client.describe())
        self.assertEqual(client.stderr_text(),
                         'ferry: recv from 127.0.0.1:%d: Connection reset by peer\n' % port)

    def test_standard_output_closed_is_one_line_and_exit_1(self):
        with socket.create_server(('127.0.0.1', 0)) as server:
            server.settimeout(DEFAULT_TIMEOUT)

            def flood():
                conn, _ = server.accept()
                with conn:
                    try:
                        conn.sendall(b'z' * (8 << 20))
                    except OSError:
                        pass      # the reader went away: that is the test

            thread = threading.Thread(target=flood, daemon=True)
            thread.start()
            proc = subprocess.Popen(ferry('connect', '127.0.0.1', server.getsockname()[1]),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            try:
                self.assertEqual(len(proc.stdout.read(1000)), 1000)
                proc.stdout.close()
                rc = proc.wait(timeout=DEFAULT_TIMEOUT)
                stderr = proc.stderr.read().decode()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdin.close()
                proc.stderr.close()
            thread.join(timeout=DEFAULT_TIMEOUT)
        self.assertEqual(rc, 1, stderr)
        self.assertEqual(stderr, 'ferry: write to standard output: Broken pipe\n')

    def test_udp_to_nobody_is_refused(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
            closed.bind(('127.0.0.1', 0))
            port = closed.getsockname()[1]
        # Nothing is bound there any more: the ICMP port-unreachable comes
        # back as ECONNREFUSED on the connected socket.
        client = self.connect('-u', '127.0.0.1', port, text=True)
        client.send('one\n')
        self.assertEqual(client.wait(timeout=15), 1, client.describe())
        self.assertIn('Connection refused', client.stderr_text())


if __name__ == '__main__':
    unittest.main()
