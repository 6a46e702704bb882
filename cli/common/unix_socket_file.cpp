// Internal to the ferry command: Unix socket files of servers (see unix_socket_file.hpp).
#include "common/unix_socket_file.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/command.hpp"
#include "ferry/error.hpp"
#include "ferry/socket.hpp"

namespace ferry::cli {

void remove_stale_socket_file(const std::string& path, const Address& address, int socktype) {
    if (path.empty() || path.front() == '@') return;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;  // nothing there (or the bind will say why)
    const std::string context = "bind to " + path;
    if (!S_ISSOCK(st.st_mode))
        throw Failure(context +
                      ": Address already in use (a file that is not a socket: left alone)");
    // Only a listening socket accepts a connect; a stale file refuses it
    // (ECONNREFUSED), and one whose listener is of another type answers
    // EPROTOTYPE (unix_find_bsd). Non-blocking, so a live server with a full
    // backlog answers EAGAIN at once.
    Socket probe(AF_UNIX, socktype | SOCK_NONBLOCK);
    if (::connect(probe.fd(), address.data(), address.size()) == 0 || errno == EAGAIN)
        throw Failure(context + ": Address already in use (a server is listening there)");
    if (errno == EPROTOTYPE)
        throw Failure(context +
                      ": Address already in use (a server of another socket type is listening "
                      "there)");
    if (errno != ECONNREFUSED) throw_errno(context);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("remove stale socket " + path);
}

SocketFile::~SocketFile() {
    struct stat now {};
    if (armed_ && ::lstat(path_.c_str(), &now) == 0 && S_ISSOCK(now.st_mode) &&
        now.st_dev == bound_.st_dev && now.st_ino == bound_.st_ino)
        ::unlink(path_.c_str());
}

void SocketFile::bound(const std::string& path) {
    if (path.empty() || path.front() == '@') return;
    path_ = path;
    armed_ = ::lstat(path_.c_str(), &bound_) == 0;
}

}  // namespace ferry::cli
