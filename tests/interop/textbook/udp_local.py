#!/usr/bin/env python3
# A rendition of the textbook's udp_local.py ("Foundations of Python Network
# Programming", chapter 2): UDP client and server on localhost.
#
# Written for ferry's interoperability tests from the behaviour and the bytes
# on the wire described in SPEC.md section 2.  Additions to the original:
# port 0 works (the server prints the port the OS chose on its first line),
# every print is flushed, and the client takes --timeout because the original
# waits forever for a reply that may never come.

import argparse, socket
from datetime import datetime

MAX_BYTES = 65535


def server(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', port))
    print('Listening at {}'.format(sock.getsockname()), flush=True)
    while True:
        data, address = sock.recvfrom(MAX_BYTES)
        text = data.decode('ascii')
        print('The client at {} says {!r}'.format(address, text), flush=True)
        text = 'Your data was {} bytes long'.format(len(data))
        data = text.encode('ascii')
        sock.sendto(data, address)


def client(port, timeout=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    text = 'The time is {}'.format(datetime.now())
    data = text.encode('ascii')
    sock.sendto(data, ('127.0.0.1', port))
    print('The OS assigned me the address {}'.format(sock.getsockname()),
          flush=True)
    data, address = sock.recvfrom(MAX_BYTES)  # Danger! (anyone may answer)
    text = data.decode('ascii')
    print('The server {} replied {!r}'.format(address, text), flush=True)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Send and receive UDP locally')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to play')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='UDP port (default 1060; 0 lets the OS choose)')
    parser.add_argument('--timeout', metavar='SECONDS', type=float,
                        default=None, help='client: give up waiting for the'
                        ' reply after this long (default: wait forever)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.p)
    else:
        client(args.p, args.timeout)
