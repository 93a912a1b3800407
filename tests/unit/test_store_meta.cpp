// partition/store_meta: the checks of a store's metadata apart from HDF5 (what StoreReader
// hands them, and what tests/fuzz/fuzz_store_meta.cpp fuzzes). Every error names the store.
#include <cstdint>
#include <string>

#include "partition/blob.hpp"
#include "partition/crc32c.hpp"
#include "partition/store_meta.hpp"
#include "unit/test_util.hpp"

using zinc::partition::BlobManifest;
using zinc::partition::check_stored_blob;
using zinc::partition::StoredBlob;

namespace {

const std::string kPath = "m.zinc.h5";

// A stored blob as the writer leaves it: one F16 norm of 3000 elements (6000 bytes, two pages).
StoredBlob good_blob() {
  const BlobManifest m = zinc::partition::plan_blob(
      "layer.0000", {{"norm.weight", {3000}, zinc::quant::DType::F16, false}}, zinc::quant::QuantFormat::None, 64);
  StoredBlob b;
  b.name = m.name;
  b.bytes = m.bytes;
  b.manifest = m.to_json().dump();
  b.file_offset = 8192;
  b.checksums = 2;
  return b;
}

}  // namespace

TEST_CASE("store meta: version, quant and text checksums", "[store]") {
  zinc::partition::check_store_version(zinc::partition::kStoreVersion, kPath);
  REQUIRE_THROWS_WITH(zinc::partition::check_store_version(1, kPath),
                      ZINC_CONTAINS(kPath) && ZINC_CONTAINS("version 1 predates"));
  REQUIRE_THROWS_WITH(zinc::partition::check_store_version(3, kPath),
                      ZINC_CONTAINS(kPath) && ZINC_CONTAINS("version 3 is not supported"));
  CHECK(zinc::partition::parse_store_quant("nf4", kPath) == zinc::quant::QuantFormat::NF4);
  REQUIRE_THROWS_WITH(zinc::partition::parse_store_quant("nf5", kPath),
                      ZINC_CONTAINS(kPath) && ZINC_CONTAINS("attribute quant"));
  const std::string text = "{\"model_type\": \"llama\"}";
  zinc::partition::verify_text_crc(text, zinc::partition::crc32c(text.data(), text.size()), "/config.json", kPath);
  REQUIRE_THROWS_WITH(zinc::partition::verify_text_crc(text, 0, "/config.json", kPath),
                      ZINC_CONTAINS(kPath + ": /config.json fails its CRC-32C check"));
}

TEST_CASE("store meta: the blob order", "[store]") {
  CHECK(zinc::partition::parse_blob_order("[\"embed\", \"head\"]", kPath) ==
        std::vector<std::string>{"embed", "head"});
  for (const char* bad : {"[\"a\", \"a\"]", "[\"a/b\"]", "[\".\"]", "[\"\"]", "[1]", "{}", "[", ""}) {
    INFO(bad);
    REQUIRE_THROWS_WITH(zinc::partition::parse_blob_order(bad, kPath), ZINC_CONTAINS(kPath + ": /blob_order"));
  }
}

TEST_CASE("store meta: a stored blob's manifest, size, offset and checksums", "[store]") {
  const StoredBlob good = good_blob();
  const BlobManifest m = check_stored_blob(good, 16384, kPath);
  CHECK(m.name == "layer.0000");
  CHECK(m.bytes == 6000);

  StoredBlob b = good;
  b.name = "layer.0001";
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath), ZINC_CONTAINS("holds the manifest of blob layer.0000"));
  b = good;
  b.bytes = 6001;
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath), ZINC_CONTAINS("but its manifest says 6000"));
  b = good;
  b.file_offset = 8000;
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath), ZINC_CONTAINS("not 4 KiB aligned"));
  b = good;
  REQUIRE_THROWS_WITH(check_stored_blob(b, 14191, kPath), ZINC_CONTAINS("truncated file"));
  b.file_offset = UINT64_MAX - 4095;  // offset + bytes wraps around: still past the end
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath), ZINC_CONTAINS("truncated file"));
  b = good;
  b.checksums = 1;
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath), ZINC_CONTAINS("1 checksums for 2 pages"));
  b = good;
  b.manifest = "{\"name\": ";
  REQUIRE_THROWS_WITH(check_stored_blob(b, 16384, kPath),
                      ZINC_CONTAINS(kPath + ": blob layer.0000: invalid manifest JSON"));
}
