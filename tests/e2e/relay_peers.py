"""Peers that live in the test process, for the relay tests (proxy, proxy --api): a
threaded TCP server with a handler per connection, the echo handler, a UDP echo server."""

import select
import socket
import struct
import threading

HOST = '127.0.0.1'
IO_TIMEOUT = 20.0


class TcpServer:
    """A TCP server on 127.0.0.1 port 0; handler(conn) runs in a thread per
    connection.  close() stops accepting and closes every connection."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.threads = []
        self.lock = threading.Lock()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(conn,),
                                      daemon=True)
            with self.lock:
                self.conns.append(conn)
                self.threads.append(thread)
            thread.start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes accept() on Linux
        except OSError:
            pass
        self.sock.close()
        self.acceptor.join(5)
        with self.lock:
            conns, threads = list(self.conns), list(self.threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5)


def echo(conn):
    """Echo until end of stream, then pass the half-close back.  A chunk
    'DIE' makes the server reset this one connection."""
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        if data == b'DIE':
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
            return
        conn.sendall(data)


class UdpEcho:
    """A UDP echo server on 127.0.0.1 port 0 in a thread; records the
    sender address of each datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.port = self.sock.getsockname()[1]
        self.peers = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            data, peer = self.sock.recvfrom(65535)
            self.peers.append(peer)
            self.sock.sendto(data, peer)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
