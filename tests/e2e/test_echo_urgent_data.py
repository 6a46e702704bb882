"""Urgent (out-of-band) TCP data never makes an event-loop echo server spin.

No server model watches for urgent data (select's exceptional set, POLLPRI):
it is not an error, and not part of the stream either (without SO_OOBINLINE
the kernel takes the urgent byte out of it). The case that once made the
select model spin: an urgent byte arriving while the server has stopped
reading from that client because its replies are backed up. The server's CPU
time is measured from /proc over a quiet interval, then the client reads
every echo and is still served.
"""

import fcntl
import os
import select
import socket
import struct
import termios
import time
import unittest

import ferrytest
from echo_support import TIMEOUT, recv_exactly, start_server

CHUNK = 64 * 1024
# A bound on what the client pushes while waiting for the server to pause.
PUSH_LIMIT = 64 << 20
# The quiet interval over which the server's CPU time is measured, and the
# share of it an idle server may use: a spinning one takes a whole core
# (about half of it on a loaded two-core machine), an idle one nearly nothing.
WINDOW = 1.5
IDLE_SHARE = 0.1
# How long the server must leave what we sent unread before it counts as paused.
SETTLE = 0.3


def cpu_seconds(pid):
    """User + system CPU time of a process and its children (the fork model), in seconds."""
    pids = [pid]
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    ticks = 0
    for p in pids:
        try:
            with open('/proc/%d/stat' % p) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return ticks / os.sysconf('SC_CLK_TCK')


def unread_by_server(server_port, client_port):
    """Bytes waiting in the server-side socket's receive queue (/proc/net/tcp), or 0."""
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(':')[1], 16) == server_port and
                    int(remote.split(':')[1], 16) == client_port):
                return int(fields[4].split(':')[1], 16)
    return 0


def stays_unread(server_port, client_port, unread, interval):
    """Whether the server-side receive queue keeps at least `unread` bytes
    throughout `interval` seconds (looked at every 10 ms): the server is not
    reading. False as soon as it reads."""
    end = time.monotonic() + interval
    while time.monotonic() < end:
        if unread_by_server(server_port, client_port) < unread:
            return False
        select.select([], [], [], 0.01)
    return True


def unsent_by_client(sock):
    """Bytes our socket holds that the server's side has not acknowledged (SIOCOUTQ)."""
    return struct.unpack('i', fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b'\0' * 4))[0]


def push_until_paused(sock, server_port, client_port, deadline):
    """Sends chunks without reading until the server stops reading from this
    client: its replies have filled our receive buffer, its send buffer and
    its queue. What we send then stays in the server's receive queue until
    that is full, and after it in our own send queue. How much the server's
    queue holds depends on how the kernel sized it (less on a loaded
    machine), so either sign counts: two chunks unread on its side, or two
    chunks unacknowledged on ours. The caller checks that it stays so.
    Returns the bytes sent."""
    sent = 0
    while sent < PUSH_LIMIT and time.monotonic() < deadline:
        if (unread_by_server(server_port, client_port) >= 2 * CHUNK or
                unsent_by_client(sock) >= 2 * CHUNK):
            return sent
        try:
            sent += sock.send(b'q' * CHUNK)
        except BlockingIOError:
            select.select([], [sock], [], 0.1)
    raise AssertionError('the server never stopped reading (%d bytes sent)' % sent)


class UrgentData:
    MODEL = None

    def test_an_urgent_byte_while_reading_is_paused_costs_no_cpu_and_serving_goes_on(self):
        proc, port = start_server(self, self.MODEL, '--high-water', '1',
                                  '--stalled-timeout', '120')
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # replies back up soon
        # A fixed send buffer with room for two chunks past the point the client
        # stops pushing, so that it can still send the urgent byte.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * CHUNK)
        s.settimeout(TIMEOUT)
        s.connect(('127.0.0.1', port))
        with s:
            client_port = s.getsockname()[1]
            s.setblocking(False)
            deadline = time.monotonic() + 4 * TIMEOUT
            sent = 0
            measured = None
            while measured is None:
                sent += push_until_paused(s, port, client_port, deadline)
                select.select([], [s], [], TIMEOUT)
                self.assertEqual(s.send(b'!', socket.MSG_OOB), 1)
                # The kernel may grow the server's send buffer (up to
                # tcp_wmem's maximum) and so let it read again, through the
                # urgent mark. Only an interval the server stays paused in
                # all along, the urgent byte pending, tells anything: when it
                # reads again, push further and send another.
                unread = unread_by_server(port, client_port)
                if unread == 0 or not stays_unread(port, client_port, unread, SETTLE):
                    continue
                before = cpu_seconds(proc.pid)
                started = time.monotonic()
                time.sleep(WINDOW)  # the measurement interval, not a wait for an event
                used = cpu_seconds(proc.pid) - before
                elapsed = time.monotonic() - started
                if unread_by_server(port, client_port) >= unread:
                    measured = (used, elapsed)
            used, elapsed = measured
            self.assertLess(used, IDLE_SHARE * elapsed,
                            'the %s server used %.2f s of CPU in %.2f s with an urgent byte '
                            'pending' % (self.MODEL, used, elapsed))

            # Still serving: every echo, then more. An urgent byte is not in
            # the stream, unless a later one superseded it before the server
            # read it (TCP keeps one urgent mark): then it is an ordinary byte.
            s.setblocking(True)
            s.settimeout(TIMEOUT)
            echoed = b''
            while echoed.count(b'q') < sent:
                chunk = s.recv(1 << 20)
                self.assertTrue(chunk, 'the server closed the connection')
                echoed += chunk
            self.assertEqual(echoed.replace(b'!', b''), b'q' * sent)
            s.sendall(b'after')
            self.assertEqual(recv_exactly(s, 5), b'after')
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)


# The event-loop models, one per Poller backend: select is the one that
# watched for urgent data (as an error) and spun.
for _model in ['select', 'poll', 'epoll']:
    _name = 'UrgentData_%s' % _model
    globals()[_name] = type(_name, (UrgentData, ferrytest.TestCase), {'MODEL': _model})


if __name__ == '__main__':
    unittest.main()
