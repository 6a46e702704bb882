#include "isolated_network.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ferry::fuzz {
namespace {

[[noreturn]] void give_up(const char* what) {
    std::fprintf(stderr, "fuzz harness: %s: %s (run it as root, or allow user namespaces)\n", what,
                 std::strerror(errno));
    std::exit(kCannotIsolate);
}

}  // namespace

void isolate_network() {
    // As root a network namespace alone; otherwise a user namespace grants the capability.
    if (::unshare(CLONE_NEWNET) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
        give_up("cannot create a network namespace");
    // A new namespace's loopback is down and has no address until it is brought up.
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) give_up("socket");
    ifreq request{};
    std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(fd, SIOCGIFFLAGS, &request) != 0) give_up("SIOCGIFFLAGS lo");
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) give_up("SIOCSIFFLAGS lo up");
    ::close(fd);
}

}  // namespace ferry::fuzz
