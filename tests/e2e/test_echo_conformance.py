"""Every server model of `ferry echo` passes the same conformance tests."""

import random
import socket
import struct
import threading
import unittest

import ferrytest
from echo_support import (MODELS, UDP_MODELS, TIMEOUT, connect, exchange_concurrently, frame,
                          random_payload, recv_exactly, recv_until_eof, start_server)


class Conformance:
    """Mixed into one TestCase per model (MODEL set by the class factory)."""
    MODEL = None
    SERVER_ARGS = ()  # what every server of the class is started with, after the model

    def test_many_clients_at_once_each_get_their_own_bytes_back(self):
        proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS)
        failures = []

        def client(seed):
            rng = random.Random(seed)
            try:
                with connect(port) as s:
                    for _ in range(30):
                        payload = random_payload(rng, rng.randint(1, 3000))
                        s.sendall(payload)
                        if recv_exactly(s, len(payload)) != payload:
                            failures.append('client %d: wrong echo' % seed)
                            return
            except Exception as exc:
                failures.append('client %d: %r' % (seed, exc))

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(failures, [])

    def test_every_framing_echoes_whole_messages(self):
        rng = random.Random(7)
        for framing in ['raw', 'line', 'fixed:16', 'length']:
            with self.subTest(framing=framing):
                proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS, '--framing', framing)
                with connect(port) as s:
                    messages = [frame(framing, random_payload(rng, rng.randint(1, 16),
                                                              printable=framing == 'line'))
                                for _ in range(50)]
                    # All at once, then one byte at a time: boundaries must not matter.
                    wire = b''.join(messages)
                    s.sendall(wire)
                    self.assertEqual(recv_exactly(s, len(wire)), wire)
                    for byte in messages[0]:
                        s.sendall(bytes([byte]))
                    self.assertEqual(recv_exactly(s, len(messages[0])), messages[0])
                proc.stop()

    def test_one_byte_and_four_megabyte_messages(self):
        proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS)
        with connect(port) as s:
            s.sendall(b'x')
            self.assertEqual(recv_exactly(s, 1), b'x')
            big = random.Random(3).randbytes(4 << 20)
            self.assertEqual(exchange_concurrently(s, big), big)

    def test_half_close_gets_every_echo_then_end_of_stream(self):
        proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS, '--framing', 'line')
        with connect(port) as s:
            s.sendall(b'one\ntwo\nthree\n')
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b'one\ntwo\nthree\n')

    def test_a_client_that_vanishes_does_not_disturb_the_next(self):
        proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS)
        s = connect(port)
        s.sendall(b'half a conversation')
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()  # RST, with the echo possibly in flight
        with connect(port) as s2:
            s2.sendall(b'still there?')
            self.assertEqual(recv_exactly(s2, 12), b'still there?')

    def test_sigterm_stops_the_server_with_exit_zero_and_a_summary(self):
        proc, port = start_server(self, self.MODEL, *self.SERVER_ARGS)
        with connect(port) as s:
            s.sendall(b'ping')
            self.assertEqual(recv_exactly(s, 4), b'ping')
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'Stopped: \d+ connections accepted')


for _model in MODELS:
    _name = 'Echo_%s' % _model
    globals()[_name] = type(_name, (Conformance, ferrytest.TestCase), {'MODEL': _model})


class Echo_epoll_threads(Conformance, ferrytest.TestCase):
    """Three event loops on three threads, each with its own SO_REUSEPORT listener."""
    MODEL = 'epoll'
    SERVER_ARGS = ('--threads', '3')


class UdpEcho(ferrytest.TestCase):
    def test_every_udp_model_echoes_datagrams_with_their_boundaries(self):
        for model in UDP_MODELS:
            with self.subTest(model=model):
                proc, port = start_server(self, model, '-u')
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(TIMEOUT)
                    for size in [1, 100, 1400, 9000, 65000]:
                        payload = random.Random(size).randbytes(size)
                        s.sendto(payload, ('127.0.0.1', port))
                        data, where = s.recvfrom(65535)
                        self.assertEqual(data, payload)
                        self.assertEqual(where, ('127.0.0.1', port))
                result = ferrytest.run(ferrytest.ferry('echo', 'client', '-u', '-p', port,
                                                       '--count', '100', '--size', '200'))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn('Echoed 100 of 100 datagrams correctly', result.stdout)
                self.assertEqual(proc.stop(timeout=TIMEOUT), 0)

    def test_stream_only_models_refuse_udp_as_a_usage_error(self):
        result = ferrytest.run(ferrytest.ferry('echo', 'server', '-u', '--model', 'fork'))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)


class UnixEcho(ferrytest.TestCase):
    def test_unix_stream_socket_echo_with_the_ferry_client(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = tmp + '/echo.sock'
            for model in ['thread', 'epoll']:
                with self.subTest(model=model):
                    proc = self.spawn(ferrytest.ferry('echo', 'server', '-U', path, '--model', model,
                                                      '--framing', 'length'))
                    proc.expect(r'^Listening at ' + path, timeout=TIMEOUT)
                    result = ferrytest.run(ferrytest.ferry('echo', 'client', '-U', path, '--framing',
                                                           'length', '--count', '200', '--size', '300'))
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertIn('Echoed 200 of 200 messages correctly', result.stdout)
                    self.assertEqual(proc.stop(timeout=TIMEOUT), 0)


class EchoClient(ferrytest.TestCase):
    def test_interactive_client_prints_each_echo(self):
        proc, port = start_server(self, 'epoll', '--framing', 'line')
        result = ferrytest.run(ferrytest.ferry('echo', 'client', '-p', port, '--framing', 'line'),
                               input='hello\nworld\n')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ['hello', 'world'])

    def test_bad_framing_and_refused_server(self):
        result = ferrytest.run(ferrytest.ferry('echo', 'server', '--framing', 'fixed:0'))
        self.assertEqual(result.returncode, 2)
        # A port nothing listens on: bind one and do not listen.
        with socket.socket() as placeholder:
            placeholder.bind(('127.0.0.1', 0))
            port = placeholder.getsockname()[1]
            result = ferrytest.run(ferrytest.ferry('echo', 'client', '-p', port, '--count', '1'))
        self.assertEqual(result.returncode, 1)
        self.assertIn('Connection refused', result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)


if __name__ == '__main__':
    unittest.main()
