#!/usr/bin/env python3
# A rendition of the textbook's udp_broadcast.py ("Foundations of Python
# Network Programming", chapter 2): a UDP server that prints every datagram,
# and a client that sends one datagram to a broadcast address.
#
# Written for ferry's interoperability tests from SPEC.md section 2.
# Additions: port 0 works and every print is flushed.  The client sends and
# exits, so it needs no --timeout.

import argparse, socket

BUFSIZE = 65535


def server(interface, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((interface, port))
    print('Listening for datagrams at {}'.format(sock.getsockname()),
          flush=True)
    while True:
        data, address = sock.recvfrom(BUFSIZE)
        text = data.decode('ascii')
        print('The client at {} says: {!r}'.format(address, text), flush=True)


def client(network, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    text = 'Broadcast datagram!'
    sock.sendto(text.encode('ascii'), (network, port))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Send, receive UDP broadcast')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to take')
    parser.add_argument('host', help='interface the server listens at;'
                        ' network the client sends to')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='UDP port (default 1060; 0 lets the OS choose)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.host, args.p)
    else:
        client(args.host, args.p)
