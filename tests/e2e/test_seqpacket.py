"""Unix SOCK_SEQPACKET (--seqpacket): the kernel keeps message boundaries, and ferry keeps them too.

* ``ferry echo server -U PATH --seqpacket``, every server model: each
  message (1, 100, 4096 and 65536 bytes, sent back to back by a Python
  client) comes back as exactly one message, never merged, never split; a
  message over --max-frame drops that client with one line on stderr and is
  never echoed cut short; half-close; SIGTERM.
* ``ferry echo client --seqpacket``: every echo checked, one message each way.
* ``ferry connect/listen -U PATH --seqpacket`` against a Python seqpacket
  peer: each read of standard input is one message, the half-close (the peer
  reads end of stream while data still flows back), binary-safe messages,
  a message over 64 KiB from the peer is an error and not a shortened write,
  listen -k, -w.
* Bad input: --seqpacket without -U, with -u, with a framing; a path that is
  a regular file or a live server's socket (exit 1, one line, left alone).

Socket paths live in a temporary directory per test, removed afterwards. No
test sleeps to synchronise: each waits for a line, a message or an exit,
with a deadline.
"""

import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import ferrytest
from echo_support import MODELS, TIMEOUT
from ferrytest import ferry, run
from test_connect_listen import StderrProc

SIZES = [1, 100, 4096, 65536]
ROOM = 1 << 17  # any echo longer than what was sent shows as longer


def recv_message(sock, room=ROOM):
    """One message, checked whole (MSG_TRUNC would mean it did not fit)."""
    data, _, flags, _ = sock.recvmsg(room, 0, socket.MSG_TRUNC)
    if flags & socket.MSG_TRUNC:
        raise AssertionError('a message of more than %d bytes' % room)
    return data


def seqpacket_client(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def send_in_background(sock, messages):
    """Sends every message (one send each) from a thread; returns a join()
    that raises what the sender met."""
    errors = []

    def send():
        try:
            for m in messages:
                if sock.send(m) != len(m):
                    errors.append('message of %d bytes sent in part' % len(m))
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()

    def join():
        thread.join(TIMEOUT)
        if thread.is_alive():
            raise AssertionError('the sender was still blocked after %ss' % TIMEOUT)
        if errors:
            raise AssertionError(errors[0])

    return join


class TempPath:
    """A socket path in a temporary directory removed when the test ends."""

    def temp_path(self, name='ferry.sock'):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        return os.path.join(directory.name, name)


class SeqpacketEcho(TempPath):
    """Mixed into one TestCase per model (MODEL set by the class factory)."""
    MODEL = None

    def start(self, *extra):
        path = self.temp_path('echo.sock')
        proc = self.spawn(ferry('echo', 'server', '-U', path, '--seqpacket', '--model',
                                self.MODEL, *extra))
        proc.expect(r'^Listening at %s \(model %s, seqpacket' % (re.escape(path), self.MODEL),
                    timeout=TIMEOUT)
        return proc, path

    def test_each_message_back_to_back_comes_back_as_exactly_one_message(self):
        proc, path = self.start()
        rng = random.Random(self.MODEL)
        messages = [rng.randbytes(size) for size in SIZES * 3]
        with seqpacket_client(path) as s:
            join = send_in_background(s, messages)
            for sent in messages:
                echo = recv_message(s)
                self.assertEqual(len(echo), len(sent), 'a message merged or split')
                self.assertEqual(echo, sent)
            join()
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0, proc.describe())
        self.assertRegex(proc.output(), r'\b12 messages, 209199 bytes in, 209199 bytes out')

    def test_the_ferry_client_checks_every_echo(self):
        proc, path = self.start()
        for size in ['1', '65536']:
            with self.subTest(size=size):
                result = run(ferry('echo', 'client', '-U', path, '--seqpacket', '--count', '30',
                                   '--size', size), timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn('Echoed 30 of 30 messages correctly (%s bytes each' % size,
                              result.stdout)

    def test_a_message_over_max_frame_drops_the_client_with_one_line(self):
        proc, path = self.start('--max-frame', '1000')
        with seqpacket_client(path) as s:
            s.send(b'f' * 1000)  # exactly the maximum: echoed
            self.assertEqual(recv_message(s), b'f' * 1000)
            s.send(b'o' * 2000)
            try:
                self.assertEqual(recv_message(s), b'', 'a message over the maximum was echoed')
            except ConnectionResetError:
                pass  # dropped: as good as end of stream
        with seqpacket_client(path) as s:  # the server itself is fine
            s.send(b'next')
            self.assertEqual(recv_message(s), b'next')
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0, proc.describe())
        self.assertRegex(proc.output(), r'\b1 dropped for bad frames\b')
        self.assertEqual(proc.stderr_text(),
                         'ferry: dropped a client: recv: message of 2000 bytes (room for 1000): '
                         'message larger than the maximum\n')

    def test_half_close_gets_every_echo_then_end_of_stream(self):
        proc, path = self.start()
        with seqpacket_client(path) as s:
            for m in [b'one', b'two', b'three']:
                s.send(m)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual([recv_message(s) for _ in range(4)], [b'one', b'two', b'three', b''])
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0, proc.describe())


for _model in MODELS:
    _name = 'SeqpacketEcho_%s' % _model
    globals()[_name] = type(_name, (SeqpacketEcho, ferrytest.TestCase), {'MODEL': _model})


class SeqpacketEchoClient(TempPath, ferrytest.TestCase):

    def start(self):
        path = self.temp_path('echo.sock')
        proc = self.spawn(ferry('echo', 'server', '-U', path, '--seqpacket'))
        proc.expect(r'^Listening at ', timeout=TIMEOUT)
        return proc, path

    def test_each_line_of_input_is_one_message(self):
        proc, path = self.start()
        result = run(ferry('echo', 'client', '-U', path, '--seqpacket'), input='hello\nworld\n')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ['hello', 'world'])
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b2 messages, 10 bytes in, 10 bytes out')

    def test_an_empty_line_is_refused_not_sent_as_end_of_stream(self):
        proc, path = self.start()
        result = run(ferry('echo', 'client', '-U', path, '--seqpacket'), input='a\n\nb\n')
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, 'a\n')
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('empty line', result.stderr)

    def test_a_stream_client_at_a_seqpacket_server_is_told_why(self):
        proc, path = self.start()
        result = run(ferry('echo', 'client', '-U', path, '--count', '1'))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('Protocol wrong type for socket', result.stderr)
        self.assertIn('not SOCK_STREAM: add --seqpacket?', result.stderr)


class SeqpacketPeer:
    """A Python SOCK_SEQPACKET listener at `path`, for ferry connect to talk to."""

    def __init__(self, path):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.settimeout(TIMEOUT)

    def accept(self):
        conn, _ = self.listener.accept()
        conn.settimeout(TIMEOUT)
        return conn

    def close(self):
        self.listener.close()


class SeqpacketNetcat(TempPath, ferrytest.TestCase):

    def peer(self, path):
        peer = SeqpacketPeer(path)
        self.addCleanup(peer.close)
        return peer

    def proc(self, *args, **kwargs):
        proc = StderrProc(ferry(*args), text=False, **kwargs)
        self.addCleanup(proc.close)
        return proc

    def listen(self, path, *extra, **kwargs):
        proc = self.proc('listen', '-U', path, '--seqpacket', *extra, **kwargs)
        proc.expect_stderr(r'^Listening at %s$' % re.escape(path), timeout=TIMEOUT)
        return proc

    def test_connect_half_close_peer_reads_end_of_stream_and_data_still_flows_back(self):
        path = self.temp_path()
        peer = self.peer(path)
        client = self.proc('connect', '-U', path, '--seqpacket')
        with peer.accept() as conn:
            client.send(b'hello')
            self.assertEqual(recv_message(conn), b'hello')
            client.close_stdin()
            self.assertEqual(recv_message(conn), b'', 'end of input was not passed on')
            # Our side still sends after the client's end of input.
            conn.send(b'reply one\n')
            conn.send(b'reply two\n')
        self.assertEqual(client.wait(timeout=TIMEOUT), 0, client.describe())
        self.assertEqual(client.output(), b'reply one\nreply two\n')

    def test_writes_acknowledged_one_by_one_are_separate_messages_never_merged(self):
        path = self.temp_path()
        peer = self.peer(path)
        client = self.proc('connect', '-U', path, '--seqpacket')
        with peer.accept() as conn:
            for chunk in [b'first', b'second', b'x' * 5000, b'\x00']:
                client.send(chunk)
                self.assertEqual(recv_message(conn), chunk)
            client.close_stdin()
            self.assertEqual(recv_message(conn), b'')
        self.assertEqual(client.wait(timeout=TIMEOUT), 0, client.describe())

    def test_binary_messages_both_ways_and_each_read_of_input_is_one_message(self):
        path = self.temp_path()
        peer = self.peer(path)
        every_byte = bytes(range(256))
        data = random.Random(5).randbytes(3 * 65536 + 100)
        with tempfile.TemporaryFile() as stdin:
            stdin.write(data)
            stdin.seek(0)
            client = self.proc('connect', '-U', path, '--seqpacket', stdin=stdin)
            with peer.accept() as conn:
                received = []
                while True:
                    m = recv_message(conn)
                    if not m:
                        break
                    received.append(m)
                conn.send(every_byte)
                conn.send(every_byte[::-1])
        # A regular file reads in full 64 KiB chunks: one message each.
        self.assertEqual([len(m) for m in received], [65536, 65536, 65536, 100])
        self.assertEqual(b''.join(received), data)
        self.assertEqual(client.wait(timeout=TIMEOUT), 0, client.describe())
        self.assertEqual(client.output(), every_byte + every_byte[::-1])

    def test_a_message_over_64_kib_from_the_peer_is_one_line_and_exit_1(self):
        path = self.temp_path()
        peer = self.peer(path)
        client = self.proc('connect', '-U', path, '--seqpacket')
        with peer.accept() as conn:
            conn.send(b'fits')
            conn.send(b'L' * 100000)
            self.assertEqual(client.wait(timeout=TIMEOUT), 1, client.describe())
        self.assertEqual(client.output(), b'fits', 'the long message was written in part')
        self.assertEqual(client.stderr_text(),
                         'ferry: recv from %s: message of 100000 bytes (room for 65536): '
                         'message larger than the maximum\n' % path)

    def test_listen_half_close_with_a_python_client(self):
        path = self.temp_path()
        with tempfile.TemporaryFile() as stdin:
            stdin.write(b'from listen')
            stdin.seek(0)
            listener = self.listen(path, stdin=stdin)
            with seqpacket_client(path) as s:
                self.assertEqual(recv_message(s), b'from listen')
                self.assertEqual(recv_message(s), b'', 'end of input was not passed on')
                s.send(b'one')
                s.send(b'two')
            self.assertEqual(listener.wait(timeout=TIMEOUT), 0, listener.describe())
        self.assertEqual(listener.output(), b'onetwo')
        self.assertFalse(os.path.exists(path), 'the socket file was left behind')

    def test_listen_keep_open_serves_one_client_after_another(self):
        path = self.temp_path()
        listener = self.listen(path, '-k', stdin=subprocess.DEVNULL)
        for name in [b'alpha', b'beta']:
            # The next client waits in the backlog until the previous session has ended.
            with seqpacket_client(path) as s:
                self.assertEqual(recv_message(s), b'')  # input has ended: end of stream at once
                s.send(name + b'\n')
            listener.expect(b'^' + name + b'$', timeout=TIMEOUT)
        self.assertEqual(listener.stop(timeout=TIMEOUT), 0, listener.describe())
        self.assertEqual(listener.output(), b'alpha\nbeta\n')

    def test_connect_and_listen_together(self):
        path = self.temp_path()
        with tempfile.TemporaryFile() as stdin:
            stdin.write(b'down')
            stdin.seek(0)
            listener = self.listen(path, stdin=stdin)
            result = run(ferry('connect', '-U', path, '--seqpacket'), input=b'up', text=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, b'down')
            self.assertEqual(listener.wait(timeout=TIMEOUT), 0, listener.describe())
        self.assertEqual(listener.output(), b'up')

    def test_idle_timeout(self):
        path = self.temp_path()
        peer = self.peer(path)
        client = self.proc('connect', '-U', path, '--seqpacket', '-w', '1')
        with peer.accept():
            start = time.monotonic()
            self.assertEqual(client.wait(timeout=TIMEOUT), 1, client.describe())
            self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertIn('no data either way for 1.0 s (-w)', client.stderr_text())

    def test_a_stream_connect_to_a_seqpacket_listener_is_told_why(self):
        path = self.temp_path()
        self.peer(path)
        result = run(ferry('connect', '-U', path), text=True)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('Protocol wrong type for socket', result.stderr)
        self.assertIn('not SOCK_STREAM: add --seqpacket?', result.stderr)


class SeqpacketBadInput(TempPath, ferrytest.TestCase):

    def assert_one_line(self, result, code, *fragments):
        self.assertEqual(result.returncode, code, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertTrue(result.stderr.startswith('ferry: '), result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def test_usage_errors_exit_2_before_any_socket(self):
        path = self.temp_path('never.sock')
        cases = [
            (('echo', 'server', '--seqpacket'), 'needs -U'),
            (('echo', 'client', '--seqpacket', '--count', '1'), 'needs -U'),
            (('connect', '--seqpacket', '127.0.0.1', '80'), 'needs -U'),
            (('listen', '--seqpacket', '0'), 'needs -U'),
            (('echo', 'server', '-u', '--seqpacket'), 'does not combine with -u'),
            (('echo', 'server', '-U', path, '-u', '--seqpacket'), 'does not combine with -u'),
            (('connect', '-U', path, '-u', '--seqpacket'), 'does not combine with -u'),
            (('listen', '-U', path, '-u', '--seqpacket'), 'does not combine with -u'),
            (('echo', 'server', '-U', path, '--seqpacket', '--framing', 'line'), 'only raw'),
            (('echo', 'client', '-U', path, '--seqpacket', '--framing', 'length'), 'only raw'),
        ]
        for args, fragment in cases:
            with self.subTest(args=args):
                self.assert_one_line(run(ferry(*args)), 2, fragment)
        self.assertFalse(os.path.exists(path), 'a socket was opened before validation')

    def test_a_regular_file_at_the_path_is_left_alone(self):
        path = self.temp_path('precious')
        with open(path, 'w') as f:
            f.write('precious')
        for args in [('echo', 'server', '-U', path, '--seqpacket'),
                     ('listen', '-U', path, '--seqpacket')]:
            with self.subTest(args=args):
                self.assert_one_line(run(ferry(*args)), 1, 'bind to %s' % path, 'not a socket')
        with open(path) as f:
            self.assertEqual(f.read(), 'precious')

    def test_a_live_server_at_the_path_is_left_alone(self):
        for live_type, fragment in [(socket.SOCK_SEQPACKET, 'a server is listening there'),
                                    (socket.SOCK_STREAM, 'another socket type')]:
            path = self.temp_path('live.sock')
            with socket.socket(socket.AF_UNIX, live_type) as live:
                live.bind(path)
                live.listen(8)
                for args in [('echo', 'server', '-U', path, '--seqpacket'),
                             ('listen', '-U', path, '--seqpacket')]:
                    with self.subTest(live=live_type, args=args):
                        self.assert_one_line(run(ferry(*args)), 1, 'Address already in use',
                                             fragment)
                with socket.socket(socket.AF_UNIX, live_type) as c:
                    c.connect(path)  # still the live server's

    def test_a_stale_socket_file_is_replaced(self):
        path = self.temp_path('stale.sock')
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens
        proc = self.spawn(ferry('echo', 'server', '-U', path, '--seqpacket'))
        proc.expect(r'^Listening at ', timeout=TIMEOUT)
        with seqpacket_client(path) as s:
            s.send(b'fresh')
            self.assertEqual(recv_message(s), b'fresh')
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertFalse(os.path.exists(path), 'the socket file was left behind')


if __name__ == '__main__':
    unittest.main()
