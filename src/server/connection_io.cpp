// A connection's reads, handler call and replies, as a byte stream or as messages (see
// connection_io.hpp).
#include "ferry/server/connection_io.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "ferry/error.hpp"
#include "ferry/server/message_io.hpp"

namespace ferry {

void Outbox::end_message() {
    if (!messages_) messages_ = std::make_unique<Messages>();
    Messages& m = *messages_;
    const std::size_t unsealed = bytes_.size() - m.sealed_bytes;
    if (unsealed == 0) return;
    m.sizes.push_back(unsealed);
    m.sealed_bytes += unsealed;
}

void Outbox::release() noexcept {
    if (!empty()) return;
    bytes_.release();
    if (messages_) {
        messages_->sizes = {};
        messages_->first = 0;
    }
}

std::string_view Outbox::next() const noexcept {
    if (!messages_ || messages_->first == messages_->sizes.size()) return bytes_.view();
    return {bytes_.data(), messages_->sizes[messages_->first]};
}

void Outbox::sent(std::size_t n) {
    if (messages_ && messages_->first < messages_->sizes.size()) {
        Messages& m = *messages_;
        const std::size_t whole = m.sizes[m.first];
        if (n != whole)
            throw_errno(EMSGSIZE, "send of a " + std::to_string(whole) + "-byte message: only " +
                                      std::to_string(n) + " bytes went");
        m.sealed_bytes -= whole;
        if (++m.first == m.sizes.size()) {
            m.sizes.clear();
            m.first = 0;
        }
    }
    bytes_.consume(n);
}

IoResult Outbox::write_to(int fd) {
    std::size_t total = 0;
    while (!empty()) {
        const std::string_view data = next();
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("send");
            if (total == 0) return std::nullopt;
            break;
        }
        sent(static_cast<std::size_t>(n));
        total += static_cast<std::size_t>(n);
        // A stream's one send took what the socket had room for; a message
        // socket takes one message per send, so the next is tried at once.
        if (!messages_ || messages_->sizes.empty()) break;
    }
    return total;
}

ConnectionIo::ConnectionIo(std::size_t max_message) : max_message_(max_message) {
    if (max_message == 0) throw_errno(EINVAL, "messages of at most 0 bytes");
}

void ConnectionIo::prepare(int fd) const {
    if (messages()) fit_send_buffer(fd, max_message_);
}

IoResult ConnectionIo::read(int fd, Buffer& in) {
    if (!messages()) return in.read_from(fd);
    // Not value-initialised: a page of the area costs memory only once a
    // message as large as that has been written into it.
    if (!area_) area_.reset(new char[max_message_]);
    const IoResult n = recv_message(fd, area_.get(), max_message_);
    if (n && *n > 0) in.append(area_.get(), *n);
    return n;
}

bool ConnectionIo::drained_by(std::size_t n) const noexcept {
    return !messages() && n < Buffer::kReadSpill;
}

void ConnectionIo::received(const char* data, std::size_t n, Buffer& in) const {
    if (messages() && n > max_message_)
        throw Error(make_error_code(Errc::frame_too_large),
                    "recv: message of " + std::to_string(n) + " bytes (room for " +
                        std::to_string(max_message_) + ")");
    in.append(data, n);
}

std::size_t ConnectionIo::handle(const StreamHandler& handler, Buffer& in, Outbox& out) const {
    const std::size_t handled = handler.on_data(in, out.bytes());
    if (!messages()) return handled;
    if (!in.empty())
        throw Error(
            make_error_code(Errc::bad_frame),
            "a message of which " + std::to_string(in.size()) + " bytes are not a whole frame");
    out.end_message();
    return handled;
}

}  // namespace ferry
