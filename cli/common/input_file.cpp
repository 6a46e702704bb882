#include "common/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <system_error>

#include <fmt/core.h>

#include "common/command.hpp"
#include "ferry/fd.hpp"

namespace ferry::cli {
namespace {

std::string reason(int err) {
    return std::error_code(err, std::system_category()).message();
}

std::string size_text(std::size_t bytes) {
    if (bytes % (1 << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
    return fmt::format("{} bytes", bytes);
}

}  // namespace

std::string read_input_file(const std::string& option, const std::string& path,
                            std::size_t max_bytes) {
    const auto fail = [&](const std::string& why) {
        throw Failure(fmt::format("{} {}: {}", option, path, why));
    };
    // O_NOCTTY: a terminal named here must not become the controlling one.
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!file) fail(reason(errno));
    struct stat st {};
    if (::fstat(file.get(), &st) != 0) fail(reason(errno));
    if (S_ISDIR(st.st_mode)) fail(reason(EISDIR));
    const auto too_large = [&](const std::string& size) {
        fail(fmt::format("{}larger than the {} allowed", size, size_text(max_bytes)));
    };
    if (S_ISREG(st.st_mode) && static_cast<std::uintmax_t>(st.st_size) > max_bytes)
        too_large(fmt::format("{} bytes, ", st.st_size));

    std::string text;
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(file.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(reason(errno));
        if (n == 0) return text;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_bytes) too_large("");
    }
}

bool read_input_line(std::string& line) {
    errno = 0;
    if (std::getline(std::cin, line)) return true;
    // std::cin reads through stdio (synchronised): a failed read leaves the
    // stream's error flag and errno behind, where end of input leaves neither.
    const int err = errno;
    if (std::ferror(stdin) != 0 || std::cin.bad())
        throw Failure("read from standard input: " + reason(err != 0 ? err : EIO));
    return false;
}

}  // namespace ferry::cli
