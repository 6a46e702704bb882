#!/usr/bin/env python3
# A rendition of the textbook's tcp_sixteen.py ("Foundations of Python Network
# Programming", chapter 3): a TCP server and client that exchange exactly
# sixteen octets each way, with the classic recvall() helper.
#
# Written for ferry's interoperability tests from SPEC.md section 2.
# Additions: port 0 works (the server's first line is its bound address),
# prints are flushed, and the client takes --timeout because the original
# waits forever for a reply.

import argparse, socket


def recvall(sock, length):
    data = b''
    while len(data) < length:
        more = sock.recv(length - len(data))
        if not more:
            raise EOFError('was expecting %d bytes but only received'
                           ' %d bytes before the socket closed'
                           % (length, len(data)))
        data += more
    return data


def server(interface, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((interface, port))
    sock.listen(1)
    print('Listening at', sock.getsockname(), flush=True)
    while True:
        print('Waiting to accept a new connection', flush=True)
        sc, sockname = sock.accept()
        print('We have accepted a connection from', sockname, flush=True)
        print('  Socket name:', sc.getsockname(), flush=True)
        print('  Socket peer:', sc.getpeername(), flush=True)
        message = recvall(sc, 16)
        print('  Incoming sixteen-octet message:', repr(message), flush=True)
        sc.sendall(b'Farewell, client')
        sc.close()
        print('  Reply sent, socket closed', flush=True)


def client(host, port, timeout=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    print('Client has been assigned socket name', sock.getsockname(),
          flush=True)
    sock.sendall(b'Hi there, server')
    reply = recvall(sock, 16)
    print('The server said', repr(reply), flush=True)
    sock.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Send and receive over TCP')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to play')
    parser.add_argument('host', help='interface the server listens at;'
                        ' host the client sends to')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='TCP port (default 1060; 0 lets the OS choose)')
    parser.add_argument('--timeout', metavar='SECONDS', type=float,
                        default=None, help='client: give up on a connect,'
                        ' send or receive after this long (default: never)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.host, args.p)
    else:
        client(args.host, args.p, args.timeout)
