#!/usr/bin/env python3
# A rendition of the textbook's udp_remote.py ("Foundations of Python Network
# Programming", chapter 2): a UDP server that pretends to drop packets, and a
# client that retransmits with exponential backoff.
#
# Written for ferry's interoperability tests from SPEC.md section 2.
# Additions: port 0 works, prints are flushed, and --drop sets the chance of
# pretending to drop a packet (the original hard-codes 0.5).  The client needs
# no --timeout: its backoff already gives up once the wait exceeds 2.0 s.

import argparse, random, socket

MAX_BYTES = 65535


def server(interface, port, drop=0.5):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((interface, port))
    print('Listening at', sock.getsockname(), flush=True)
    while True:
        data, address = sock.recvfrom(MAX_BYTES)
        if random.random() < drop:
            print('Pretending to drop packet from {}'.format(address),
                  flush=True)
            continue
        text = data.decode('ascii')
        print('The client at {} says {!r}'.format(address, text), flush=True)
        message = 'Your data was {} bytes long'.format(len(data))
        sock.sendto(message.encode('ascii'), address)


def client(hostname, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((hostname, port))
    print('Client socket name is {}'.format(sock.getsockname()), flush=True)

    delay = 0.1  # seconds
    text = 'This is another message'
    data = text.encode('ascii')
    while True:
        sock.send(data)
        print('Waiting up to {} seconds for a reply'.format(delay), flush=True)
        sock.settimeout(delay)
        try:
            data = sock.recv(MAX_BYTES)
        except socket.timeout:
            delay *= 2  # wait even longer for the next request
            if delay > 2.0:
                raise RuntimeError('I think the server is down')
        else:
            break  # we are done, and can stop looping

    print('The server says {!r}'.format(data.decode('ascii')), flush=True)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Send and receive UDP,'
                                     ' pretending packets are often dropped')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to take')
    parser.add_argument('host', help='interface the server listens at;'
                        ' host the client sends to')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='UDP port (default 1060; 0 lets the OS choose)')
    parser.add_argument('--drop', metavar='P', type=float, default=0.5,
                        help='server: chance of pretending to drop each'
                        ' packet (default 0.5)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.host, args.p, args.drop)
    else:
        client(args.host, args.p)
