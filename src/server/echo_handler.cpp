#include <charconv>
#include <cstring>
#include <utility>

#include "ferry/byte_order.hpp"
#include "ferry/error.hpp"
#include "ferry/server/stream_handler.hpp"

namespace ferry {
namespace {

[[noreturn]] void too_large(std::size_t size, std::size_t max) {
    throw Error(
        make_error_code(Errc::frame_too_large),
        "frame of " + std::to_string(size) + "+ bytes (maximum " + std::to_string(max) + ")");
}

}  // namespace

Framing Framing::parse(std::string_view text) {
    Framing f;
    if (text == "raw") return f;
    if (text == "line") {
        f.kind = Kind::line;
        return f;
    }
    if (text == "length") {
        f.kind = Kind::length;
        return f;
    }
    if (text.substr(0, 6) == "fixed:") {
        const std::string_view digits = text.substr(6);
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec == std::errc() && end == digits.data() + digits.size() && n > 0) {
            f.kind = Kind::fixed;
            f.fixed_size = n;
            return f;
        }
    }
    throw Error(std::make_error_code(std::errc::invalid_argument),
                "framing '" + std::string(text) + "' (expected raw, line, fixed:N or length)");
}

std::string Framing::to_string() const {
    switch (kind) {
        case Kind::raw:
            return "raw";
        case Kind::line:
            return "line";
        case Kind::fixed:
            return "fixed:" + std::to_string(fixed_size);
        case Kind::length:
            return "length";
    }
    return "?";
}

EchoHandler::EchoHandler(Framing framing, std::size_t max_frame)
    : framing_(framing), max_frame_(max_frame) {
    if (framing_.kind == Framing::Kind::fixed && framing_.fixed_size > max_frame_)
        too_large(framing_.fixed_size, max_frame_);
}

std::size_t EchoHandler::on_data(Buffer& input, Buffer& output) const {
    if (framing_.kind == Framing::Kind::raw) {
        if (input.empty()) return 0;
        // Nothing waiting to go out: hand over the whole buffer instead of copying it.
        if (output.empty()) {
            std::swap(input, output);
        } else {
            output.append(input.data(), input.size());
            input.clear();
        }
        return 1;
    }
    const EchoSpan span = *echo_span(input.view());
    output.append(input.data(), span.bytes);
    input.consume(span.bytes);
    return span.messages;
}

std::optional<EchoSpan> EchoHandler::echo_span(std::string_view data) const {
    EchoSpan span;
    switch (framing_.kind) {
        case Framing::Kind::raw:
            span.bytes = data.size();
            span.messages = data.empty() ? 0 : 1;
            break;
        case Framing::Kind::line:
            for (;;) {
                const std::size_t newline = data.find('\n', span.bytes);
                if (newline == std::string_view::npos) {
                    if (data.size() - span.bytes > max_frame_)
                        too_large(data.size() - span.bytes, max_frame_);
                    break;
                }
                if (newline - span.bytes > max_frame_) too_large(newline - span.bytes, max_frame_);
                span.bytes = newline + 1;
                ++span.messages;
            }
            break;
        case Framing::Kind::fixed:
            span.messages = data.size() / framing_.fixed_size;
            span.bytes = span.messages * framing_.fixed_size;
            break;
        case Framing::Kind::length:
            while (data.size() - span.bytes >= 4) {
                const std::size_t length = load_be32(data.data() + span.bytes);
                if (length > max_frame_) too_large(length, max_frame_);
                if (data.size() - span.bytes - 4 < length) break;
                span.bytes += 4 + length;
                ++span.messages;
            }
            break;
    }
    return span;
}

}  // namespace ferry
