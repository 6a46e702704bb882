/* The C recvfrom/sendto UDP echo loop: the reference for UDP in bench/compare.
 * Usage: udp_echo PORT  (prints "Listening at 127.0.0.1:PORT") */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr*)&addr, &len);
    printf("Listening at 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    static char buffer[65536];
    for (;;) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr*)&from, &flen);
        if (n >= 0) sendto(fd, buffer, (size_t)n, 0, (struct sockaddr*)&from, flen);
    }
}
