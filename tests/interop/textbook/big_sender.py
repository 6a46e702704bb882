#!/usr/bin/env python3
# A rendition of the textbook's big_sender.py ("Foundations of Python Network
# Programming", chapter 2): send a big UDP datagram with fragmentation
# forbidden, and report the path MTU when the kernel refuses it.
#
# Written for ferry's interoperability tests from SPEC.md section 2.  The
# original imports the IN module for the option numbers; these are Linux's
# values from <linux/in.h>.  Additions: a server role that prints the size of
# each datagram it receives (port 0 works, first line is the bound address),
# --size (the original always sends 65000 bytes), and flushed prints.  The
# client only sends, so it needs no --timeout.

import argparse, socket

IP_MTU_DISCOVER = getattr(socket, 'IP_MTU_DISCOVER', 10)
IP_PMTUDISC_DO = getattr(socket, 'IP_PMTUDISC_DO', 2)
IP_MTU = getattr(socket, 'IP_MTU', 14)

MAX_BYTES = 65535


def server(interface, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((interface, port))
    print('Listening at {}'.format(sock.getsockname()), flush=True)
    while True:
        data, address = sock.recvfrom(MAX_BYTES)
        print('Received a datagram of {} bytes from {}'.format(
            len(data), address), flush=True)


def client(host, port, size=65000):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    sock.connect((host, port))
    try:
        sock.send(b'#' * size)
    except OSError:
        print('Alas, the datagram did not make it', flush=True)
        max_mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
        print('Actual MTU: {}'.format(max_mtu), flush=True)
    else:
        print('The big datagram was sent!', flush=True)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Send a big UDP datagram'
                                     ' to learn the MTU of the network path')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to take')
    parser.add_argument('host', help='interface the server listens at;'
                        ' host the client sends to')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='UDP port (default 1060; 0 lets the OS choose)')
    parser.add_argument('--size', metavar='BYTES', type=int, default=65000,
                        help='client: size of the datagram (default 65000)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.host, args.p)
    else:
        client(args.host, args.p, args.size)
