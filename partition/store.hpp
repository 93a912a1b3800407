// The zinc store: one HDF5 file holding a converted model, partition-agnostic.
//
//   /                     attributes: zinc_store_version (int, 2), quant (string),
//                         group_size (int), created_by (string)
//   /config.json          string dataset: the model's config.json text
//   /generation_config.json, /tokenizer.json, /tokenizer_config.json,
//   /special_tokens_map.json    string datasets, when the source had them
//   /blobs/<name>         uint8 [bytes], contiguous (no chunking), file offset 4 KiB aligned
//                         (H5Pset_alignment), so the NVMe tier can read it with O_DIRECT;
//                         attribute "manifest": the BlobManifest JSON (partition/blob.hpp;
//                         quantized codes padded to quant::kCodesAlign bytes, then scales, mins),
//                         attribute "manifest_crc32c" (uint32): the CRC-32C of that text
//   /checksums/<name>     uint32 [ceil(bytes / 4096)]: CRC-32C of each 4 KiB page of the
//                         blob (the last page may be partial)
//   /blob_order           string dataset: JSON array of the blob names in model order
// Every string dataset has attribute "crc32c" (uint32): the CRC-32C of its text.
//
// Opening a store verifies every text it carries (the configs, tokenizer files, blob order
// and manifests) against its CRC-32C, so a changed or corrupted one is an error naming the
// store and the item; a version 1 store (written before those checksums) is refused with a
// request to convert again. It validates every manifest against the layout of this zinc (a
// manifest from before the codes were padded, holding a matrix whose codes are not a
// multiple of 16 bytes, is refused with a request to convert again).
// Any world size reads its shard [r*S, (r+1)*S) of each blob (read_slice), and the pages
// it read are verified against their checksums. Writing goes to PATH.tmp, renamed to PATH
// by finish(): a crash never leaves a half-written file under the final name. The rename
// never replaces anything but a regular file, and replaces one only when asked to.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "partition/blob.hpp"
#include "partition/crc32c.hpp"

namespace zinc::partition {

struct StoreInfo {
  int version = 0;  // read back; the writer always writes the current version
  quant::QuantFormat quant = quant::QuantFormat::None;
  int group_size = 0;
  std::string created_by;
  std::string config_json;
  std::string generation_config_json;  // "" if absent
  std::string tokenizer_json;          // "" if absent
  std::string tokenizer_config_json;   // "" if absent
  std::string special_tokens_map_json; // "" if absent
  std::vector<std::string> blob_order;
};

class StoreWriter {
 public:
  // Creates PATH.tmp, new (a stale regular file or symbolic link of that name, left by an
  // interrupted conversion, is unlinked first; anything else there is an error). PATH must
  // be a new name, or with `replace` an existing regular file (runtime/common/output_file.hpp).
  StoreWriter(const std::string& path, const StoreInfo& info, bool replace = false);
  // Closes (every HDF5 id, even after a write error) and removes PATH.tmp if finish() was
  // not reached.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Writes one whole blob (m.bytes bytes) with its manifest and page checksums, flushed to
  // the file when it returns (a full disk fails here, naming the blob).
  void write_blob(const BlobManifest& m, const uint8_t* data);
  // Writes blob_order, closes, renames PATH.tmp -> PATH (atomically refusing a PATH that
  // appeared meanwhile, unless `replace`).
  void finish();

 private:
  std::string path_, tmp_path_;
  bool replace_ = false;
  hid_t file_ = -1;
  std::vector<std::string> written_;
  bool created_ = false;   // PATH.tmp is this writer's (removed if finish() is not reached)
  bool finished_ = false;
  void abandon() noexcept;  // closes and removes PATH.tmp after a failure
};

class StoreReader {
 public:
  // Opens and validates the file structure (version, attributes, every blob listed in
  // blob_order present with a manifest whose size matches the dataset and checksums).
  explicit StoreReader(const std::string& path);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  const std::string& path() const { return path_; }
  const StoreInfo& info() const { return info_; }
  const std::vector<BlobManifest>& manifests() const { return manifests_; }  // blob order
  // Bytes [offset, offset + bytes) of blob `index` into dst; bytes beyond the blob are
  // zero-filled. offset must be 4 KiB aligned. Every page read is checked against its
  // CRC-32C; a mismatch throws naming the file, blob and page.
  void read_slice(size_t index, size_t offset, size_t bytes, uint8_t* dst) const;
  // Checks bytes [offset, offset + bytes) of blob `index`, already read by other means
  // (the NVMe tier's O_DIRECT reads), against the page checksums. offset is page aligned;
  // the range ends on a page boundary or at the blob's end. Throws like read_slice.
  void verify_slice(size_t index, size_t offset, size_t bytes, const uint8_t* data) const;
  // Byte offset of blob `index`'s data in the file (for O_DIRECT reads; 4 KiB aligned).
  uint64_t file_offset(size_t index) const;

  // Reads all of blob `index` and checks every page against its CRC-32C, without throwing
  // on a bad one (`zinc info --verify`): the pages read, how many failed, and the first
  // `keep` that failed, in order.
  struct PageCheck {
    size_t pages = 0;
    size_t failed = 0;
    std::vector<size_t> first_failed;
  };
  PageCheck check_pages(size_t index, size_t keep) const;

 private:
  std::string path_;
  hid_t file_ = -1;
  StoreInfo info_;
  std::vector<BlobManifest> manifests_;
  std::vector<hid_t> datasets_;
  std::vector<std::vector<uint32_t>> checksums_;
};

}  // namespace zinc::partition
