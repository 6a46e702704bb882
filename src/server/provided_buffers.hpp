// Internal to the io_uring model (not API): a ring of provided buffers, from
// which the kernel takes one for each receive at the moment data arrives.
#pragma once

#include <liburing.h>

#include <cstddef>

namespace ferry::detail {

/// A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19) of `count`
/// buffers of `size` bytes in buffer group `group`: a receive submitted with
/// IOSQE_BUFFER_SELECT in that group is handed one by the kernel only once
/// bytes arrive, so a connection waiting for data holds no memory. The owner
/// gives each buffer back once done with it (give_back, then publish).
///
/// The buffers are one anonymous mapping: a page costs memory only once a
/// receive has written to it.
/// Thread-safety: none; the thread that owns the io_uring owns this.
class ProvidedBuffers {
  public:
    /// Maps and registers the ring with `ring`, every buffer given to the
    /// kernel. `count` is a power of two from 1 to 32768. Throws Error naming
    /// the feature when the kernel lacks it (`io_uring provided buffer ring
    /// (Linux 5.19 or later): Invalid argument`).
    ProvidedBuffers(io_uring& ring, unsigned count, std::size_t size, unsigned short group);
    /// Unmaps the memory. The io_uring must be gone by then (its teardown
    /// unregisters the ring), so that no request in flight still names a buffer.
    ~ProvidedBuffers();
    ProvidedBuffers(const ProvidedBuffers&) = delete;
    ProvidedBuffers& operator=(const ProvidedBuffers&) = delete;

    /// The buffer group receives name in sqe->buf_group.
    [[nodiscard]] unsigned short group() const noexcept { return group_; }
    /// Bytes in each buffer.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// How many buffers the ring holds.
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    /// The memory of buffer `id` (the id a completion carries above IORING_CQE_BUFFER_SHIFT).
    [[nodiscard]] char* data(unsigned id) const noexcept { return area_ + id * size_; }

    /// Queues buffer `id` to go back to the kernel at the next publish().
    void give_back(unsigned id) noexcept;
    /// Hands the buffers queued by give_back() to the kernel; returns how many.
    unsigned publish() noexcept;

  private:
    io_uring_buf_ring* entries_ = nullptr;
    std::size_t entries_bytes_ = 0;
    char* area_ = nullptr;
    std::size_t area_bytes_ = 0;
    std::size_t size_;
    unsigned count_;
    unsigned short group_;
    unsigned queued_ = 0;  // given back since the last publish()
};

}  // namespace ferry::detail
