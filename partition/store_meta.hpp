// The checks a zinc store's metadata passes before StoreReader trusts it, apart from HDF5
// (partition/store.hpp describes the file). StoreReader reads each item from its HDF5
// object and hands it here; keeping the checks free of HDF5 lets the unit tests and the
// fuzzer (tests/fuzz/fuzz_store_meta.cpp) reach every one without writing HDF5 files.
// Every error names the store (`path`) and the item.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/blob.hpp"
#include "quant/quantize.hpp"

namespace zinc::partition {

// Version 2 added the CRC-32C of every text; version 1 stores are refused.
constexpr int kStoreVersion = 2;

// The zinc_store_version attribute: kStoreVersion, else an error (version 1 names the
// missing checksums).
void check_store_version(int version, const std::string& path);
// The quant attribute: a weight format's name.
quant::QuantFormat parse_store_quant(const std::string& name, const std::string& path);
// A text against the CRC-32C stored beside it; `item` names it ("/config.json",
// "the manifest of blob embed").
void verify_text_crc(const std::string& text, uint32_t stored, const std::string& item, const std::string& path);

// A blob's name: not empty, not ".", no '/' (it is an HDF5 path component).
bool is_valid_blob_name(const std::string& name);
// /blob_order's text: a JSON array of distinct blob names.
std::vector<std::string> parse_blob_order(const std::string& text, const std::string& path);

// What StoreReader found of one blob that /blob_order lists.
struct StoredBlob {
  std::string name;          // as /blob_order lists it
  uint64_t bytes = 0;        // elements of /blobs/<name> (uint8)
  std::string manifest;      // its attribute "manifest" (CRC-32C already verified)
  uint64_t file_offset = 0;  // of its data in the file
  uint64_t checksums = 0;    // elements of /checksums/<name>
};
// The blob's manifest, checked: valid JSON and a valid manifest (BlobManifest::from_json),
// its name and size those of the dataset, its data 4 KiB aligned and inside the file of
// `file_bytes` bytes, and one checksum per 4 KiB page.
BlobManifest check_stored_blob(const StoredBlob& b, uint64_t file_bytes, const std::string& path);

}  // namespace zinc::partition
