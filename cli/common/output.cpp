#include "common/output.hpp"

#include <sys/time.h>

#include <ctime>

namespace ferry::cli {
namespace {

std::string quoted(std::string_view data, bool as_bytes) {
    // Python picks single quotes unless the text has a ' and no ".
    const bool has_single = data.find('\'') != std::string_view::npos;
    const bool has_double = data.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out = as_bytes ? "b" : "";
    out += quote;
    for (const char ch : data) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\')
            out += "\\\\";
        else if (c == static_cast<unsigned char>(quote))
            out += std::string("\\") + quote;
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f || (as_bytes && c >= 0x80))
            out += fmt::format("\\x{:02x}", c);
        else
            out += ch;
    }
    out += quote;
    return out;
}

}  // namespace

std::string py_repr(std::string_view text) {
    return quoted(text, false);
}
std::string py_repr_bytes(std::string_view bytes) {
    return quoted(bytes, true);
}

std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += ch;
    }
    return out;
}

std::string datetime_now() {
    timeval now{};
    ::gettimeofday(&now, nullptr);
    tm local{};
    ::localtime_r(&now.tv_sec, &local);
    char text[64];
    const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
    return std::string(text, n) + fmt::format(".{:06d}", static_cast<long>(now.tv_usec));
}

std::string ctime_now() {
    const std::time_t now = std::time(nullptr);
    tm local{};
    ::localtime_r(&now, &local);
    char text[64];
    const std::size_t n = std::strftime(text, sizeof text, "%a %b %e %H:%M:%S %Y", &local);
    return std::string(text, n);
}

}  // namespace ferry::cli
