"""ferry bench against echo servers written here, in Python.

Each server runs as its own process on 127.0.0.1 port 0 and prints
``Listening at 127.0.0.1:PORT``; the test reads the port back.  Modes:

* ``tcp``: an asyncio echo server (it prints ``echoing`` when the first
  bytes arrive);
* ``tcp-slow``: echoes, but holds every 10th message of each connection for
  50 ms: a known distribution for the percentiles;
* ``tcp-close``: closes every other connection (in accept order) instead of
  answering its 20th message;
* ``udp``: a UDP echo loop;
* ``udp-drop``: a UDP echo loop that drops every other datagram;
* ``udp-flows``: a UDP echo loop that prints ``flows N`` each time a new
  peer address (a flow) sends to it;
* ``udp-sockperf``, ``tcp-sockperf``: answer as ``sockperf server`` does,
  only to messages that start with sockperf's header (a ping-pong request
  of the message's own size), with the header's client flag cleared; any
  other message prints ``bad header`` (TCP: and closes the connection).
"""

import json
import re
import resource
import socket
import unittest

from ferrytest import PY, TestCase, ferry, run, server_port

SERVER = r'''
import asyncio, itertools, resource, socket, sys

mode = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def announce(port):
    print('Listening at 127.0.0.1:%d' % port, flush=True)


def sockperf_reply(message):
    """sockperf's answer to a ping-pong request, or None for anything else:
    8-byte sequence number, 16-bit flags (client 1 | ping-pong 2), 32-bit size."""
    flags = int.from_bytes(message[8:10], 'big')
    if len(message) < 14 or flags != 3 or int.from_bytes(message[10:14], 'big') != len(message):
        return None
    return message[:8] + (2).to_bytes(2, 'big') + message[10:]


if mode.startswith('udp'):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    announce(sock.getsockname()[1])
    peers = set()
    for n in itertools.count():
        data, peer = sock.recvfrom(65535)
        if mode == 'udp-drop' and n % 2 == 1:
            continue
        if mode == 'udp-flows' and peer not in peers:
            peers.add(peer)
            print('flows %d' % len(peers), flush=True)
        if mode == 'udp-sockperf':
            data = sockperf_reply(data)
            if data is None:
                print('bad header', flush=True)
                continue
        sock.sendto(data, peer)

accepted = itertools.count()
first = [True]


async def echo(reader, writer):
    index = next(accepted)
    writer.transport.get_extra_info('socket').setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b''
    messages = 0
    try:
        while mode == 'tcp-sockperf':
            header = await reader.readexactly(14)
            rest = await reader.readexactly(max(0, int.from_bytes(header[10:14], 'big') - 14))
            reply = sockperf_reply(header + rest)
            if reply is None:
                print('bad header', flush=True)
                return
            writer.write(reply)
            await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if first[0]:
                first[0] = False
                print('echoing', flush=True)
            if mode == 'tcp':
                writer.write(data)
                await writer.drain()
                continue
            pending += data
            while len(pending) >= size:
                message, pending = pending[:size], pending[size:]
                messages += 1
                if mode == 'tcp-close' and index % 2 == 0 and messages == 20:
                    return
                if mode == 'tcp-slow' and messages % 10 == 0:
                    await asyncio.sleep(0.05)
                writer.write(message)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(echo, '127.0.0.1', 0, backlog=4096)
    announce(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()

asyncio.run(main())
'''


def raise_own_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def field(text, name):
    """The number after ``name`` in ferry bench's table."""
    match = re.search(r'^  %s\s+(\S+)' % re.escape(name), text, re.M)
    if not match:
        raise AssertionError('no %r line in:\n%s' % (name, text))
    return float(match.group(1))


class BenchTest(TestCase):

    def server(self, mode, *args):
        return server_port(self.server_proc(mode, *args))

    def server_proc(self, mode, *args):
        return self.spawn([PY, '-c', SERVER, mode] + [str(a) for a in args])

    def bench(self, port, *args, timeout=30):
        return run(ferry('bench', '127.0.0.1', port, *args), timeout=timeout)

    def bench_json(self, port, *args, timeout=30):
        result = self.bench(port, '--json', *args, timeout=timeout)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        return json.loads(result.stdout)

    def assert_percentiles_ordered(self, end):
        rt = end['round_trip_us']
        order = [rt['min'], rt['p50'], rt['p90'], rt['p99'], rt['p99.9'],
                 rt['max']]
        self.assertEqual(order, sorted(order), rt)
        self.assertGreater(rt['min'], 0, rt)


class Tcp(BenchTest):

    def test_ping_pong_counts_every_reply(self):
        port = self.server('tcp')
        result = self.bench(port, '-c', 4, '--requests', 2000, '--warmup', 0)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout
        self.assertIn('4 connections', out)
        self.assertEqual(field(out, 'replies'), 2000, out)
        self.assertEqual(field(out, 'sent'), 2000, out)
        self.assertEqual(field(out, 'lost'), 0, out)
        self.assertGreater(field(out, 'requests/s'), 0, out)
        self.assertIn('round-trip p99.9', out)
        self.assertIn('client CPU/request', out)
        self.assertEqual(result.stderr, '')

    def test_json_has_start_intervals_end(self):
        port = self.server('tcp')
        report = self.bench_json(port, '-c', 4, '--duration', 1.5,
                                 '--warmup', 0.2)
        self.assertEqual(list(report), ['start', 'intervals', 'end'])
        test = report['start']['test_start']
        self.assertEqual((test['protocol'], test['connections'], test['size'],
                          test['mode']), ('TCP', 4, 64, 'closed-loop'))
        self.assertEqual(report['start']['connecting_to']['port'], port)
        intervals = report['intervals']
        self.assertEqual([(i['start'], i['end']) for i in intervals],
                         [(0.0, 1.0), (1.0, 1.5)])
        for interval in intervals:
            self.assertGreater(interval['requests'], 0, interval)
            self.assertLessEqual(interval['p50_us'], interval['p99_us'])
        end = report['end']
        self.assertEqual(end['seconds'], 1.5)
        self.assertEqual(end['replies'], sum(i['requests'] for i in intervals))
        self.assertEqual(end['sent'], end['replies'] + end['lost'])
        self.assertEqual(end['lost'], 0)
        self.assertEqual(end['bytes'], end['replies'] * 64)
        self.assert_percentiles_ordered(end)
        self.assertGreater(end['cpu']['client_us_per_request'], 0)
        self.assertIsNone(end['cpu']['server_us_per_request'])

    def test_server_cpu_with_server_pid(self):
        server = self.spawn([PY, '-c', SERVER, 'tcp'])
        port = server_port(server)
        report = self.bench_json(port, '--server-pid', server.pid,
                                 '--duration', 1, '--warmup', 0)
        cpu = report['end']['cpu']
        # Python's asyncio spends tens of microseconds per request; /proc
        # counts in 10 ms ticks, so only "some" can be asserted.
        self.assertIsNotNone(cpu['server_us_per_request'], report['end'])
        self.assertGreater(cpu['server_us_per_request'], 0, cpu)
        self.assertEqual(report['start']['test_start']['server_pid'],
                         server.pid)

    def test_pipeline_keeps_many_in_flight(self):
        port = self.server('tcp')
        report = self.bench_json(port, '-c', 2, '--pipeline', 8,
                                 '--requests', 4000, '--warmup', 0)
        self.assertEqual(report['start']['test_start']['pipeline'], 8)
        self.assertEqual(report['end']['replies'], 4000)
        self.assertEqual(report['end']['sent'], 4000)
        self.assert_percentiles_ordered(report['end'])

    def test_rate_is_open_loop_on_a_schedule(self):
        port = self.server('tcp')
        report = self.bench_json(port, '-c', 2, '--rate', 500,
                                 '--duration', 2, '--warmup', 0)
        end = report['end']
        self.assertEqual(report['start']['test_start']['mode'], 'open-loop')
        self.assertAlmostEqual(end['sent'], 1000, delta=200)
        self.assertAlmostEqual(end['replies'], 1000, delta=200)
        self.assertAlmostEqual(end['rps'], 500, delta=100)
        # Every request of the schedule (500/s for 2 s) was sent or counted as
        # behind it: none were sent early or forgotten. On a quiet machine none
        # are behind; on a loaded one a reply may come after the next request
        # of its connection was due.
        self.assertAlmostEqual(end['sent'] + end['behind_schedule'], 1000, delta=2)

    def test_known_distribution_gives_known_percentiles(self):
        # One message in ten waits 50 ms at the server: of 100 round trips,
        # 90 are fast and 10 take 50 ms, so p50 and p90 are fast and p99
        # and max are the slow ones, within the histogram's 1 %.
        port = self.server('tcp-slow')
        report = self.bench_json(port, '--requests', 100, '--warmup', 0)
        rt = report['end']['round_trip_us']
        self.assertEqual(report['end']['replies'], 100)
        self.assertLess(rt['p50'], 20000, rt)
        self.assertLess(rt['p90'], 20000, rt)
        self.assertGreaterEqual(rt['p99'], 50000 * 0.99, rt)
        self.assertGreaterEqual(rt['max'], 50000, rt)
        self.assertLessEqual(rt['p99'], rt['max'])
        self.assertGreaterEqual(rt['mean'], 5000, rt)

    def test_server_closing_connections_loses_their_requests(self):
        port = self.server('tcp-close')
        result = self.bench(port, '-c', 4, '--duration', 1, '--warmup', 0)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        out = result.stdout
        self.assertEqual(field(out, 'lost'), 2, out)
        self.assertGreater(field(out, 'replies'), 2 * 19, out)
        self.assertEqual(field(out, 'sent'),
                         field(out, 'replies') + field(out, 'lost'), out)
        self.assertRegex(out, r'note: the server closed 2 of 4 connections '
                              r'during the run; 2 requests in flight on '
                              r'them are counted as lost')

    def test_server_closing_every_connection_ends_the_run(self):
        port = self.server('tcp-close')
        report = self.bench_json(port, '-c', 1, '--duration', 20,
                                 '--warmup', 0, timeout=15)
        end = report['end']
        self.assertEqual((end['replies'], end['lost'], end['sent']),
                         (19, 1, 20))
        self.assertEqual(end['connections_closed'], 1)
        self.assertLess(end['seconds'], 5)

    def test_sigterm_ends_the_run_with_a_report(self):
        server = self.spawn([PY, '-c', SERVER, 'tcp'])
        port = server_port(server)
        bench = self.spawn(ferry('bench', '127.0.0.1', port, '--duration', 60,
                                 '--warmup', 0, '--json'))
        # Requests flow only once every connection is made and the signals
        # are caught, so the server's first bytes say it is time.
        server.expect('^echoing$')
        self.assertEqual(bench.stop(timeout=10), 0, bench.describe())
        end = json.loads(bench.output())['end']
        self.assertTrue(end['interrupted'])
        self.assertGreater(end['replies'], 0)
        self.assertLess(end['seconds'], 30)
        self.assertEqual(end['sent'], end['replies'] + end['lost'])
        self.assertEqual(end['lost'], 0)

    def test_a_thousand_connections(self):
        raise_own_fd_limit()
        port = self.server('tcp')
        report = self.bench_json(port, '-c', 1000, '--requests', 5000,
                                 '--warmup', 0, timeout=60)
        self.assertEqual(report['start']['connected']['connections'], 1000)
        self.assertEqual(report['end']['replies'], 5000)
        self.assertEqual(report['end']['lost'], 0)

    def test_threads_share_the_connections(self):
        port = self.server('tcp')
        report = self.bench_json(port, '-c', 4, '--threads', 2,
                                 '--requests', 3001, '--warmup', 0)
        self.assertEqual(report['end']['replies'], 3001)
        self.assertEqual(report['end']['sent'], 3001)


class Udp(BenchTest):

    def test_udp_echo(self):
        port = self.server('udp')
        report = self.bench_json(port, '-u', '-c', 4, '--requests', 1000,
                                 '--warmup', 0)
        end = report['end']
        self.assertEqual(report['start']['test_start']['protocol'], 'UDP')
        self.assertEqual(end['replies'], 1000)
        self.assertEqual(end['lost'], 0)
        self.assertEqual(end['sent'], 1000)
        self.assert_percentiles_ordered(end)

    def test_one_udp_socket_counts_losses_while_blocking_in_recv(self):
        # One socket, one datagram in flight: the loop blocks in recv, in
        # slices, and still gives up on each unanswered datagram at its
        # timeout and sends the next.
        port = self.server('udp-drop')
        report = self.bench_json(port, '-u', '--requests', 40,
                                 '--udp-timeout', 20, '--warmup', 0)
        end = report['end']
        self.assertEqual(end['replies'], 40)
        self.assertGreater(end['lost'], 5)
        self.assertEqual(end['sent'], end['replies'] + end['lost'])
        self.assertEqual(end['stray'], 0)

    def test_udp_sockets_are_separate_flows(self):
        # -c 8 with -u: eight sockets, each its own source port (a flow),
        # shared by two threads, all answered.
        proc = self.server_proc('udp-flows')
        port = server_port(proc)
        report = self.bench_json(port, '-u', '-c', 8, '--threads', 2,
                                 '--requests', 800, '--warmup', 0)
        self.assertEqual(report['start']['connected']['connections'], 8)
        self.assertEqual(report['end']['replies'], 800)
        self.assertEqual(report['end']['lost'], 0)
        proc.expect(r'^flows 8$')

    def test_sockperf_header_udp(self):
        # A server that answers only sockperf's ping-pong requests answers
        # every request of --sockperf, the tag riding in the sequence number.
        port = self.server('udp-sockperf')
        report = self.bench_json(port, '-u', '-c', 2, '--sockperf',
                                 '--requests', 500, '--warmup', 0)
        self.assertTrue(report['start']['test_start']['sockperf'])
        self.assertEqual(report['end']['replies'], 500)
        self.assertEqual(report['end']['lost'], 0)
        self.assertEqual(report['end']['stray'], 0)

    def test_sockperf_header_tcp_survives_short_sends(self):
        # 4 requests of 100,000 B in flight on each connection fill the
        # socket buffers, so sends are cut short mid-request; the next one
        # goes on from there and every header is still where sockperf
        # reads it (a misplaced one closes the connection).
        proc = self.server_proc('tcp-sockperf')
        port = server_port(proc)
        report = self.bench_json(port, '-c', 2, '-s', 100000, '--pipeline', 4,
                                 '--sockperf', '--requests', 400,
                                 '--warmup', 0, timeout=60)
        end = report['end']
        self.assertEqual(end['replies'], 400)
        self.assertEqual(end['lost'], 0)
        self.assertEqual(end['connections_closed'], 0)
        self.assertNotIn('bad header', proc.output())

    def test_lost_datagrams_are_counted_and_replaced(self):
        port = self.server('udp-drop')
        report = self.bench_json(port, '-u', '-c', 2, '--requests', 60,
                                 '--udp-timeout', 20, '--warmup', 0)
        end = report['end']
        self.assertEqual(end['replies'], 60)
        self.assertGreater(end['lost'], 10)
        self.assertEqual(end['sent'], end['replies'] + end['lost'])
        self.assertIn('a datagram unanswered after 20 ms is counted as lost',
                      end['notes'])


class Failures(BenchTest):

    def test_connection_refused_is_one_line_and_exit_1(self):
        # A bound socket that does not listen refuses connections, and holds
        # the port so that nothing else can take it meanwhile.
        with socket.socket() as holder:
            holder.bind(('127.0.0.1', 0))
            port = holder.getsockname()[1]
            result = self.bench(port, '-c', 3, '--duration', 1)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertEqual(result.stdout, '')
        self.assertEqual(
            result.stderr,
            'ferry: connect to 127.0.0.1:%d: Connection refused '
            '(0 of 3 connected)\n' % port)

    def test_bad_usage_is_one_line_and_exit_2(self):
        for args in (['0'], ['5000', '-c', '0'], ['5000', '--size', '0'],
                     ['nosuchservice'], ['70000'],
                     ['5000', '-u', '--pipeline', '4'],
                     ['5000', '-c', '2', '--threads', '3'],
                     ['5000', '--udp-timeout', '50'],
                     ['5000', '--duration', '0'],
                     ['5000', '--rate', '-5'],
                     ['5000', '-u', '--size', '70000'],
                     ['5000', '--sockperf', '--size', '13'],
                     ['5000', '--bogus']):
            with self.subTest(args=args):
                result = run(ferry('bench', '127.0.0.1', *args), timeout=10)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, '')
                self.assertEqual(len(result.stderr.splitlines()), 1,
                                 result.stderr)
                self.assertTrue(result.stderr.startswith('ferry: '),
                                result.stderr)

    def test_help_explains_the_measures(self):
        result = run(ferry('bench', '--help'), timeout=10)
        self.assertEqual(result.returncode, 0)
        for text in ('Example: ferry bench', 'coordinated omission',
                     '--pipeline', '--rate', '--udp-timeout', '--json',
                     '--server-pid', 'round-trip'):
            self.assertIn(text, result.stdout)


if __name__ == '__main__':
    unittest.main()
