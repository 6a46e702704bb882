"""SIGTERM during load: every message a server model read gets its reply before it exits.

ferry bench drives the echo server; the server is stopped in the middle of
the run. The server reports the messages it read and answered; the bench
counts the replies it received: they must be equal (nothing lost in flight),
and no connection may be reset.
"""

import json
import re
import time
import unittest

import ferrytest
from echo_support import MODELS, TIMEOUT, start_server

SIZE = 64


def cpu_ticks(pid):
    """utime + stime of a process and its children so far, in clock ticks."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return sum(int(x) for x in fields[11:15])


class DrainUnderLoad(ferrytest.TestCase):
    def drain(self, model, connections):
        server, port = start_server(self, model, '--framing', 'fixed:%d' % SIZE, '--drain-timeout', '5')
        load = self.spawn(ferrytest.ferry('bench', '127.0.0.1', port, '-c', connections, '-s', SIZE,
                                          '-d', '20', '--warmup', '0', '--json'))
        # Wait for the load to be under way: the server's CPU time grows.
        start = cpu_ticks(server.pid)
        deadline = time.monotonic() + 20
        while cpu_ticks(server.pid) < start + 20 and time.monotonic() < deadline:
            if load.returncode is not None:
                break
            time.sleep(0.05)  # the interval of polling a condition, not a synchronisation
        self.assertEqual(server.stop(timeout=TIMEOUT), 0, server.describe())
        summary = re.search(r'; (\d+) messages, (\d+) bytes in, (\d+) bytes out', server.output())
        self.assertIsNotNone(summary, server.output())
        messages, bytes_out = int(summary.group(1)), int(summary.group(3))
        self.assertEqual(load.wait(timeout=40), 0, load.describe())
        end = json.loads(load.output())['end']
        self.assertGreater(end['replies'], 0)
        self.assertEqual(bytes_out, messages * SIZE)
        self.assertEqual(end['replies'], messages,
                         'the server answered %d messages but the bench received %d replies'
                         % (messages, end['replies']))
        self.assertEqual(end['errors'], 0, end)

    def test_every_model_answers_what_it_read_before_exiting(self):
        for model in MODELS:
            with self.subTest(model=model):
                self.drain(model, 1 if model == 'iterative' else 10)


if __name__ == '__main__':
    unittest.main()
