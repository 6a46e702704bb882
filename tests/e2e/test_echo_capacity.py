"""The epoll model holds 10,000 idle TCP connections; the memory each costs is reported."""

import resource
import socket
import time
import unittest

import ferrytest
from echo_support import TIMEOUT, recv_exactly, rss_kib, start_server

CONNECTIONS = 10_000


def raise_descriptor_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    return True


class TenThousandIdleConnections(ferrytest.TestCase):
    def test_epoll_model_holds_ten_thousand_idle_connections(self):
        # The server inherits this process's raised limit: ferry itself
        # changes no limit behind the user's back.
        if not raise_descriptor_limit(CONNECTIONS + 200):
            self.skipTest('the hard descriptor limit is below %d' % (CONNECTIONS + 200))
        proc, port = start_server(self, 'epoll', '--threads', '1', '--max-conns', str(CONNECTIONS + 100),
                                  '--idle-timeout', '0')
        empty = rss_kib(proc.pid)
        clients = []
        try:
            for _ in range(CONNECTIONS):
                s = socket.socket()
                s.setblocking(False)
                err = s.connect_ex(('127.0.0.1', port))
                self.assertIn(err, (0, 115), 'connect: %s' % err)  # 115 = EINPROGRESS
                clients.append(s)
            # Every connection really accepted and served: the last and a
            # sample across the range echo (the server accepts in order).
            deadline = time.monotonic() + 60
            for s in clients[::500] + [clients[-1]]:
                s.setblocking(True)
                s.settimeout(max(1.0, deadline - time.monotonic()))
                s.sendall(b'?')
                self.assertEqual(recv_exactly(s, 1), b'?')
            full = rss_kib(proc.pid)
            per_connection = (full - empty) / CONNECTIONS
            print('\nepoll model: RSS %d KiB empty, %d KiB with %d idle connections: %.2f KiB per '
                  'connection (this build; sanitizer builds add their own overhead)'
                  % (empty, full, CONNECTIONS, per_connection))
        finally:
            for s in clients:
                s.close()
        self.assertEqual(proc.stop(timeout=TIMEOUT), 0)
        self.assertRegex(proc.output(), r'Stopped: %d connections accepted, 0 refused' % CONNECTIONS)


if __name__ == '__main__':
    unittest.main()
