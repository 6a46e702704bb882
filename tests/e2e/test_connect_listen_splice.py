"""ferry connect / ferry listen with standard input and output that are
pipes or regular files: the zero-copy path (splice(2) through a pipe of the
relay's own), both directions at once in one session, content checked by
SHA-256; strace shows that splice(2) is what moved the bytes; a file opened
for appending, which splice(2) refuses, is written as before.

Each process is bounded in time: the Listening line is awaited with a
deadline, and every exit is awaited with one.
"""

import hashlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from ferrytest import FERRY

TIMEOUT = 60.0
LISTENING = re.compile(rb'^Listening at 127\.0\.0\.1:(\d+)$')


def payload(size, seed):
    """`size` bytes of every value, different for each seed."""
    block = hashlib.sha256(b'%d' % seed).digest() * 2048 + bytes(range(256))
    return (block * (size // len(block) + 1))[:size]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def listening_port(proc):
    """Reads listen's stderr up to its Listening line (bounded): the port."""
    deadline = time.monotonic() + TIMEOUT
    seen = b''
    fd = proc.stderr.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        data = os.read(fd, 4096)
        if not data:
            break
        seen += data
        for line in seen.split(b'\n')[:-1]:
            match = LISTENING.match(line)
            if match:
                return int(match.group(1))
    raise AssertionError('ferry listen said no Listening line: %r' % seen)


class SpliceTestCase(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='ferry-splice-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.procs = []
        self.addCleanup(self.reap)

    def reap(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(TIMEOUT)
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream:
                    stream.close()

    def path(self, name, content=None):
        path = os.path.join(self.dir, name)
        if content is not None:
            with open(path, 'wb') as f:
                f.write(content)
        return path

    def start(self, argv, stdin, stdout, trace=None):
        env = None
        if trace:
            argv = ['strace', '-f', '-qq', '-e', 'trace=splice', '-o', trace] + argv
            # LeakSanitizer cannot run under ptrace (a sanitizer build would fail at exit).
            env = dict(os.environ, ASAN_OPTIONS='detect_leaks=0')
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
        self.procs.append(proc)
        return proc

    def finish(self, proc, what):
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError('%s did not end within %gs' % (what, TIMEOUT)) from None
        err = proc.stderr.read().decode('utf-8', 'replace')
        self.assertEqual(proc.returncode, 0, '%s: %s' % (what, err))
        self.assertNotIn('Sanitizer', err)
        self.assertNotIn('runtime error', err)

    def session_with_files(self, up, down, trace=False, append=False):
        """connect's input `up` goes to listen's output and listen's input
        `down` to connect's output, every end a regular file; returns the
        two outputs and the strace logs (when traced)."""
        listen_out = self.path('listen.out', b'kept\n' if append else b'')
        connect_out = self.path('connect.out', b'')
        traces = (self.path('listen.trace'), self.path('connect.trace')) if trace else (None, None)
        with open(self.path('down.in', down), 'rb') as lin, \
                open(listen_out, 'ab' if append else 'wb') as lout, \
                open(self.path('up.in', up), 'rb') as cin, open(connect_out, 'wb') as cout:
            listener = self.start([FERRY, 'listen', '127.0.0.1', '0'], lin, lout, traces[0])
            port = listening_port(listener)
            connector = self.start([FERRY, 'connect', '127.0.0.1', str(port)], cin, cout,
                                   traces[1])
            self.finish(connector, 'ferry connect')
            self.finish(listener, 'ferry listen')
        with open(listen_out, 'rb') as f:
            got_up = f.read()
        with open(connect_out, 'rb') as f:
            got_down = f.read()
        return got_up, got_down, traces

    def test_files_both_ways(self):
        up, down = payload(3_000_007, 1), payload(2_000_003, 2)
        got_up, got_down, _ = self.session_with_files(up, down)
        self.assertEqual((len(got_up), sha(got_up)), (len(up), sha(up)))
        self.assertEqual((len(got_down), sha(got_down)), (len(down), sha(down)))

    def test_empty_files(self):
        got_up, got_down, _ = self.session_with_files(b'', b'')
        self.assertEqual((got_up, got_down), (b'', b''))

    def test_pipes_both_ways(self):
        up, down = payload(4_000_001, 3), payload(3_000_017, 4)
        listener = self.start([FERRY, 'listen', '127.0.0.1', '0'], subprocess.PIPE,
                              subprocess.PIPE)
        port = listening_port(listener)
        connector = self.start([FERRY, 'connect', '127.0.0.1', str(port)], subprocess.PIPE,
                               subprocess.PIPE)
        results = {}

        def feed(proc, data):
            try:
                proc.stdin.write(data)
            finally:
                proc.stdin.close()

        def drain(proc, key):
            results[key] = proc.stdout.read()

        threads = [threading.Thread(target=feed, args=(connector, up), daemon=True),
                   threading.Thread(target=feed, args=(listener, down), daemon=True),
                   threading.Thread(target=drain, args=(listener, 'up'), daemon=True),
                   threading.Thread(target=drain, args=(connector, 'down'), daemon=True)]
        for t in threads:
            t.start()
        self.finish(connector, 'ferry connect')
        self.finish(listener, 'ferry listen')
        for t in threads:
            t.join(TIMEOUT)
            self.assertFalse(t.is_alive())
        self.assertEqual((len(results['up']), sha(results['up'])), (len(up), sha(up)))
        self.assertEqual((len(results['down']), sha(results['down'])), (len(down), sha(down)))

    @unittest.skipUnless(shutil.which('strace'), 'strace is not installed')
    def test_splice_moves_the_bytes(self):
        up, down = payload(1_000_000, 5), payload(1_000_000, 6)
        got_up, got_down, traces = self.session_with_files(up, down, trace=True)
        self.assertEqual(sha(got_up), sha(up))
        self.assertEqual(sha(got_down), sha(down))
        for trace in traces:
            with open(trace) as f:
                calls = [line for line in f if 'splice(' in line]
            moved = sum(int(m.group(1)) for m in
                        (re.search(r'\) = (\d+)$', line.strip()) for line in calls) if m)
            # Each byte twice in each process: input -> pipe -> socket, socket -> pipe -> output.
            self.assertEqual(moved, 2 * (len(up) + len(down)), trace)

    def test_output_opened_for_appending_is_written(self):
        up, down = payload(1_500_000, 7), payload(10, 8)
        got_up, got_down, _ = self.session_with_files(up, down, append=True)
        self.assertEqual(sha(got_up), sha(b'kept\n' + up))
        self.assertEqual(got_down, down)


if __name__ == '__main__':
    unittest.main()
