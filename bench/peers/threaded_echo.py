"""Python socketserver.ThreadingTCPServer echo peer for bench/compare. Usage: threaded_echo.py PORT"""
import socket
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096


with Server(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 0), Echo) as server:
    print('Listening at 127.0.0.1:%d' % server.server_address[1], flush=True)
    server.serve_forever()
