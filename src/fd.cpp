#include "ferry/fd.hpp"

#include <unistd.h>

namespace ferry {

void Fd::reset(int fd) noexcept {
    const int old = std::exchange(fd_, fd);
    // Deliberately not retried on EINTR: the descriptor is gone either way.
    if (old >= 0) ::close(old);
}

}  // namespace ferry
