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
    switch (framing_.kind) {
        case Framing::Kind::raw: {
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
        case Framing::Kind::line: {
            std::size_t messages = 0;
            std::size_t taken = 0;
            const std::string_view data = input.view();
            for (;;) {
                const std::size_t newline = data.find('\n', taken);
                if (newline == std::string_view::npos) {
                    if (data.size() - taken > max_frame_)
                        too_large(data.size() - taken, max_frame_);
                    break;
                }
                if (newline - taken > max_frame_) too_large(newline - taken, max_frame_);
                taken = newline + 1;
                ++messages;
            }
            output.append(data.data(), taken);
            input.consume(taken);
            return messages;
        }
        case Framing::Kind::fixed: {
            const std::size_t messages = input.size() / framing_.fixed_size;
            const std::size_t taken = messages * framing_.fixed_size;
            output.append(input.data(), taken);
            input.consume(taken);
            return messages;
        }
        case Framing::Kind::length: {
            std::size_t messages = 0;
            std::size_t taken = 0;
            const std::string_view data = input.view();
            while (data.size() - taken >= 4) {
                const std::size_t length = load_be32(data.data() + taken);
                if (length > max_frame_) too_large(length, max_frame_);
                if (data.size() - taken - 4 < length) break;
                taken += 4 + length;
                ++messages;
            }
            output.append(data.data(), taken);
            input.consume(taken);
            return messages;
        }
    }
    return 0;
}

}  // namespace ferry
