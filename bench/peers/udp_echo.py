"""Python UDP echo loop for bench/compare. Usage: udp_echo.py PORT"""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 0))
print('Listening at 127.0.0.1:%d' % s.getsockname()[1], flush=True)
while True:
    data, where = s.recvfrom(65536)
    s.sendto(data, where)
