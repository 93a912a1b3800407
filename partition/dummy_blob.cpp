// fill_dummy_slice: deterministic random blob bytes for `--model dummy:SHAPE`, generated
// by each rank straight into its own shard (partition/blob.hpp has the contract).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "partition/blob_detail.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/hash.hpp"

namespace zinc::partition {
namespace {

using quant::DType;
using quant::QuantFormat;
using detail::check_manifest;
using detail::check_slice;

constexpr size_t kFillChunk = 64 * 1024;  // bytes per OpenMP task

// ---- dummy weights ------------------------------------------------------------------

using zinc::fnv1a;
// The i-th value of the counter-based stream `key` (runtime/common/hash.hpp).
inline uint64_t hash_at(uint64_t key, uint64_t i) { return splitmix64_at(key, i); }

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Dummy values are drawn by table lookup: each 8-byte word of an array comes from one hash,
// whose 16-bit quarters each pick one of kTableSize entries (four 2-byte elements, or two
// 4-byte ones). The tables depend only on the param, so a word depends only on its position.
constexpr size_t kTableSize = 4096;

inline size_t pick(uint64_t h, int quarter) { return (h >> (16 * quarter)) & (kTableSize - 1); }

template <class T>
uint64_t four_entries(const std::vector<T>& table, uint64_t h) {  // 2-byte entries
  return uint64_t{table[pick(h, 0)]} | uint64_t{table[pick(h, 1)]} << 16 |
         uint64_t{table[pick(h, 2)]} << 32 | uint64_t{table[pick(h, 3)]} << 48;
}

// Quantiles of N(0, 1) at (u + 0.5) / kTableSize: a uniformly drawn entry is normal.
const std::vector<float>& normal_quantiles() {
  static const std::vector<float> table = [] {
    std::vector<float> t(kTableSize);
    for (size_t u = 0; u < kTableSize; ++u) {
      const double p = (static_cast<double>(u) + 0.5) / kTableSize;
      double x = 0;  // Newton on Phi(x) = p: monotone from 0, where Phi changes convexity
      for (int it = 0; it < 100; ++it) {
        const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
        const double pdf = std::exp(-0.5 * x * x) / 2.5066282746310002;  // sqrt(2 pi)
        const double step = (cdf - p) / pdf;
        x -= step;
        if (std::fabs(step) < 1e-12) break;
      }
      t[u] = static_cast<float>(x);
    }
    return t;
  }();
  return table;
}

// How one param of a dummy blob is generated; positions are absolute blob bytes.
struct DummyParam {
  size_t begin = 0, end = 0;
  bool quantized = false;
  // quantized: codes [begin, codes_used_end), zero padding [codes_used_end, codes_end),
  // scales [codes_end, scales_end), mins [scales_end, end) (the layout of quant/quantize.hpp)
  size_t codes_used_end = 0, codes_end = 0, scales_end = 0;
  uint64_t key_codes = 0, key_groups = 0, key_values = 0;
  std::vector<uint16_t> scale_table, min_table;  // quantized: fp16 entries (min pairs with scale)
  std::vector<uint32_t> value_table;             // raw: one element's bits per entry
  size_t element_bytes = 0;                      // raw: 2 or 4
};

// Fills the tables of a quantized param: codes are uniform random bytes, and the scales
// (jittered 0.8..1.2 around a nominal value) make the weights' std about `stddev`.
// Symmetric formats get a random sign per group too (half the table's scales negative):
// uniform codes are not zero-mean there (the NF4 codebook's mean is 0.024 of absmax,
// int4-sym's nibble - 8 has mean -0.5), and a matrix of such weights has a rank-one part
// along the all-ones direction (mean x sqrt(rows x cols): 0.00095 x sqrt(8192 x 28672) =
// 14.5 for LLaMA-2-70B's fc weights at std 0.02) larger than its random part (~5.2), which
// RMSNorm, unlike LayerNorm, does not take out. Without the signs dummy LLaMA-2-70B NF4
// grew it layer over layer into fp16 overflow: NaN logits, every token 0 (H200, 2026-12-01).
void quantized_tables(QuantFormat f, float stddev, DummyParam* d) {
  // A code of L uniform levels has std sqrt((L^2 - 1) / 12).
  const double levels = std::ldexp(1.0, quant::quant_bits(f));
  const double code_std = std::sqrt((levels * levels - 1.0) / 12.0);
  double scale = 0;         // nominal stored scale
  bool asymmetric = false;  // stored scale = levels / range: weight = q / s + min
  switch (f) {
    case QuantFormat::NF4: {  // weight = code[q] * absmax
      double sq = 0;
      for (float c : quant::kNF4Codebook) sq += static_cast<double>(c) * c;
      scale = stddev / std::sqrt(sq / 16.0);
      break;
    }
    case QuantFormat::Int8:     // weight = q * s, q uniform in [-128, 127]
    case QuantFormat::Int4Sym:  // weight = (nibble - 8) * s
      scale = stddev / code_std;
      break;
    case QuantFormat::Int8Asym:
    case QuantFormat::Int4:
      asymmetric = true;
      scale = code_std / stddev;
      break;
    case QuantFormat::None:
      break;
  }
  const float mean_code = static_cast<float>((levels - 1.0) / 2.0);
  d->scale_table.resize(kTableSize);
  d->min_table.assign(kTableSize, 0);
  for (size_t u = 0; u < kTableSize; ++u) {
    const double jitter = 0.8 + 0.4 * (static_cast<double>(u) + 0.5) / kTableSize;
    const double sign = asymmetric || u % 2 == 0 ? 1.0 : -1.0;
    const double s = asymmetric ? scale / jitter : sign * scale * jitter;
    d->scale_table[u] = quant::f32_to_f16(static_cast<float>(std::max(-65504.0, std::min(s, 65504.0))));
    if (asymmetric) {  // zero-mean weights: min = -mean_code / s
      d->min_table[u] = quant::f32_to_f16(-mean_code / quant::f16_to_f32(d->scale_table[u]));
    }
  }
}

// Raw params: 1-D norm weights are 1 +- 0.02, everything else N(0, stddev).
void raw_table(const BlobParam& p, float stddev, DummyParam* d) {
  const bool norm_like = p.shape.size() == 1 &&
                         (contains(p.name, "norm") || contains(p.name, "ln")) &&
                         !ends_with(p.name, "bias");
  const std::vector<float>& z = normal_quantiles();
  d->value_table.resize(kTableSize);
  for (size_t u = 0; u < kTableSize; ++u) {
    const float v =
        norm_like ? 1.0f + 0.02f * (2.0f * (u + 0.5f) / kTableSize - 1.0f) : stddev * z[u];
    uint32_t bits = 0;
    switch (p.dtype) {
      case DType::F32:
        std::memcpy(&bits, &v, 4);
        break;
      case DType::F16:
        bits = quant::f32_to_f16(v);
        break;
      default:
        bits = quant::f32_to_bf16(v);
        break;  // BF16 (check_manifest allows no other)
    }
    d->value_table[u] = bits;
  }
}

// `with_tables`: false for params outside the slice, which are never generated.
DummyParam plan_dummy(const BlobManifest& m, const BlobParam& p, uint64_t seed, float stddev,
                      bool with_tables) {
  DummyParam d;
  d.begin = p.offset;
  d.end = p.offset + p.bytes;
  const uint64_t key = splitmix64_mix(seed ^ splitmix64_mix(fnv1a(m.name) ^ splitmix64_mix(fnv1a(p.name))));
  d.key_codes = splitmix64_mix(key + 1);
  d.key_groups = splitmix64_mix(key + 2);
  d.key_values = splitmix64_mix(key + 3);
  d.quantized = p.format != QuantFormat::None;
  d.codes_used_end = d.begin + p.layout.codes_used_bytes;
  d.codes_end = d.begin + p.layout.scales_offset();
  d.scales_end = d.begin + p.layout.mins_offset();
  d.element_bytes = quant::dtype_size(p.dtype);
  if (!with_tables) return d;
  if (d.quantized) {
    quantized_tables(p.format, stddev, &d);
  } else {
    raw_table(p, stddev, &d);
  }
  return d;
}

// Writes bytes [lo, hi) of an array of 8-byte words (positions relative to the array) to
// out; word(i) returns the little-endian bits of word i.
template <class Word>
void fill_words(size_t lo, size_t hi, uint8_t* out, const Word& word) {
  size_t pos = lo;
  if (pos % 8 != 0) {
    const uint64_t v = word(pos / 8);
    const size_t skip = pos % 8, take = std::min(8 - skip, hi - pos);
    std::memcpy(out, reinterpret_cast<const uint8_t*>(&v) + skip, take);
    out += take;
    pos += take;
  }
  for (; pos + 8 <= hi; pos += 8, out += 8) {
    const uint64_t v = word(pos / 8);
    std::memcpy(out, &v, 8);
  }
  if (pos < hi) {
    const uint64_t v = word(pos / 8);
    std::memcpy(out, &v, hi - pos);
  }
}

// The part of array [begin, end) inside [lo, hi) (absolute), written at out (= lo).
template <class Word>
void fill_array(size_t begin, size_t end, size_t lo, size_t hi, uint8_t* out, const Word& word) {
  const size_t a = std::max(begin, lo), b = std::min(end, hi);
  if (a < b) fill_words(a - begin, b - begin, out + (a - lo), word);
}

// Zeroes the part of [begin, end) inside [lo, hi) (absolute), with out at lo.
void zero_array(size_t begin, size_t end, size_t lo, size_t hi, uint8_t* out) {
  const size_t a = std::max(begin, lo), b = std::min(end, hi);
  if (a < b) std::memset(out + (a - lo), 0, b - a);
}

// Bytes [lo, hi) (absolute, inside the param) of a dummy param.
void fill_param(const DummyParam& d, size_t lo, size_t hi, uint8_t* out) {
  if (d.quantized) {
    fill_array(d.begin, d.codes_used_end, lo, hi, out,
               [&](uint64_t w) { return hash_at(d.key_codes, w); });
    zero_array(d.codes_used_end, d.codes_end, lo, hi, out);  // the codes' padding, as packed
    // Scale word w and min word w share a hash, so each group's min matches its scale.
    fill_array(d.codes_end, d.scales_end, lo, hi, out,
               [&](uint64_t w) { return four_entries(d.scale_table, hash_at(d.key_groups, w)); });
    fill_array(d.scales_end, d.end, lo, hi, out,
               [&](uint64_t w) { return four_entries(d.min_table, hash_at(d.key_groups, w)); });
  } else if (d.element_bytes == 2) {
    fill_array(d.begin, d.end, lo, hi, out,
               [&](uint64_t w) { return four_entries(d.value_table, hash_at(d.key_values, w)); });
  } else {
    fill_array(d.begin, d.end, lo, hi, out, [&](uint64_t w) {
      const uint64_t h = hash_at(d.key_values, w);
      return uint64_t{d.value_table[pick(h, 0)]} | uint64_t{d.value_table[pick(h, 1)]} << 32;
    });
  }
}

// Bytes [lo, hi) of the dummy blob into out: params where they are, zeros elsewhere.
void fill_range(const std::vector<DummyParam>& params, size_t lo, size_t hi, uint8_t* out) {
  auto it = std::partition_point(params.begin(), params.end(),
                                 [&](const DummyParam& d) { return d.end <= lo; });
  size_t pos = lo;
  for (; it != params.end() && it->begin < hi; ++it) {
    if (pos < it->begin) {
      std::memset(out + (pos - lo), 0, it->begin - pos);
      pos = it->begin;
    }
    const size_t end = std::min(hi, it->end);
    fill_param(*it, pos, end, out + (pos - lo));
    pos = end;
  }
  if (pos < hi) std::memset(out + (pos - lo), 0, hi - pos);
}


}  // namespace

void fill_dummy_slice(const BlobManifest& m, size_t offset, size_t bytes, uint64_t seed,
                      float stddev, uint8_t* dst) {
  check_manifest(m, "fill_dummy_slice");
  check_slice(offset, bytes, dst, "fill_dummy_slice");
  ZINC_CHECK(std::isfinite(stddev) && stddev > 0,
             "fill_dummy_slice: stddev must be a positive number, got " << stddev);
  std::vector<DummyParam> params;
  params.reserve(m.params.size());
  for (const BlobParam& p : m.params) {
    const bool touched = p.offset < offset + bytes && offset < p.offset + p.bytes;
    params.push_back(plan_dummy(m, p, seed, stddev, touched));
  }
  const int64_t chunks = static_cast<int64_t>((bytes + kFillChunk - 1) / kFillChunk);
#pragma omp parallel for schedule(dynamic, 16) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t lo = offset + static_cast<size_t>(c) * kFillChunk;
    const size_t hi = std::min(offset + bytes, lo + kFillChunk);
    fill_range(params, lo, hi, dst + (lo - offset));
  }
}


}  // namespace zinc::partition
