#!/usr/bin/env python3
# A rendition of Core Python Programming's timestamp programs (tsTserv.py,
# tsTclnt.py, tsUserv.py, tsUclnt.py) in one file: the server sends back each
# message prefixed with its local time in ctime() format, over TCP or (with
# --udp) UDP; the client sends the lines it reads from standard input and
# prints each reply.
#
# Written for ferry's interoperability tests from SPEC.md section 2.
# Additions: port 0 works (the server's first line is its bound address, then
# the original's "waiting for ..." line), every print is flushed, the prompt
# "> " is shown only on a terminal, end of input ends the client as an empty
# line does, and the client takes --timeout because the original waits
# forever for a reply.

import argparse, sys
from socket import (socket, AF_INET, SOCK_STREAM, SOCK_DGRAM)
from time import ctime

BUFSIZ = 1024


def tcp_server(host, port):
    tcpSerSock = socket(AF_INET, SOCK_STREAM)
    tcpSerSock.bind((host, port))
    tcpSerSock.listen(5)
    print('Listening at', tcpSerSock.getsockname(), flush=True)

    while True:
        print('waiting for connection...', flush=True)
        tcpCliSock, addr = tcpSerSock.accept()
        print('...connected from:', addr, flush=True)

        while True:
            data = tcpCliSock.recv(BUFSIZ)
            if not data:
                break
            tcpCliSock.sendall(b'[%s] %s' % (bytes(ctime(), 'utf-8'), data))

        tcpCliSock.close()


def udp_server(host, port):
    udpSerSock = socket(AF_INET, SOCK_DGRAM)
    udpSerSock.bind((host, port))
    print('Listening at', udpSerSock.getsockname(), flush=True)

    while True:
        print('waiting for message...', flush=True)
        data, addr = udpSerSock.recvfrom(BUFSIZ)
        udpSerSock.sendto(b'[%s] %s' % (bytes(ctime(), 'utf-8'), data), addr)
        print('...received from and returned to:', addr, flush=True)


def read_line():
    """One line of input without its line ending; None at end of input."""
    if sys.stdin.isatty():
        try:
            return input('> ')
        except EOFError:
            return None
    line = sys.stdin.readline()
    if not line:
        return None
    return line.rstrip('\r\n')


def tcp_client(host, port, timeout=None):
    tcpCliSock = socket(AF_INET, SOCK_STREAM)
    tcpCliSock.settimeout(timeout)
    tcpCliSock.connect((host, port))

    while True:
        data = read_line()
        if not data:
            break
        tcpCliSock.sendall(bytes(data, 'utf-8'))
        data = tcpCliSock.recv(BUFSIZ)
        if not data:
            break
        print(data.decode('utf-8', 'backslashreplace'), flush=True)

    tcpCliSock.close()


def udp_client(host, port, timeout=None):
    udpCliSock = socket(AF_INET, SOCK_DGRAM)
    udpCliSock.settimeout(timeout)
    addr = (host, port)

    while True:
        data = read_line()
        if not data:
            break
        udpCliSock.sendto(bytes(data, 'utf-8'), addr)
        data, addr = udpCliSock.recvfrom(BUFSIZ)
        if not data:
            break
        print(data.decode('utf-8', 'backslashreplace'), flush=True)

    udpCliSock.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Timestamp server and client'
                                     ' (TCP, or UDP with --udp)')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to play')
    parser.add_argument('host', nargs='?', default=None,
                        help='interface the server listens at (default: all);'
                        ' host the client sends to (default: localhost)')
    parser.add_argument('-p', metavar='PORT', type=int, default=21567,
                        help='port (default 21567; 0 lets the OS choose)')
    parser.add_argument('--udp', action='store_true',
                        help='use UDP instead of TCP')
    parser.add_argument('--timeout', metavar='SECONDS', type=float,
                        default=None, help='client: give up on a connect,'
                        ' send or receive after this long (default: never)')
    args = parser.parse_args()
    if args.role == 'server':
        host = '' if args.host is None else args.host
        (udp_server if args.udp else tcp_server)(host, args.p)
    else:
        host = 'localhost' if args.host is None else args.host
        (udp_client if args.udp else tcp_client)(host, args.p, args.timeout)
