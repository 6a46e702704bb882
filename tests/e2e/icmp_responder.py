"""A misbehaving ICMP echo responder, for ferry ping's tests (root, in a test host's namespace).

    python3 icmp_responder.py PLAN

The host's own echo replies must be off (net.ipv4.icmp_echo_ignore_all=1):
this answers instead, over a raw socket, following PLAN: one action per
request in the order they come, comma-separated:

    good   one correct reply
    bad    one reply whose checksum is wrong
    dup    two correct replies
    none   no reply

Requests past the end of the plan get ``good``.  Prints ``ready`` once its
socket is open, then one line per request it answered.  Stops on SIGTERM.
"""

import socket
import struct
import sys


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def reply_to(request, corrupt):
    body = b'\0\0\0\0' + request[4:]    # type 0 (echo reply), code 0, checksum 0
    value = checksum(body)
    if corrupt:
        value ^= 0x5a5a                 # any other value is wrong
    return body[:2] + struct.pack('!H', value) + body[4:]


def main():
    plan = sys.argv[1].split(',') if len(sys.argv) > 1 else []
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print('ready', flush=True)
    count = 0
    while True:
        packet, (host, _) = sock.recvfrom(65535)
        header = (packet[0] & 0x0f) * 4
        icmp = packet[header:]
        if len(icmp) < 8 or icmp[0] != 8:       # only echo requests
            continue
        action = plan[count] if count < len(plan) else 'good'
        count += 1
        sequence = struct.unpack('!H', icmp[6:8])[0]
        if action in ('good', 'bad', 'dup'):
            sock.sendto(reply_to(icmp, action == 'bad'), (host, 0))
        if action == 'dup':
            sock.sendto(reply_to(icmp, False), (host, 0))
        print('%s icmp_seq=%d' % (action, sequence), flush=True)


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
