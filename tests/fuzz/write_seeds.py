#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<harness>/ (run it after changing a
harness's input layout; the files it writes are committed).

A seed is a valid input that reaches one path of its parser: each harness reads its input
with FuzzedDataProvider, which takes strings from the front and numbers from the end (most
significant byte last in the file), so the numbers are written through Provider below.
"""

import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Provider:
    """Builds bytes that FuzzedDataProvider reads back in the same order."""

    def __init__(self):
        self.front = bytearray()
        self.back = bytearray()  # in the order consumed: first byte = last in the file

    def integral(self, value, low, high):
        span = high - low
        count = 0
        while span >> (8 * count):
            count += 1
        offset = value - low
        assert 0 <= offset <= span
        self.back += offset.to_bytes(count, "big") if count else b""
        return self

    def boolean(self, value):
        return self.integral(1 if value else 0, 0, 255)

    def string(self, text, max_length):
        """ConsumeRandomLengthString: a backslash doubled; a backslash and another byte end it."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        escaped = data.replace(b"\\", b"\\\\")
        self.front += escaped if len(data) >= max_length else escaped + b"\\e"
        return self

    def raw(self, data):
        self.front += data.encode() if isinstance(data, str) else bytes(data)
        return self

    def bytes(self):
        return bytes(self.front) + bytes(reversed(self.back))


def framing():
    FIXED, DELIMITER, LENGTH = 0, 1, 2

    def seed(kind, max_choice, max_value, stream, delimiter=None, seed=7, chunk=3):
        p = Provider().integral(kind, 0, 2).integral(max_choice, 0, 3)
        p.integral(max_value, *[(0, 16), (0, 70000), (0, 8), (0, 2**32 - 1)][max_choice])
        if delimiter is not None:
            p.string(delimiter, 4)
        p.integral(seed, 0, 2**32 - 1).integral(chunk, 1, 64)
        return p.raw(stream).bytes()

    def prefixed(*messages):
        return b"".join(struct.pack(">I", len(m)) + m for m in messages)

    return {
        "fixed-4": seed(FIXED, 0, 4, b"abcdefghij"),
        "fixed-1": seed(FIXED, 0, 1, b"xyz"),
        "fixed-large": seed(FIXED, 1, 1000, b"a" * 1500),
        "fixed-zero": seed(FIXED, 0, 0, b"abc"),
        "fixed-unlimited": seed(FIXED, 2, 0, b"anything"),
        "line": seed(DELIMITER, 0, 10, b"one\ntwo\n\nthree", "\n"),
        "line-too-long": seed(DELIMITER, 0, 3, b"ab\nabcdef\n", "\n"),
        "crlf": seed(DELIMITER, 0, 8, b"GET /\r\nHost: x\r\n\r\n", "\r\n"),
        "crlf-unlimited": seed(DELIMITER, 2, 0, b"no end yet", "\r\n"),
        "overlapping-delimiter": seed(DELIMITER, 0, 16, b"xaaayaaaz", "aa"),
        "four-byte-delimiter": seed(DELIMITER, 1, 100, b"a<END>b<END><EN", "<END"),
        "empty-delimiter": seed(DELIMITER, 0, 5, b"abc", ""),
        "delimiter-at-maximum": seed(DELIMITER, 0, 5, b"12345|123456|", "|"),
        "length": seed(LENGTH, 0, 16, prefixed(b"first", b"", b"third one")),
        "length-at-maximum": seed(LENGTH, 0, 5, prefixed(b"12345", b"123456")),
        "length-huge-prefix": seed(LENGTH, 1, 65536, b"\xff\xff\xff\xff" + b"x" * 10),
        "length-partial": seed(LENGTH, 3, 1 << 20, prefixed(b"whole") + b"\x00\x00\x01"),
        "length-unlimited": seed(LENGTH, 2, 3, prefixed(b"a" * 40, b"b")),
        "length-zero-max": seed(LENGTH, 0, 0, prefixed(b"", b"", b"x")),
    }


def address():
    NUMERIC, UNIX, PORT, ENDPOINT, MULTICAST, SOCKADDR = range(6)

    def seed(mode, text, *numbers):
        p = Provider().integral(mode, 0, 5)
        for value, low, high in numbers:
            p.integral(value, low, high)
        return p.raw(text).bytes()

    def ip(text, port=1060):
        return seed(NUMERIC, text, (port, 0, 65535))

    def port(text, protocol=0):
        return seed(PORT, text, (protocol, 0, 2))

    def endpoint(text, udp=False, passive=False):
        return seed(ENDPOINT, text, (int(udp), 0, 255), (int(passive), 0, 255))

    def sockaddr(data):
        p = Provider().integral(SOCKADDR, 0, 5).integral(len(data), 0, 132)
        return p.raw(data).bytes()

    v4 = struct.pack("=HH4s8x", 2, 1060, bytes([127, 0, 0, 1]))
    v6 = struct.pack("=HHI16sI", 10, 80, 0, bytes(15) + b"\x01", 3)
    unix = struct.pack("=H", 1) + b"/tmp/sock\x00"
    abstract = struct.pack("=H", 1) + b"\x00name"
    return {
        "ipv4": ip("127.0.0.1"),
        "ipv6": ip("::1"),
        "ipv6-long": ip("FE80:0:0:0:0:0:0:AB", 0),
        "ipv4-mapped": ip("::ffff:10.0.0.1"),
        "ipv4-garbage": ip("256.1.1.1"),
        "ipv4-nul": ip("127.0.0.1\x00junk"),
        "unix-path": seed(UNIX, "relative/sock"),
        "unix-abstract": seed(UNIX, "@name"),
        "unix-abstract-nul": seed(UNIX, "@a\x00b"),
        "unix-nul": seed(UNIX, "\x00name"),
        "unix-longest": seed(UNIX, "x" * 107),
        "unix-abstract-longest": seed(UNIX, "@" + "n" * 107),
        "port-number": port("1060"),
        "port-service": port("domain", 2),
        "port-http-tcp": port("http", 1),
        "port-too-big": port("65536"),
        "port-sign": port("+80"),
        "port-nul": port("http\x00x"),
        "endpoint-v4": endpoint("127.0.0.1:8080"),
        "endpoint-v6": endpoint("[::1]:53", udp=True),
        "endpoint-empty-host": endpoint(":0", passive=True),
        "endpoint-broadcast": endpoint("<broadcast>:9", udp=True),
        "endpoint-no-port": endpoint("127.0.0.1"),
        "endpoint-unbracketed-v6": endpoint("::1:80"),
        "endpoint-service": endpoint("127.0.0.1:http"),
        "endpoint-port-zero": endpoint("127.0.0.1:0"),
        "multicast-lo": seed(MULTICAST, "lo"),
        "multicast-address": seed(MULTICAST, "127.0.0.1"),
        "multicast-v6": seed(MULTICAST, "::1"),
        "multicast-name": seed(MULTICAST, "eth9"),
        "multicast-alias": seed(MULTICAST, "lo:1"),
        "multicast-nul": seed(MULTICAST, "lo\x00x"),
        "endpoint-nul": endpoint("127.0.0.1\x00x:80"),
        "sockaddr-v4": sockaddr(v4),
        "sockaddr-v6": sockaddr(v6),
        "sockaddr-unix": sockaddr(unix),
        "sockaddr-abstract": sockaddr(abstract),
        "sockaddr-unnamed": sockaddr(struct.pack("=H", 1)),
        "sockaddr-short": sockaddr(b"\x02"),
        "sockaddr-empty": sockaddr(b""),
    }


def toxic():
    def tcp(spec, pieces, end=1, both=False):
        """A TCP run: `pieces` in one batch each, `end` 0 none, 1 eof, 2 close."""
        p = Provider()
        if both:
            p.boolean(True)
        p.integral(42, 0, 2**64 - 1).integral(len(pieces), 1, 16)
        for i, data in enumerate(pieces):
            p.integral(1, 0, 4).integral(5_000_000, 0, 2_000_000_000).string(data, 512)
            if i == len(pieces) - 1:
                p.integral(end, 0, 2)
        return spec.encode() + b"\n" + p.bytes()

    def udp(spec, datagrams, drop_first=False, both=False):
        p = Provider()
        if both:
            p.boolean(False)
        p.integral(42, 0, 2**64 - 1).integral(len(datagrams), 0, 64)
        for d in datagrams:
            p.string(d, 64).integral(10_000_000, 0, 200_000_000)
        p.boolean(drop_first)
        return spec.encode() + b"\n" + p.bytes()

    stream = ["hello ", "world", "x" * 300]
    datagrams = ["one", "two", "", "three", "two"]
    return {
        "tcp-latency": tcp("latency:down:latency=100,jitter=10", stream, both=True),
        "tcp-bandwidth": tcp("bandwidth:up:rate=1", stream, 2, both=True),
        "tcp-slicer": tcp("slicer:down:average_size=3,size_variation=2,delay=10", stream),
        "tcp-limit-data": tcp("limit_data:down:bytes=8", stream),
        "tcp-limit-zero": tcp("limit_data:up:bytes=0", stream, 0),
        "tcp-timeout": tcp("timeout:down:timeout=100", stream),
        "tcp-reset-peer": tcp("reset_peer:up:timeout=5", stream),
        "tcp-slow-close": tcp("slow_close:downstream:delay=50", stream, 2),
        "tcp-noop": tcp("noop:both", stream, both=True),
        "udp-loss": udp("loss:down:probability=0.3", datagrams),
        "udp-loss-burst": udp("loss:up:p=0.2,r=0.5,good=0.01,bad=0.9", datagrams),
        "udp-duplicate": udp("duplicate:both:probability=0.5", datagrams),
        "udp-reorder": udp("reorder:down:probability=0.5,hold=20", datagrams),
        "udp-reorder-dropped": udp("reorder:down:probability=1", datagrams, drop_first=True),
        "udp-latency": udp("latency:up:latency=30,jitter=30", datagrams, both=True),
        "udp-bandwidth": udp("bandwidth:down:rate=0.001", datagrams, both=True),
        "udp-corrupt": udp("corrupt:DOWN:probability=1,toxicity=0.5", datagrams),
        "bad-type": b"lag:down:latency=1\n",
        "bad-key": b"latency:down:latency=1,speed=3\n",
        "bad-number": b"latency:down:latency=1e999\n",
        "twice": b"latency:down:latency=1,latency=2\n",
        "no-direction": b"latency\n",
    }


def toxiproxy_json():
    docs = {
        "config-list": [{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432",
                         "enabled": True}],
        "config-routes": {"routes": [{"upstream": "127.0.0.1:53", "protocol": "udp",
                                      "toxics": ["loss:down:probability=0.5"]}]},
        "proxy-with-toxics": {"name": "web", "upstream": "localhost:80", "toxics": [
            {"type": "latency", "stream": "upstream", "attributes": {"latency": 100,
                                                                     "jitter": 5}},
            {"type": "slicer", "direction": "both", "toxicity": 0.5,
             "attributes": {"average_size": 10, "size_variation": 3, "delay": 1.5}},
            "limit_data:down:bytes=100"]},
        "populate": [{"name": "a", "upstream": "127.0.0.1:1"},
                     {"name": "b", "upstream": "127.0.0.1:2", "enabled": False},
                     {"name": "c", "listen": ":0", "upstream": "127.0.0.1:3", "protocol": "tcp"}],
        "toxic": {"name": "lat", "type": "latency", "stream": "downstream", "toxicity": 1,
                  "attributes": {"latency": 2000}},
        "toxic-missing-attribute": {"type": "bandwidth"},
        "toxic-unknown-attribute": {"type": "timeout", "attributes": {"timeout": 1, "x": 2}},
        "toxic-udp": {"type": "reorder", "attributes": {"probability": 0.1, "hold": 0.5}},
        "toxic-burst-loss": {"type": "loss", "attributes": {"p": 0.1, "r": 0.9}},
        "toxic-string": "reset_peer:up:timeout=10",
        "change": {"toxicity": 0.25, "attributes": {"latency": 5}},
        "proxy-change": {"listen": "127.0.0.1:9000", "enabled": False},
        "wrong-types": {"name": 1, "upstream": ["x"], "enabled": "yes", "toxics": {}},
        "bad-stream": {"type": "latency", "stream": "sideways"},
        "big-numbers": {"type": "limit_data", "attributes": {"bytes": 1e300}, "toxicity": -0.0},
        "null-fields": {"name": None, "upstream": "h:1", "listen": None, "toxics": None},
    }
    seeds = {name: json.dumps(doc).encode() for name, doc in docs.items()}
    seeds["number-overflow"] = b'[{"name": "a", "upstream": "h:1", "toxics": [{"type": "latency", ' \
        b'"attributes": {"latency": 1e99999}}]}]'
    seeds["not-json"] = b"{\"name\": "
    seeds["empty"] = b""
    seeds["unicode-name"] = '{"name": "\\u00e9\\ud83d\\ude00", "upstream": "x:1"}'.encode()
    return seeds


def reliable_udp():
    def seed(reply, sequence, tries, attempt, other):
        p = Provider().integral(sequence, 0, 2**32 - 1).integral(tries, 0, 255)
        p.integral(attempt, 0, 256).integral(other, 0, 2**32 - 1)
        return p.raw(reply).bytes()

    def reply(sequence, attempt, payload):
        return struct.pack(">I", ((sequence & 0xFFFFFF) << 8) | (attempt & 0xFF)) + payload

    return {
        "first-try": seed(reply(1, 1, b"Your data was 23 bytes long"), 1, 1, 1, 2),
        "late-try": seed(reply(7, 3, b"ok"), 7, 5, 3, 6),
        "not-sent-yet": seed(reply(7, 6, b"ok"), 7, 5, 6, 8),
        "stale-request": seed(reply(6, 1, b"old"), 7, 1, 1, 6),
        "try-zero": seed(reply(7, 0, b""), 7, 3, 0, 1),
        "last-try": seed(reply(0xFFFFFF, 255, b"x"), 0xFFFFFF, 255, 255, 0),
        "wrapped-sequence": seed(reply(0, 1, b"x"), 0x1000000, 1, 1, 0xFFFFFF),
        "short": seed(b"\x00\x01", 1, 1, 1, 2),
        "exactly-an-id": seed(b"\x00\x00\x01\x01", 1, 1, 1, 2),
    }


def api():
    def requests(*items):
        return "\n===\n".join(items).encode("latin-1")  # one byte per character

    create = 'POST /proxies\n\n{"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}'
    create_udp = ('POST /proxies\n\n{"name": "u", "upstream": "127.0.0.1:53", "protocol": "udp", '
                  '"toxics": [{"type": "loss", "attributes": {"probability": 0.5}}]}')
    return {
        "version": requests("GET /version"),
        "list-empty": requests("GET /proxies"),
        "create-get-delete": requests(create, "GET /proxies/p", "DELETE /proxies/p",
                                      "GET /proxies/p"),
        "create-twice": requests(create, create),
        "create-udp": requests(create_udp, "GET /proxies/u/toxics", "GET /metrics"),
        "toxic-lifecycle": requests(
            create,
            'POST /proxies/p/toxics\n\n{"name": "lat", "type": "latency", '
            '"attributes": {"latency": 10}}',
            "GET /proxies/p/toxics/lat",
            'PATCH /proxies/p/toxics/lat\n\n{"toxicity": 0.5, "attributes": {"jitter": 3}}',
            "DELETE /proxies/p/toxics/lat",
            "DELETE /proxies/p/toxics/lat"),
        "toxic-wrong-protocol": requests(
            create, 'POST /proxies/p/toxics\n\n{"type": "corrupt", "attributes": '
                    '{"probability": 1}}'),
        "update-proxy": requests(create, 'POST /proxies/p\n\n{"enabled": false}',
                                 'PATCH /proxies/p\n\n{"enabled": true, "listen": "127.0.0.1:0"}'),
        "populate": requests(
            'POST /populate\n\n[{"name": "a", "upstream": "127.0.0.1:1"}, '
            '{"name": "b", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2", '
            '"toxics": ["timeout:up:timeout=1"]}]',
            "GET /proxies", "POST /reset", "GET /metrics"),
        "populate-bad-entry": requests(
            'POST /populate\n\n[{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b"}]'),
        "populate-not-a-list": requests('POST /populate\n\n{"name": "a"}'),
        "bad-json": requests('POST /proxies\n\n{"name": '),
        "empty-post": requests("POST /proxies"),
        "unbindable-listen": requests(
            'POST /proxies\n\n{"name": "x", "listen": "192.0.2.1:1", "upstream": "127.0.0.1:9"}'),
        "name-lookup": requests(
            'POST /proxies\n\n{"name": "x", "listen": "localhost:0", "upstream": "nosuch.invalid:9"}'),
        "browser": requests("GET /proxies\nUser-Agent: Mozilla/5.0\n"),
        "not-found": requests("GET /nowhere", "PUT /proxies"),
        "encoded-name": requests(create, "GET /proxies/%70", "DELETE /proxies/%FF%00"),
        "body-number-overflow": requests('POST /proxies\n\n{"name": "a", "upstream": "127.0.0.1:1", '
                                         '"toxics": [{"type": "latency", "attributes": '
                                         '{"latency": 1e99999}}]}'),
        "body-not-utf8": requests('POST /proxies\n\n{"name": "\xdfx", "upstream": "127.0.0.1:1"}'),
    }


def main():
    for harness, seeds in [("framing", framing()), ("address", address()), ("toxic", toxic()),
                           ("toxiproxy_json", toxiproxy_json()), ("reliable_udp", reliable_udp()),
                           ("api", api())]:
        folder = os.path.join(HERE, "corpus", harness)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, data in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        print("%-15s %d seeds" % (harness, len(seeds)))


if __name__ == "__main__":
    main()
