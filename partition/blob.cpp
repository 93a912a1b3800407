#include "partition/blob.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

#include "partition/blob_detail.hpp"
#include "partition/safetensors.hpp"
#include "partition/shard.hpp"
#include "runtime/common/error.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "blob bytes are little-endian");

namespace zinc::partition {

namespace {

using nlohmann::json;
using quant::DType;
using quant::QuantFormat;

constexpr int64_t kMaxElements = int64_t{1} << 60;  // keeps element and byte counts exact
constexpr int64_t kQuantBlockElements = 1 << 20;    // a matrix is quantized in row blocks

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Elements of a shape; throws (naming `what`) for a dimension <= 0 or an absurd size.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    ZINC_CHECK(d > 0,
               what << " has shape " << shape_to_string(shape) << ": every dimension must be > 0");
    ZINC_CHECK(!__builtin_mul_overflow(n, d, &n) && n <= kMaxElements,
               what << " has shape " << shape_to_string(shape) << ": too many elements");
  }
  return n;
}

bool same_layout(const quant::QuantLayout& a, const quant::QuantLayout& b) {
  return a.codes_used_bytes == b.codes_used_bytes && a.codes_bytes == b.codes_bytes &&
         a.scales_bytes == b.scales_bytes && a.mins_bytes == b.mins_bytes;
}

// The layout a quantized matrix must have; checks the shape and the group first so the
// error names the tensor and says what to change.
quant::QuantLayout quantized_layout(QuantFormat f, const std::vector<int64_t>& shape, int group,
                                    const std::string& what) {
  ZINC_CHECK(shape.size() == 2,
             what << " has shape " << shape_to_string(shape) << ": only 2-D matrices can be quantized");
  ZINC_CHECK(group > 0, what << ": the group size must be > 0, got " << group);
  ZINC_CHECK(shape[1] % group == 0, what << " has " << shape[1]
                                         << " columns, not a multiple of the group size " << group
                                         << "; choose a --group-size that divides it");
  return quant::quant_layout(f, shape[0], shape[1], group, what);
}

size_t raw_bytes(const std::vector<int64_t>& shape, DType dtype, const std::string& what) {
  ZINC_CHECK(is_float_dtype(dtype), what << " is stored raw as " << quant::dtype_name(dtype)
                                         << "; only F32, F16 and BF16 can be stored raw");
  return static_cast<size_t>(checked_numel(shape, what)) * quant::dtype_size(dtype);
}

// Whether p is consistent with itself and with `group`: the checks of check_param without
// building a message (param_view and check_manifest run it for every param; only a
// failure pays for the diagnosis).
bool param_consistent(const BlobParam& p, int group) {
  int64_t n = 1;
  for (int64_t d : p.shape) {
    if (d <= 0 || __builtin_mul_overflow(n, d, &n) || n > kMaxElements) return false;
  }
  if (p.format == QuantFormat::None) {
    return is_float_dtype(p.dtype) &&
           p.bytes == static_cast<size_t>(n) * quant::dtype_size(p.dtype);
  }
  if (p.shape.size() != 2 || group <= 0 || p.shape[1] % group != 0) return false;
  if (quant::quant_bits(p.format) == 4 && group % 2 != 0) return false;
  const quant::QuantLayout l = quant::quant_layout(p.format, p.shape[0], p.shape[1], group, "");
  return same_layout(l, p.layout) && p.bytes == l.total();
}

// Checks that p is consistent with itself and with `group` (a hand-made manifest, or a
// group size other than the manifest's, would otherwise read or write out of bounds).
void check_param(const BlobParam& p, int group, const char* op) {
  if (param_consistent(p, group)) return;
  const std::string what = std::string(op) + ": tensor " + p.name;
  if (p.format == QuantFormat::None) {
    const size_t expect = raw_bytes(p.shape, p.dtype, what);
    ZINC_CHECK(p.bytes == expect, what << " has " << p.bytes << " bytes, but "
                                       << shape_to_string(p.shape) << " " << quant::dtype_name(p.dtype)
                                       << " needs " << expect);
    return;
  }
  checked_numel(p.shape, what);
  const quant::QuantLayout l = quantized_layout(p.format, p.shape, group, what);
  ZINC_CHECK(same_layout(l, p.layout) && p.bytes == l.total(),
             what << ": its layout does not match " << quant::quant_format_name(p.format)
                  << " with group size " << group);
  ZINC_THROW(what << " does not match its shape, format and group size " << group);
}


// ---- packing ------------------------------------------------------------------------

// Bytes [lo, hi) (relative to the param's first byte) of a raw param into out.
void pack_raw_range(const BlobParam& p, DType src_type, const void* src, size_t lo, size_t hi,
                    uint8_t* out) {
  const size_t es = quant::dtype_size(p.dtype);
  const size_t ss = quant::dtype_size(src_type);
  const auto* s = static_cast<const uint8_t*>(src);
  auto one_element = [&](size_t pos, size_t end) {  // a partial element at a cut
    uint8_t tmp[8];
    const size_t e = pos / es, skip = pos % es, take = std::min(es - skip, end - pos);
    quant::convert(src_type, s + e * ss, p.dtype, tmp, 1);
    std::memcpy(out + (pos - lo), tmp + skip, take);
    return pos + take;
  };
  size_t pos = lo;
  if (pos < hi && pos % es != 0) pos = one_element(pos, hi);
  const size_t e0 = pos / es, e1 = hi / es;
  if (pos < hi && e1 > e0) {
    quant::convert(src_type, s + e0 * ss, p.dtype, out + (pos - lo), e1 - e0);
    pos = e1 * es;
  }
  if (pos < hi) one_element(pos, hi);
}

// Bytes [lo, hi) of a quantized param into out, at the layout's offsets: codes at 0, their
// padding (zero) up to codes_bytes, scales at scales_offset(), mins at mins_offset(). The
// matrix is quantized in blocks of whole rows (an even number, so a 4-bit block starts on
// a byte), and only the blocks whose codes, scales or mins overlap [lo, hi) are quantized
// at all; the last block's codes range takes in the padding.
void pack_quantized_range(const BlobParam& p, int group, DType src_type, const void* src, size_t lo,
                          size_t hi, uint8_t* out) {
  const int64_t rows = p.shape[0], cols = p.shape[1];
  const int bits = quant::quant_bits(p.format);
  const bool has_mins = p.layout.mins_bytes > 0;
  const size_t scales_at = p.layout.scales_offset();
  const size_t mins_at = p.layout.mins_offset();
  const int64_t block_rows = std::max<int64_t>(2, (kQuantBlockElements / cols) & ~int64_t{1});
  const size_t ss = quant::dtype_size(src_type);
  auto codes_begin = [&](int64_t r) {  // the end of the codes (r = rows) includes the padding
    return r >= rows ? p.layout.codes_bytes
                     : static_cast<size_t>(r) * static_cast<size_t>(cols) * bits / 8;
  };
  auto groups_begin = [&](int64_t r) { return static_cast<size_t>(r * (cols / group)); };
  auto copy_overlap = [&](size_t begin, size_t end, const uint8_t* from) {  // param-relative
    const size_t a = std::max(begin, lo), b = std::min(end, hi);
    if (a < b) std::memcpy(out + (a - lo), from + (a - begin), b - a);
  };
  auto overlaps = [&](size_t begin, size_t end) { return begin < hi && lo < end; };

  std::vector<float> f32;
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales, mins;
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    const int64_t r1 = std::min(rows, r0 + block_rows);
    const size_t c0 = codes_begin(r0), c1 = codes_begin(r1);
    const size_t g0 = groups_begin(r0), g1 = groups_begin(r1);
    const size_t s0 = scales_at + 2 * g0, s1 = scales_at + 2 * g1;
    const size_t m0 = mins_at + 2 * g0, m1 = mins_at + 2 * g1;
    if (!overlaps(c0, c1) && !overlaps(s0, s1) && !(has_mins && overlaps(m0, m1))) continue;

    const size_t n = static_cast<size_t>((r1 - r0) * cols);
    const uint8_t* block_src =
        static_cast<const uint8_t*>(src) + static_cast<size_t>(r0 * cols) * ss;
    const float* x = reinterpret_cast<const float*>(block_src);
    if (src_type != DType::F32 || reinterpret_cast<uintptr_t>(block_src) % alignof(float) != 0) {
      f32.resize(n);
      quant::convert(src_type, block_src, DType::F32, f32.data(), n);
      x = f32.data();
    }
    codes.assign(c1 - c0, 0);  // quantize writes the codes; any padding stays zero
    scales.assign(g1 - g0, 0);
    mins.assign(has_mins ? g1 - g0 : 0, 0);
    quant::quantize(p.format, group, x, r1 - r0, cols, codes.data(), scales.data(),
                    has_mins ? mins.data() : nullptr);
    copy_overlap(c0, c1, codes.data());
    copy_overlap(s0, s1, reinterpret_cast<const uint8_t*>(scales.data()));
    if (has_mins) copy_overlap(m0, m1, reinterpret_cast<const uint8_t*>(mins.data()));
  }
}

// Bytes [lo, hi) (relative to the param's first byte) of param p into out.
void pack_range(const BlobParam& p, int group, const SourceTensor& src, size_t lo, size_t hi,
                uint8_t* out) {
  ZINC_CHECK(src.data != nullptr, "pack: tensor " << p.name << " has no source data");
  ZINC_CHECK(is_float_dtype(src.dtype),
             "pack: tensor " << p.name << " comes as " << quant::dtype_name(src.dtype)
                             << "; only F32, F16 and BF16 tensors can be packed");
  if (p.format == QuantFormat::None) {
    pack_raw_range(p, src.dtype, src.data, lo, hi, out);
  } else {
    pack_quantized_range(p, group, src.dtype, src.data, lo, hi, out);
  }
}


// ---- JSON ---------------------------------------------------------------------------

[[noreturn]] void bad_manifest(const std::string& source, const std::string& where,
                               const std::string& what) {
  ZINC_THROW(source << ": " << where << ": " << what);
}

const json& field(const json& obj, const char* key, const std::string& source,
                  const std::string& where) {
  if (!obj.is_object()) bad_manifest(source, where, "expected a JSON object");
  const auto it = obj.find(key);
  if (it == obj.end()) bad_manifest(source, where, std::string("missing field \"") + key + "\"");
  return *it;
}

std::string get_string(const json& obj, const char* key, const std::string& source,
                       const std::string& where) {
  const json& f = field(obj, key, source, where);
  if (!f.is_string()) bad_manifest(source, where, std::string("\"") + key + "\" must be a string");
  return f.get<std::string>();
}

uint64_t get_uint(const json& obj, const char* key, const std::string& source,
                  const std::string& where) {
  const json& f = field(obj, key, source, where);
  if (f.is_number_unsigned()) return f.get<uint64_t>();
  if (f.is_number_integer() && f.get<int64_t>() >= 0)
    return static_cast<uint64_t>(f.get<int64_t>());
  bad_manifest(source, where,
               std::string("\"") + key + "\" must be a non-negative integer, got " + f.dump());
}

QuantFormat get_format(const json& obj, const std::string& source, const std::string& where) {
  const std::string text = get_string(obj, "format", source, where);
  try {
    return quant::parse_quant_format(text);
  } catch (const Error& e) {
    bad_manifest(source, where, e.what());
  }
}

// Reads one param and checks it against its shape, dtype and format.
BlobParam read_param(const json& j, const BlobManifest& m, const std::string& source) {
  const std::string where0 = "blob " + m.name + ", params entry";
  BlobParam p;
  p.name = get_string(j, "name", source, where0);
  if (p.name.empty()) bad_manifest(source, where0, "empty tensor name");
  const std::string where = "blob " + m.name + ", tensor " + p.name;

  const json& shape = field(j, "shape", source, where);
  if (!shape.is_array()) bad_manifest(source, where, "\"shape\" must be an array");
  for (const json& d : shape) {
    if (!d.is_number_integer()) bad_manifest(source, where, "\"shape\" must hold integers");
    p.shape.push_back(d.get<int64_t>());
  }
  p.format = get_format(j, source, where);
  if (p.format != QuantFormat::None && p.format != m.format) {
    bad_manifest(source, where,
                 std::string("format ") + quant::quant_format_name(p.format) +
                     " differs from the blob's " + quant::quant_format_name(m.format));
  }
  const std::string dtype = get_string(j, "dtype", source, where);
  if (!quant::parse_dtype(dtype, &p.dtype) || !is_float_dtype(p.dtype)) {
    bad_manifest(source, where, "dtype \"" + dtype + "\" is not F32, F16 or BF16");
  }
  p.offset = get_uint(j, "offset", source, where);
  p.bytes = get_uint(j, "bytes", source, where);
  p.layout.codes_bytes = get_uint(j, "codes", source, where);  // padded: scales start there
  p.layout.scales_bytes = get_uint(j, "scales", source, where);
  p.layout.mins_bytes = get_uint(j, "mins", source, where);

  quant::QuantLayout expect;
  size_t expect_bytes = 0;
  try {
    if (p.format == QuantFormat::None) {
      expect_bytes = raw_bytes(p.shape, p.dtype, "the tensor");
    } else {
      checked_numel(p.shape, "the tensor");
      expect = quantized_layout(p.format, p.shape, m.group_size, "the tensor");
      expect_bytes = expect.total();
    }
  } catch (const Error& e) {
    bad_manifest(source, where, e.what());
  }
  p.layout.codes_used_bytes = expect.codes_used_bytes;  // not stored: it follows from the shape
  if (!same_layout(expect, p.layout) || p.bytes != expect_bytes) {
    std::ostringstream s;
    s << "sizes (bytes " << p.bytes << ", codes " << p.layout.codes_bytes << ", scales "
      << p.layout.scales_bytes << ", mins " << p.layout.mins_bytes << ") do not match "
      << shape_to_string(p.shape) << " " << quant::quant_format_name(p.format) << " " << dtype
      << " with group size " << m.group_size << " (expected bytes " << expect_bytes << ", codes "
      << expect.codes_bytes << ", scales " << expect.scales_bytes << ", mins " << expect.mins_bytes
      << ")";
    if (expect.codes_bytes != expect.codes_used_bytes &&
        p.layout.codes_bytes == expect.codes_used_bytes) {
      s << "; the codes are not padded to a multiple of " << quant::kCodesAlign
        << " bytes, as this zinc stores them: convert the model again";
    }
    bad_manifest(source, where, s.str());
  }
  if (p.offset % kParamAlign != 0) {
    bad_manifest(source, where,
                 "offset " + std::to_string(p.offset) + " is not a multiple of " +
                     std::to_string(kParamAlign));
  }
  return p;
}

}  // namespace

namespace detail {

// Params in ascending, non-overlapping order inside the blob, each self-consistent.
void check_manifest(const BlobManifest& m, const char* op) {
  size_t end = 0;
  for (const BlobParam& p : m.params) {
    check_param(p, m.group_size, op);
    ZINC_CHECK(p.offset >= end && p.bytes <= m.bytes && p.offset <= m.bytes - p.bytes,
               op << ": blob " << m.name << ": tensor " << p.name << " at [" << p.offset << ", "
                  << p.offset + p.bytes << ") overlaps the previous tensor or ends past the blob ("
                  << m.bytes << " bytes)");
    end = p.offset + p.bytes;
  }
}

// Zeroes n bytes in parallel (a slice can be gigabytes).
void parallel_zero(uint8_t* dst, size_t n) {
  constexpr size_t kChunk = 1 << 20;
  const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    std::memset(dst + begin, 0, std::min(kChunk, n - begin));
  }
}

void check_slice(size_t offset, size_t bytes, const uint8_t* dst, const char* op) {
  ZINC_CHECK(bytes <= std::numeric_limits<size_t>::max() - offset,
             op << ": the slice [" << offset << ", +" << bytes << ") overflows size_t");
  ZINC_CHECK(bytes == 0 || dst != nullptr, op << ": no destination buffer");
}


}  // namespace detail

using detail::check_manifest;
using detail::check_slice;
using detail::parallel_zero;

int64_t BlobParam::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const BlobParam* BlobManifest::find(const std::string& param_name) const {
  for (const BlobParam& p : params) {
    if (p.name == param_name) return &p;
  }
  return nullptr;
}

nlohmann::json BlobManifest::to_json() const {
  json list = json::array();
  for (const BlobParam& p : params) {
    list.push_back({{"name", p.name},
                    {"shape", p.shape},
                    {"format", quant::quant_format_name(p.format)},
                    {"dtype", quant::dtype_name(p.dtype)},
                    {"offset", p.offset},
                    {"bytes", p.bytes},
                    {"codes", p.layout.codes_bytes},
                    {"scales", p.layout.scales_bytes},
                    {"mins", p.layout.mins_bytes}});
  }
  return {{"name", name},
          {"format", quant::quant_format_name(format)},
          {"group_size", group_size},
          {"bytes", bytes},
          {"params", std::move(list)}};
}

BlobManifest BlobManifest::from_json(const nlohmann::json& j, const std::string& source) {
  BlobManifest m;
  m.name = get_string(j, "name", source, "blob manifest");
  if (m.name.empty()) bad_manifest(source, "blob manifest", "empty blob name");
  const std::string where = "blob " + m.name;
  m.format = get_format(j, source, where);
  const uint64_t group = get_uint(j, "group_size", source, where);
  if (group == 0 || group > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    bad_manifest(source, where, "group_size " + std::to_string(group) + " is out of range");
  }
  m.group_size = static_cast<int>(group);
  m.bytes = get_uint(j, "bytes", source, where);
  const json& params = field(j, "params", source, where);
  if (!params.is_array()) bad_manifest(source, where, "\"params\" must be an array");

  std::set<std::string> names;
  size_t end = 0;
  for (const json& pj : params) {
    BlobParam p = read_param(pj, m, source);
    const std::string pwhere = where + ", tensor " + p.name;
    if (!names.insert(p.name).second) bad_manifest(source, pwhere, "listed twice");
    if (p.offset < end) {
      bad_manifest(source, pwhere,
                   "offset " + std::to_string(p.offset) +
                       " overlaps the previous tensor, which ends at " + std::to_string(end));
    }
    if (p.bytes > m.bytes || p.offset > m.bytes - p.bytes) {
      bad_manifest(source, pwhere,
                   "bytes [" + std::to_string(p.offset) + ", +" + std::to_string(p.bytes) +
                       ") lie past the blob's end (" + std::to_string(m.bytes) + " bytes)");
    }
    end = p.offset + p.bytes;
    m.params.push_back(std::move(p));
  }
  if (end != m.bytes) {
    bad_manifest(source, where,
                 "\"bytes\" is " + std::to_string(m.bytes) + " but the last tensor ends at " +
                     std::to_string(end));
  }
  return m;
}

BlobManifest plan_blob(const std::string& name, const std::vector<ParamSpec>& params,
                       QuantFormat format, int group_size) {
  ZINC_CHECK(!name.empty(), "plan_blob: the blob needs a name");
  ZINC_CHECK(group_size > 0, "blob " << name << ": the group size must be > 0, got " << group_size);
  BlobManifest m;
  m.name = name;
  m.format = format;
  m.group_size = group_size;
  std::set<std::string> names;
  size_t end = 0;
  for (const ParamSpec& spec : params) {
    const std::string what = "blob " + name + ": tensor " + spec.name;
    ZINC_CHECK(!spec.name.empty(), "blob " << name << ": a tensor has no name");
    ZINC_CHECK(names.insert(spec.name).second, what << " is listed twice");
    ZINC_CHECK(is_float_dtype(spec.dtype), what << " has dtype " << quant::dtype_name(spec.dtype)
                                                << "; only F32, F16 and BF16 tensors go in a blob");
    ZINC_CHECK(!spec.quantize || spec.shape.size() == 2,
               what << " is marked for quantization but has shape " << shape_to_string(spec.shape)
                    << "; only 2-D matrices are quantized");
    BlobParam p;
    p.name = spec.name;
    p.shape = spec.shape;
    p.dtype = spec.dtype;
    checked_numel(spec.shape, what);
    if (spec.quantize && format != QuantFormat::None) {
      p.format = format;
      p.layout = quantized_layout(format, spec.shape, group_size, what);
      p.bytes = p.layout.total();
    } else {
      p.bytes = raw_bytes(spec.shape, spec.dtype, what);
    }
    p.offset = round_up(end, kParamAlign);
    ZINC_CHECK(p.bytes <= std::numeric_limits<size_t>::max() - p.offset,
               what << ": the blob's size overflows size_t");
    end = p.offset + p.bytes;
    m.params.push_back(std::move(p));
  }
  m.bytes = end;
  return m;
}

void pack_param(const BlobParam& p, int group_size, DType src_dtype, const void* src,
                uint8_t* blob) {
  check_param(p, group_size, "pack_param");
  ZINC_CHECK(blob != nullptr, "pack_param: tensor " << p.name << ": no destination blob");
  pack_range(p, group_size, SourceTensor{src_dtype, src}, 0, p.bytes, blob + p.offset);
}

void pack_slice(const BlobManifest& m, size_t offset, size_t bytes, const FetchTensor& fetch,
                uint8_t* dst) {
  check_manifest(m, "pack_slice");
  check_slice(offset, bytes, dst, "pack_slice");
  parallel_zero(dst, bytes);
  const size_t end = offset + bytes;
  for (const BlobParam& p : m.params) {
    if (p.offset >= end) break;
    const size_t a = std::max(offset, p.offset), b = std::min(end, p.offset + p.bytes);
    if (a >= b) continue;
    const SourceTensor src = fetch(p);
    pack_range(p, m.group_size, src, a - p.offset, b - p.offset, dst + (a - offset));
  }
}

quant::QuantView param_view(const BlobParam& p, int group_size, const uint8_t* blob) {
  check_param(p, group_size, "param_view");
  ZINC_CHECK(blob != nullptr, "param_view: tensor " << p.name << ": the blob is null");
  quant::QuantView v;
  v.format = p.format;
  v.dtype = p.dtype;
  v.codes = blob + p.offset;
  if (p.format == QuantFormat::None) {
    v.cols = p.shape.empty() ? 1 : p.shape.back();
    v.rows = p.numel() / v.cols;
    return v;
  }
  v.group = group_size;
  v.rows = p.shape[0];
  v.cols = p.shape[1];
  // The layout pads the codes to kCodesAlign bytes, and blob offsets are kParamAlign
  // aligned, so the scales and mins are 2-byte aligned wherever the blob is.
  v.scales = reinterpret_cast<const uint16_t*>(v.codes + p.layout.scales_offset());
  if (p.layout.mins_bytes > 0) {
    v.mins = reinterpret_cast<const uint16_t*>(v.codes + p.layout.mins_offset());
  }
  return v;
}

}  // namespace zinc::partition
