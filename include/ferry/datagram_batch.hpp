// ferry/datagram_batch.hpp: the datagrams one recvmmsg(2) or sendmmsg(2) moves.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "ferry/address.hpp"

namespace ferry {

/// A reusable batch of datagrams for Socket::recvmmsg() and Socket::sendmmsg():
/// `slots` entries, each a buffer of `slot_size` bytes, a length and an
/// address (the sender after a receive, the destination for a send). It holds
/// the mmsghdr array the calls take, so a loop that receives and sends through
/// one batch allocates nothing per datagram.
///
/// A received datagram can be sent back as it is: after recvmmsg(), slot i
/// holds the datagram and its sender, which is exactly what sendmmsg() sends
/// (the echo in place). To send other bytes, clear() and add() them: add()
/// refers to the caller's bytes rather than copying them.
///
/// The buffers are allocated once and not zero-filled: pages no datagram
/// reached are never touched (a batch of 64 × 64 KiB costs what its traffic
/// uses). Not thread-safe; move-only (the headers point into the batch).
class DatagramBatch {
  public:
    /// `slots` entries (at most UIO_MAXIOV, 1024, what one call takes), each
    /// with a buffer of `slot_size` bytes to receive into (0: a batch only
    /// for add()). Throws std::invalid_argument for 0 or too many slots.
    DatagramBatch(std::size_t slots, std::size_t slot_size);
    /// Moves the batch: its buffers and headers go with it.
    DatagramBatch(DatagramBatch&&) noexcept = default;
    /// Moves the batch: its buffers and headers go with it.
    DatagramBatch& operator=(DatagramBatch&&) noexcept = default;
    DatagramBatch(const DatagramBatch&) = delete;
    DatagramBatch& operator=(const DatagramBatch&) = delete;
    /// Frees the buffers.
    ~DatagramBatch();

    /// How many datagrams the batch can hold.
    [[nodiscard]] std::size_t capacity() const noexcept { return headers_.size(); }
    /// The bytes each slot's own buffer holds.
    [[nodiscard]] std::size_t slot_size() const noexcept { return slot_size_; }
    /// How many datagrams it holds now: what the last recvmmsg() received, or what add() added.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Whether it holds no datagram.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// Whether every slot holds a datagram (a receive that filled the batch: more may wait).
    [[nodiscard]] bool full() const noexcept { return size_ == headers_.size(); }

    /// Datagram i's bytes (i < size()): at most slot_size() of them.
    [[nodiscard]] std::string_view datagram(std::size_t i) const noexcept;
    /// Datagram i's bytes, writable in place (a received datagram only).
    [[nodiscard]] char* data(std::size_t i) noexcept;
    /// Datagram i's sender (after a receive) or destination (for a send).
    [[nodiscard]] const Address& address(std::size_t i) const noexcept { return addresses_[i]; }
    /// Whether datagram i was longer than its slot and lost its tail (MSG_TRUNC).
    [[nodiscard]] bool truncated(std::size_t i) const noexcept {
        return (headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }

    /// Empties the batch: every slot points at its own buffer again.
    void clear() noexcept;
    /// Appends a datagram of `size` bytes at `data` for sendmmsg(), to `to`
    /// (nullptr: a connected socket's peer). The batch refers to the bytes
    /// without copying them: they must stay until the send. Throws
    /// std::length_error when the batch is full.
    void add(const void* data, std::size_t size, const Address* to = nullptr);
    /// Removes datagram i; the later ones move up (their buffers are swapped,
    /// no byte is copied). For a receive loop that sends back all but some.
    void erase(std::size_t i) noexcept;

    /// The headers the system calls take, slot 0 first. Internal to Socket.
    mmsghdr* headers() noexcept { return headers_.data(); }
    /// Prepares every slot to receive a datagram of up to slot_size() bytes
    /// and an address (rewriting only the slots used since the last time).
    /// Internal to Socket::recvmmsg().
    void prepare_receive() noexcept;
    /// Records that the last receive filled `count` slots. Internal to Socket::recvmmsg().
    void received(std::size_t count) noexcept;

  private:
    /// Resets slots [0, touched_) to receive into their own buffers.
    void reset_touched() noexcept;

    std::size_t slot_size_;
    std::size_t size_ = 0;
    /// Slots below this may differ from their receiving state (a receive or
    /// add() wrote them): a lone datagram per receive resets one slot, not all.
    std::size_t touched_ = 0;
    std::unique_ptr<char[]> storage_;
    std::vector<char*> buffers_;  ///< each slot's own buffer (swapped by erase())
    std::vector<iovec> iovecs_;
    std::vector<Address> addresses_;
    std::vector<mmsghdr> headers_;
};

}  // namespace ferry
