"""ferry proxy --api: Toxiproxy 2.x's HTTP API, seen by an HTTP client.

Every test starts its own `ferry proxy --api 127.0.0.1:0`, drives it with
http.client, and checks both what the API answers (status codes, bodies and
error messages as Toxiproxy words them) and what the relays then do to real
TCP and UDP traffic on 127.0.0.1, to echo servers living in this process.
Every proxy is stopped with SIGTERM at the end of its test: exit 0, and
nothing from the sanitizers.

Timing tolerances are for a loaded two-core machine running the ASan build.
"""

import http.client
import json
import os
import re
import select
import socket
import statistics
import tempfile
import threading
import time
import unittest

from ferrytest import TestCase, ferry, run
from relay_peers import TcpServer, UdpEcho, echo

HOST = '127.0.0.1'
IO_TIMEOUT = 20.0
API_RE = r'^API listening at 127\.0\.0\.1:(\d+)$'
LISTEN_RE = r'^Listening at 127\.0\.0\.1:(\d+) -> '
MAX_BODY = 1 << 20


# -- the API ------------------------------------------------------------------

class Api:
    """An HTTP client for one ferry proxy's API: one connection per request."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None):
        """Sends `body` (a dict or list as JSON; str or bytes as they are)
        and returns (status, headers, body): the body parsed as JSON when it
        is JSON, else the text."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=IO_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            text = response.read().decode('utf-8')
            head = {k.lower(): v for k, v in response.getheaders()}
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return response.status, head, parsed
        finally:
            conn.close()

    def ok(self, method, path, body=None, status=200):
        """request(), which must answer `status`; returns the body."""
        got, _, answer = self.request(method, path, body)
        if got != status:
            raise AssertionError('%s %s %r: %d %r, expected %d'
                                 % (method, path, body, got, answer, status))
        return answer

    def metrics(self):
        """GET /metrics as {(name, frozenset of label pairs): value}."""
        text = self.ok('GET', '/metrics')
        samples = {}
        for line in text.splitlines():
            match = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
            if match:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"',
                                              match.group(2)))
                samples[match.group(1), labels] = float(match.group(3))
        return samples

    def metric(self, name, **labels):
        """The value of the one sample of `name` whose labels include these."""
        wanted = set(labels.items())
        found = [v for (n, l), v in self.metrics().items()
                 if n == name and wanted <= l]
        if len(found) != 1:
            raise AssertionError('%d samples of %s %s' % (len(found), name,
                                                          labels))
        return found[0]


# -- servers living in the test process ---------------------------------------

# -- client side --------------------------------------------------------------

def round_trips(sock, rounds=5):
    """Seconds each of `rounds` one-byte echoes takes on an open connection."""
    samples = []
    for _ in range(rounds):
        start = time.monotonic()
        sock.sendall(b'p')
        if sock.recv(1) != b'p':
            raise AssertionError('the echo broke')
        samples.append(time.monotonic() - start)
    return samples


def echo_once(sock, payload=b'hello'):
    sock.sendall(payload)
    got = b''
    while len(got) < len(payload):
        data = sock.recv(65536)
        if not data:
            raise AssertionError('end of stream after %r' % got)
        got += data
    return got


def ended(sock):
    """True once the peer closed or reset the connection (recv, bounded
    by the socket's timeout, gets no data)."""
    try:
        return sock.recv(100) == b''
    except ConnectionResetError:
        return True


def refuses(port):
    try:
        socket.create_connection((HOST, port), timeout=IO_TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def free_port():
    """A TCP port nothing listens on (the kernel's pick, released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_of(address):
    host, _, port = address.rpartition(':')
    if host != HOST:
        raise AssertionError('listen %r is not on %s' % (address, HOST))
    return int(port)


def poll_until(predicate, what):
    """Waits (bounded) for a condition the proxy reaches asynchronously."""
    deadline = time.monotonic() + IO_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('no %s within %gs' % (what, IO_TIMEOUT))
        select.select([], [], [], 0.02)


class ApiTestCase(TestCase):

    def start_api(self, *args):
        """Starts `ferry proxy ARGS --api 127.0.0.1:0`; returns (Proc, Api)."""
        proc = self.spawn(ferry('proxy', *args, '--api', '%s:0' % HOST))
        self.addCleanup(self.check_clean_exit, proc)
        port = int(proc.expect(API_RE).group(1))
        return proc, Api(port)

    def tcp_echo(self):
        server = TcpServer(echo)
        self.addCleanup(server.close)
        return server

    def udp_echo(self):
        server = UdpEcho()
        self.addCleanup(server.close)
        return server

    def create(self, api, name, upstream_port, **fields):
        """POST /proxies (201); returns the proxy's JSON."""
        body = dict(name=name, listen='%s:0' % HOST,
                    upstream='%s:%d' % (HOST, upstream_port))
        body.update(fields)
        return api.ok('POST', '/proxies', body, status=201)

    def connect(self, port):
        sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(sock.close)
        return sock

    def udp_client(self, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(IO_TIMEOUT)
        sock.connect((HOST, port))
        return sock

    def assertError(self, answer, status, message):
        got_status, _, body = answer
        self.assertEqual((got_status, body), (status, {'error': message,
                                                       'status': status}))


# -- endpoints ----------------------------------------------------------------

class Endpoints(ApiTestCase):

    def test_version_is_toxiproxy_json(self):
        _, api = self.start_api()
        status, head, body = api.request('GET', '/version')
        self.assertEqual(status, 200)
        self.assertIn('application/json', head['content-type'])
        self.assertEqual(list(body), ['version'])
        self.assertRegex(body['version'], r'^2\.\d+\.\d+\+ferry\.')

    def test_create_reports_the_bound_address_and_relays(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        upstream = '%s:%d' % (HOST, echo.port)
        created = api.ok('POST', '/proxies', {
            'name': 'db', 'listen': 'localhost:0', 'upstream': upstream},
            status=201)
        port = port_of(created['listen'])
        self.assertNotEqual(port, 0)
        self.assertEqual(created, {
            'name': 'db', 'listen': '%s:%d' % (HOST, port),
            'upstream': upstream, 'enabled': True, 'toxics': []})
        self.assertEqual(api.ok('GET', '/proxies/db'), created)
        self.assertEqual(api.ok('GET', '/proxies'), {'db': created})
        self.assertEqual(echo_once(self.connect(port)), b'hello')

    def test_proxy_created_disabled_keeps_its_listen_and_binds_nothing(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        port = free_port()
        listen = '%s:%d' % (HOST, port)
        created = self.create(api, 'off', echo.port, listen=listen,
                              enabled=False)
        self.assertEqual((created['listen'], created['enabled']),
                         (listen, False))
        self.assertTrue(refuses(port))
        with socket.socket() as probe:
            probe.bind((HOST, port))            # nobody holds the port
        enabled = api.ok('PATCH', '/proxies/off', {'enabled': True})
        self.assertEqual((enabled['listen'], enabled['enabled']),
                         (listen, True))
        self.assertEqual(echo_once(self.connect(port)), b'hello')

    def test_toxic_defaults_and_listing_order(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        toxic = api.ok('POST', '/proxies/p/toxics',
                       {'type': 'latency', 'attributes': {'latency': 100,
                                                          'colour': 7}})
        self.assertEqual(toxic, {
            'attributes': {'latency': 100, 'jitter': 0},
            'name': 'latency_downstream', 'type': 'latency',
            'stream': 'downstream', 'toxicity': 1})
        bare = api.ok('POST', '/proxies/p/toxics',
                      {'type': 'bandwidth', 'stream': 'upstream',
                       'name': 'slow', 'toxicity': 0.5})
        self.assertEqual(bare, {
            'attributes': {'rate': 0}, 'name': 'slow', 'type': 'bandwidth',
            'stream': 'upstream', 'toxicity': 0.5})
        self.assertEqual(api.ok('GET', '/proxies/p/toxics'), [bare, toxic])
        self.assertEqual(api.ok('GET', '/proxies/p/toxics/slow'), bare)
        self.assertEqual(api.ok('GET', '/proxies/p')['toxics'], [bare, toxic])

    def test_updates_merge_with_what_is_there(self):
        echo = self.tcp_echo()
        other = self.tcp_echo()
        _, api = self.start_api()
        created = self.create(api, 'p', echo.port)
        api.ok('POST', '/proxies/p/toxics',
               {'type': 'latency', 'toxicity': 0.5,
                'attributes': {'latency': 10, 'jitter': 5}})
        for method in ('POST', 'PATCH'):
            with self.subTest(method=method):
                toxic = api.ok(method, '/proxies/p/toxics/latency_downstream',
                               {'attributes': {'latency': 1000},
                                'name': 'renamed', 'type': 'timeout',
                                'stream': 'upstream'})
                self.assertEqual(toxic, {
                    'attributes': {'latency': 1000, 'jitter': 5},
                    'name': 'latency_downstream', 'type': 'latency',
                    'stream': 'downstream', 'toxicity': 0.5})
        moved = api.ok('POST', '/proxies/p',
                       {'upstream': '%s:%d' % (HOST, other.port)})
        self.assertEqual(moved['listen'], created['listen'])
        self.assertTrue(moved['enabled'])
        self.assertEqual(len(moved['toxics']), 1)       # toxics survive
        disabled = api.ok('PATCH', '/proxies/p', {'enabled': False})
        self.assertEqual(disabled['upstream'], '%s:%d' % (HOST, other.port))
        self.assertEqual(disabled['listen'], created['listen'])
        renamed = api.ok('PATCH', '/proxies/p', {'name': 'q'})
        self.assertEqual(renamed['name'], 'p')

    def test_delete_answers_204_and_closes_everything(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        port = port_of(self.create(api, 'p', echo.port)['listen'])
        api.ok('POST', '/proxies/p/toxics', {'type': 'noop'})
        client = self.connect(port)
        self.assertEqual(echo_once(client), b'hello')

        status, _, body = api.request('DELETE',
                                      '/proxies/p/toxics/noop_downstream')
        self.assertEqual((status, body), (204, ''))
        self.assertEqual(api.ok('GET', '/proxies/p/toxics'), [])
        status, _, body = api.request('DELETE', '/proxies/p')
        self.assertEqual((status, body), (204, ''))
        self.assertTrue(ended(client))
        self.assertTrue(refuses(port))
        self.assertError(api.request('GET', '/proxies/p'), 404,
                         'proxy not found')
        self.assertError(api.request('DELETE', '/proxies/p'), 404,
                         'proxy not found')
        self.assertEqual(api.ok('GET', '/proxies'), {})

    def test_reset_enables_every_proxy_and_removes_every_toxic(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        port_a = port_of(self.create(api, 'a', echo.port)['listen'])
        port_b = free_port()
        self.create(api, 'b', echo.port, listen='%s:%d' % (HOST, port_b),
                    enabled=False)
        api.ok('POST', '/proxies/a/toxics', {'type': 'latency',
                                             'attributes': {'latency': 500}})
        api.ok('POST', '/proxies/b/toxics', {'type': 'timeout',
                                             'stream': 'upstream'})
        status, _, body = api.request('POST', '/reset')
        self.assertEqual((status, body), (204, ''))
        proxies = api.ok('GET', '/proxies')
        self.assertEqual(sorted(proxies), ['a', 'b'])
        for proxy in proxies.values():
            self.assertTrue(proxy['enabled'])
            self.assertEqual(proxy['toxics'], [])
        for port in (port_a, port_b):
            client = self.connect(port)
            self.assertLess(min(round_trips(client, 3)), 0.4)

    def test_metrics_count_bytes_per_proxy_and_direction(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        created = self.create(api, 'm', echo.port)
        port = port_of(created['listen'])
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as c:
            self.assertEqual(echo_once(c, b'x' * 1000), b'x' * 1000)
        labels = dict(proxy='m', listener=created['listen'],
                      upstream=created['upstream'])
        poll_until(lambda: api.metric('ferry_proxy_connections_active',
                                      **labels) == 0, 'connection closed')
        status, head, _ = api.request('GET', '/metrics')
        self.assertEqual(status, 200)
        self.assertIn('text/plain', head['content-type'])
        for name in ('toxiproxy_proxy_received_bytes_total',
                     'toxiproxy_proxy_sent_bytes_total'):
            for direction in ('upstream', 'downstream'):
                with self.subTest(name=name, direction=direction):
                    self.assertEqual(api.metric(name, direction=direction,
                                                **labels), 1000)
        self.assertEqual(api.metric('ferry_proxy_connections_total',
                                    **labels), 1)

    def test_command_line_routes_are_listed_as_route1_route2(self):
        echo = self.tcp_echo()
        upstream = '%s:%d' % (HOST, echo.port)
        proc = self.spawn(ferry('proxy', '%s:0' % HOST, upstream, '--route',
                                '%s:0=%s' % (HOST, upstream), '--toxic',
                                'latency:down:latency=5', '--api',
                                '%s:0' % HOST))
        self.addCleanup(self.check_clean_exit, proc)
        ports = [int(proc.expect(LISTEN_RE).group(1)) for _ in range(2)]
        api = Api(int(proc.expect(API_RE).group(1)))
        proxies = api.ok('GET', '/proxies')
        self.assertEqual(sorted(proxies), ['route1', 'route2'])
        for name, port in zip(('route1', 'route2'), ports):
            proxy = proxies[name]
            self.assertEqual((proxy['listen'], proxy['upstream']),
                             ('%s:%d' % (HOST, port), upstream))
            self.assertEqual([t['name'] for t in proxy['toxics']],
                             ['latency_downstream'])
        api.ok('DELETE', '/proxies/route1/toxics/latency_downstream',
               status=204)
        self.assertEqual(echo_once(self.connect(ports[0])), b'hello')

    def test_toxiproxy_config_file_proxies_are_listed(self):
        echo = self.tcp_echo()
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, 'toxiproxy.json')
            with open(config, 'w') as f:
                json.dump([{'name': 'db', 'listen': '%s:0' % HOST,
                            'upstream': '%s:%d' % (HOST, echo.port),
                            'enabled': True}], f)
            proc = self.spawn(ferry('proxy', '--config', config, '--api',
                                    '%s:0' % HOST))
            self.addCleanup(self.check_clean_exit, proc)
            port = int(proc.expect(LISTEN_RE).group(1))
            api = Api(int(proc.expect(API_RE).group(1)))
        db = api.ok('GET', '/proxies/db')
        self.assertEqual(db['listen'], '%s:%d' % (HOST, port))
        self.assertEqual(db['upstream'], '%s:%d' % (HOST, echo.port))
        self.assertTrue(db['enabled'])
        self.assertEqual(sorted(api.ok('GET', '/proxies')), ['db'])
        self.assertEqual(echo_once(self.connect(port)), b'hello')


# -- errors -------------------------------------------------------------------

class Errors(ApiTestCase):

    def test_missing_name_then_missing_upstream_is_400(self):
        _, api = self.start_api()
        self.assertError(api.request('POST', '/proxies', {'listen': 'x'}),
                         400, 'missing required field: name')
        self.assertError(api.request('POST', '/proxies', {'name': 'p'}),
                         400, 'missing required field: upstream')
        self.assertEqual(api.ok('GET', '/proxies'), {})

    def test_body_that_is_not_json_is_400(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        api.ok('POST', '/proxies/p/toxics', {'type': 'noop', 'name': 't'})
        for method, path in (('POST', '/proxies'), ('POST', '/populate'),
                             ('PATCH', '/proxies/p'),
                             ('POST', '/proxies/p/toxics'),
                             ('PATCH', '/proxies/p/toxics/t')):
            for body in ('{"name": "p",', 'not json', ''):
                with self.subTest(path=path, body=body):
                    status, _, answer = api.request(method, path, body)
                    self.assertEqual(status, 400, answer)
                    self.assertEqual(answer['status'], 400)
                    self.assertTrue(answer['error'].startswith(
                        'bad request body: '), answer)
        status, _, answer = api.request('POST', '/proxies', '')
        self.assertEqual(answer['error'], 'bad request body: EOF')

    def test_unknown_proxy_is_404(self):
        _, api = self.start_api()
        for method, path, body in (
                ('GET', '/proxies/nope', None),
                ('PATCH', '/proxies/nope', {'enabled': False}),
                ('POST', '/proxies/nope', {'enabled': False}),
                ('DELETE', '/proxies/nope', None),
                ('GET', '/proxies/nope/toxics', None),
                ('POST', '/proxies/nope/toxics', {'type': 'latency'}),
                ('POST', '/proxies/nope/toxics', {'type': 'bogus'}),
                ('GET', '/proxies/nope/toxics/t', None),
                ('PATCH', '/proxies/nope/toxics/t', {'toxicity': 1}),
                ('DELETE', '/proxies/nope/toxics/t', None)):
            with self.subTest(method=method, path=path, body=body):
                self.assertError(api.request(method, path, body), 404,
                                 'proxy not found')

    def test_unknown_toxic_is_404(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        for method, body in (('GET', None), ('POST', {'toxicity': 1}),
                             ('PATCH', {'toxicity': 1}), ('DELETE', None)):
            with self.subTest(method=method):
                self.assertError(
                    api.request(method, '/proxies/p/toxics/nope', body), 404,
                    'toxic not found')

    def test_duplicate_proxy_is_409(self):
        _, api = self.start_api()
        first = self.create(api, 'p', 9)
        self.assertError(api.request('POST', '/proxies', {
            'name': 'p', 'listen': '%s:0' % HOST, 'upstream': '%s:10' % HOST}),
            409, 'proxy already exists')
        self.assertEqual(api.ok('GET', '/proxies'), {'p': first})

    def test_duplicate_toxic_is_409_in_either_stream(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        api.ok('POST', '/proxies/p/toxics', {'type': 'latency'})
        self.assertError(api.request('POST', '/proxies/p/toxics',
                                     {'type': 'latency'}),
                         409, 'toxic already exists')
        self.assertError(api.request('POST', '/proxies/p/toxics', {
            'type': 'bandwidth', 'stream': 'upstream',
            'name': 'latency_downstream'}), 409, 'toxic already exists')
        self.assertEqual(len(api.ok('GET', '/proxies/p/toxics')), 1)

    def test_invalid_toxic_type_is_400(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        for body in ({'type': 'bogus'}, {'type': 'down'}, {},
                     {'attributes': {'latency': 5}}):
            with self.subTest(body=body):
                self.assertError(
                    api.request('POST', '/proxies/p/toxics', body), 400,
                    'invalid toxic type')

    def test_invalid_stream_is_400(self):
        _, api = self.start_api()
        self.create(api, 'p', 9)
        for stream in ('sideways', ''):
            with self.subTest(stream=stream):
                self.assertError(
                    api.request('POST', '/proxies/p/toxics',
                                {'type': 'latency', 'stream': stream}),
                    400, 'stream was invalid, can be either upstream or '
                    'downstream')
        self.assertEqual(api.ok('GET', '/proxies/p/toxics'), [])

    def test_taken_listen_port_is_500_with_the_bind_error(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        listen = '%s:%d' % (HOST, taken.getsockname()[1])
        _, api = self.start_api()
        status, _, body = api.request('POST', '/proxies', {
            'name': 'p', 'listen': listen, 'upstream': '%s:9' % HOST})
        self.assertEqual((status, body['status']), (500, 500))
        self.assertIn('Address already in use', body['error'])
        self.assertEqual(api.ok('GET', '/proxies'), {})

    def test_update_to_a_taken_port_is_500_and_leaves_the_proxy_disabled(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        listen = '%s:%d' % (HOST, taken.getsockname()[1])
        _, api = self.start_api()
        old_port = port_of(self.create(api, 'p', 9)['listen'])
        status, _, body = api.request('PATCH', '/proxies/p',
                                      {'listen': listen})
        self.assertEqual(status, 500)
        self.assertIn('Address already in use', body['error'])
        proxy = api.ok('GET', '/proxies/p')
        self.assertEqual((proxy['listen'], proxy['enabled']), (listen, False))
        self.assertTrue(refuses(old_port))

    def test_create_rejected_for_its_toxics_creates_nothing(self):
        # ferry takes "toxics" in a create body (Toxiproxy ignores them): a
        # create that fails must not leave the proxy behind.
        _, api = self.start_api()
        for name, toxics in (('loss', [{'type': 'loss',
                                        'attributes': {'probability': 1}}]),
                             ('twice', [{'type': 'latency'},
                                        {'type': 'latency'}])):
            with self.subTest(toxics=toxics):
                port = free_port()
                status, _, _ = api.request('POST', '/proxies', {
                    'name': name, 'listen': '%s:%d' % (HOST, port),
                    'upstream': '%s:9' % HOST, 'toxics': toxics})
                self.assertIn(status, (400, 409))
                self.assertError(api.request('GET', '/proxies/' + name), 404,
                                 'proxy not found')
                self.assertTrue(refuses(port))


# -- toxics on live connections -----------------------------------------------

class LiveToxics(ApiTestCase):

    def proxied_echo(self):
        """(Api, an open connection through proxy 'p' to an echo server)."""
        echo = self.tcp_echo()
        _, api = self.start_api()
        port = port_of(self.create(api, 'p', echo.port)['listen'])
        client = self.connect(port)
        self.assertEqual(echo_once(client), b'hello')
        return api, client

    def test_latency_added_updated_and_removed_on_an_open_connection(self):
        api, client = self.proxied_echo()
        self.assertLess(statistics.median(round_trips(client)), 0.15)
        api.ok('POST', '/proxies/p/toxics',
               {'type': 'latency', 'attributes': {'latency': 200}})
        self.assertGreaterEqual(min(round_trips(client, 3)), 0.19)
        api.ok('PATCH', '/proxies/p/toxics/latency_downstream',
               {'attributes': {'latency': 400}})
        self.assertGreaterEqual(min(round_trips(client, 3)), 0.39)
        api.ok('DELETE', '/proxies/p/toxics/latency_downstream', status=204)
        self.assertLess(statistics.median(round_trips(client)), 0.15)

    def test_latency_upstream_delays_the_round_trip_too(self):
        api, client = self.proxied_echo()
        api.ok('POST', '/proxies/p/toxics', {
            'type': 'latency', 'stream': 'upstream',
            'attributes': {'latency': 150}})
        self.assertGreaterEqual(min(round_trips(client, 3)), 0.14)

    def test_timeout_on_an_open_connection_drops_data_then_closes(self):
        api, client = self.proxied_echo()
        api.ok('POST', '/proxies/p/toxics',
               {'type': 'timeout', 'attributes': {'timeout': 300}})
        start = time.monotonic()
        client.sendall(b'anyone there?')
        self.assertEqual(client.recv(100), b'')
        self.assertGreaterEqual(time.monotonic() - start, 0.25)

    def test_timeout_removed_from_an_open_connection_closes_it(self):
        api, client = self.proxied_echo()
        api.ok('POST', '/proxies/p/toxics', {'type': 'timeout'})
        client.sendall(b'dropped')
        api.ok('DELETE', '/proxies/p/toxics/timeout_downstream', status=204)
        self.assertTrue(ended(client))

    def test_reset_peer_on_an_open_connection_resets_it(self):
        api, client = self.proxied_echo()
        start = time.monotonic()
        api.ok('POST', '/proxies/p/toxics',
               {'type': 'reset_peer', 'attributes': {'timeout': 200}})
        client.sendall(b'hello')
        with self.assertRaises(ConnectionResetError):
            while client.recv(100):
                pass
        self.assertGreaterEqual(time.monotonic() - start, 0.15)

    def test_disable_closes_connections_and_enable_reopens_the_same_port(self):
        api, client = self.proxied_echo()
        port = port_of(api.ok('GET', '/proxies/p')['listen'])
        disabled = api.ok('PATCH', '/proxies/p', {'enabled': False})
        self.assertFalse(disabled['enabled'])
        self.assertTrue(ended(client))
        self.assertTrue(refuses(port))
        enabled = api.ok('POST', '/proxies/p', {'enabled': True})
        self.assertEqual(enabled['listen'], '%s:%d' % (HOST, port))
        self.assertEqual(echo_once(self.connect(port), b'back'), b'back')

    def test_new_upstream_drops_connections_and_relays_to_the_new_one(self):
        api, client = self.proxied_echo()
        port = port_of(api.ok('GET', '/proxies/p')['listen'])
        answer = b'from the new upstream'
        other = socket.socket()
        self.addCleanup(other.close)
        other.bind((HOST, 0))
        other.listen(1)
        other.settimeout(IO_TIMEOUT)
        moved = api.ok('PATCH', '/proxies/p', {
            'upstream': '%s:%d' % (HOST, other.getsockname()[1])})
        self.assertEqual(moved['listen'], '%s:%d' % (HOST, port))
        self.assertTrue(ended(client))
        fresh = self.connect(port)
        conn, _ = other.accept()
        with conn:
            conn.sendall(answer)
            self.assertEqual(fresh.recv(100), answer)


# -- UDP ----------------------------------------------------------------------

class Udp(ApiTestCase):

    def udp_proxy(self, toxics=()):
        """(Api, a UDP socket connected to proxy 'u' in front of an echo)."""
        echo = self.udp_echo()
        _, api = self.start_api()
        created = self.create(api, 'u', echo.port, protocol='udp')
        self.assertEqual(created['protocol'], 'udp')
        for toxic in toxics:
            api.ok('POST', '/proxies/u/toxics', toxic)
        return api, self.udp_client(port_of(created['listen']))

    def test_udp_proxy_is_created_and_relays_datagrams(self):
        echo = self.udp_echo()
        _, api = self.start_api()
        created = self.create(api, 'u', echo.port, listen='localhost:0',
                              protocol='udp')
        port = port_of(created['listen'])
        self.assertEqual(created, {
            'name': 'u', 'listen': '%s:%d' % (HOST, port),
            'upstream': '%s:%d' % (HOST, echo.port), 'enabled': True,
            'protocol': 'udp', 'toxics': []})
        self.assertEqual(api.ok('GET', '/proxies')['u'], created)
        client = self.udp_client(port)
        for payload in (b'one', b'', b'x' * 9000):
            client.send(payload)
            self.assertEqual(client.recv(65535), payload)

    def test_duplicate_downstream_echoes_every_datagram_twice(self):
        api, client = self.udp_proxy([{'type': 'duplicate',
                                       'attributes': {'probability': 1}}])
        for i in range(5):
            client.send(b'd%d' % i)
            self.assertEqual([client.recv(100), client.recv(100)],
                             [b'd%d' % i] * 2)
        poll_until(lambda: api.metric('ferry_proxy_datagrams_duplicated_total',
                                      proxy='u') == 5, '5 duplicates counted')

    def test_loss_upstream_drops_everything_and_is_counted(self):
        api, client = self.udp_proxy([{'type': 'loss', 'stream': 'upstream',
                                       'attributes': {'probability': 1}}])
        for i in range(20):
            client.send(b'lost %d' % i)
        poll_until(lambda: api.metric('ferry_proxy_datagrams_dropped_total',
                                      proxy='u') == 20, '20 drops counted')
        self.assertEqual(api.metric('ferry_proxy_datagrams_total',
                                    proxy='u', direction='upstream'), 20)
        api.ok('DELETE', '/proxies/u/toxics/loss_upstream', status=204)
        client.send(b'fence')
        self.assertEqual(client.recv(100), b'fence')   # nothing came before
        self.assertEqual(api.metric('ferry_proxy_datagrams_dropped_total',
                                    proxy='u'), 20)

    def test_toxic_added_and_removed_on_a_live_flow(self):
        api, client = self.udp_proxy()
        client.send(b'before')
        self.assertEqual(client.recv(100), b'before')
        api.ok('POST', '/proxies/u/toxics', {'type': 'duplicate',
                                             'attributes': {'probability': 1}})
        client.send(b'during')
        self.assertEqual([client.recv(100), client.recv(100)], [b'during'] * 2)
        api.ok('DELETE', '/proxies/u/toxics/duplicate_downstream', status=204)
        client.send(b'after')
        client.send(b'fence')
        self.assertEqual([client.recv(100), client.recv(100)],
                         [b'after', b'fence'])
        self.assertEqual(api.metric('ferry_proxy_connections_total',
                                    proxy='u'), 1)

    def test_corrupt_flips_exactly_one_bit_of_each_datagram(self):
        _, client = self.udp_proxy([{'type': 'corrupt', 'stream': 'upstream',
                                     'attributes': {'probability': 1}}])
        for i in range(20):
            sent = os.urandom(32)
            client.send(sent)
            got = client.recv(100)
            flipped = int.from_bytes(sent, 'big') ^ int.from_bytes(got, 'big')
            self.assertEqual((len(got), bin(flipped).count('1')), (32, 1))

    def test_udp_toxic_attributes_are_read_back(self):
        api, _ = self.udp_proxy()
        loss = api.ok('POST', '/proxies/u/toxics', {
            'type': 'loss', 'stream': 'upstream', 'name': 'bursty',
            'attributes': {'p': 0.05, 'r': 0.5}})
        self.assertEqual(loss['attributes'],
                         {'p': 0.05, 'r': 0.5, 'good': 0, 'bad': 1})
        reorder = api.ok('POST', '/proxies/u/toxics', {
            'type': 'reorder', 'attributes': {'probability': 0.2,
                                              'hold': 50}})
        self.assertEqual(reorder['attributes'], {'probability': 0.2,
                                                 'hold': 50})
        self.assertEqual(reorder['name'], 'reorder_downstream')
        names = [t['name'] for t in api.ok('GET', '/proxies/u/toxics')]
        self.assertEqual(names, ['bursty', 'reorder_downstream'])

    def test_toxic_for_the_other_protocol_is_400(self):
        api, _ = self.udp_proxy()
        self.create(api, 't', 9)
        for proxy, toxic in (('u', {'type': 'slicer', 'attributes': {
                                 'average_size': 10}}),
                             ('u', {'type': 'limit_data'}),
                             ('t', {'type': 'loss', 'attributes': {
                                 'probability': 0.5}}),
                             ('t', {'type': 'duplicate', 'attributes': {
                                 'probability': 0.5}})):
            with self.subTest(proxy=proxy, toxic=toxic['type']):
                status, _, body = api.request(
                    'POST', '/proxies/%s/toxics' % proxy, toxic)
                self.assertEqual((status, body['status']), (400, 400))
                self.assertIn(toxic['type'], body['error'])
                self.assertEqual(api.ok('GET', '/proxies/%s/toxics' % proxy),
                                 [])


# -- populate -----------------------------------------------------------------

class Populate(ApiTestCase):

    def entry(self, name, upstream_port=9, listen='%s:0' % HOST, **fields):
        entry = dict(name=name, listen=listen,
                     upstream='%s:%d' % (HOST, upstream_port))
        entry.update(fields)
        return entry

    def test_populate_creates_every_proxy_in_order(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        off_listen = '%s:%d' % (HOST, free_port())
        body = api.ok('POST', '/populate', [
            self.entry('one', echo.port), self.entry('two', echo.port),
            self.entry('off', echo.port, listen=off_listen, enabled=False)],
            status=201)
        proxies = body['proxies']
        self.assertEqual([p['name'] for p in proxies], ['one', 'two', 'off'])
        self.assertEqual([p['enabled'] for p in proxies], [True, True, False])
        self.assertEqual(proxies[2]['listen'], off_listen)
        self.assertEqual({p['name']: p for p in proxies},
                         api.ok('GET', '/proxies'))
        for proxy in proxies[:2]:
            port = port_of(proxy['listen'])
            self.assertEqual(echo_once(self.connect(port)), b'hello')

    def test_missing_field_at_proxy_2_creates_none(self):
        _, api = self.start_api()
        for missing in ('name', 'upstream'):
            with self.subTest(missing=missing):
                second = self.entry('two')
                del second[missing]
                status, _, body = api.request('POST', '/populate', [
                    self.entry('one'), second, self.entry('three')])
                self.assertEqual((status, body['status'], body['error']),
                                 (400, 400, 'missing required field: %s at '
                                  'proxy 2' % missing))
                self.assertFalse(body.get('proxies'))
                self.assertEqual(api.ok('GET', '/proxies'), {})

    def test_not_a_list_is_400(self):
        _, api = self.start_api()
        status, _, body = api.request('POST', '/populate', self.entry('one'))
        self.assertEqual(status, 400)
        self.assertTrue(body['error'].startswith('bad request body: '))
        self.assertEqual(api.ok('GET', '/proxies'), {})

    def test_start_failure_keeps_earlier_entries_and_skips_later_ones(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        _, api = self.start_api()
        for bad_listen, message in (
                ('local373', None),
                ('%s:%d' % (HOST, taken.getsockname()[1]),
                 'Address already in use')):
            with self.subTest(listen=bad_listen):
                api.ok('POST', '/reset', status=204)
                for name in api.ok('GET', '/proxies'):
                    api.ok('DELETE', '/proxies/' + name, status=204)
                status, _, body = api.request('POST', '/populate', [
                    self.entry('one'), self.entry('two', listen=bad_listen),
                    self.entry('three')])
                self.assertEqual((status, body['status']), (500, 500))
                if message:
                    self.assertIn(message, body['error'])
                self.assertEqual([p['name'] for p in body['proxies']], ['one'])
                self.assertEqual(sorted(api.ok('GET', '/proxies')), ['one'])

    def test_identical_entry_leaves_the_proxy_and_its_toxics_untouched(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        created = self.create(api, 'one', echo.port, listen='localhost:0')
        api.ok('POST', '/proxies/one/toxics', {'type': 'latency',
                                               'attributes': {'latency': 1}})
        client = self.connect(port_of(created['listen']))
        self.assertEqual(echo_once(client), b'hello')
        body = api.ok('POST', '/populate', [
            {'name': 'one', 'listen': created['listen'],
             'upstream': created['upstream']},
            self.entry('two')], status=201)
        self.assertEqual([p['name'] for p in body['proxies']], ['one', 'two'])
        one = api.ok('GET', '/proxies/one')
        self.assertEqual(one['listen'], created['listen'])
        self.assertEqual([t['name'] for t in one['toxics']],
                         ['latency_downstream'])
        self.assertEqual(echo_once(client, b'still here'), b'still here')

    def test_different_upstream_replaces_the_proxy(self):
        echo = self.tcp_echo()
        other = self.tcp_echo()
        _, api = self.start_api()
        created = self.create(api, 'one', echo.port)
        api.ok('POST', '/proxies/one/toxics', {'type': 'latency',
                                               'attributes': {'latency': 1}})
        client = self.connect(port_of(created['listen']))
        self.assertEqual(echo_once(client), b'hello')
        body = api.ok('POST', '/populate', [
            {'name': 'one', 'listen': created['listen'],
             'upstream': '%s:%d' % (HOST, other.port)}], status=201)
        replaced = api.ok('GET', '/proxies/one')
        self.assertEqual(body['proxies'], [replaced])
        self.assertEqual(replaced['upstream'], '%s:%d' % (HOST, other.port))
        self.assertEqual(replaced['toxics'], [])
        self.assertTrue(ended(client))
        self.assertEqual(echo_once(self.connect(port_of(replaced['listen']))),
                         b'hello')

    def test_entry_rejected_for_its_toxics_creates_none(self):
        # ferry takes "toxics" in populate entries: an entry that cannot
        # have its toxics is as bad as one without a name.
        _, api = self.start_api()
        status, _, body = api.request('POST', '/populate', [
            self.entry('one'),
            self.entry('two', toxics=[{'type': 'loss',
                                       'attributes': {'probability': 1}}]),
            self.entry('three')])
        self.assertEqual(status, 400, body)
        self.assertEqual(api.ok('GET', '/proxies'), {})


# -- safety -------------------------------------------------------------------

class Safety(ApiTestCase):

    def test_browser_user_agent_is_403(self):
        _, api = self.start_api()
        create = {'name': 'p', 'upstream': '%s:9' % HOST}
        for method, path, body in (('GET', '/proxies', None),
                                   ('GET', '/version', None),
                                   ('POST', '/proxies', create)):
            with self.subTest(method=method, path=path):
                status, _, answer = api.request(
                    method, path, body,
                    headers={'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64)'})
                self.assertEqual((status, answer.strip()),
                                 (403, 'User agent not allowed'))
        self.assertEqual(api.ok('GET', '/proxies'), {})
        status, _, _ = api.request('GET', '/proxies',
                                   headers={'User-Agent': 'curl/8.5.0'})
        self.assertEqual(status, 200)

    def test_body_over_1_mib_is_413_and_1_mib_is_served(self):
        _, api = self.start_api()
        entries = json.dumps([{'name': 'p', 'upstream': '%s:9' % HOST}])
        exact = entries + ' ' * (MAX_BODY - len(entries))
        self.assertEqual(len(exact), MAX_BODY)
        status, _, _ = api.request('POST', '/populate', exact + ' ')
        self.assertEqual(status, 413)
        self.assertEqual(api.ok('GET', '/proxies'), {})
        body = api.ok('POST', '/populate', exact, status=201)
        self.assertEqual([p['name'] for p in body['proxies']], ['p'])

    def test_unknown_path_is_404(self):
        _, api = self.start_api()
        for method, path in (('GET', '/nothing'), ('GET', '/proxies/p/x/y'),
                             ('POST', '/proxy'), ('DELETE', '/')):
            with self.subTest(method=method, path=path):
                status, _, body = api.request(method, path)
                self.assertEqual((status, body.strip()),
                                 (404, '404 page not found'))

    def test_refused_requests_leave_live_relays_alone(self):
        echo = self.tcp_echo()
        _, api = self.start_api()
        created = self.create(api, 'p', echo.port)
        client = self.connect(port_of(created['listen']))
        self.assertEqual(echo_once(client), b'hello')
        refused = [
            api.request('GET', '/proxies',
                        headers={'User-Agent': 'Mozilla/5.0'})[0],
            api.request('POST', '/proxies', 'x' * (MAX_BODY + 1))[0],
            api.request('POST', '/proxies', '{"name": ')[0],
            api.request('PATCH', '/proxies/p', '[1, 2')[0],
            api.request('GET', '/nothing')[0],
        ]
        self.assertEqual(refused, [403, 413, 400, 400, 404])
        for i in range(5):
            payload = b'still %d' % i
            self.assertEqual(echo_once(client, payload), payload)
        self.assertEqual(sorted(api.ok('GET', '/proxies')), ['p'])
        self.assertTrue(api.ok('GET', '/proxies/p')['enabled'])

    def test_api_port_in_use_exits_1(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        result = run(ferry('proxy', '--api', '%s:%d' % (
            HOST, taken.getsockname()[1])), timeout=20)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn('Address already in use', result.stderr)

    def test_bad_api_address_exits_2(self):
        result = run(ferry('proxy', '--api', 'bogus:xx'), timeout=20)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertEqual(result.stdout, '')


if __name__ == '__main__':
    unittest.main()
