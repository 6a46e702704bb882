#!/usr/bin/env python3
# A rendition of the textbook's tcp_deadlock.py ("Foundations of Python
# Network Programming", chapter 3): a client that sends everything before it
# reads anything, and a server that upper-cases what it receives.  With a big
# enough byte count both sides fill their buffers and block for ever; the
# program exists to show it.
#
# Written for ferry's interoperability tests from SPEC.md section 2.
# Additions: port 0 works (the server's first line is its bound address),
# prints are flushed, and the client takes --timeout so that a test can watch
# the deadlock without hanging (a blocked send or recv then fails with
# "timed out").  The running counts are printed after '\r', as in the
# original.

import argparse, socket


def server(host, port, bytecount):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    print('Listening at', sock.getsockname(), flush=True)
    while True:
        sc, sockname = sock.accept()
        print('Processing up to 1024 bytes at a time from', sockname,
              flush=True)
        n = 0
        while True:
            data = sc.recv(1024)
            if not data:
                break
            output = data.decode('ascii').upper().encode('ascii')
            sc.sendall(output)  # send it back uppercase
            n += len(data)
            print('\r  %d bytes processed so far' % (n,), end=' ',
                  flush=True)
        print(flush=True)
        sc.close()
        print('  Socket closed', flush=True)


def client(host, port, bytecount, timeout=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    bytecount = (bytecount + 15) // 16 * 16  # round up to a multiple of 16
    message = b'capitalize this!'  # 16-byte message to repeat over and over

    print('Sending', bytecount, 'bytes of data, in chunks of 16 bytes',
          flush=True)
    sock.connect((host, port))

    sent = 0
    while sent < bytecount:
        sock.sendall(message)
        sent += len(message)
        print('\r  %d bytes sent' % (sent,), end=' ', flush=True)

    print(flush=True)
    sock.shutdown(socket.SHUT_WR)

    print('Receiving all the data the server sends back', flush=True)

    received = 0
    while True:
        data = sock.recv(42)
        if not received:
            print('  The first data received says', repr(data), flush=True)
        if not data:
            break
        received += len(data)
        print('\r  %d bytes received' % (received,), end=' ', flush=True)

    print(flush=True)
    sock.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Get deadlocked over TCP')
    parser.add_argument('role', choices=('client', 'server'),
                        help='which role to play')
    parser.add_argument('host', help='interface the server listens at;'
                        ' host the client sends to')
    parser.add_argument('bytecount', type=int, nargs='?', default=16,
                        help='number of bytes for client to send (default 16)')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='TCP port (default 1060; 0 lets the OS choose)')
    parser.add_argument('--timeout', metavar='SECONDS', type=float,
                        default=None, help='client: fail a connect, send or'
                        ' receive blocked this long (default: block forever)')
    args = parser.parse_args()
    if args.role == 'server':
        server(args.host, args.p, args.bytecount)
    else:
        client(args.host, args.p, args.bytecount, args.timeout)
