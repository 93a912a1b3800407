#include "partition/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "partition/blob_detail.hpp"
#include "partition/hdf5_check.hpp"
#include "partition/store_layout.hpp"
#include "partition/store_meta.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/output_file.hpp"

// How the store is laid out on disk: store.hpp; the writer's choices: store_writer.cpp.
// The HDF5 library here is built thread-safe: calls are serialized by its global lock, and
// the error-printing switch is per thread (h5::silence_error_printing() in every entry).

namespace zinc::partition {

using nlohmann::json;
using namespace store_layout;

// ---- StoreReader ------------------------------------------------------------------------

StoreReader::StoreReader(const std::string& path) : path_(path) {
  h5::silence_error_printing();
  const ReadCtx ctx{path_};
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    ZINC_THROW(path_ << ": cannot open the zinc store: " << std::strerror(errno));
  }
  ZINC_CHECK(S_ISREG(st.st_mode), path_ << ": not a regular file (expected a zinc store)");
  const htri_t is_hdf5 = H5Fis_hdf5(path_.c_str());
  if (is_hdf5 == 0) {
    h5::error_stack_text();  // clear
    ZINC_THROW(path_ << ": not an HDF5 file (no HDF5 signature), so not a zinc store: "
                     << "make one with `zinc convert`");
  }
  h5::PropList fapl(ZINC_H5_CHECK_CTX(ctx, H5Pcreate(H5P_FILE_ACCESS)));
#if H5_VERSION_GE(1, 10, 7)
  // Keep HDF5's file locks where the file system has them; don't fail where it has not.
  ZINC_H5_CHECK_CTX(ctx, H5Pset_file_locking(fapl.get(), true, true));
#endif
  h5::File file(ZINC_H5_CHECK_CTX(ctx, H5Fopen(path_.c_str(), H5F_ACC_RDONLY, fapl.get())));

  const hid_t f = file.get();
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Aexists(f, kVersionAttr)) > 0,
             path_ << ": not a zinc store (no " << kVersionAttr << " attribute)");
  info_.version = read_int_attr(f, kVersionAttr, ctx);
  check_store_version(info_.version, path_);
  info_.quant = parse_store_quant(read_string_attr(f, "quant", "the store", ctx), path_);
  info_.group_size = read_int_attr(f, "group_size", ctx);
  info_.created_by = read_string_attr(f, "created_by", "the store", ctx);

  ZINC_CHECK(link_exists(f, "config.json", ctx), path_ << ": zinc store without /config.json");
  info_.config_json = read_string_dataset(f, "config.json", ctx);
  if (link_exists(f, "generation_config.json", ctx)) {
    info_.generation_config_json = read_string_dataset(f, "generation_config.json", ctx);
  }
  if (link_exists(f, "tokenizer.json", ctx)) {
    info_.tokenizer_json = read_string_dataset(f, "tokenizer.json", ctx);
  }
  if (link_exists(f, "tokenizer_config.json", ctx)) {
    info_.tokenizer_config_json = read_string_dataset(f, "tokenizer_config.json", ctx);
  }
  if (link_exists(f, "special_tokens_map.json", ctx)) {
    info_.special_tokens_map_json = read_string_dataset(f, "special_tokens_map.json", ctx);
  }
  ZINC_CHECK(link_exists(f, "blob_order", ctx), path_ << ": zinc store without /blob_order");
  info_.blob_order = parse_blob_order(read_string_dataset(f, "blob_order", ctx), path_);
  ZINC_CHECK(link_exists(f, "blobs", ctx) && link_exists(f, "checksums", ctx),
             path_ << ": zinc store without /blobs or /checksums");

  std::vector<h5::Dataset> datasets;
  for (const std::string& name : info_.blob_order) {
    const std::string blob_path = "blobs/" + name;
    const std::string crc_path = "checksums/" + name;
    ZINC_CHECK(link_exists(f, blob_path.c_str(), ctx),
               path_ << ": blob " << name << " is listed in /blob_order but /blobs/" << name
                     << " is missing");
    h5::Dataset ds(ZINC_H5_CHECK_CTX(ctx, H5Dopen2(f, blob_path.c_str(), H5P_DEFAULT)));
    StoredBlob stored;
    stored.name = name;
    stored.bytes = integer_vector_length(ds.get(), 1, "/" + blob_path, ctx);
    stored.manifest = read_string_attr(ds.get(), "manifest", "blob " + name, ctx);
    verify_text(ds.get(), kManifestCrcAttr, stored.manifest, "the manifest of blob " + name, ctx);
    stored.file_offset = dataset_offset(ds.get(), path_, name);
    ZINC_CHECK(link_exists(f, crc_path.c_str(), ctx),
               path_ << ": blob " << name << " has no checksums (/" << crc_path << ")");
    h5::Dataset crc_ds(ZINC_H5_CHECK_CTX(ctx, H5Dopen2(f, crc_path.c_str(), H5P_DEFAULT)));
    stored.checksums = integer_vector_length(crc_ds.get(), 4, "/" + crc_path, ctx);
    BlobManifest m = check_stored_blob(stored, static_cast<uint64_t>(st.st_size), path_);
    const size_t count = static_cast<size_t>(stored.checksums);
    std::vector<uint32_t> crcs(count);
    if (count > 0) {
      ZINC_H5_CHECK_CTX(ctx, H5Dread(crc_ds.get(), H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                     crcs.data()));
    }
    manifests_.push_back(std::move(m));
    checksums_.push_back(std::move(crcs));
    datasets.push_back(std::move(ds));
  }
  // Everything checked: hand the ids to the members (closed by the destructor).
  for (h5::Dataset& ds : datasets) datasets_.push_back(ds.release());
  file_ = file.release();
}

StoreReader::~StoreReader() {
  for (hid_t ds : datasets_) {
    if (H5Dclose(ds) < 0) log_error(path_ + ": H5Dclose failed: " + h5::error_stack_text());
  }
  if (file_ >= 0 && H5Fclose(file_) < 0) {
    log_error(path_ + ": H5Fclose failed: " + h5::error_stack_text());
  }
}

void StoreReader::read_slice(size_t index, size_t offset, size_t bytes, uint8_t* dst) const {
  h5::silence_error_printing();
  const ReadCtx ctx{path_};
  ZINC_CHECK(index < manifests_.size(), path_ << ": blob index " << index << " out of range ("
                                              << manifests_.size() << " blobs)");
  const BlobManifest& m = manifests_[index];
  ZINC_CHECK(offset % kPageBytes == 0, path_ << ": blob " << m.name << ": slice offset " << offset
                                             << " is not a multiple of 4096");
  ZINC_CHECK(
      bytes <= std::numeric_limits<size_t>::max() - offset,
      path_ << ": blob " << m.name << ": slice [" << offset << ", +" << bytes << ") overflows");
  const size_t blob_bytes = m.bytes;
  const size_t end = std::min(offset + bytes, std::max(blob_bytes, offset));
  const size_t valid = end - offset;  // bytes of the slice inside the blob
  if (valid < bytes) std::memset(dst + valid, 0, bytes - valid);
  if (valid == 0) return;

  // Read in chunks and verify each chunk's pages while they are still in cache. A page cut
  // by the slice's end (not the blob's) is completed from the file into a small buffer, so
  // every byte returned is checked.
  const std::vector<uint32_t>& crcs = checksums_[index];
  auto page_crc = [&](size_t p) {
    const size_t begin = p * kPageBytes;
    const size_t page_end = std::min(begin + kPageBytes, blob_bytes);
    const size_t have = std::min(page_end, end) - begin;
    uint32_t crc = crc32c(dst + (begin - offset), have);
    if (have < page_end - begin) {
      uint8_t rest[kPageBytes];
      read_bytes(datasets_[index], begin + have, page_end - begin - have, rest, ctx);
      crc = crc32c(rest, page_end - begin - have, crc);
    }
    return crc;
  };
  auto fail = [&](size_t p) {
    ZINC_THROW(path_ << ": blob " << m.name << " page " << p << " fails its CRC-32C check (stored "
                     << hex32(crcs[p]) << ", computed " << hex32(page_crc(p))
                     << "): the file is corrupted; convert the model "
                     << "again");
  };
  for (size_t pos = offset; pos < end; pos += kReadChunk) {
    const size_t chunk_end = std::min(pos + kReadChunk, end);
    read_bytes(datasets_[index], pos, chunk_end - pos, dst + (pos - offset), ctx);
    // Pages wholly inside the chunk (a blob's partial last page counts when it ends there).
    const int64_t lo = static_cast<int64_t>(pos / kPageBytes);
    const int64_t hi = static_cast<int64_t>(chunk_end == blob_bytes ? page_count(blob_bytes)
                                                                    : chunk_end / kPageBytes);
    size_t bad = SIZE_MAX;
#pragma omp parallel for schedule(static) reduction(min : bad) if (hi - lo >= 64)
    for (int64_t p = lo; p < hi; ++p) {
      const size_t begin = static_cast<size_t>(p) * kPageBytes;
      const size_t n = std::min(kPageBytes, blob_bytes - begin);
      if (crc32c(dst + (begin - offset), n) != crcs[p]) bad = std::min(bad, size_t(p));
    }
    if (bad != SIZE_MAX) fail(bad);
  }
  const size_t last = (end - 1) / kPageBytes;
  if (std::min((last + 1) * kPageBytes, blob_bytes) > end && page_crc(last) != crcs[last]) {
    fail(last);
  }
}

void StoreReader::verify_slice(size_t index, size_t offset, size_t bytes, const uint8_t* data) const {
  ZINC_CHECK(index < manifests_.size(), path_ << ": blob index " << index << " out of range");
  const BlobManifest& m = manifests_[index];
  const size_t end = std::min(offset + bytes, m.bytes);
  ZINC_CHECK(offset % kPageBytes == 0 && (end % kPageBytes == 0 || end == m.bytes),
             path_ << ": blob " << m.name << ": verify_slice [" << offset << ", " << end
                   << ") does not cover whole pages");
  const std::vector<uint32_t>& crcs = checksums_[index];
  const int64_t lo = static_cast<int64_t>(offset / kPageBytes);
  const int64_t hi = static_cast<int64_t>((end + kPageBytes - 1) / kPageBytes);
  size_t bad = SIZE_MAX;
#pragma omp parallel for schedule(static) reduction(min : bad) if (hi - lo >= 64)
  for (int64_t p = lo; p < hi; ++p) {
    const size_t begin = static_cast<size_t>(p) * kPageBytes;
    const size_t n = std::min(kPageBytes, m.bytes - begin);
    if (crc32c(data + (begin - offset), n) != crcs[p]) bad = std::min(bad, size_t(p));
  }
  if (bad != SIZE_MAX) {
    const size_t begin = bad * kPageBytes;
    ZINC_THROW(path_ << ": blob " << m.name << " page " << bad << " fails its CRC-32C check (stored "
                     << hex32(crcs[bad]) << ", computed "
                     << hex32(crc32c(data + (begin - offset), std::min(kPageBytes, m.bytes - begin)))
                     << "): the file is corrupted; convert the model again");
  }
}

StoreReader::PageCheck StoreReader::check_pages(size_t index, size_t keep) const {
  h5::silence_error_printing();
  const ReadCtx ctx{path_};
  ZINC_CHECK(index < manifests_.size(), path_ << ": blob index " << index << " out of range ("
                                              << manifests_.size() << " blobs)");
  const size_t bytes = manifests_[index].bytes;
  const std::vector<uint32_t>& crcs = checksums_[index];
  PageCheck out;
  out.pages = page_count(bytes);
  std::vector<uint8_t> buf(std::min(bytes, kReadChunk));
  for (size_t pos = 0; pos < bytes; pos += kReadChunk) {  // kReadChunk: whole pages
    const size_t n = std::min(kReadChunk, bytes - pos);
    read_bytes(datasets_[index], pos, n, buf.data(), ctx);
    for (size_t at = 0; at < n; at += kPageBytes) {
      const size_t page = (pos + at) / kPageBytes;
      if (crc32c(buf.data() + at, std::min(kPageBytes, n - at)) == crcs[page]) continue;
      ++out.failed;
      if (out.first_failed.size() < keep) out.first_failed.push_back(page);
    }
  }
  return out;
}

uint64_t StoreReader::file_offset(size_t index) const {
  h5::silence_error_printing();
  ZINC_CHECK(index < datasets_.size(), path_ << ": blob index " << index << " out of range ("
                                             << datasets_.size() << " blobs)");
  return dataset_offset(datasets_[index], path_, manifests_[index].name);
}

}  // namespace zinc::partition
