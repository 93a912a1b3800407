// libFuzzer target: the metadata of a zinc store as StoreReader reads it from the HDF5 file
// (partition/store_meta.hpp: the version, the quant attribute, /blob_order, each blob's
// manifest, size, file offset and checksum count), then what the loader and the weight
// stream do with it before any weight byte is read: the store's config.json and
// generation_config.json, the check that the blobs are what that config implies, the shard
// arithmetic, and every param's typed view.
//
// Why not whole HDF5 files: StoreReader trusts nothing it gets from HDF5, and these checks
// are where zinc decides; HDF5 itself (the Debian library, not instrumented) would give the
// fuzzer no coverage to follow, costs a file and an H5Fopen per input, and its own parser
// bugs are HDF5's to fix. tests/unit/test_store.cpp writes damaged stores through HDF5.
//
// Input: NUL-separated fields (fuzz_input.hpp), numbers in decimal:
//   version, quant, group_size, file bytes, config.json, generation_config.json ("" = absent),
//   blob_order, then per blob listed: dataset bytes, manifest, file offset, checksum count.
// Texts come with their correct CRC-32C (a wrong one is a plain compare: unit-tested).
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "partition/crc32c.hpp"
#include "partition/shard.hpp"
#include "partition/store_meta.hpp"
#include "runtime/common/error.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/config.hpp"
#include "runtime/model/zero_weights.hpp"

namespace {

using namespace zinc;

// The view of param p lies inside its blob: codes (and scales, mins) within [0, m.bytes).
void check_view(const partition::BlobManifest& m, const partition::BlobParam& p) {
  alignas(64) static const uint8_t base[64] = {};
  const quant::QuantView v = partition::param_view(p, m.group_size, base);
  if (v.rows < 0 || v.cols < 0 || static_cast<uint64_t>(v.rows) * static_cast<uint64_t>(v.cols) !=
                                       static_cast<uint64_t>(p.numel()))
    std::abort();
  if (p.offset > m.bytes || p.bytes > m.bytes - p.offset) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> f = fuzz::split_fields(data, size, 7);
  const std::string path = "fuzz.zinc.h5";
  try {
    partition::check_store_version(fuzz::to_int(f[0]), path);
    (void)partition::parse_store_quant(f[1], path);
    const uint64_t file_bytes = std::min<uint64_t>(fuzz::to_u64(f[3]), INT64_MAX);  // an off_t
    for (size_t i : {4, 5, 6})
      partition::verify_text_crc(f[i], partition::crc32c(f[i].data(), f[i].size()), "a text", path);
    const std::vector<std::string> names = partition::parse_blob_order(f[6], path);
    std::vector<partition::BlobManifest> manifests;
    for (size_t b = 0; b < names.size(); ++b) {
      const size_t at = 7 + 4 * b;
      partition::StoredBlob s;
      s.name = names[b];
      s.bytes = at < f.size() ? fuzz::to_u64(f[at]) : 0;
      s.manifest = at + 1 < f.size() ? f[at + 1] : "";
      s.file_offset = at + 2 < f.size() ? fuzz::to_u64(f[at + 2]) : 0;
      s.checksums = at + 3 < f.size() ? fuzz::to_u64(f[at + 3]) : 0;
      manifests.push_back(partition::check_stored_blob(s, file_bytes, path));
    }
    // What the weight stream computes of every blob, and each param's view.
    for (const partition::BlobManifest& m : manifests) {
      const size_t align = runtime::blob_alignment(m);
      for (int world : {1, 3, 1024}) (void)partition::shard_range(m.bytes, world, world - 1, align);
      for (const partition::BlobParam& p : m.params) {
        check_view(m, p);
        (void)runtime::unpacked_param_bytes(p, quant::DType::F16);
      }
    }
    // The loader: the store's config, and its blobs against the plan that config implies.
    runtime::ModelConfig c = runtime::parse_config_text(f[4], path + ":/config.json");
    if (!f[5].empty()) runtime::apply_generation_config_text(f[5], path + ":/generation_config.json", &c);
    runtime::check_store_matches_plan(path, runtime::blob_plan(c), manifests);
  } catch (const Error& e) {
    fuzz::refused(e);
  }
  return 0;
}
