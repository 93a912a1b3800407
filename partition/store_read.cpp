// The HDF5 read helpers of the zinc store (store_layout.hpp declares them): every failure
// names the file and what was being read.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "partition/hdf5_check.hpp"
#include "partition/store_layout.hpp"
#include "partition/store_meta.hpp"
#include "runtime/common/error.hpp"

namespace zinc::partition::store_layout {

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

}  // namespace zinc::partition::store_layout
