// Internal checks and helpers shared by blob.cpp (layout, packing, JSON) and
// dummy_blob.cpp (the --dummy weight generator). Not part of the partition API.
#pragma once

#include <cstddef>
#include <cstdint>

#include "partition/blob.hpp"

namespace zinc::partition::detail {

// Params in ascending, non-overlapping order inside the blob, each self-consistent.
void check_manifest(const BlobManifest& m, const char* op);
// Zeroes n bytes in parallel (a slice can be gigabytes).
void parallel_zero(uint8_t* dst, size_t n);
// [offset, offset + bytes) does not overflow and dst exists when bytes > 0.
void check_slice(size_t offset, size_t bytes, const uint8_t* dst, const char* op);

}  // namespace zinc::partition::detail
