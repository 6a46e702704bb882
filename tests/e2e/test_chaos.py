"""ferry chaos: each misbehaving server, seen from a client.

For every server a client sees exactly the misbehaviour named, and the
server then serves the next client the same way.  Every server runs on a
port the kernel picks (``-p 0`` or ``--base-port 0``) on 127.0.0.1, and is
stopped with SIGTERM at the end of its test: it must exit 0 with nothing on
stderr from the sanitizers (leaks, use after free).
"""

import http.client
import json
import math
import os
import re
import signal
import socket
import time
import unittest

from ferrytest import FERRY, Proc, TestCase, ferry, run, server_port

HOST = '127.0.0.1'
NAMES = ['reset', 'silent', 'drip', 'garbage', 'close', 'half', 'http-html',
         'http-json', 'http-nobody', 'http-slow', 'udp-silent', 'udp-late',
         'udp-dup', 'udp-garbage', 'udp-wrong-source']
STARTUP_RE = r'^(?P<port>\d+) (?P<name>[a-z-]+) +(?P<what>\S.*)$'
TIMEOUT = 5.0          # any wait that should succeed
SHORT = 0.3            # a wait that should time out
HALF_LINE = (b'ferry chaos half: that is all you get; I shut down my sending '
             b'side but still read\n')
DRIP_TEXT = b'ferry chaos drip\n'
SANITIZER_RE = re.compile(r'Sanitizer|runtime error:')
OUT_OF_DESCRIPTORS_RE = re.compile(
    r'silent: out of descriptors: (\d+) connections? refused in the last second')


# -- helpers ------------------------------------------------------------------

def tcp(port, timeout=TIMEOUT):
    return socket.create_connection((HOST, port), timeout=timeout)


def udp(timeout=TIMEOUT):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(timeout)
    return sock


def recv_until_eof(sock, limit=1 << 20):
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise AssertionError('more than %d bytes and no end' % limit)


def recv_head(sock):
    """An HTTP response head (through the empty line) and what came after it."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError('end of stream inside the head: %r' % data)
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    return head.decode('latin-1'), rest


def parse_head(head):
    lines = head.split('\r\n')
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def still_open(sock):
    """True when nothing has arrived: the peer has neither sent, closed nor
    reset (a peek that does not wait)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for %d' % pid)


def wait_until(condition, timeout=TIMEOUT, what='condition'):
    """Polls ``condition`` (a state of another process, which sends no
    notification) until it holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('%s not reached within %gs' % (what, timeout))
        time.sleep(0.01)


class ChaosCase(TestCase):

    def chaos(self, name, *options):
        """``ferry chaos NAME -p 0``: the process and its port, once both
        startup lines are out."""
        proc = self.spawn(ferry('chaos', name, '-p', 0, *options))
        port = server_port(proc)
        line = proc.expect(STARTUP_RE)
        self.assertEqual(line.group('name'), name)
        self.assertEqual(int(line.group('port')), port)
        return proc, port

    def chaos_all(self, *options):
        """``ferry chaos --base-port 0``: the process and {name: (port, what)}."""
        proc = self.spawn(ferry('chaos', '--base-port', 0, *options))
        servers = {}
        for _ in NAMES:
            line = proc.expect(STARTUP_RE)
            servers[line.group('name')] = (int(line.group('port')),
                                           line.group('what'))
        self.assertEqual(list(servers), NAMES)
        return proc, servers

    def assertStopsCleanly(self, proc, sig=signal.SIGTERM):
        self.assertIsNone(proc.returncode, proc.describe())  # it kept serving
        self.assertEqual(proc.stop(sig=sig), 0, proc.describe())
        self.assertNotRegex(proc.stderr_text(), SANITIZER_RE)


# -- TCP ----------------------------------------------------------------------

class Tcp(ChaosCase):

    def test_reset_makes_recv_raise_connection_reset(self):
        proc, port = self.chaos('reset')
        for _ in range(2):
            # The server resets as soon as it accepts. The RST may reach the
            # client before its connect() call has returned (a loaded machine
            # deschedules it between the handshake and the return), and then
            # connect() itself reports the reset: either way the client sees
            # exactly a reset, never data and never an orderly end.
            with self.assertRaises(ConnectionResetError):
                with tcp(port) as sock:
                    sock.recv(100)
        self.assertStopsCleanly(proc)

    def test_silent_reads_everything_and_never_answers(self):
        proc, port = self.chaos('silent')
        for _ in range(2):
            with tcp(port) as sock:
                # 8 MiB is more than the socket buffers hold: it only all
                # goes if the server reads.
                sock.sendall(b'x' * (8 << 20))
                sock.settimeout(SHORT)
                with self.assertRaises(socket.timeout):
                    sock.recv(100)
                self.assertTrue(still_open(sock))
                sock.sendall(b'still there?\n')
        self.assertStopsCleanly(proc)

    def test_silent_closes_when_the_client_ends_its_stream(self):
        # It would never send again, and a half-close looks like a close.
        proc, port = self.chaos('silent')
        with tcp(port) as sock:
            sock.sendall(b'request\n')
            sock.shutdown(socket.SHUT_WR)
            self.assertEqual(sock.recv(100), b'')
        self.assertStopsCleanly(proc)

    def test_drip_goes_on_after_the_client_half_closes(self):
        proc, port = self.chaos('drip', '--delay', 10)
        with tcp(port) as sock:
            sock.shutdown(socket.SHUT_WR)
            received = b''
            while len(received) < len(DRIP_TEXT) + 1:
                chunk = sock.recv(100)
                self.assertNotEqual(chunk, b'')
                received += chunk
            # A reader held off the CPU gets several bytes in one read: the
            # text, then again from its start, as far as it has come.
            self.assertEqual(received, (DRIP_TEXT * 2)[:len(received)])
        self.assertStopsCleanly(proc)

    def test_drip_sends_one_byte_per_delay(self):
        delay = 0.06
        proc, port = self.chaos('drip', '--delay', int(delay * 1000))
        self.assertIn('one byte every 60 ms', proc.lines()[-1])
        for _ in range(2):
            # The k-th byte leaves the server (k - 1) delays after the first,
            # which leaves after the connection is made, and arrives no sooner:
            # by then at most 1 + elapsed / delay bytes can have come, however
            # late this reader looks (a late reader only sees fewer, bigger reads).
            start = time.monotonic()
            with tcp(port) as sock:
                received = b''
                while len(received) < 6:
                    chunk = sock.recv(100)
                    self.assertNotEqual(chunk, b'')
                    received += chunk
                    elapsed = time.monotonic() - start
                    self.assertLessEqual(len(received), 1 + elapsed / (delay * 0.9),
                                         '%d bytes after %.3f s' % (len(received), elapsed))
                self.assertEqual(received, DRIP_TEXT[:len(received)])
        self.assertStopsCleanly(proc)

    def test_garbage_with_bytes_sends_exactly_that_many_then_eof(self):
        proc, port = self.chaos('garbage', '--bytes', 1000, '--seed', 7)
        self.assertIn('sends 1000 random bytes, then end of stream',
                      proc.lines()[-1])
        first = []
        for _ in range(2):
            with tcp(port) as sock:
                data = recv_until_eof(sock)
                self.assertEqual(len(data), 1000)
                self.assertGreater(len(set(data)), 200)   # not a constant
                first.append(data)
        self.assertNotEqual(first[0], first[1])   # a stream per connection
        self.assertStopsCleanly(proc)
        # The same seed gives the same bytes again.
        again, port = self.chaos('garbage', '--bytes', 1000, '--seed', 7)
        with tcp(port) as sock:
            self.assertEqual(recv_until_eof(sock), first[0])
        self.assertStopsCleanly(again)

    def test_garbage_endless_waits_for_a_slow_reader(self):
        proc, port = self.chaos('garbage')
        with tcp(port) as sock:
            self.assertEqual(len(sock.recv(1)), 1)
            # The client stops reading. A server that ignored backpressure
            # would queue without bound (memory) or spin on a full socket
            # (CPU); one that waits for writability does neither.
            rss, cpu = rss_kib(proc.pid), cpu_seconds(proc.pid)
            window = time.monotonic() + 1.0
            while time.monotonic() < window:
                self.assertLess(rss_kib(proc.pid) - rss, 64 << 10)
                time.sleep(0.05)
            self.assertLess(cpu_seconds(proc.pid) - cpu, 0.5)
            # Reading again, it flows again.
            got = 0
            while got < (4 << 20):
                chunk = sock.recv(65536)
                self.assertNotEqual(chunk, b'')
                got += len(chunk)
        with tcp(port) as sock:
            self.assertEqual(len(sock.recv(1)), 1)   # the next client too
        self.assertStopsCleanly(proc)

    def test_close_gives_eof_at_once(self):
        proc, port = self.chaos('close')
        for _ in range(2):
            with tcp(port) as sock:
                self.assertEqual(sock.recv(100), b'')
        self.assertStopsCleanly(proc)

    def test_half_answers_then_eof_while_still_reading(self):
        proc, port = self.chaos('half')
        for _ in range(2):
            with tcp(port) as sock:
                self.assertEqual(recv_until_eof(sock), HALF_LINE)
                # Its reading side is open: more than the buffers hold goes.
                sock.sendall(b'y' * (8 << 20))
                sock.sendall(b'and more\n')
        self.assertStopsCleanly(proc)


# -- HTTP ---------------------------------------------------------------------

class Http(ChaosCase):

    def get(self, port, method='GET'):
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        try:
            conn.request(method, '/chaos')
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()

    def test_http_html_is_a_well_formed_response(self):
        proc, port = self.chaos('http-html')
        for _ in range(2):
            response, body = self.get(port)
            self.assertEqual(response.status, 200)
            self.assertEqual(response.version, 11)
            self.assertEqual(response.getheader('Content-Type'),
                             'text/html; charset=utf-8')
            self.assertEqual(int(response.getheader('Content-Length')),
                             len(body))
            self.assertTrue(body.startswith(b'<!DOCTYPE html>'), body)
            self.assertIn(b'</html>', body)
        # HEAD: the same head, no body.
        with tcp(port) as sock:
            sock.sendall(b'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n')
            head, rest = recv_head(sock)
            status, fields = parse_head(head)
            self.assertEqual(status, 'HTTP/1.1 200 OK')
            self.assertGreater(int(fields['content-length']), 0)
            self.assertEqual(rest + recv_until_eof(sock), b'')
        self.assertStopsCleanly(proc)

    def test_http_json_is_a_well_formed_response(self):
        proc, port = self.chaos('http-json')
        for _ in range(2):
            response, body = self.get(port)
            self.assertEqual(response.status, 200)
            self.assertEqual(response.getheader('Content-Type'),
                             'application/json')
            self.assertEqual(int(response.getheader('Content-Length')),
                             len(body))
            self.assertEqual(json.loads(body)['server'], 'ferry chaos')
        self.assertStopsCleanly(proc)

    def test_http_answers_a_client_that_sends_no_request(self):
        proc, port = self.chaos('http-json')
        with tcp(port) as sock:
            head, rest = recv_head(sock)
            status, fields = parse_head(head)
            self.assertEqual(status, 'HTTP/1.1 200 OK')
            body = rest + recv_until_eof(sock)
            self.assertEqual(int(fields['content-length']), len(body))
        self.assertStopsCleanly(proc)

    def test_http_answers_a_client_that_half_closes(self):
        proc, port = self.chaos('http-slow', '--delay', 1)
        with tcp(port) as sock:
            sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            sock.shutdown(socket.SHUT_WR)
            head, rest = recv_head(sock)
            self.assertEqual(parse_head(head)[0], 'HTTP/1.1 200 OK')
            body = rest + recv_until_eof(sock)
            self.assertEqual(int(parse_head(head)[1]['content-length']),
                             len(body))
        self.assertStopsCleanly(proc)

    def test_http_nobody_announces_a_body_that_never_comes(self):
        proc, port = self.chaos('http-nobody')
        for _ in range(2):
            with tcp(port) as sock:
                sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
                head, rest = recv_head(sock)
                status, fields = parse_head(head)
                self.assertEqual(status, 'HTTP/1.1 200 OK')
                self.assertGreater(int(fields['content-length']), 0)
                self.assertEqual(rest, b'')
                sock.settimeout(SHORT)
                with self.assertRaises(socket.timeout):
                    sock.recv(100)
                self.assertTrue(still_open(sock))
        self.assertStopsCleanly(proc)

    def test_http_slow_sends_a_complete_response_slowly(self):
        delay = 0.02
        proc, port = self.chaos('http-slow', '--delay', int(delay * 1000))
        for _ in range(2):
            with tcp(port) as sock:
                start = time.monotonic()
                sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
                data, reads = b'', 0
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    self.assertLessEqual(len(chunk), 16 * 2)
                    data += chunk
                    reads += 1
                elapsed = time.monotonic() - start
                head, _, body = data.partition(b'\r\n\r\n')
                status, fields = parse_head(head.decode('latin-1'))
                self.assertEqual(status, 'HTTP/1.1 200 OK')
                self.assertEqual(int(fields['content-length']), len(body))
                self.assertIn(b'</html>', body)
                chunks = math.ceil(len(data) / 16)
                self.assertGreater(reads, chunks // 2)
                self.assertGreaterEqual(elapsed, (chunks - 1) * delay * 0.5)
        self.assertStopsCleanly(proc)


# -- UDP ----------------------------------------------------------------------

class Udp(ChaosCase):

    def test_udp_silent_never_answers(self):
        proc, port = self.chaos('udp-silent')
        with udp(SHORT) as sock:
            for i in range(2):
                sock.sendto(b'anyone? %d' % i, (HOST, port))
                with self.assertRaises(socket.timeout):
                    sock.recvfrom(65535)
        self.assertStopsCleanly(proc)

    def test_udp_late_echoes_after_the_delay(self):
        late = 0.3
        proc, port = self.chaos('udp-late', '--late-ms', int(late * 1000))
        with udp() as sock:
            for i in range(2):
                start = time.monotonic()
                sock.sendto(b'late %d' % i, (HOST, port))
                data, source = sock.recvfrom(65535)
                self.assertGreaterEqual(time.monotonic() - start, late * 0.8)
                self.assertEqual(data, b'late %d' % i)
                self.assertEqual(source, (HOST, port))
            # Two at once come back in order.
            sock.sendto(b'first', (HOST, port))
            sock.sendto(b'second', (HOST, port))
            self.assertEqual(sock.recv(65535), b'first')
            self.assertEqual(sock.recv(65535), b'second')
        self.assertStopsCleanly(proc)

    def test_udp_dup_echoes_twice(self):
        proc, port = self.chaos('udp-dup')
        with udp() as sock:
            for i in range(2):
                request = b'twice %d' % i
                sock.sendto(request, (HOST, port))
                self.assertEqual(sock.recvfrom(65535), (request, (HOST, port)))
                self.assertEqual(sock.recvfrom(65535), (request, (HOST, port)))
                sock.settimeout(SHORT)
                with self.assertRaises(socket.timeout):
                    sock.recv(65535)       # not three times
                sock.settimeout(TIMEOUT)
        self.assertStopsCleanly(proc)

    def test_udp_garbage_answers_with_other_bytes(self):
        proc, port = self.chaos('udp-garbage', '--seed', 3)
        with udp() as sock:
            for i in range(2):
                request = b'%d: ' % i + b'a' * 100
                sock.sendto(request, (HOST, port))
                data, source = sock.recvfrom(65535)
                self.assertEqual(source, (HOST, port))
                self.assertEqual(len(data), len(request))
                self.assertNotEqual(data, request)
        self.assertStopsCleanly(proc)

    def test_udp_wrong_source_echoes_from_another_port(self):
        proc, port = self.chaos('udp-wrong-source')
        other = int(re.search(r'port (\d+)$', proc.lines()[-1]).group(1))
        self.assertNotEqual(other, port)
        with udp() as sock:
            for i in range(2):
                request = b'where from? %d' % i
                sock.sendto(request, (HOST, port))
                data, source = sock.recvfrom(65535)
                self.assertEqual(data, request)
                self.assertEqual(source, (HOST, other))
        self.assertStopsCleanly(proc)


# -- a real client against them: ferry udp-remote client ----------------------

class UdpRemoteClient(ChaosCase):

    ANSWER_RE = r"^The server says 'This is another message'$"

    def client(self, port, *options):
        return ferry('udp-remote', 'client', HOST, '-p', port,
                     '--request-ids', '--initial-wait', 0.1, '--max-wait', 2,
                     *options)

    def test_request_ids_reject_late_replies_to_earlier_requests(self):
        late = 0.25
        proc, port = self.chaos('udp-late', '--late-ms', int(late * 1000))
        with Proc(self.client(port, '--count', 3)) as client:
            # Each try waits 0.1 s, so every request is sent again before its
            # echo comes, and the echoes of the retries arrive while the next
            # request waits. Any echo of request k comes at least `late`
            # after request k was first sent, which is after answer k-1: a
            # gap shorter than that is a stale echo taken for an answer.
            times = []
            for _ in range(3):
                client.expect(self.ANSWER_RE)
                times.append(time.monotonic())
            self.assertEqual(client.wait(), 0, client.describe())
            self.assertEqual(len([l for l in client.lines()
                                  if re.match(self.ANSWER_RE, l)]), 3)
            self.assertIn('Waiting up to 0.2 seconds for a reply',
                          client.lines())     # retries (and stale echoes) happened
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreaterEqual(min(gaps), late * 0.8, gaps)
        self.assertStopsCleanly(proc)

    def test_duplicate_replies_are_not_taken_for_the_next_answer(self):
        proc, port = self.chaos('udp-dup')
        result = run(self.client(port, '--count', 5), timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        answers = [l for l in result.stdout.splitlines()
                   if re.match(self.ANSWER_RE, l)]
        self.assertEqual(len(answers), 5, result.stdout)
        self.assertStopsCleanly(proc)


# -- limits, stopping, all at once --------------------------------------------

class Limits(ChaosCase):

    def test_max_conns_refuses_with_a_line(self):
        proc, port = self.chaos('silent', '--max-conns', 2)
        first, second = tcp(port), tcp(port)
        try:
            for _ in range(2):
                with tcp(port) as third:
                    self.assertEqual(
                        recv_until_eof(third),
                        b'ferry chaos: too many connections (max 2)\r\n')
            wait_until(lambda: proc.stderr_text().count('refused') == 2,
                       what='two refusals logged')
            self.assertIn('silent: refused 127.0.0.1:', proc.stderr_text())
            self.assertTrue(still_open(first) and still_open(second))
            # A slot freed is a slot for the next client, once the server
            # has seen the close.
            first.close()

            def admitted():
                with tcp(port) as sock:
                    sock.settimeout(SHORT)
                    try:
                        sock.recv(100)    # the refusal line
                        return False
                    except socket.timeout:
                        return True       # silence: accepted
            wait_until(admitted, what='a free slot')
        finally:
            first.close()
            second.close()
        self.assertStopsCleanly(proc)

    def test_out_of_descriptors_drops_connections_and_keeps_serving(self):
        # Runs under ASan and UBSan too: the server keeps a few descriptors
        # free (the acceptor's reserve), which UBSan's checks need (they
        # probe memory through a pipe, and would report a false "invalid
        # vptr" in a process whose table is full).
        proc = self.spawn(['sh', '-c', 'ulimit -n 16 && exec "$0" "$@"',
                           FERRY, 'chaos', 'silent', '-p', 0])
        port = server_port(proc)
        cpu = cpu_seconds(proc.pid)
        start = time.monotonic()
        clients = [tcp(port) for _ in range(30)]
        try:
            def refused():
                return sum(int(n) for n in OUT_OF_DESCRIPTORS_RE.findall(
                    proc.stderr_text()))

            def at_eof():
                return len([c for c in clients if not still_open(c)])
            # Each connection the table has no room for is accepted and
            # closed: its client sees end of stream, and the count is said
            # at most once a second.
            wait_until(lambda: refused() > 0 and at_eof() == refused(),
                       what='the connections without room dropped')
            self.assertGreater(len(clients) - at_eof(), 0)   # the others kept
            self.assertLess(cpu_seconds(proc.pid) - cpu, 1.0)  # no spinning
            # At most one line a second (the first at once).
            self.assertLessEqual(
                len(OUT_OF_DESCRIPTORS_RE.findall(proc.stderr_text())),
                1 + math.ceil(time.monotonic() - start))
        finally:
            for c in clients:
                c.close()

        def admitted():
            with tcp(port) as sock:
                sock.settimeout(SHORT)
                try:
                    return sock.recv(100) != b''
                except socket.timeout:
                    return True       # silence: accepted and kept
        wait_until(admitted, what='room again once the clients left')
        self.assertStopsCleanly(proc)

    def test_sigterm_with_clients_connected_exits_0(self):
        proc, servers = self.chaos_all('--late-ms', 2000)
        open_sockets = []
        try:
            for name in ('silent', 'drip', 'garbage', 'half', 'http-nobody',
                         'http-slow'):
                open_sockets.append(tcp(servers[name][0]))
            open_sockets[-2].sendall(b'GET / HTTP/1.1\r\n\r\n')
            open_sockets[-1].sendall(b'GET / HTTP/1.1\r\n\r\n')
            self.assertEqual(open_sockets[1].recv(1), b'f')    # drip started
            datagram = udp()
            open_sockets.append(datagram)
            datagram.sendto(b'pending', (HOST, servers['udp-late'][0]))
            self.assertStopsCleanly(proc)    # timers pending, buffers full
        finally:
            for sock in open_sockets:
                sock.close()

    def test_sigint_exits_0(self):
        proc, _ = self.chaos('drip')
        self.assertStopsCleanly(proc, sig=signal.SIGINT)

    def test_every_server_on_its_own_port(self):
        proc, servers = self.chaos_all()
        ports = [port for port, _ in servers.values()]
        # TCP and UDP port numbers are separate spaces: a UDP server may get
        # the number of a TCP one.
        endpoints = {(servers[name][0], name.startswith('udp-'))
                     for name in NAMES}
        self.assertEqual(len(endpoints), len(NAMES))
        self.assertNotIn(0, ports)
        # A quick look at each: the right server behind each port.
        with tcp(servers['close'][0]) as sock:
            self.assertEqual(sock.recv(100), b'')
        with self.assertRaises(ConnectionResetError):    # at connect or recv
            with tcp(servers['reset'][0]) as sock:
                sock.recv(100)
        with tcp(servers['half'][0]) as sock:
            self.assertEqual(recv_until_eof(sock), HALF_LINE)
        with udp() as sock:
            sock.sendto(b'hi', (HOST, servers['udp-dup'][0]))
            self.assertEqual(sock.recv(100), b'hi')
            self.assertEqual(sock.recv(100), b'hi')
        self.assertStopsCleanly(proc)

    def test_no_descriptor_left_behind_when_clients_leave(self):
        proc, servers = self.chaos_all('--late-ms', 50, '--delay', 10)
        baseline = fd_count(proc.pid)
        for _ in range(3):
            for name in NAMES[:10]:
                try:
                    sock = tcp(servers[name][0], timeout=SHORT)
                except ConnectionResetError:
                    # The reset server's RST can arrive inside connect().
                    self.assertEqual(name, 'reset')
                    continue
                try:
                    sock.sendall(b'GET / HTTP/1.1\r\n\r\n')
                    sock.recv(10)
                except (ConnectionError, socket.timeout):
                    pass
                # Most close with unread data, so the server sees a reset.
                sock.close()
        # Clients that half-close first, then go: the server learns it from
        # its next send (a reset).
        for name in ('drip', 'garbage', 'http-slow'):
            sock = tcp(servers[name][0])
            sock.sendall(b'GET / HTTP/1.1\r\n\r\n')
            sock.shutdown(socket.SHUT_WR)
            self.assertNotEqual(sock.recv(1), b'')
            sock.close()
        with udp() as sock:
            sock.sendto(b'x', (HOST, servers['udp-late'][0]))
            self.assertEqual(sock.recv(10), b'x')
        wait_until(lambda: fd_count(proc.pid) == baseline,
                   what='descriptor count back to %d' % baseline)
        self.assertStopsCleanly(proc)


# -- bad input ------------------------------------------------------------------

class BadInput(TestCase):

    def assertOneLine(self, result, code, text):
        self.assertEqual(result.returncode, code, result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(text, lines[0])
        self.assertEqual(result.stdout, '')

    def test_unknown_name(self):
        self.assertOneLine(run(ferry('chaos', 'nosuch')), 2, "'nosuch'")

    def test_bad_port(self):
        self.assertOneLine(run(ferry('chaos', 'reset', '-p', 99999)), 2,
                           '99999')

    def test_port_without_name(self):
        self.assertOneLine(run(ferry('chaos', '-p', 5000)), 2, '--port')

    def test_base_port_without_room(self):
        self.assertOneLine(run(ferry('chaos', '--base-port', 65530)), 2,
                           '65530')

    def test_bad_delay(self):
        self.assertOneLine(run(ferry('chaos', '--delay', 0)), 2, '--delay')

    def test_port_in_use(self):
        with socket.socket() as taken:
            taken.bind((HOST, 0))
            taken.listen()
            port = taken.getsockname()[1]
            self.assertOneLine(run(ferry('chaos', 'silent', '-p', port)), 1,
                               'Address already in use')

    def test_help_lists_every_server_with_an_example(self):
        result = run(ferry('chaos', '--help'))
        self.assertEqual(result.returncode, 0, result.stderr)
        for name in NAMES:
            self.assertRegex(result.stdout, r'\n  %s +(TCP|UDP) ' % name)
        self.assertIn('Example', result.stdout)


if __name__ == '__main__':
    unittest.main()
