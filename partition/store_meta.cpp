#include "partition/store_meta.hpp"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "partition/crc32c.hpp"
#include "partition/shard.hpp"
#include "runtime/common/error.hpp"

namespace zinc::partition {

namespace {

using nlohmann::json;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

}  // namespace

void check_store_version(int version, const std::string& path) {
  ZINC_CHECK(version != 1,
             path << ": zinc store version 1 predates the checksums of the texts it carries "
                  << "(config.json, the tokenizer files, the manifests), which therefore cannot "
                  << "be verified: convert the model again (this zinc reads version " << kStoreVersion << ")");
  ZINC_CHECK(version == kStoreVersion, path << ": zinc store version " << version << " is not supported (this zinc "
                                            << "reads version " << kStoreVersion << "): convert the model again");
}

quant::QuantFormat parse_store_quant(const std::string& name, const std::string& path) {
  try {
    return quant::parse_quant_format(name);
  } catch (const Error& e) {
    ZINC_THROW(path << ": attribute quant: " << e.what());
  }
}

void verify_text_crc(const std::string& text, uint32_t stored, const std::string& item, const std::string& path) {
  const uint32_t computed = crc32c(text.data(), text.size());
  ZINC_CHECK(stored == computed, path << ": " << item << " fails its CRC-32C check (stored " << hex32(stored)
                                      << ", computed " << hex32(computed)
                                      << "): the store was changed or is corrupted; convert the model again");
}

bool is_valid_blob_name(const std::string& name) {
  return !name.empty() && name != "." && name.find('/') == std::string::npos;
}

std::vector<std::string> parse_blob_order(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ZINC_THROW(path << ": /blob_order is not valid JSON (" << e.what() << ")");
  }
  ZINC_CHECK(j.is_array(), path << ": /blob_order is not a JSON array of blob names");
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const json& v : j) {
    ZINC_CHECK(v.is_string() && is_valid_blob_name(v.get<std::string>()),
               path << ": /blob_order holds " << v.dump() << ", not a blob name");
    ZINC_CHECK(seen.insert(v.get<std::string>()).second,
               path << ": /blob_order lists blob " << v.get<std::string>() << " twice");
    names.push_back(v.get<std::string>());
  }
  return names;
}

BlobManifest check_stored_blob(const StoredBlob& b, uint64_t file_bytes, const std::string& path) {
  BlobManifest m;
  try {
    m = BlobManifest::from_json(json::parse(b.manifest), path + ": blob " + b.name);
  } catch (const json::exception& e) {
    ZINC_THROW(path << ": blob " << b.name << ": invalid manifest JSON (" << e.what() << ")");
  }
  ZINC_CHECK(m.name == b.name, path << ": /blobs/" << b.name << " holds the manifest of blob " << m.name);
  ZINC_CHECK(b.bytes == m.bytes,
             path << ": blob " << b.name << " holds " << b.bytes << " bytes but its manifest says " << m.bytes);
  ZINC_CHECK(b.file_offset % kPageBytes == 0,
             path << ": blob " << b.name << " is at file offset " << b.file_offset << ", not 4 KiB aligned");
  ZINC_CHECK(b.file_offset <= file_bytes && b.bytes <= file_bytes - b.file_offset,
             path << ": truncated file: blob " << b.name << " ends at byte " << b.file_offset + b.bytes
                  << " but the file has " << file_bytes << " bytes");
  const uint64_t pages = b.bytes / kPageBytes + (b.bytes % kPageBytes != 0);
  ZINC_CHECK(b.checksums == pages, path << ": blob " << b.name << " has " << b.checksums << " checksums for "
                                        << pages << " pages of 4 KiB");
  return m;
}

}  // namespace zinc::partition
