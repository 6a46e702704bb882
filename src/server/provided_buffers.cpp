// A provided-buffer ring for the io_uring model (see provided_buffers.hpp).
#include "provided_buffers.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#include "ferry/error.hpp"

namespace ferry::detail {
namespace {

/// An anonymous private mapping of `bytes`; throws Error naming `what`.
void* map_anonymous(std::size_t bytes, const char* what) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_errno(what);
    return p;
}

}  // namespace

ProvidedBuffers::ProvidedBuffers(io_uring& ring, unsigned count, std::size_t size,
                                 unsigned short group)
    : size_(size), count_(count), group_(group) {
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0)
        throw_errno(EINVAL, "a provided buffer ring of " + std::to_string(count) + " buffers");
    // The ring of descriptors must be page-aligned: a mapping of its own.
    entries_bytes_ = count * sizeof(io_uring_buf);
    entries_ = static_cast<io_uring_buf_ring*>(
        map_anonymous(entries_bytes_, "mmap of the provided buffer ring"));
    area_bytes_ = count * size;
    try {
        area_ = static_cast<char*>(map_anonymous(area_bytes_, "mmap of the provided buffers"));
        io_uring_buf_ring_init(entries_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(entries_);
        reg.ring_entries = count;
        reg.bgid = group;
        const int rc = ::io_uring_register_buf_ring(&ring, &reg, 0);
        if (rc < 0) throw_errno(-rc, "io_uring provided buffer ring (Linux 5.19 or later)");
    } catch (...) {
        if (area_ != nullptr) ::munmap(area_, area_bytes_);
        ::munmap(entries_, entries_bytes_);
        throw;
    }
    for (unsigned id = 0; id < count; ++id)
        give_back(id);
    publish();
}

ProvidedBuffers::~ProvidedBuffers() {
    ::munmap(area_, area_bytes_);
    ::munmap(entries_, entries_bytes_);
}

void ProvidedBuffers::give_back(unsigned id) noexcept {
    io_uring_buf_ring_add(entries_, data(id), static_cast<unsigned>(size_),
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(count_),
                          static_cast<int>(queued_));
    ++queued_;
}

unsigned ProvidedBuffers::publish() noexcept {
    const unsigned published = queued_;
    if (published != 0) io_uring_buf_ring_advance(entries_, static_cast<int>(published));
    queued_ = 0;
    return published;
}

}  // namespace ferry::detail
