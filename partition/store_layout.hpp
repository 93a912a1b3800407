// Internal to partition/store_writer.cpp, store_reader.cpp and store_read.cpp: the names
// and sizes both sides of the zinc store's on-disk layout (store.hpp) must agree on, and
// the HDF5 read helpers both use.
#pragma once

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>

#include <hdf5.h>

#include "partition/shard.hpp"

namespace zinc::partition::store_layout {

inline constexpr const char* kVersionAttr = "zinc_store_version";
// The CRC-32C of a text's bytes: on each string dataset, and beside each blob's manifest.
inline constexpr const char* kTextCrcAttr = "crc32c";
inline constexpr const char* kManifestCrcAttr = "manifest_crc32c";
inline constexpr hsize_t kAlignment = kPageBytes;  // file offset of every blob (O_DIRECT)
static_assert(kPageBytes == kAlignment, "checksum pages and blob alignment are both 4 KiB");
// read_slice reads and verifies in pieces of this size (a multiple of the page), so the
// checksums run over data still in cache.
inline constexpr size_t kReadChunk = 4 << 20;

inline size_t page_count(size_t bytes) { return (bytes + kPageBytes - 1) / kPageBytes; }

inline std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

// The calling context for HDF5 failures while reading: every one names the file.
struct ReadCtx {
  const std::string& path;
};
std::ostream& operator<<(std::ostream& os, const ReadCtx& c);

// The HDF5 reads both the reader and the writer's finish() use (store_read.cpp).
bool link_exists(hid_t loc, const char* name, const ReadCtx& ctx);
// A string attribute (attr = true) or dataset, fixed- or variable-length, of one element.
std::string read_string(hid_t id, bool attr, const std::string& what, const ReadCtx& ctx);
int read_int_attr(hid_t obj, const char* name, const ReadCtx& ctx);
std::string read_string_attr(hid_t obj, const char* name, const std::string& what, const ReadCtx& ctx);
// Checks `text` (what `item` holds) against the CRC-32C in attribute `attr` of obj.
void verify_text(hid_t obj, const char* attr, const std::string& text, const std::string& item,
                 const ReadCtx& ctx);
// Element count of a 1-D integer dataset of `elem_bytes`-byte elements; throws otherwise.
size_t integer_vector_length(hid_t ds, size_t elem_bytes, const std::string& what, const ReadCtx& ctx);
std::string read_string_dataset(hid_t loc, const char* name, const ReadCtx& ctx);
void read_bytes(hid_t ds, size_t offset, size_t n, uint8_t* dst, const ReadCtx& ctx);
// A contiguous dataset's file offset; throws naming the store and the blob where it has none.
uint64_t dataset_offset(hid_t ds, const std::string& path, const std::string& blob);

}  // namespace zinc::partition::store_layout
