#include "ferry/error.hpp"

#include <netdb.h>

#include <cerrno>
#include <string>

namespace ferry {
namespace {

class ResolverCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int code) const override { return ::gai_strerror(code); }
};

class FerryCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "ferry"; }
    std::string message(int code) const override {
        switch (static_cast<Errc>(code)) {
            case Errc::eof:
                return "end of stream";
            case Errc::frame_too_large:
                return "message larger than the maximum";
            case Errc::bad_frame:
                return "malformed message";
            case Errc::bad_port:
                return "not a port number or known service";
        }
        return "unknown ferry error";
    }
};

std::string short_read_context(const std::string& context, std::size_t expected,
                               std::size_t received) {
    std::string text = context.empty() ? std::string() : context + ": ";
    return text + "was expecting " + std::to_string(expected) + " bytes but only received " +
           std::to_string(received) + " bytes before the socket closed";
}

}  // namespace

const std::error_category& resolver_category() noexcept {
    static const ResolverCategory category;
    return category;
}

const std::error_category& ferry_category() noexcept {
    static const FerryCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), ferry_category()};
}

ShortReadError::ShortReadError(const std::string& context, std::size_t expected,
                               std::size_t received)
    : Error(make_error_code(Errc::eof), short_read_context(context, expected, received),
            Verbatim{}),
      expected_(expected),
      received_(received) {}

void throw_errno(const std::string& context) {
    throw_errno(errno, context);
}

void throw_errno(int err, const std::string& context) {
    throw Error(std::error_code(err, std::system_category()), context);
}

}  // namespace ferry
