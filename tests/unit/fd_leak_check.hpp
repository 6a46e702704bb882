// Internal to the unit tests: the fixture every test class derives from, which
// fails a test that leaves a descriptor open, and small helpers shared by the tests.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>

namespace ferry::test {

/// The descriptors this process has open, from /proc/self/fd, without the one
/// the listing itself uses.
inline std::set<int> open_descriptors() {
    std::set<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        ADD_FAILURE() << "cannot list /proc/self/fd: " << std::strerror(errno);
        return fds;
    }
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..") continue;
        const int fd = std::stoi(name);
        if (fd != own) fds.insert(fd);
    }
    ::closedir(dir);
    return fds;
}

/// What a descriptor refers to ("socket:[1234]", a path), for the failure message.
inline std::string describe_descriptor(int fd) {
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    char target[256] = {};
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    return n < 0 ? std::string("?") : std::string(target, static_cast<std::size_t>(n));
}

/// Records the open descriptors in SetUp and fails the test in TearDown if any
/// was added. Descriptors must be closed by the end of the test body: a derived
/// fixture that holds sockets as members closes them in its own TearDown before
/// calling this one (members outlive TearDown).
class FdLeakCheck : public ::testing::Test {
  protected:
    void SetUp() override { before_ = open_descriptors(); }

    void TearDown() override {
        for (const int fd : open_descriptors()) {
            if (before_.count(fd) == 0)
                ADD_FAILURE() << "descriptor " << fd << " (" << describe_descriptor(fd)
                              << ") was left open by the test";
        }
    }

  private:
    std::set<int> before_;
};

/// A private directory under the system's temporary directory, removed with
/// everything in it when the object goes away. For Unix-domain socket paths.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "ferry-unit-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] std::string file(const std::string& name) const {
        return (path_ / name).string();
    }

  private:
    std::filesystem::path path_;
};

/// Whether `fd` has the close-on-exec flag.
inline bool has_cloexec(int fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

/// Whether `fd` is in non-blocking mode.
inline bool has_nonblock(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

/// A bound every blocking step of a test gets, so that a bug fails the test
/// rather than hanging it until CTest's limit.
inline constexpr std::chrono::seconds kGuard{5};

/// A name in the Linux abstract namespace unique to this process and `tag`.
inline std::string abstract_name(const std::string& tag) {
    return "@ferry-unit-" + std::to_string(::getpid()) + "-" + tag;
}

}  // namespace ferry::test
