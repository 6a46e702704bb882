/* The sender and the sink of bench/proxy_throughput.py, in C so that neither
 * end is the bottleneck (a Python loop tops out below what a relay can move):
 *
 *   stream_pump sink             listens on 127.0.0.1:0, prints "PORT\n", then for
 *                                each connection reads to end of stream and sends
 *                                back the byte count in decimal; until killed
 *   stream_pump send PORT BYTES  connects to 127.0.0.1:PORT, sends BYTES bytes,
 *                                shuts down its side, reads the count back, checks
 *                                it, prints "SECONDS\n" (connect to count)
 *
 * Plain blocking read/write loops with a 1 MiB buffer: what nc or iperf3 do.
 * Exit 1 with one line on stderr on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kChunk = 1 << 20 };

static void die(const char* what) {
    fprintf(stderr, "stream_pump: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void send_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += k;
        n -= (size_t)k;
    }
}

static int sink(void) {
    static char buf[kChunk];
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die("socket");
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr*)&a, sizeof a) != 0) die("bind");
    if (listen(l, 16) != 0) die("listen");
    if (getsockname(l, (struct sockaddr*)&a, &len) != 0) die("getsockname");
    printf("%u\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept");
        }
        unsigned long long total = 0;
        for (;;) {
            ssize_t n = read(c, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            total += (unsigned long long)n;
        }
        char answer[32];
        int k = snprintf(answer, sizeof answer, "%llu", total);
        send(c, answer, (size_t)k, MSG_NOSIGNAL);
        close(c);
    }
    return 0; /* not reached: the sink runs until killed */
}

static int sender(unsigned short port, unsigned long long bytes) {
    static char buf[kChunk];
    for (size_t i = 0; i < sizeof buf; ++i)
        buf[i] = (char)(i * 131 + 7);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    struct sockaddr_in a = loopback(port);
    if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) die("connect");
    for (unsigned long long left = bytes; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        send_all(c, buf, n);
        left -= n;
    }
    if (shutdown(c, SHUT_WR) != 0) die("shutdown");
    char answer[32] = {0};
    size_t got = 0;
    for (;;) {
        ssize_t n = read(c, answer + got, sizeof answer - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("read");
        if (n == 0 || (got += (size_t)n) == sizeof answer - 1) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(c);
    if (strtoull(answer, NULL, 10) != bytes) {
        fprintf(stderr, "stream_pump: the sink counted '%s' bytes of %llu\n", answer, bytes);
        return 1;
    }
    printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "sink") == 0) return sink();
    if (argc == 4 && strcmp(argv[1], "send") == 0)
        return sender((unsigned short)atoi(argv[2]), strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: stream_pump sink | stream_pump send PORT BYTES\n");
    return 2;
}
