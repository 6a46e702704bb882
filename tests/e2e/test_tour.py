"""ferry tour: every classic program's server and client over loopback, one
after another (the job `make demo` runs)."""

import re
import time
import unittest

from classicutil import ClassicTest
from ferrytest import ferry, run

# Each section's title, and lines (regexes) its transcript must hold.
SECTIONS = [
    ('udp-local: one datagram and its answer', [
        r'^  server\| Listening at 127\.0\.0\.1:\d+$',
        r'^  client\| The OS assigned me the address 0\.0\.0\.0:\d+$',
        r"^  client\| The server 127\.0\.0\.1:\d+ replied 'Your data was \d+ "
        r"bytes long'$",
        r"^  server\| The client at 127\.0\.0\.1:\d+ says 'The time is ",
    ]),
    ('udp-remote: a server that drops half the datagrams, a client that '
     'backs off', [
        r'^  client\| Waiting up to 0\.1 seconds for a reply$',
        r"^  client\| The server says 'Your data was 23 bytes long'$",
        r"^  server\| The client at 127\.0\.0\.1:\d+ says 'This is another "
        r"message'$",
    ]),
    ('udp-broadcast: a datagram to the whole loopback network', [
        r"^  client\| Sent 'Broadcast datagram!' to 127\.255\.255\.255:\d+$",
        r"^  server\| The client at 127\.0\.0\.1:\d+ says: 'Broadcast "
        r"datagram!'$",
    ]),
    ('big-sender: 65000 bytes in one datagram, fragmentation forbidden', [
        r'^  client\| The big datagram was sent!$',
        r'^  server\| Received a datagram of 65000 bytes from ',
    ]),
    ('tcp-sixteen: exactly sixteen octets each way', [
        r"^  client\| The server said b'Farewell, client'$",
        r"^  server\|   Incoming sixteen-octet message: b'Hi there, server'$",
        r'^  server\|   Reply sent, socket closed$',
    ]),
    ('tcp-deadlock: a small count completes', [
        r'^  client\|   1600 bytes received$',
        r'^  server\|   1600 bytes processed so far$',
    ]),
    ('tcp-deadlock: 1 GB deadlocks, and --stall-timeout says so', [
        r'^  client\| ferry: stalled for 1\.0 s: sent \d+ of 1073741824 '
        r'bytes',
        r'^  client exit status 1$',
    ]),
    ('tcp-deadlock: 1 GB with --no-deadlock completes', [
        r'^  client\|   1073741824 bytes sent$',
        r'^  client\|   1073741824 bytes received$',
        r'^  server\|   1073741824 bytes processed so far$',
    ]),
    ('timestamp over TCP', [
        r'^  client\| \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] hello$',
        r'^  client\| \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] world$',
        r'^  server\| \.\.\.connected from: 127\.0\.0\.1:\d+$',
    ]),
    ('timestamp over UDP', [
        r'^  client\| \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] hello$',
        r'^  client\| \[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] world$',
        r'^  server\| \.\.\.received from and returned to: 127\.0\.0\.1:\d+$',
    ]),
    ('ping: three ICMP echoes to 127.0.0.1', [
        r'^  client\| 64 bytes from 127\.0\.0\.1: icmp_seq=3 ttl=\d+ time=[\d.]+ ms$',
        r'^  client\| 3 packets transmitted, 3 received, 0% packet loss, time \d+ms$',
    ]),
    ('multicast: a group joined on the loopback interface', [
        r'^  server\| Listening at 239\.255\.0\.1:\d+$',
        r"^  client\| Sent 'Multicast datagram!' to 239\.255\.0\.1:\d+$",
        r"^  server\| The client at 127\.0\.0\.1:\d+ says 'Multicast datagram!'$",
    ]),
    ('echo over a Unix SOCK_SEQPACKET socket: 100 messages of 64 KiB, '
     'boundaries kept', [
        r'^  server\| Listening at /\S+/echo\.sock \(model epoll, seqpacket',
        r'^  client\| Echoed 100 of 100 messages correctly \(65536 bytes each, '
        r'one message each way, seqpacket\)$',
    ]),
]

# Sections with a client alone (no server), and those whose server has a path, not a port.
CLIENT_ONLY = {'ping: three ICMP echoes to 127.0.0.1'}
NO_PORT = {title for title, _ in SECTIONS if 'SOCK_SEQPACKET' in title}


class Tour(ClassicTest):

    def test_runs_every_program(self):
        # It moves 1 GB through the tcp-deadlock server in 1024-byte chunks:
        # about half a minute with ASan on a loaded 2-core machine, over a
        # minute while a second copy of the suite runs (it once hit the
        # tour's own 60 s bound on one step, now 240 s: a backstop, not a
        # measure). Bounded below ctest's 300 s.
        start = time.monotonic()
        tour = run(ferry('tour'), timeout=290)
        elapsed = time.monotonic() - start
        self.assertEqual(tour.returncode, 0,
                         'stdout:\n%s\nstderr:\n%s' % (tour.stdout,
                                                        tour.stderr))
        self.assertEqual(tour.stderr, '')
        # The sections, in order, and nothing else.
        titles = re.findall(r'^=== (.*) ===$', tour.stdout, re.M)
        self.assertEqual(titles, [title for title, _ in SECTIONS])
        sections = re.split(r'^=== .* ===$', tour.stdout, flags=re.M)[1:]
        for (title, needed), text in zip(SECTIONS, sections):
            with self.subTest(section=title):
                for regex in needed:
                    self.assertRegex(text, re.compile(regex, re.M))
                # Every server started on a kernel-chosen port (or a
                # path) and ended cleanly on SIGTERM.
                if title not in CLIENT_ONLY:
                    self.assertRegex(text, re.compile(
                        r'^\$ ferry .* &$' if title in NO_PORT
                        else r'^\$ ferry .* -p 0 &$', re.M))
                    self.assertRegex(text, re.compile(
                        r'^  server stopped by SIGTERM, exit status 0$', re.M))
                expected = 1 if 'stall-timeout' in title else 0
                self.assertRegex(text, re.compile(
                    r'^  client exit status %d$' % expected, re.M))
        print(' [tour: %.1f s]' % elapsed, end=' ', flush=True)


if __name__ == '__main__':
    unittest.main()
