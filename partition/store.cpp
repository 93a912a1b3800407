#include "partition/store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "partition/blob_detail.hpp"
#include "partition/hdf5_check.hpp"
#include "partition/shard.hpp"
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

constexpr const char* kVersionAttr = "zinc_store_version";
// The CRC-32C of a text's bytes: on each string dataset, and beside each blob's manifest.
constexpr const char* kTextCrcAttr = "crc32c";
constexpr const char* kManifestCrcAttr = "manifest_crc32c";
constexpr hsize_t kAlignment = kPageBytes;  // file offset of every blob (O_DIRECT)
static_assert(kPageBytes == kAlignment, "checksum pages and blob alignment are both 4 KiB");
// read_slice reads and verifies in pieces of this size (a multiple of the page), so the
// checksums run over data still in cache.
constexpr size_t kReadChunk = 4 << 20;

size_t page_count(size_t bytes) { return (bytes + kPageBytes - 1) / kPageBytes; }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

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

// ---- reading ----------------------------------------------------------------------------

// The calling context for HDF5 failures while reading: every one names the file.
struct ReadCtx {
  const std::string& path;
};
std::ostream& operator<<(std::ostream& os, const ReadCtx& c) {
  return os << c.path << ": truncated or corrupted HDF5 file";
}

bool link_exists(hid_t loc, const char* name, const ReadCtx& ctx) {
  return ZINC_H5_CHECK_CTX(ctx, H5Lexists(loc, name, H5P_DEFAULT)) > 0;
}

// A string attribute (attr = true) or dataset, fixed- or variable-length, of one element.
std::string read_string(hid_t id, bool attr, const std::string& what, const ReadCtx& ctx) {
  h5::Datatype type(attr ? ZINC_H5_CHECK_CTX(ctx, H5Aget_type(id))
                         : ZINC_H5_CHECK_CTX(ctx, H5Dget_type(id)));
  h5::Dataspace space(attr ? ZINC_H5_CHECK_CTX(ctx, H5Aget_space(id))
                           : ZINC_H5_CHECK_CTX(ctx, H5Dget_space(id)));
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Tget_class(type.get())) == H5T_STRING &&
                 ZINC_H5_CHECK_CTX(ctx, H5Sget_simple_extent_npoints(space.get())) == 1,
             ctx.path << ": " << what << " is not a string (not a zinc store, or a damaged one)");
  h5::Datatype mem(ZINC_H5_CHECK_CTX(ctx, H5Tcopy(type.get())));
  auto read = [&](void* buf) {
    if (attr) {
      ZINC_H5_CHECK_CTX(ctx, H5Aread(id, mem.get(), buf));
    } else {
      ZINC_H5_CHECK_CTX(ctx, H5Dread(id, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    }
  };
  if (ZINC_H5_CHECK_CTX(ctx, H5Tis_variable_str(type.get())) > 0) {
    char* p = nullptr;
    read(&p);
    std::string s = p ? p : "";
    ZINC_H5_CHECK_CTX(ctx, H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, &p));
    return s;
  }
  const size_t size = H5Tget_size(type.get());
  ZINC_CHECK(size > 0, ctx.path << ": " << what << " has a string type of size 0");
  std::string s(size, '\0');
  read(s.data());
  s.resize(std::strlen(s.c_str()));  // drop the NUL padding
  return s;
}

std::string read_string_attr(hid_t obj, const char* name, const std::string& what,
                             const ReadCtx& ctx) {
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Aexists(obj, name)) > 0,
             ctx.path << ": " << what << " has no attribute " << name
                      << " (not a zinc store, or a damaged one)");
  h5::Attribute a(ZINC_H5_CHECK_CTX(ctx, H5Aopen(obj, name, H5P_DEFAULT)));
  return read_string(a.get(), true, what + " attribute " + name, ctx);
}

int read_int_attr(hid_t obj, const char* name, const ReadCtx& ctx) {
  h5::Attribute a(ZINC_H5_CHECK_CTX(ctx, H5Aopen(obj, name, H5P_DEFAULT)));
  h5::Datatype type(ZINC_H5_CHECK_CTX(ctx, H5Aget_type(a.get())));
  h5::Dataspace space(ZINC_H5_CHECK_CTX(ctx, H5Aget_space(a.get())));
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Tget_class(type.get())) == H5T_INTEGER &&
                 ZINC_H5_CHECK_CTX(ctx, H5Sget_simple_extent_npoints(space.get())) == 1,
             ctx.path << ": attribute " << name << " is not an integer");
  int value = 0;
  ZINC_H5_CHECK_CTX(ctx, H5Aread(a.get(), H5T_NATIVE_INT, &value));
  return value;
}

// Checks `text` (what `item` holds) against the CRC-32C in attribute `attr` of obj. A text
// is read whole and used as is (a changed rope_theta changes every token), so it is
// verified like a page of a blob.
void verify_text(hid_t obj, const char* attr, const std::string& text, const std::string& item,
                 const ReadCtx& ctx) {
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Aexists(obj, attr)) > 0,
             ctx.path << ": " << item << " has no CRC-32C (attribute " << attr
                      << "): the store is damaged; convert the model again");
  h5::Attribute a(ZINC_H5_CHECK_CTX(ctx, H5Aopen(obj, attr, H5P_DEFAULT)));
  h5::Datatype type(ZINC_H5_CHECK_CTX(ctx, H5Aget_type(a.get())));
  h5::Dataspace space(ZINC_H5_CHECK_CTX(ctx, H5Aget_space(a.get())));
  ZINC_CHECK(ZINC_H5_CHECK_CTX(ctx, H5Tget_class(type.get())) == H5T_INTEGER &&
                 ZINC_H5_CHECK_CTX(ctx, H5Sget_simple_extent_npoints(space.get())) == 1,
             ctx.path << ": " << item << ": attribute " << attr << " is not an integer");
  uint32_t stored = 0;
  ZINC_H5_CHECK_CTX(ctx, H5Aread(a.get(), H5T_NATIVE_UINT32, &stored));
  verify_text_crc(text, stored, item, ctx.path);
}

// A text dataset, verified against its checksum.
std::string read_string_dataset(hid_t loc, const char* name, const ReadCtx& ctx) {
  h5::Dataset ds(ZINC_H5_CHECK_CTX(ctx, H5Dopen2(loc, name, H5P_DEFAULT)));
  std::string text = read_string(ds.get(), false, name, ctx);
  verify_text(ds.get(), kTextCrcAttr, text, std::string("/") + name, ctx);
  return text;
}

// Element count of a 1-D integer dataset of `elem_bytes`-byte elements; throws otherwise.
size_t integer_vector_length(hid_t ds, size_t elem_bytes, const std::string& what,
                             const ReadCtx& ctx) {
  h5::Datatype type(ZINC_H5_CHECK_CTX(ctx, H5Dget_type(ds)));
  h5::Dataspace space(ZINC_H5_CHECK_CTX(ctx, H5Dget_space(ds)));
  ZINC_CHECK(
      ZINC_H5_CHECK_CTX(ctx, H5Tget_class(type.get())) == H5T_INTEGER &&
          H5Tget_size(type.get()) == elem_bytes &&
          ZINC_H5_CHECK_CTX(ctx, H5Sget_simple_extent_ndims(space.get())) == 1,
      ctx.path << ": " << what << " is not a 1-D array of " << elem_bytes << "-byte integers");
  hsize_t n = 0;
  ZINC_H5_CHECK_CTX(ctx, H5Sget_simple_extent_dims(space.get(), &n, nullptr));
  return static_cast<size_t>(n);
}

// Reads [offset, offset + n) of a 1-D uint8 dataset (n > 0) into dst.
void read_bytes(hid_t ds, size_t offset, size_t n, uint8_t* dst, const ReadCtx& ctx) {
  h5::Dataspace file_space(ZINC_H5_CHECK_CTX(ctx, H5Dget_space(ds)));
  const hsize_t start = offset, count = n;
  ZINC_H5_CHECK_CTX(
      ctx, H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr));
  h5::Dataspace mem_space(ZINC_H5_CHECK_CTX(ctx, H5Screate_simple(1, &count, nullptr)));
  ZINC_H5_CHECK_CTX(
      ctx, H5Dread(ds, H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT, dst));
}

uint64_t dataset_offset(hid_t ds, const std::string& path, const std::string& blob) {
  const haddr_t off = H5Dget_offset(ds);
  if (off == HADDR_UNDEF) {
    const std::string stack = h5::error_stack_text();
    ZINC_THROW(path << ": blob " << blob << " has no file offset (not stored contiguously, or "
                    << "not allocated)" << (stack.empty() ? "" : " (HDF5: " + stack + ")"));
  }
  return static_cast<uint64_t>(off);
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
