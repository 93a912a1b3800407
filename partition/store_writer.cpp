#include "partition/store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "partition/blob_detail.hpp"
#include "partition/hdf5_check.hpp"
#include "partition/store_layout.hpp"
#include "partition/store_meta.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/output_file.hpp"

// How the store is laid out on disk is documented in store.hpp. Choices made here:
// - every text (config.json, tokenizer.json, blob_order, the manifests, the quant name) is
//   a scalar fixed-length string (UTF-8, null-padded) of exactly its byte length: no
//   variable-length heap, readable as one piece by h5py/h5dump, and fine for texts of
//   several MB (an empty text is stored as one NUL byte);
// - file format bounds (V18, V18): any HDF5 >= 1.8 reads the file (the GPU machines have
//   1.10.10, the dev machine 1.10.8) and large manifests may use dense attribute storage;
// - blobs: contiguous, allocated at creation without fill (so H5Dget_offset exists and the
//   data is written once), 4 KiB aligned through H5Pset_alignment(fapl, 0, 4096).
// The HDF5 library here is built thread-safe: calls are serialized by its global lock, and
// the error-printing switch is per thread (h5::silence_error_printing() in every entry).

namespace zinc::partition {

namespace {

using nlohmann::json;
using namespace store_layout;

// ---- writing ----------------------------------------------------------------------------

h5::Datatype string_type(size_t bytes, const std::string& where) {
  h5::Datatype t(ZINC_H5_CHECK_CTX(where, H5Tcopy(H5T_C_S1)));
  ZINC_H5_CHECK_CTX(where, H5Tset_size(t.get(), std::max<size_t>(bytes, 1)));
  ZINC_H5_CHECK_CTX(where, H5Tset_strpad(t.get(), H5T_STR_NULLPAD));
  ZINC_H5_CHECK_CTX(where, H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}

// A one-byte buffer stands in for "" (HDF5 strings have at least one byte).
const char* string_data(const std::string& s) { return s.empty() ? "\0" : s.data(); }

void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& where) {
  h5::Datatype type = string_type(value.size(), where);
  h5::Dataspace space(ZINC_H5_CHECK_CTX(where, H5Screate(H5S_SCALAR)));
  h5::Attribute attr(ZINC_H5_CHECK_CTX(
      where, H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  ZINC_H5_CHECK_CTX(where, H5Awrite(attr.get(), type.get(), string_data(value)));
}

void write_int_attr(hid_t obj, const char* name, int value, const std::string& where) {
  h5::Dataspace space(ZINC_H5_CHECK_CTX(where, H5Screate(H5S_SCALAR)));
  h5::Attribute attr(ZINC_H5_CHECK_CTX(
      where, H5Acreate2(obj, name, H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  ZINC_H5_CHECK_CTX(where, H5Awrite(attr.get(), H5T_NATIVE_INT, &value));
}

void write_u32_attr(hid_t obj, const char* name, uint32_t value, const std::string& where) {
  h5::Dataspace space(ZINC_H5_CHECK_CTX(where, H5Screate(H5S_SCALAR)));
  h5::Attribute attr(ZINC_H5_CHECK_CTX(
      where, H5Acreate2(obj, name, H5T_STD_U32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  ZINC_H5_CHECK_CTX(where, H5Awrite(attr.get(), H5T_NATIVE_UINT32, &value));
}

// A text dataset with the CRC-32C of its bytes (attribute crc32c).
void write_string_dataset(hid_t loc, const char* name, const std::string& value,
                          const std::string& where) {
  h5::Datatype type = string_type(value.size(), where);
  h5::Dataspace space(ZINC_H5_CHECK_CTX(where, H5Screate(H5S_SCALAR)));
  h5::Dataset ds(ZINC_H5_CHECK_CTX(where, H5Dcreate2(loc, name, type.get(), space.get(),
                                                     H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  ZINC_H5_CHECK_CTX(
      where, H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, string_data(value)));
  write_u32_attr(ds.get(), kTextCrcAttr, crc32c(value.data(), value.size()), where);
}

// Unlinks a stale PATH.tmp of an interrupted conversion (a regular file, or a link to one:
// unlinking a name never loses what another name holds), so the temporary can be created new.
void remove_stale_temporary(const std::string& tmp) {
  check_output_path(tmp, {}, /*replace=*/true);
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    ZINC_THROW("cannot remove the stale temporary " << tmp << ": " << std::strerror(errno));
  }
}

// Renames tmp to path. Unless `replace`, a path that appeared since the writer was made is
// not replaced: rename with RENAME_NOREPLACE, or where the file system lacks it, link()
// (which refuses an existing name just as atomically) and unlink.
void publish(const std::string& tmp, const std::string& path, bool replace) {
  auto fail = [&](int err) {
    if (err == EEXIST) {
      ZINC_THROW(path << ": already exists (it appeared during the conversion); not replaced");
    }
    ZINC_THROW("cannot rename " << tmp << " to " << path << ": " << std::strerror(err));
  };
  if (replace) {
    check_output_path(path, {}, true);  // still a regular file or nothing
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(errno);
    return;
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return;
  if (errno != EINVAL && errno != ENOSYS) fail(errno);
  if (::link(tmp.c_str(), path.c_str()) == 0) {
    ::unlink(tmp.c_str());
    return;
  }
  if (errno == EEXIST) fail(errno);
  check_output_path(path, {}, false);  // no hard links either: check, then rename
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(errno);
}

}  // namespace

// ---- StoreWriter ------------------------------------------------------------------------

StoreWriter::StoreWriter(const std::string& path, const StoreInfo& info, bool replace)
    : path_(path), tmp_path_(path + ".tmp"), replace_(replace) {
  h5::silence_error_printing();
  const std::string& where = tmp_path_;
  check_output_path(path_, {}, replace_);
  remove_stale_temporary(tmp_path_);
  try {
    h5::PropList fapl(ZINC_H5_CHECK_CTX(where, H5Pcreate(H5P_FILE_ACCESS)));
    // sec2 (the default, named here): abandon() replaces its file descriptor.
    ZINC_H5_CHECK_CTX(where, H5Pset_fapl_sec2(fapl.get()));
    ZINC_H5_CHECK_CTX(where, H5Pset_alignment(fapl.get(), 0, kAlignment));
    ZINC_H5_CHECK_CTX(where, H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18));
    // SEMI: closing fails (instead of silently staying open) if an object was left open.
    ZINC_H5_CHECK_CTX(where, H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI));
    // EXCL: a name that appeared since the stale one was removed is not truncated.
    file_ = ZINC_H5_CHECK_CTX(where << ": cannot create the store",
                              H5Fcreate(tmp_path_.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()));
    created_ = true;

    write_int_attr(file_, kVersionAttr, kStoreVersion, where);
    write_string_attr(file_, "quant", quant::quant_format_name(info.quant), where);
    write_int_attr(file_, "group_size", info.group_size, where);
    write_string_attr(file_, "created_by", info.created_by, where);
    write_string_dataset(file_, "config.json", info.config_json, where);
    if (!info.generation_config_json.empty()) {
      write_string_dataset(file_, "generation_config.json", info.generation_config_json, where);
    }
    if (!info.tokenizer_json.empty()) {
      write_string_dataset(file_, "tokenizer.json", info.tokenizer_json, where);
    }
    if (!info.tokenizer_config_json.empty()) {
      write_string_dataset(file_, "tokenizer_config.json", info.tokenizer_config_json, where);
    }
    if (!info.special_tokens_map_json.empty()) {
      write_string_dataset(file_, "special_tokens_map.json", info.special_tokens_map_json, where);
    }
    for (const char* group : {"blobs", "checksums"}) {
      h5::Group g(ZINC_H5_CHECK_CTX(
          where, H5Gcreate2(file_, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    }
    // The intended order is written now and checked against the blobs written in finish();
    // when none is given, finish() records the order in which the blobs were written.
    if (!info.blob_order.empty()) {
      parse_blob_order(json(info.blob_order).dump(), tmp_path_);  // names valid, no repeats
      write_string_dataset(file_, "blob_order", json(info.blob_order).dump(), where);
    }
  } catch (...) {
    abandon();
    throw;
  }
}

StoreWriter::~StoreWriter() {
  if (!finished_) abandon();
}

// H5Fclose flushes HDF5's cached metadata. When that fails (a full disk, a write error),
// HDF5 1.10 frees the file but keeps its id, and its exit handler later crashes on it. The
// temporary is removed anyway, so before the close its descriptor is pointed at an empty
// anonymous memory file (memfd_create; dup2 onto the sec2 driver's descriptor, which also
// closes the temporary's): the flush lands there and cannot fail for lack of disk.
void StoreWriter::abandon() noexcept {
  if (file_ >= 0) {
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file_, H5P_DEFAULT, &handle) >= 0 && handle != nullptr) {
      const int mem = ::memfd_create("zinc-abandoned-store", MFD_CLOEXEC);
      if (mem < 0 || ::dup2(mem, *static_cast<const int*>(handle)) < 0) {
        log_error("cannot detach " + tmp_path_ + " from HDF5: " + std::strerror(errno));
      }
      if (mem >= 0) ::close(mem);
    }
    if (H5Fclose(file_) < 0) log_error(tmp_path_ + ": H5Fclose failed: " + h5::error_stack_text());
    file_ = -1;
  }
  h5::error_stack_text();  // clear
  if (created_ && ::unlink(tmp_path_.c_str()) != 0 && errno != ENOENT) {
    log_error("cannot remove " + tmp_path_ + ": " + std::strerror(errno));
  }
}

void StoreWriter::write_blob(const BlobManifest& m, const uint8_t* data) {
  h5::silence_error_printing();
  const std::string& where = tmp_path_;
  ZINC_CHECK(!finished_ && file_ >= 0,
             where << ": write_blob(" << m.name << ") called after finish()");
  ZINC_CHECK(is_valid_blob_name(m.name),
             where << ": invalid blob name '" << m.name << "' (empty, '.' or with a '/')");
  ZINC_CHECK(std::find(written_.begin(), written_.end(), m.name) == written_.end(),
             where << ": blob " << m.name << " written twice");
  ZINC_CHECK(m.bytes > 0, where << ": blob " << m.name << " is empty");
  ZINC_CHECK(data != nullptr, where << ": blob " << m.name << ": no data");
  // The manifest must be one the reader accepts: every param's layout (padded codes, then
  // scales, then mins) consistent with its shape, format and the group size.
  try {
    detail::check_manifest(m, "write_blob");
  } catch (const Error& e) {
    ZINC_THROW(where << ": blob " << m.name << ": " << e.what());
  }

  const std::string blob_path = "blobs/" + m.name;
  const hsize_t n = m.bytes;
  h5::Dataspace space(ZINC_H5_CHECK_CTX(where, H5Screate_simple(1, &n, nullptr)));
  h5::PropList dcpl(ZINC_H5_CHECK_CTX(where, H5Pcreate(H5P_DATASET_CREATE)));
  ZINC_H5_CHECK_CTX(where, H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS));
  ZINC_H5_CHECK_CTX(where, H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY));
  ZINC_H5_CHECK_CTX(where, H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER));
  h5::Dataset ds(ZINC_H5_CHECK_CTX(where << ": blob " << m.name,
                                   H5Dcreate2(file_, blob_path.c_str(), H5T_STD_U8LE, space.get(),
                                              H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
  const uint64_t offset = dataset_offset(ds.get(), where, m.name);
  ZINC_CHECK(offset % kAlignment == 0,
             where << ": blob " << m.name << " landed at file offset " << offset
                   << ", not 4 KiB aligned (H5Pset_alignment not honoured by this HDF5?)");
  ZINC_H5_CHECK_CTX(where << ": blob " << m.name,
                    H5Dwrite(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  const std::string manifest = m.to_json().dump();
  write_string_attr(ds.get(), "manifest", manifest, where);
  write_u32_attr(ds.get(), kManifestCrcAttr, crc32c(manifest.data(), manifest.size()), where);

  const size_t pages = page_count(m.bytes);
  std::vector<uint32_t> crcs(pages);
  const int64_t np = static_cast<int64_t>(pages);
#pragma omp parallel for schedule(static) if (np >= 1024)
  for (int64_t p = 0; p < np; ++p) {
    const size_t begin = static_cast<size_t>(p) * kPageBytes;
    crcs[p] = crc32c(data + begin, std::min(kPageBytes, m.bytes - begin));
  }
  const hsize_t np_h = pages;
  h5::Dataspace crc_space(ZINC_H5_CHECK_CTX(where, H5Screate_simple(1, &np_h, nullptr)));
  const std::string crc_path = "checksums/" + m.name;
  h5::Dataset crc_ds(
      ZINC_H5_CHECK_CTX(where, H5Dcreate2(file_, crc_path.c_str(), H5T_STD_U32LE, crc_space.get(),
                                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  ZINC_H5_CHECK_CTX(
      where, H5Dwrite(crc_ds.get(), H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, crcs.data()));
  // Out of HDF5's sieve buffer and metadata cache now, so that the blob is in the file when
  // this returns and a full disk fails at the blob that did not fit.
  ZINC_H5_CHECK_CTX(where << ": blob " << m.name, H5Fflush(file_, H5F_SCOPE_LOCAL));
  written_.push_back(m.name);
}

void StoreWriter::finish() {
  h5::silence_error_printing();
  const std::string& where = tmp_path_;
  ZINC_CHECK(!finished_ && file_ >= 0, where << ": finish() called twice");
  const ReadCtx ctx{tmp_path_};
  if (link_exists(file_, "blob_order", ctx)) {
    const std::vector<std::string> order =
        parse_blob_order(read_string_dataset(file_, "blob_order", ctx), tmp_path_);
    for (const std::string& name : order) {
      ZINC_CHECK(std::find(written_.begin(), written_.end(), name) != written_.end(),
                 where << ": blob " << name << " is listed in blob_order but was never written");
    }
    for (const std::string& name : written_) {
      ZINC_CHECK(std::find(order.begin(), order.end(), name) != order.end(),
                 where << ": blob " << name << " was written but is not listed in blob_order");
    }
  } else {
    write_string_dataset(file_, "blob_order", json(written_).dump(), where);
  }
  // Flushed first: a failure leaves the id open for abandon(), and the close has nothing
  // left to write.
  ZINC_H5_CHECK_CTX(where << ": writing the store", H5Fflush(file_, H5F_SCOPE_LOCAL));
  const hid_t file = file_;
  file_ = -1;  // whatever H5Fclose says, the id is gone
  ZINC_H5_CHECK_CTX(where << ": closing the store", H5Fclose(file));
  publish(tmp_path_, path_, replace_);
  finished_ = true;
}

}  // namespace zinc::partition
