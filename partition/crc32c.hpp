// CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2 (partition/crc32c.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace zinc::partition {

// crc32c(b, nb, crc32c(a, na)) == crc32c(a || b).
uint32_t crc32c(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace zinc::partition
