"""ferry proxy --api, driven by Toxiproxy's own Node.js client.

`ferry proxy --api` claims to be a drop-in Toxiproxy server.  This test
installs the real client, toxiproxy-node-client 4.1.0, with npm into a
temporary folder (once for the class), then runs toxiproxy_node/drive.js
against a `ferry proxy --api 127.0.0.1:0` in front of a `ferry echo server`.
drive.js goes through the client's calls the way an application's test suite
would:

* getVersion
* createProxy
* addToxic, toxic.update and toxic.remove, each felt at once by a connection
  that stays open
* proxy.update to disable and re-enable a proxy
* populate, getAll and get
* reset
* the 409 and 404 rejections
* proxy.remove

It prints one JSON line per step, and the checks here read those lines, so a
failure names the step.

Skipped when node or npm is missing, or when npm cannot reach the package
registry; any other install failure is a failure.  Traffic stays on
127.0.0.1, every port is 0, and nothing sleeps to synchronise.  Timing
tolerances are for a loaded two-core machine running the ASan build:

* a latency toxic of L ms must show as a round trip of at least L - 10 ms, and
  under 2L - 10 ms, so a toxic applied twice is caught;
* a round trip without a toxic must be well under the smallest toxic (median
  under 150 ms, against 300 ms).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from ferrytest import TestCase, ferry, run, server_port

HOST = '127.0.0.1'
HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, 'toxiproxy_node', 'drive.js')
PACKAGE = 'toxiproxy-node-client@4.1.0'
INSTALL_TIMEOUT = 120.0
DRIVE_TIMEOUT = 50.0        # drive.js gives up by itself after 45 s

SLACK_MS = 10               # a toxic of L ms: round trip >= L - 10 ms
FAST_MS = 150               # no toxic: median round trip < 150 ms

# npm's ways of saying the registry could not be reached.
NETWORK_ERROR_RE = re.compile(
    r'\b(ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|'
    r'EHOSTUNREACH|ENETDOWN)\b')
SANITIZER_RE = re.compile(r'Sanitizer|runtime error:')
STATUS_RE = r'\bstatus code %d\b'

# The steps of drive.js, in order.
STEPS = ['getVersion', 'createProxy', 'roundTrip', 'addToxic', 'toxic.update',
         'toxic.remove', 'proxy.update(disable)', 'proxy.update(enable)',
         'populate', 'getAll', 'get(p1)', 'echo through p2', 'reset',
         'createProxy(duplicate)', 'addToxic(duplicate)', 'getToxic(unknown)',
         'proxy.remove', 'done']


def _tail(text, lines=40):
    return '\n'.join(text.splitlines()[-lines:])


def install_client(prefix):
    """npm install the client into prefix.  Raises SkipTest if npm is
    missing or the registry cannot be reached, AssertionError on any other
    failure."""
    npm = shutil.which('npm')
    if npm is None:
        raise unittest.SkipTest('npm is not installed: cannot install %s'
                                % PACKAGE)
    env = dict(os.environ)
    # Make npm give up by itself on an unreachable registry, and name the
    # error, before our own time limit (2 attempts of at most 30 s).
    env.setdefault('npm_config_fetch_timeout', '30000')
    env.setdefault('npm_config_fetch_retries', '1')
    env.setdefault('npm_config_update_notifier', 'false')
    argv = [npm, 'install', '--no-audit', '--no-fund', '--prefix', prefix,
            PACKAGE]
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, encoding='utf-8',
                                errors='backslashreplace', env=env,
                                timeout=INSTALL_TIMEOUT,
                                start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        output = '\n'.join(
            part.decode('utf-8', 'backslashreplace')
            if isinstance(part, bytes) else part
            for part in (exc.stdout or '', exc.stderr or ''))
        if NETWORK_ERROR_RE.search(output):
            raise unittest.SkipTest(
                'the npm registry cannot be reached (npm install %s gave up '
                'after %gs): %s' % (PACKAGE, INSTALL_TIMEOUT,
                                    NETWORK_ERROR_RE.search(output).group(1)))
        raise AssertionError('npm install %s did not finish within %gs:\n%s'
                             % (PACKAGE, INSTALL_TIMEOUT, _tail(output)))
    output = result.stdout + '\n' + result.stderr
    if result.returncode != 0:
        network = NETWORK_ERROR_RE.search(output)
        if network:
            raise unittest.SkipTest(
                'the npm registry cannot be reached (%s), so %s cannot be '
                'installed' % (network.group(1), PACKAGE))
        raise AssertionError('npm install %s failed with exit code %d:\n%s'
                             % (PACKAGE, result.returncode, _tail(output)))
    modules = os.path.join(prefix, 'node_modules')
    manifest = os.path.join(modules, 'toxiproxy-node-client', 'package.json')
    if not os.path.exists(manifest):
        raise AssertionError('npm install %s succeeded but left no %s:\n%s'
                             % (PACKAGE, manifest, _tail(output)))
    with open(manifest, encoding='utf-8') as f:
        version = json.load(f).get('version')
    if version != '4.1.0':
        raise AssertionError('npm installed toxiproxy-node-client %s, not '
                             '4.1.0' % version)
    return modules


class ToxiproxyNodeClient(TestCase):

    @classmethod
    def setUpClass(cls):
        cls.node = shutil.which('node')
        if cls.node is None:
            raise unittest.SkipTest('node is not installed: cannot run %s'
                                    % PACKAGE)
        tmp = tempfile.TemporaryDirectory(prefix='ferry-toxiproxy-node-')
        cls.addClassCleanup(tmp.cleanup)
        started = time.monotonic()
        cls.modules = install_client(tmp.name)
        cls.install_seconds = time.monotonic() - started

    # -- helpers --------------------------------------------------------------

    def check_clean_exit(self, proc):
        """A ferry process still running at the end must stop on SIGTERM
        with exit 0 and nothing from the sanitizers (leaks included)."""
        if proc.returncode is None:
            self.assertEqual(proc.stop(), 0, proc.describe())
        self.assertIsNone(SANITIZER_RE.search(proc.stderr_text()),
                          proc.describe())

    def start_ferry(self, args, regex):
        proc = self.spawn(ferry(*args))
        self.addCleanup(self.check_clean_exit, proc)
        return proc, server_port(proc, regex)

    def drive(self, api_url, echo_port):
        """Runs drive.js; returns its steps as {name: JSON line}.  Fails
        with the failing step if drive.js fails."""
        env = dict(os.environ)
        env['NODE_PATH'] = self.modules
        result = run([self.node, DRIVER, api_url, echo_port],
                     timeout=DRIVE_TIMEOUT, env=env, cwd=HERE)
        steps = {}
        order = []
        for line in result.stdout.splitlines():
            if not line.startswith('{'):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.fail('drive.js printed a line that is not JSON: %r\n'
                          '--- stdout ---\n%s\n--- stderr ---\n%s'
                          % (line, result.stdout, result.stderr))
            steps[record['step']] = record
            order.append(record['step'])
        failed = [r for r in steps.values() if not r.get('ok')]
        if result.returncode != 0 or failed:
            where = failed[-1] if failed else None
            self.fail('drive.js exit code %d%s\n--- stdout ---\n%s\n'
                      '--- stderr ---\n%s'
                      % (result.returncode,
                         ', failed at step %r: %s' % (where['step'],
                                                      where.get('error'))
                         if where else '',
                         result.stdout, result.stderr))
        self.assertEqual(order, STEPS, 'drive.js ran other steps than '
                         'expected:\n' + result.stdout)
        return steps

    def assertSlowed(self, record, latency):
        self.assertEqual(record['latency_ms'], latency, record)
        self.assertGreaterEqual(record['rtt_ms'], latency - SLACK_MS,
                                'the toxic did not delay the open '
                                'connection: %r' % record)
        self.assertLess(record['rtt_ms'], 2 * latency - SLACK_MS,
                             'too much delay (applied twice?): %r' % record)

    def assertFast(self, samples, record):
        self.assertLess(sorted(samples)[len(samples) // 2], FAST_MS,
                        'round trips %r ms without a toxic: %r'
                        % (samples, record))

    def assertRejected(self, message, status, record):
        self.assertRegex(message, STATUS_RE % status, record)

    # -- the test ---------------------------------------------------------

    def test_the_client_drives_proxies_and_toxics(self):
        _, echo_port = self.start_ferry(
            ['echo', 'server', '--model', 'epoll', '-p', 0],
            r'^Listening at 127\.0\.0\.1:(?P<port>\d+)\b')
        _, api_port = self.start_ferry(
            ['proxy', '--api', '%s:0' % HOST],
            r'^API listening at 127\.0\.0\.1:(?P<port>\d+)$')
        upstream = '%s:%d' % (HOST, echo_port)
        steps = self.drive('http://%s:%d' % (HOST, api_port), str(echo_port))

        with self.subTest(step='getVersion'):
            record = steps['getVersion']
            parsed = json.loads(record['raw'])
            self.assertIsInstance(parsed.get('version'), str, record)
            self.assertTrue(parsed['version'], record)

        with self.subTest(step='createProxy'):
            record = steps['createProxy']
            self.assertEqual(record['name'], 'echo')
            self.assertEqual(record['upstream'], upstream)
            self.assertIs(record['enabled'], True)
            self.assertRegex(record['listen'], r'^127\.0\.0\.1:[1-9]\d*$')
            self.assertEqual(record['listen'],
                             '%s:%d' % (HOST, record['port']))
        port = steps['createProxy']['port']
        listen = steps['createProxy']['listen']

        with self.subTest(step='roundTrip'):
            record = steps['roundTrip']
            self.assertFast(record['samples_ms'], record)

        for name, latency in (('addToxic', 300), ('toxic.update', 600)):
            with self.subTest(step=name):
                record = steps[name]
                self.assertEqual(record['toxic'], {
                    'name': 'latency_downstream', 'type': 'latency',
                    'stream': 'downstream', 'toxicity': 1,
                    'attributes': {'latency': latency, 'jitter': 0}})
                self.assertSlowed(record, latency)

        with self.subTest(step='toxic.remove'):
            record = steps['toxic.remove']
            self.assertLess(record['samples_ms'][0], 300 - SLACK_MS,
                            'the removed toxic still delayed the open '
                            'connection: %r' % record)
            self.assertFast(record['samples_ms'], record)

        with self.subTest(step='proxy.update(disable)'):
            record = steps['proxy.update(disable)']
            self.assertIs(record['enabled'], False, record)
            self.assertEqual(record['listen'], listen, record)
            self.assertIs(record['open_connection_closed'], True, record)
            self.assertEqual(record['new_connection'], 'ECONNREFUSED', record)

        with self.subTest(step='proxy.update(enable)'):
            record = steps['proxy.update(enable)']
            self.assertIs(record['enabled'], True, record)
            self.assertEqual(record['listen'], listen, record)
            self.assertLess(record['echo_rtt_ms'], FAST_MS, record)

        with self.subTest(step='populate'):
            record = steps['populate']
            proxies = record['proxies']
            self.assertEqual([p['name'] for p in proxies], ['p1', 'p2'])
            for p in proxies:
                self.assertRegex(p['listen'], r'^127\.0\.0\.1:[1-9]\d*$', p)
                self.assertEqual(p['upstream'], upstream, p)
                self.assertIs(p['enabled'], True, p)
            self.assertEqual(len({p['listen'] for p in proxies} | {listen}),
                             3, record)
        populated = {p['name']: p for p in steps['populate']['proxies']}

        with self.subTest(step='getAll'):
            record = steps['getAll']
            self.assertEqual(record['names'], ['echo', 'p1', 'p2'])
            by_name = {p['name']: p for p in record['proxies']}
            self.assertEqual(by_name['echo'], {
                'name': 'echo', 'listen': listen, 'upstream': upstream,
                'enabled': True})
            self.assertEqual(by_name['p1'], populated['p1'])
            self.assertEqual(by_name['p2'], populated['p2'])

        with self.subTest(step='get(p1)'):
            record = dict(steps['get(p1)'])
            del record['step'], record['ok']
            self.assertEqual(record, populated['p1'])

        with self.subTest(step='echo through p2'):
            record = steps['echo through p2']
            self.assertEqual('%s:%d' % (HOST, record['port']),
                             populated['p2']['listen'])
            self.assertLess(record['rtt_ms'], FAST_MS, record)

        with self.subTest(step='reset'):
            record = steps['reset']
            self.assertRejected(record['p1_toxic_after_reset'], 404, record)
            self.assertEqual(record['enabled'],
                             {'echo': True, 'p1': True, 'p2': True})
            self.assertLess(record['p1_rtt_ms'], FAST_MS, record)
            self.assertLess(record['p2_rtt_ms'], FAST_MS, record)

        with self.subTest(step='createProxy(duplicate)'):
            record = steps['createProxy(duplicate)']
            self.assertRejected(record['error'], 409, record)

        with self.subTest(step='addToxic(duplicate)'):
            record = steps['addToxic(duplicate)']
            self.assertEqual(record['first'], {
                'name': 'dup', 'type': 'latency', 'stream': 'upstream',
                'toxicity': 1, 'attributes': {'latency': 1, 'jitter': 0}})
            self.assertRejected(record['error'], 409, record)

        with self.subTest(step='getToxic(unknown)'):
            record = steps['getToxic(unknown)']
            self.assertRejected(record['error'], 404, record)

        with self.subTest(step='proxy.remove'):
            record = steps['proxy.remove']
            self.assertEqual(record['new_connection'], 'ECONNREFUSED', record)
            self.assertRejected(record['get_error'], 404, record)
            self.assertEqual(record['names'], ['p1', 'p2'])


if __name__ == '__main__':
    unittest.main()
