// DatagramBatch: the mmsghdr array of recvmmsg/sendmmsg, with a buffer and an address per slot.
#include "ferry/datagram_batch.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace ferry {
namespace {

// What one recvmmsg/sendmmsg takes at most (UIO_MAXIOV).
constexpr std::size_t kMaxSlots = 1024;

}  // namespace

DatagramBatch::DatagramBatch(std::size_t slots, std::size_t slot_size)
    : slot_size_(slot_size),
      // Not zero-filled: a large allocation comes from mmap, and a page no datagram reaches
      // stays untouched.
      storage_(slot_size > 0 ? std::make_unique_for_overwrite<char[]>(slots * slot_size) : nullptr),
      buffers_(slots),
      iovecs_(slots),
      addresses_(slots),
      headers_(slots) {
    if (slots == 0 || slots > kMaxSlots)
        throw std::invalid_argument("a datagram batch holds 1 to 1024 datagrams");
    for (std::size_t i = 0; i < slots; ++i) {
        buffers_[i] = slot_size > 0 ? storage_.get() + i * slot_size : nullptr;
        headers_[i] = {};
        headers_[i].msg_hdr.msg_iov = &iovecs_[i];
        headers_[i].msg_hdr.msg_iovlen = 1;
    }
    touched_ = slots;
    reset_touched();
}

DatagramBatch::~DatagramBatch() = default;

std::string_view DatagramBatch::datagram(std::size_t i) const noexcept {
    return {static_cast<const char*>(iovecs_[i].iov_base), iovecs_[i].iov_len};
}

char* DatagramBatch::data(std::size_t i) noexcept {
    return static_cast<char*>(iovecs_[i].iov_base);
}

void DatagramBatch::clear() noexcept {
    size_ = 0;
    reset_touched();
}

void DatagramBatch::reset_touched() noexcept {
    for (std::size_t i = 0; i < touched_; ++i) {
        iovecs_[i] = {buffers_[i], slot_size_};
        msghdr& h = headers_[i].msg_hdr;
        h.msg_flags = 0;
        h.msg_name = addresses_[i].data();
        h.msg_namelen = Address::capacity();
    }
    touched_ = 0;
}

void DatagramBatch::add(const void* data, std::size_t size, const Address* to) {
    if (full()) throw std::length_error("the datagram batch is full");
    const std::size_t i = size_++;
    touched_ = std::max(touched_, size_);
    iovecs_[i] = {const_cast<void*>(data), size};  // sendmmsg only reads it
    msghdr& h = headers_[i].msg_hdr;
    h.msg_flags = 0;
    if (to != nullptr) {
        addresses_[i] = *to;
        h.msg_name = addresses_[i].data();
        h.msg_namelen = addresses_[i].size();
    } else {
        addresses_[i] = Address();
        h.msg_name = nullptr;
        h.msg_namelen = 0;
    }
}

void DatagramBatch::erase(std::size_t i) noexcept {
    if (i >= size_) return;
    for (std::size_t j = i; j + 1 < size_; ++j) {
        std::swap(buffers_[j], buffers_[j + 1]);
        std::swap(iovecs_[j], iovecs_[j + 1]);
        std::swap(addresses_[j], addresses_[j + 1]);
        msghdr& a = headers_[j].msg_hdr;
        msghdr& b = headers_[j + 1].msg_hdr;
        std::swap(a.msg_namelen, b.msg_namelen);
        std::swap(a.msg_flags, b.msg_flags);
        std::swap(headers_[j].msg_len, headers_[j + 1].msg_len);
        // The name pointers stay with their slot; only a missing name moves.
        const bool a_named = a.msg_name != nullptr;
        a.msg_name = b.msg_name != nullptr ? addresses_[j].data() : nullptr;
        b.msg_name = a_named ? addresses_[j + 1].data() : nullptr;
    }
    --size_;
}

void DatagramBatch::prepare_receive() noexcept {
    clear();
}

void DatagramBatch::received(std::size_t count) noexcept {
    size_ = count;
    touched_ = std::max(touched_, count);
    for (std::size_t i = 0; i < count; ++i) {
        const mmsghdr& h = headers_[i];
        *addresses_[i].size_ptr() = h.msg_hdr.msg_namelen;
        // Without MSG_TRUNC in the flags, msg_len is what the slot holds.
        iovecs_[i].iov_len = std::min<std::size_t>(h.msg_len, slot_size_);
    }
}

}  // namespace ferry
