// ferry/fd.hpp: the one owner of a file descriptor.
#pragma once

#include <utility>

namespace ferry {

/// Owns one file descriptor and closes it exactly once.
///
/// Move-only. close() is never retried on EINTR: on Linux the descriptor is
/// released even when close() reports EINTR, and retrying could close a
/// descriptor another thread has just been given (see close(2), "Dealing with
/// error returns from close()").
///
/// Thread-safety: like an int; distinct objects may be used concurrently.
class Fd {
  public:
    Fd() noexcept = default;
    /// Takes ownership of `fd` (-1: empty).
    explicit Fd(int fd) noexcept : fd_(fd) {}
    /// Takes over the descriptor of `other`, which is left empty.
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    /// Closes the held descriptor, then takes over the one of `other`.
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    /// The descriptor number, or -1 when empty. Ownership stays here.
    [[nodiscard]] int get() const noexcept { return fd_; }
    /// Whether a descriptor is held.
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Gives up ownership without closing; the caller now owns the number.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the held descriptor (if any) and takes ownership of `fd`.
    void reset(int fd = -1) noexcept;

  private:
    int fd_ = -1;
};

}  // namespace ferry
