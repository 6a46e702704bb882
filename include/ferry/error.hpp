// ferry/error.hpp: errors that say what was attempted, where, and why.
#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

namespace ferry {

/// Errors of getaddrinfo(3)/getnameinfo(3): the EAI_* codes, which are not
/// errno values. message() is gai_strerror().
const std::error_category& resolver_category() noexcept;

/// ferry's own conditions that are neither errno nor EAI_* codes.
enum class Errc {
    eof = 1,          ///< the peer closed the stream before the operation was complete
    frame_too_large,  ///< a peer announced or sent a message over the configured maximum
    bad_frame,        ///< a framed message that cannot be decoded
    bad_port,         ///< a port that is neither a number in 0..65535 nor a known service
};
/// The category of Errc codes; message() describes each condition.
const std::error_category& ferry_category() noexcept;
/// `e` as a std::error_code of ferry_category().
std::error_code make_error_code(Errc e) noexcept;

/// Every failure of the library: the operation with its address, and the reason.
/// what() reads like `connect to 127.0.0.1:1060: Connection refused`.
class Error : public std::system_error {
  public:
    /// what() is `context: reason` (`reason` alone when `context` is empty).
    Error(std::error_code code, const std::string& context)
        : std::system_error(code),
          what_(context.empty() ? code.message() : context + ": " + code.message()) {}
    /// The operation, its address and the reason, in one line.
    [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

  protected:
    struct Verbatim {};
    /// For subclasses whose text is not "context: reason".
    Error(std::error_code code, std::string text, Verbatim)
        : std::system_error(code), what_(std::move(text)) {}

  private:
    std::string what_;
};

/// A deadline passed before the operation completed (code: std::errc::timed_out).
class TimeoutError : public Error {
  public:
    /// what() is `context: Connection timed out`.
    explicit TimeoutError(const std::string& context)
        : Error(std::make_error_code(std::errc::timed_out), context) {}
};

/// The stream ended in the middle of a message (code: Errc::eof). what() says
/// "was expecting N bytes but only received M bytes before the socket closed".
class ShortReadError : public Error {
  public:
    /// `received` of the `expected` bytes arrived before the end of stream.
    ShortReadError(const std::string& context, std::size_t expected, std::size_t received);
    /// Bytes the operation needed.
    [[nodiscard]] std::size_t expected() const noexcept { return expected_; }
    /// Bytes that arrived before the end of stream.
    [[nodiscard]] std::size_t received() const noexcept { return received_; }

  private:
    std::size_t expected_;
    std::size_t received_;
};

/// Throws Error for the current errno with `context` ("bind to 0.0.0.0:80").
[[noreturn]] void throw_errno(const std::string& context);
/// Throws Error for the errno value `err` with `context`.
[[noreturn]] void throw_errno(int err, const std::string& context);

}  // namespace ferry

/// @cond
// Makes Errc convertible to std::error_code (not API of its own).
template <>
struct std::is_error_code_enum<ferry::Errc> : std::true_type {};
/// @endcond
