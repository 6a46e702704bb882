"""The textbook renditions (tests/interop/textbook) against each other.

The interop tests pit ferry against these Python programs; here they are
proven on their own first, server against client, on loopback (port 0) and
between two network namespaces.  ferrytest's Proc itself is checked too.
"""

import re
import socket
import unittest

from ferrytest import (PY, Proc, TestCase, TwoHosts, parse_address, run,
                       server_address, server_port, textbook)

TIMESTAMP_RE = r'^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] %s$'
ADDR = r"\('127\.0\.0\.1', (\d+)\)"


class UdpLocal(TestCase):

    def test_client_and_server(self):
        server = self.spawn(textbook('udp_local.py', 'server', '-p', 0))
        host, port = server_address(server)
        self.assertEqual(host, '127.0.0.1')
        self.assertNotEqual(port, 0)

        client = run(textbook('udp_local.py', 'client', '-p', port,
                              '--timeout', 5))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, client.stdout)
        # An unconnected socket reports the wildcard address, as in the book.
        assigned = re.fullmatch(r"The OS assigned me the address "
                                r"\('0\.0\.0\.0', (\d+)\)", lines[0])
        self.assertTrue(assigned, lines[0])
        reply = re.fullmatch(r"The server \('127\.0\.0\.1', %d\) replied "
                             r"'Your data was (\d+) bytes long'" % port,
                             lines[1])
        self.assertTrue(reply, lines[1])

        said = server.expect(r"^The client at %s says '(The time is [^']+)'$"
                             % ADDR)
        self.assertEqual(said.group(1), assigned.group(1))
        self.assertEqual(int(reply.group(1)), len(said.group(2)))
        self.assertIsNone(server.returncode)   # a server keeps serving

    def test_client_times_out_without_server(self):
        # A bound socket that never answers: the rendition's --timeout
        # turns the textbook's endless wait into a failure.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(('127.0.0.1', 0))
            silent.settimeout(5)
            client = run(textbook('udp_local.py', 'client', '-p',
                                  silent.getsockname()[1], '--timeout', 0.3))
            self.assertTrue(silent.recv(65535).startswith(b'The time is '))
        self.assertNotEqual(client.returncode, 0)
        self.assertIn('timed out', client.stderr)


class UdpRemote(TestCase):

    def test_no_drops_answers_at_once(self):
        server = self.spawn(textbook('udp_remote.py', 'server', '127.0.0.1',
                                     '-p', 0, '--drop', 0))
        port = server_port(server)
        client = run(textbook('udp_remote.py', 'client', '127.0.0.1',
                              '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        self.assertRegex(lines[0], r'^Client socket name is ' + ADDR + '$')
        # Normally answered at once; a loaded machine may need a resend.
        self.assertEqual(lines[1], 'Waiting up to 0.1 seconds for a reply')
        self.assertEqual(lines[-1],
                         "The server says 'Your data was 23 bytes long'")
        server.expect(r"^The client at %s says 'This is another message'$"
                      % ADDR)

    def test_backoff_then_server_is_down(self):
        server = self.spawn(textbook('udp_remote.py', 'server', '127.0.0.1',
                                     '-p', 0, '--drop', 1))
        port = server_port(server)
        client = run(textbook('udp_remote.py', 'client', '127.0.0.1',
                              '-p', port), timeout=15)
        self.assertEqual(client.returncode, 1)
        self.assertEqual(client.stdout.splitlines()[1:], [
            'Waiting up to %s seconds for a reply' % d
            for d in (0.1, 0.2, 0.4, 0.8, 1.6)])
        self.assertIn('RuntimeError: I think the server is down',
                      client.stderr)
        for _ in range(5):
            server.expect(r'^Pretending to drop packet from ' + ADDR + '$')


class UdpBroadcast(TestCase):

    def test_loopback_broadcast(self):
        # 127.255.255.255 is the broadcast address of lo's 127.0.0.0/8:
        # a real broadcast that never leaves the machine.
        server = self.spawn(textbook('udp_broadcast.py', 'server', '', '-p', 0))
        first = server.expect(r'^Listening for datagrams at ')
        host, port = parse_address(first.string)
        self.assertEqual(host, '0.0.0.0')
        client = run(textbook('udp_broadcast.py', 'client',
                              '127.255.255.255', '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertEqual(client.stdout, '')
        server.expect(r"^The client at %s says: 'Broadcast datagram!'$"
                      % ADDR)


class BigSender(TestCase):

    def check_sent(self, size):
        server = self.spawn(textbook('big_sender.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        client = run(textbook('big_sender.py', 'client', '127.0.0.1',
                              '-p', port, '--size', size))
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertEqual(client.stdout, 'The big datagram was sent!\n')
        server.expect(r'^Received a datagram of %d bytes from %s$'
                      % (size, ADDR))

    def test_small_datagram_is_sent(self):
        self.check_sent(1000)

    def test_default_65000_fits_loopback_mtu(self):
        self.check_sent(65000)


class TcpSixteen(TestCase):

    def test_client_and_server(self):
        server = self.spawn(textbook('tcp_sixteen.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        server.expect(r'^Waiting to accept a new connection$')
        client = run(textbook('tcp_sixteen.py', 'client', '127.0.0.1',
                              '-p', port, '--timeout', 5))
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        named = re.fullmatch(r'Client has been assigned socket name ' + ADDR,
                             lines[0])
        self.assertTrue(named, client.stdout)
        self.assertEqual(lines[1:], ["The server said b'Farewell, client'"])

        cport = named.group(1)
        server.expect(r"^We have accepted a connection from \('127\.0\.0\.1',"
                      r" %s\)$" % cport)
        server.expect(r"^  Socket name: \('127\.0\.0\.1', %d\)$" % port)
        server.expect(r"^  Socket peer: \('127\.0\.0\.1', %s\)$" % cport)
        server.expect(r"^  Incoming sixteen-octet message: "
                      r"b'Hi there, server'$")
        server.expect(r'^  Reply sent, socket closed$')
        server.expect(r'^Waiting to accept a new connection$')

    def test_short_reply_is_reported(self):
        with socket.socket() as listener:
            listener.bind(('127.0.0.1', 0))
            listener.listen(1)
            listener.settimeout(10)
            with self.spawn(textbook('tcp_sixteen.py', 'client', '127.0.0.1',
                                     '-p', listener.getsockname()[1],
                                     '--timeout', 5)) as client:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(10)
                    got = b''
                    while len(got) < 16:
                        more = conn.recv(16 - len(got))
                        self.assertTrue(more, 'client closed early')
                        got += more
                    self.assertEqual(got, b'Hi there, server')
                    conn.sendall(b'Fare')
                self.assertEqual(client.wait(), 1)
                self.assertIn('EOFError: was expecting 16 bytes but only '
                              'received 4 bytes before the socket closed',
                              client.stderr_text())


class TcpDeadlock(TestCase):

    def exchange(self, bytecount, expected):
        server = self.spawn(textbook('tcp_deadlock.py', 'server', '127.0.0.1',
                                     '-p', 0))
        port = server_port(server)
        client = run(textbook('tcp_deadlock.py', 'client', '127.0.0.1',
                              bytecount, '-p', port, '--timeout', 10))
        self.assertEqual(client.returncode, 0, client.stderr)
        # The running counts follow '\r': split on both line endings.
        lines = [l.strip() for l in re.split(r'[\r\n]', client.stdout)]
        lines = [l for l in lines if l]
        self.assertEqual(lines[0], 'Sending %d bytes of data, in chunks of '
                         '16 bytes' % expected)
        self.assertIn('%d bytes sent' % expected, lines)
        self.assertIn('Receiving all the data the server sends back', lines)
        # recv(42) returns up to 42 bytes: whatever had arrived by then.
        first = [l for l in lines if l.startswith('The first data received')]
        self.assertEqual(len(first), 1, lines)
        got = re.fullmatch(r"The first data received says b'([^']+)'",
                           first[0])
        self.assertTrue(got, first[0])
        self.assertLessEqual(len(got.group(1)), 42)
        self.assertTrue(('CAPITALIZE THIS!' * 3).startswith(got.group(1)),
                        first[0])
        self.assertEqual(lines[-1], '%d bytes received' % expected)
        server.expect(r'^Processing up to 1024 bytes at a time from '
                      + ADDR + '$')
        server.expect(r'^  %d bytes processed so far $' % expected)
        server.expect(r'^  Socket closed$')

    def test_1600_bytes_complete(self):
        self.exchange(1600, 1600)

    def test_count_rounded_up_to_16(self):
        self.exchange(1601, 1616)


class Timestamp(TestCase):

    def check(self, udp):
        flag = ['--udp'] if udp else []
        server = self.spawn(textbook('timestamp.py', 'server', '127.0.0.1',
                                     '-p', 0, *flag))
        port = server_port(server)
        waiting = 'waiting for message...' if udp else \
            'waiting for connection...'
        server.expect('^%s$' % re.escape(waiting))
        client = run(textbook('timestamp.py', 'client', '127.0.0.1', '-p',
                              port, '--timeout', 5, *flag),
                     input='hello\nsecond line\n\nnot sent\n')
        self.assertEqual(client.returncode, 0, client.stderr)
        lines = client.stdout.splitlines()
        self.assertEqual(len(lines), 2, client.stdout)
        self.assertRegex(lines[0], TIMESTAMP_RE % 'hello')
        self.assertRegex(lines[1], TIMESTAMP_RE % 'second line')
        if udp:
            for _ in range(2):
                server.expect(r'^\.\.\.received from and returned to: '
                              + ADDR + '$')
                server.expect(r'^waiting for message\.\.\.$')
        else:
            server.expect(r'^\.\.\.connected from: ' + ADDR + '$')
            server.expect(r'^waiting for connection\.\.\.$')
        self.assertNotIn('not sent', server.output())

        # End of input ends the client as an empty line does.
        client = run(textbook('timestamp.py', 'client', '127.0.0.1', '-p',
                              port, '--timeout', 5, *flag), input='once\n')
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertRegex(client.stdout.rstrip('\n'), TIMESTAMP_RE % 'once')

    def test_tcp(self):
        self.check(udp=False)

    def test_udp(self):
        self.check(udp=True)


class BetweenNamespaces(TestCase):
    """The renditions across a real veth link with MTU 1400, which also
    proves ferrytest.TwoHosts."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = TwoHosts.for_class(cls, mtu=1400)

    def test_udp_remote_a_to_b(self):
        a, b = self.hosts.a, self.hosts.b
        server = self.spawn(textbook('udp_remote.py', 'server', a.ip, '-p', 0,
                                     '--drop', 0), netns=a.ns)
        host, port = server_address(server)
        self.assertEqual(host, a.ip)
        client = b.run(textbook('udp_remote.py', 'client', a.ip, '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertRegex(client.stdout, r"^Client socket name is \('%s', "
                         r"\d+\)\n" % re.escape(b.ip))
        self.assertIn("The server says 'Your data was 23 bytes long'",
                      client.stdout)
        server.expect(r"^The client at \('%s', \d+\) says 'This is another "
                      r"message'$" % re.escape(b.ip))

    def test_big_sender_learns_the_mtu(self):
        a, b = self.hosts.a, self.hosts.b
        server = self.spawn(textbook('big_sender.py', 'server', a.ip, '-p', 0),
                            netns=a.ns)
        port = server_port(server)
        too_big = b.run(textbook('big_sender.py', 'client', a.ip, '-p', port,
                                 '--size', 2000))
        self.assertEqual(too_big.returncode, 0, too_big.stderr)
        self.assertEqual(too_big.stdout.splitlines(), [
            'Alas, the datagram did not make it', 'Actual MTU: 1400'])
        fits = b.run(textbook('big_sender.py', 'client', a.ip, '-p', port,
                              '--size', 1000))
        self.assertEqual(fits.stdout, 'The big datagram was sent!\n',
                         fits.stderr)
        got = server.expect(r'^Received a datagram of (\d+) bytes from '
                            r"\('%s', \d+\)$" % re.escape(b.ip))
        self.assertEqual(got.group(1), '1000')   # the 2000 never left b

    def test_subnet_broadcast(self):
        a, b = self.hosts.a, self.hosts.b
        server = self.spawn(textbook('udp_broadcast.py', 'server', '', '-p',
                                     0), netns=a.ns)
        port = server_port(server)
        client = b.run(textbook('udp_broadcast.py', 'client',
                                self.hosts.broadcast, '-p', port))
        self.assertEqual(client.returncode, 0, client.stderr)
        server.expect(r"^The client at \('%s', \d+\) says: 'Broadcast "
                      r"datagram!'$" % re.escape(b.ip))

    def test_namespaces_are_removed(self):
        with TwoHosts(mtu=1300) as extra:
            names = run(['ip', 'netns', 'list']).stdout
            self.assertIn(extra.ns_a, names)
            self.assertIn(extra.ns_b, names)
            out = extra.b.run(textbook('big_sender.py', 'client', extra.ip_a,
                                       '-p', 9, '--size', 1500)).stdout
            self.assertIn('Actual MTU: 1300', out)
        names = run(['ip', 'netns', 'list']).stdout
        self.assertNotIn(extra.ns_a, names)
        self.assertNotIn(extra.ns_b, names)


class Harness(TestCase):
    """ferrytest.Proc fails fast and loudly instead of hanging."""

    def test_expect_times_out_with_output(self):
        with Proc([PY, '-c', 'import sys; print("first", flush=True); '
                   'sys.stdin.read()']) as proc:
            proc.expect('^first$')
            with self.assertRaises(AssertionError) as caught:
                proc.expect('never printed', timeout=0.3)
            self.assertIn('never printed', str(caught.exception))
            self.assertIn('first', str(caught.exception))
            self.assertIn('still running', str(caught.exception))
            proc.close_stdin()
            self.assertEqual(proc.wait(), 0)

    def test_expect_fails_at_end_of_output(self):
        with Proc([PY, '-c', 'print("only line")']) as proc:
            with self.assertRaises(AssertionError) as caught:
                proc.expect('other', timeout=30)
            self.assertIn('stdout ended', str(caught.exception))
            self.assertEqual(proc.output(), 'only line\n')

    def test_expect_reads_stderr_apart(self):
        with Proc([PY, '-c', 'import sys; print("out"); print("err", file=sys.stderr); '
                   'sys.stderr.flush(); sys.stdin.read()']) as proc:
            self.assertEqual(proc.expect('^e', stderr=True).string, 'err')
            with self.assertRaises(AssertionError) as caught:
                proc.expect('^e', timeout=0.3)      # not on stdout
            self.assertIn('no line matching', str(caught.exception))
            proc.close_stdin()
            self.assertEqual(proc.wait(), 0)

    def test_wait_kills_and_fails(self):
        proc = self.spawn([PY, '-c', 'import sys; sys.stdin.read()'])
        with self.assertRaises(AssertionError):
            proc.wait(timeout=0.3)
        self.assertEqual(proc.returncode, -9)

    def test_stop_sends_sigterm(self):
        proc = self.spawn(textbook('udp_local.py', 'server', '-p', 0))
        server_port(proc)
        self.assertEqual(proc.stop(), -15)

    def test_run_times_out(self):
        with self.assertRaises(AssertionError) as caught:
            run([PY, '-c', 'import select; print("partial", flush=True); '
                 'select.select([], [], [])'], timeout=0.5)
        self.assertIn('partial', str(caught.exception))

    def test_parse_address_forms(self):
        self.assertEqual(parse_address('Listening at 127.0.0.1:1060'),
                         ('127.0.0.1', 1060))
        self.assertEqual(parse_address('Listening at [::1]:1060'),
                         ('::1', 1060))
        self.assertEqual(parse_address("Listening at ('0.0.0.0', 21567)"),
                         ('0.0.0.0', 21567))
        self.assertEqual(parse_address("Listening at ('::1', 5, 0, 0)"),
                         ('::1', 5))
        self.assertEqual(parse_address('Listening at localhost:http'), None)


if __name__ == '__main__':
    unittest.main()
