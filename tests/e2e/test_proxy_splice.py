"""ferry proxy's zero-copy path: a TCP direction without toxics moves with
splice(2) (counted as spliced_up / spliced_down in --json and in the API's
ferry_proxy_spliced_bytes_total), --no-splice copies every byte, and a toxic
added to a live splicing connection takes over without losing or reordering a
byte, the bytes already in the proxy's pipe going out first.

Every stream is checked end to end by its SHA-256 over real loopback sockets.
"""

import hashlib
import json
import random
import select
import signal
import socket
import struct
import threading
import time

from ferrytest import TestCase, ferry, server_port
from relay_peers import TcpServer, echo

HOST = '127.0.0.1'
IO_TIMEOUT = 60.0
CHUNK = 64 * 1024
API_RE = r'^API listening at 127\.0\.0\.1:(\d+)$'


def chunks(count, seed=11):
    """`count` chunks of CHUNK pseudo-random bytes, each with its index in
    front, so that a chunk moved or repeated changes the digest."""
    block = random.Random(seed).randbytes(CHUNK)
    for i in range(count):
        yield struct.pack('>Q', i) + block[8:]


def digest_of(count):
    h = hashlib.sha256()
    for c in chunks(count):
        h.update(c)
    return h.hexdigest()


def poll_until(predicate, what, timeout=IO_TIMEOUT):
    """Waits (bounded) for a condition the proxy reaches asynchronously."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('no %s within %gs' % (what, timeout))
        select.select([], [], [], 0.02)


class Sink:
    """An upstream that hashes what it reads; it can stop reading at a byte
    count until told to go on (so that bytes pile up in the proxy), and says
    when it has read a given count."""

    def __init__(self, pause_at=None, mark_at=None):
        self.pause_at = pause_at
        self.mark_at = mark_at
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.marked = threading.Event()
        self.done = threading.Event()
        self.count = 0
        self.digest = None
        self.server = TcpServer(self._serve)

    def _serve(self, conn):
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        while True:
            want = len(buf)
            if self.pause_at is not None and self.count < self.pause_at:
                want = min(want, self.pause_at - self.count)
            n = conn.recv_into(buf, want)
            if n == 0:
                break
            h.update(memoryview(buf)[:n])
            self.count += n
            if self.count == self.pause_at:
                self.paused.set()
                if not self.resume.wait(IO_TIMEOUT):
                    return
            if self.mark_at is not None and self.count >= self.mark_at:
                self.marked.set()
        self.digest = h.hexdigest()
        self.done.set()

    def close(self):
        self.resume.set()
        self.server.close()


class Metrics:
    """The API's /metrics, read over HTTP: one sample by name and direction."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None):
        import http.client
        conn = http.client.HTTPConnection(HOST, self.port, timeout=IO_TIMEOUT)
        try:
            conn.request(method, path, body=json.dumps(body) if body else None)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def value(self, name, direction):
        status, text = self.request('GET', '/metrics')
        assert status == 200, (status, text)
        for line in text.splitlines():
            if line.startswith(name + '{') and 'direction="%s"' % direction in line:
                return int(float(line.rsplit(' ', 1)[1]))
        raise AssertionError('no %s{direction=%s} in %s' % (name, direction, text))


class ProxySplice(TestCase):

    def start_proxy(self, upstream_port, *args):
        proc = self.spawn(ferry('proxy', '%s:0' % HOST, '%s:%d' % (HOST, upstream_port),
                                '--seed', 1060, '--json', *args))
        self.addCleanup(self.check_clean_exit, proc)
        return proc, server_port(proc, stderr=True)

    def report(self, proc):
        self.assertEqual(proc.stop(sig=signal.SIGINT), 0, proc.describe())
        return json.loads(proc.output())['routes'][0]

    def echo_through(self, port, count):
        """Sends `count` chunks through the proxy to an echo upstream while
        reading the echo; returns the echo's SHA-256."""
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            def send():
                for chunk in chunks(count):
                    c.sendall(chunk)
                c.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            h = hashlib.sha256()
            buf = bytearray(1 << 20)
            while True:
                n = c.recv_into(buf)
                if n == 0:
                    break
                h.update(memoryview(buf)[:n])
            sender.join(IO_TIMEOUT)
            self.assertFalse(sender.is_alive())
        return h.hexdigest()

    def test_both_directions_are_spliced_without_toxics(self):
        server = TcpServer(echo)
        self.addCleanup(server.close)
        proc, port = self.start_proxy(server.port)
        count = 512  # 32 MiB each way
        self.assertEqual(self.echo_through(port, count), digest_of(count))
        route = self.report(proc)
        size = count * CHUNK
        self.assertEqual(route['bytes_up'], size)
        self.assertEqual(route['bytes_down'], size)
        self.assertEqual(route['spliced_up'], size, route)
        self.assertEqual(route['spliced_down'], size, route)

    def test_no_splice_copies_every_byte(self):
        server = TcpServer(echo)
        self.addCleanup(server.close)
        proc, port = self.start_proxy(server.port, '--no-splice')
        count = 64  # 4 MiB each way
        self.assertEqual(self.echo_through(port, count), digest_of(count))
        route = self.report(proc)
        self.assertEqual(route['bytes_up'], count * CHUNK)
        self.assertEqual(route['bytes_down'], count * CHUNK)
        self.assertEqual((route['spliced_up'], route['spliced_down']), (0, 0))

    def test_toxic_added_mid_stream_loses_and_reorders_nothing(self):
        # The upstream stops reading after 8 MiB, so that what the client
        # sends next fills the proxy's pipe; a toxic is added then, the
        # upstream goes on, and at 24 MiB the toxic is removed again.
        count = 640  # 40 MiB
        sink = Sink(pause_at=8 << 20, mark_at=24 << 20)
        self.addCleanup(sink.close)
        proc = self.spawn(ferry('proxy', '--api', '%s:0' % HOST))
        self.addCleanup(self.check_clean_exit, proc)
        api = Metrics(int(proc.expect(API_RE).group(1)))
        status, text = api.request('POST', '/proxies', {
            'name': 'p', 'listen': '%s:0' % HOST,
            'upstream': '%s:%d' % (HOST, sink.server.port)})
        self.assertEqual(status, 201, text)
        port = int(json.loads(text)['listen'].rsplit(':', 1)[1])

        client = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.addCleanup(client.close)
        def send():
            for chunk in chunks(count):
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()

        self.assertTrue(sink.paused.wait(IO_TIMEOUT))
        # Bytes the proxy has read and not written: they sit in its pipe.
        held = lambda: (api.value('toxiproxy_proxy_received_bytes_total', 'upstream') -
                        api.value('toxiproxy_proxy_sent_bytes_total', 'upstream'))
        poll_until(lambda: held() >= 256 * 1024, 'bytes held in the proxy')
        spliced_before = api.value('ferry_proxy_spliced_bytes_total', 'upstream')
        self.assertGreaterEqual(spliced_before, 8 << 20)
        status, text = api.request('POST', '/proxies/p/toxics', {
            'name': 'slow', 'type': 'latency', 'stream': 'upstream',
            'attributes': {'latency': 1}})
        self.assertEqual(status, 200, text)
        # The toxic is on once the API has answered: nothing is spliced from now on.
        spliced_at_toxic = api.value('ferry_proxy_spliced_bytes_total', 'upstream')
        sink.resume.set()

        self.assertTrue(sink.marked.wait(IO_TIMEOUT))
        spliced_with_toxic = api.value('ferry_proxy_spliced_bytes_total', 'upstream')
        status, text = api.request('DELETE', '/proxies/p/toxics/slow')
        self.assertEqual(status, 204, text)

        self.assertTrue(sink.done.wait(IO_TIMEOUT))
        sender.join(IO_TIMEOUT)
        self.assertEqual(sink.count, count * CHUNK)
        self.assertEqual(sink.digest, digest_of(count))
        spliced_after = api.value('ferry_proxy_spliced_bytes_total', 'upstream')
        sent = api.value('toxiproxy_proxy_sent_bytes_total', 'upstream')
        self.assertEqual(sent, count * CHUNK)
        # While the toxic was on, every byte went through the buffer ...
        self.assertEqual(spliced_with_toxic, spliced_at_toxic)
        # ... and once it was gone the stream spliced again.
        self.assertGreater(spliced_after, spliced_with_toxic)
        self.assertLess(spliced_after, sent)


if __name__ == '__main__':
    import unittest
    unittest.main()
