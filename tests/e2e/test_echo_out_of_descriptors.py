"""Out of descriptors, every concurrent model of `ferry echo server` keeps going.

Each server runs with a descriptor limit of 64 (`ulimit -n`).  Clients fill
its table, then 300 more connection attempts arrive while it is full: each
one is closed by the server (the client sees end of stream rather than a
hang), the server does not spin (its CPU time, read from /proc, stays a
small fraction of the wall time), it says so on stderr at most once a second
with the count, and it serves again once the clients leave.
"""

import math
import os
import re
import socket
import time
import unittest

import ferrytest
from echo_support import CONCURRENT, TIMEOUT, recv_exactly

HOST = '127.0.0.1'
LIMIT = 64
ATTEMPTS = 300
BATCH = 10
MAX_HELD = 200          # bound on the clients that fill the table
CPU_SHARE = 0.20        # of one core, while the table is full
REFUSED_RE = re.compile(
    r'^ferry: out of descriptors: (\d+) connections? refused in the last second', re.M)


def cpu_seconds(pid):
    """utime + stime of a process, all its threads, from /proc/PID/stat."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def closed_by_server(sock, timeout=TIMEOUT):
    """True when the server ends the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b''
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def served(sock):
    """True when the server echoes; False when it closes the connection instead."""
    try:
        sock.sendall(b'x')
        return sock.recv(1) == b'x'
    except ConnectionResetError:
        return False


def wait_until(condition, what, timeout=TIMEOUT):
    """Polls another process's state (it sends no notification) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('%s not reached within %gs' % (what, timeout))
        time.sleep(0.02)


class OutOfDescriptors:
    MODEL = None

    def refused_lines(self, proc):
        return [int(n) for n in REFUSED_RE.findall(proc.stderr_text())]

    def test_survives_a_full_table_without_spinning_and_serves_again(self):
        # The pool gets a thread for every client it can hold, so that each is echoed.
        threads = ['--threads', LIMIT] if self.MODEL == 'pool' else []
        argv = ferrytest.ferry('echo', 'server', HOST, '-p', '0', '--model', self.MODEL,
                               *threads)
        proc = self.spawn(['sh', '-c', 'ulimit -n %d && exec "$0" "$@"' % LIMIT] + argv)
        port = ferrytest.server_port(proc, timeout=TIMEOUT)
        start = time.monotonic()

        # Fill the table: clients one by one, until the server closes one.
        held = []
        try:
            while len(held) < MAX_HELD:
                sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
                if not served(sock):
                    sock.close()
                    break
                held.append(sock)
            self.assertLess(len(held), MAX_HELD, 'the server never ran out of descriptors')
            self.assertGreater(len(held), 10)

            # 300 attempts while it is full, in batches: every one is closed.
            cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
            closed = 0
            for _ in range(ATTEMPTS // BATCH):
                batch = [socket.create_connection((HOST, port), timeout=TIMEOUT)
                         for _ in range(BATCH)]
                closed += sum(closed_by_server(s) for s in batch)
                for s in batch:
                    s.close()
            cpu = cpu_seconds(proc.pid) - cpu_before
            wall = time.monotonic() - wall_before
            self.assertEqual(closed, ATTEMPTS)
            self.assertLess(cpu, CPU_SHARE * wall,
                            'the server used %.2f s of CPU in %.2f s while full' % (cpu, wall))
            for sock in held:  # still served
                self.assertTrue(served(sock))
        finally:
            for sock in held:
                sock.close()

        # Room again: a new client is served.
        with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
            sock.settimeout(TIMEOUT)
            sock.sendall(b'again')
            self.assertEqual(recv_exactly(sock, 5), b'again')

        # The refusals, counted: 1 while filling, then the 300; at most one
        # line a second (the first at once).
        wait_until(lambda: sum(self.refused_lines(proc)) == ATTEMPTS + 1,
                   'every refusal reported (%s)' % self.refused_lines(proc))
        elapsed = time.monotonic() - start
        self.assertLessEqual(len(self.refused_lines(proc)), 1 + math.ceil(elapsed))
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'\b%d shed out of descriptors\b' % (ATTEMPTS + 1))
        self.assertNotRegex(proc.stderr_text(), r'Sanitizer|runtime error')


# The fork model's parent hands each connection to a child and keeps no
# descriptor of it: its own table never fills.
for _model in CONCURRENT:
    if _model == 'fork':
        continue
    _name = 'OutOfDescriptors_%s' % _model
    globals()[_name] = type(_name, (OutOfDescriptors, ferrytest.TestCase), {'MODEL': _model})


if __name__ == '__main__':
    unittest.main()
