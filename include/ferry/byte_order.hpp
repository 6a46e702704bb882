// ferry/byte_order.hpp: big-endian (network order) loads and stores for binary fields.
#pragma once

#include <cstdint>
#include <cstring>

namespace ferry {

/// Loads and stores of unsigned integers in network byte order at any
/// alignment (memcpy, so no unaligned access and no aliasing trouble).
inline std::uint16_t load_be16(const void* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_bswap16(v);
}
/// The 32-bit big-endian integer at `p`.
inline std::uint32_t load_be32(const void* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_bswap32(v);
}
/// The 64-bit big-endian integer at `p`.
inline std::uint64_t load_be64(const void* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}
/// Writes `v` at `p` as 2 big-endian bytes.
inline void store_be16(void* p, std::uint16_t v) noexcept {
    v = __builtin_bswap16(v);
    std::memcpy(p, &v, sizeof v);
}
/// Writes `v` at `p` as 4 big-endian bytes.
inline void store_be32(void* p, std::uint32_t v) noexcept {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, sizeof v);
}
/// Writes `v` at `p` as 8 big-endian bytes.
inline void store_be64(void* p, std::uint64_t v) noexcept {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, sizeof v);
}

static_assert(
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
    "the byte-order helpers assume a little-endian host (every Linux target ferry builds for)");

}  // namespace ferry
