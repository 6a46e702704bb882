// Internal to the ferry command: the file of a Unix socket a server binds, replaced only when
// stale and removed only when it is still its own (listen -U, echo server -U).
#pragma once

#include <sys/stat.h>

#include <string>

#include "ferry/address.hpp"

namespace ferry::cli {

/// Makes way for a bind to the Unix socket `path` (`address`): a socket
/// file left by a server that is gone is removed; a live server's socket, of
/// any type, or a file that is not a socket stays, and this throws Failure
/// (`bind to PATH: Address already in use (a server is listening there)`,
/// exit 1). `socktype` is the type the caller will bind (SOCK_STREAM or
/// SOCK_SEQPACKET). Abstract names (`@name`) have no file: nothing to do.
void remove_stale_socket_file(const std::string& path, const Address& address, int socktype);

/// Removes the socket file this process bound when it goes away, and only
/// that file: if somebody replaced it meanwhile, theirs stays.
class SocketFile {
  public:
    SocketFile() = default;
    SocketFile(const SocketFile&) = delete;
    SocketFile& operator=(const SocketFile&) = delete;
    ~SocketFile();
    /// Records the file now at `path` (just bound) as ours.
    void bound(const std::string& path);

  private:
    std::string path_;
    struct stat bound_ {};
    bool armed_ = false;
};

}  // namespace ferry::cli
