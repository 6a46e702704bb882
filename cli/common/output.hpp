// Internal to the ferry command: printing the way the textbook programs print.
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace ferry::cli {

/// One line on standard output, flushed at once: a test (or a person) reading
/// a pipe sees each line as the program reaches it.
template <class... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stdout, format, std::forward<Args>(args)...);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

/// Python's repr() of a str (`'text'`) and of bytes (`b'text'`), as the
/// textbook programs print received data.
std::string py_repr(std::string_view text);
std::string py_repr_bytes(std::string_view bytes);

/// `text` as one line a terminal shows as it is: control bytes (a newline, an
/// escape sequence typed into an option's value) become \n, \t, \xNN. Every
/// error line the command prints goes through it.
std::string one_line(std::string_view text);

/// The local time as Python's str(datetime.now()): `2026-11-23 17:12:34.123456`.
std::string datetime_now();
/// The local time as C's ctime() without the newline: `Tue Nov  3 10:20:31 2009`.
std::string ctime_now();

}  // namespace ferry::cli
