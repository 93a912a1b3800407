// KV storage names, sizes, views, and kv_store: the definitions are in kv_quant.hpp.
#include "quant/kv_quant.hpp"
#include "quant/kv_quant_internal.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/dtype.hpp"
#include "runtime/common/error.hpp"

namespace zinc::quant {
namespace {

constexpr float kF16Max = 65504.0f;

struct StorageEntry {
  KvStorage storage;
  const char* name;
};
constexpr StorageEntry kStorages[] = {{KvStorage::F32, "f32"},
                                      {KvStorage::F16, "f16"},
                                      {KvStorage::Int8, "int8"},
                                      {KvStorage::Int4, "int4"}};

bool is_zero_f16(uint16_t h) { return (h & 0x7fffu) == 0; }

// Round half to even for 0 <= v < 2^22 (no -ffast-math in this project, so exact).
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(const float* s, uint16_t* d, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) d[i] = quant::f32_to_f16(s[i]);
}

void store_row(const KvView& v, const float* x, int64_t r, bool* ok) {
  const int hd = v.head_dim;
  switch (v.storage) {
    case KvStorage::F32:
      std::memcpy(v.row_codes(r), x, static_cast<size_t>(hd) * sizeof(float));
      return;
    case KvStorage::F16: {
      auto* h = reinterpret_cast<uint16_t*>(v.row_codes(r));
      if (quant::cpu_has_f16c()) {
        f32_to_f16_f16c(x, h, hd);
      } else {
        for (int d = 0; d < hd; ++d) h[d] = quant::f32_to_f16(x[d]);
      }
      return;
    }
    case KvStorage::Int8:
    case KvStorage::Int4:
      *ok = kv_quantize_row(v.storage, hd, v.group, x, v.row_codes(r), v.row_params(r));
      return;
  }
}

}  // namespace

KvStorage parse_kv_storage(const std::string& name) {
  for (const auto& e : kStorages) {
    if (name == e.name) return e.storage;
  }
  ZINC_THROW("unknown KV cache storage '" << name << "' (choices: f32, f16, int8, int4)");
}

const char* kv_storage_name(KvStorage s) {
  for (const auto& e : kStorages) {
    if (e.storage == s) return e.name;
  }
  ZINC_THROW("unknown KV cache storage value " << static_cast<int>(s));
}

bool kv_storage_quantized(KvStorage s) { return s == KvStorage::Int8 || s == KvStorage::Int4; }

int kv_storage_levels(KvStorage s) {
  return s == KvStorage::Int8 ? 255 : s == KvStorage::Int4 ? 15 : 0;
}

void check_kv_group(KvStorage s, int head_dim, int group) {
  ZINC_CHECK(head_dim > 0, "KV cache head_dim must be positive, got " << head_dim);
  ZINC_CHECK(s != KvStorage::Int4 || head_dim % 2 == 0,
             "int4 KV cache needs an even head_dim (two codes per byte), got " << head_dim);
  if (!kv_storage_quantized(s)) return;
  ZINC_CHECK(group > 0 && head_dim % group == 0,
             "KV cache group size " << group << " does not divide head_dim " << head_dim << " ("
                                    << kv_storage_name(s)
                                    << " quantizes groups of G elements along each head; pass "
                                       "a divisor of head_dim, e.g. min(64, head_dim))");
  ZINC_CHECK(s != KvStorage::Int4 || group % 2 == 0,
             "KV cache group size " << group << " must be even for int4 (two codes per byte)");
}

size_t kv_row_code_bytes(KvStorage s, int head_dim) {
  const size_t hd = static_cast<size_t>(head_dim);
  switch (s) {
    case KvStorage::F32:
      return hd * 4;
    case KvStorage::F16:
      return hd * 2;
    case KvStorage::Int8:
      return hd;
    case KvStorage::Int4:
      return hd / 2;
  }
  return 0;
}

size_t kv_row_param_bytes(KvStorage s, int head_dim, int group) {
  if (!kv_storage_quantized(s)) return 0;
  check_kv_group(s, head_dim, group);
  return static_cast<size_t>(head_dim / group) * 2 * sizeof(uint16_t);
}

KvBytes kv_cache_bytes(KvStorage s, int batch, int kv_heads, int t_max, int head_dim, int group) {
  check_kv_group(s, head_dim, group);
  const size_t rows = static_cast<size_t>(batch) * kv_heads * t_max;
  return KvBytes{rows * kv_row_code_bytes(s, head_dim),
                 rows * kv_row_param_bytes(s, head_dim, group)};
}

void check_kv_view(const KvView& v, const char* what) {
  check_kv_group(v.storage, v.head_dim, v.group);
  ZINC_CHECK(v.t_max > 0 && v.seq_stride >= 0 && v.head_stride >= 0 && v.pos_stride > 0,
             what << ": bad KV view geometry (t_max " << v.t_max << ", strides " << v.seq_stride
                  << "/" << v.head_stride << "/" << v.pos_stride << " rows)");
  ZINC_CHECK(v.data != nullptr, what << ": KV view has no data");
  ZINC_CHECK(!kv_storage_quantized(v.storage) || v.params != nullptr,
             what << ": " << kv_storage_name(v.storage) << " KV view has no params array");
}

namespace detail {

// The largest fp16 <= x and the smallest fp16 >= x, for finite |x| <= 65504.
uint16_t f16_round_down(float x) {
  uint16_t h = quant::f32_to_f16(x);
  if (quant::f16_to_f32(h) <= x) return h;
  if (is_zero_f16(h)) return 0x8001u;  // -(smallest subnormal)
  return (h & 0x8000u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h - 1);
}

uint16_t f16_round_up(float x) {
  uint16_t h = quant::f32_to_f16(x);
  if (quant::f16_to_f32(h) >= x) return h;
  if (is_zero_f16(h)) return 0x0001u;
  return (h & 0x8000u) ? static_cast<uint16_t>(h - 1) : static_cast<uint16_t>(h + 1);
}

bool kv_quantize_avx512_usable(int group) {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return cpu && group % 16 == 0;
}

bool kv_quantize_row_scalar(KvStorage s, int head_dim, int group, const float* x, uint8_t* codes,
                            uint16_t* params) {
  for (int d = 0; d < head_dim; ++d) {
    if (!(std::fabs(x[d]) <= kF16Max)) return false;  // NaN, inf, or beyond the fp16 range
  }
  const float levels = static_cast<float>(kv_storage_levels(s));
  if (s == KvStorage::Int4) std::memset(codes, 0, static_cast<size_t>(head_dim) / 2);
  for (int g = 0; g < head_dim / group; ++g) {
    const float* xg = x + g * group;
    float lo = xg[0], hi = xg[0];
    for (int e = 1; e < group; ++e) {
      lo = std::min(lo, xg[e]);
      hi = std::max(hi, xg[e]);
    }
    const uint16_t min_h = f16_round_down(lo);
    const float m = quant::f16_to_f32(min_h);
    const float range = hi - m;  // >= 0
    const uint16_t scale_h = range > 0.0f ? f16_round_up(range / levels) : uint16_t{0};
    const float sc = quant::f16_to_f32(scale_h);
    params[2 * g] = scale_h;
    params[2 * g + 1] = min_h;
    for (int e = 0; e < group; ++e) {
      float c = sc > 0.0f ? round_even((xg[e] - m) / sc) : 0.0f;
      c = std::min(std::max(c, 0.0f), levels);
      const auto q = static_cast<uint8_t>(c);
      const int d = g * group + e;
      if (s == KvStorage::Int8) {
        codes[d] = q;
      } else {
        codes[d / 2] |= static_cast<uint8_t>(d % 2 == 0 ? q : q << 4);
      }
    }
  }
  return true;
}

}  // namespace detail

bool kv_quantize_row(KvStorage s, int head_dim, int group, const float* x, uint8_t* codes,
                     uint16_t* params) {
  if (detail::kv_quantize_avx512_usable(group))
    return detail::kv_quantize_row_avx512(s, head_dim, group, x, codes, params);
  return detail::kv_quantize_row_scalar(s, head_dim, group, x, codes, params);
}

void kv_dequantize_row(const KvView& v, int64_t r, float* out) {
  const int hd = v.head_dim;
  const uint8_t* c = v.row_codes(r);
  switch (v.storage) {
    case KvStorage::F32:
      std::memcpy(out, c, static_cast<size_t>(hd) * sizeof(float));
      return;
    case KvStorage::F16:
      for (int d = 0; d < hd; ++d)
        out[d] = quant::f16_to_f32(reinterpret_cast<const uint16_t*>(c)[d]);
      return;
    case KvStorage::Int8:
    case KvStorage::Int4: {
      const uint16_t* p = v.row_params(r);
      for (int g = 0; g < hd / v.group; ++g) {
        const float sc = quant::f16_to_f32(p[2 * g]), m = quant::f16_to_f32(p[2 * g + 1]);
        for (int d = g * v.group; d < (g + 1) * v.group; ++d) {
          const int code = v.storage == KvStorage::Int8 ? c[d] : (c[d / 2] >> (4 * (d % 2))) & 15;
          out[d] = static_cast<float>(code) * sc + m;
        }
      }
      return;
    }
  }
}

void kv_store(const KvView& dst, const float* src, int batch, int tq, int t0, int kv_heads) {
  kv_store(dst, DType::F32, src, batch, tq, t0, kv_heads);
}

void kv_store(const KvView& dst, DType src_type, const void* src, int batch, int tq, int t0, int kv_heads) {
  check_kv_view(dst, "kv_store");
  ZINC_CHECK(batch >= 0 && tq >= 0 && t0 >= 0 && kv_heads > 0,
             "kv_store: bad shape (batch " << batch << ", tq " << tq << ", t0 " << t0
                                           << ", kv_heads " << kv_heads << ")");
  ZINC_CHECK(t0 + tq <= dst.t_max, "kv_store: positions " << t0 << ".." << t0 + tq - 1
                                                          << " do not fit a cache of " << dst.t_max
                                                          << " positions");
  ZINC_CHECK(src_type == DType::F32 || src_type == DType::F16 || src_type == DType::BF16,
             "kv_store: source type " << dtype_name(src_type) << " (F32, F16 or BF16 only)");
  const int hd = dst.head_dim;
  const size_t esize = dtype_size(src_type);
  const auto* bytes = static_cast<const uint8_t*>(src);
  const int64_t n = static_cast<int64_t>(batch) * tq * kv_heads;  // (b, i, h), h fastest
  int64_t first_bad = n;
  // Row u widened to fp32 (in place for an fp32 source, else into the thread's buffer).
  auto row_f32 = [&](int64_t u, float* buf) -> const float* {
    const uint8_t* r = bytes + static_cast<size_t>(u) * hd * esize;
    if (src_type == DType::F32) return reinterpret_cast<const float*>(r);
    convert_to_f32(src_type, r, buf, static_cast<size_t>(hd));
    return buf;
  };
#pragma omp parallel reduction(min : first_bad) if (n * hd >= (1 << 15))
  {
    std::vector<float> buf(src_type == DType::F32 ? 0 : static_cast<size_t>(hd));
#pragma omp for schedule(static)
    for (int64_t u = 0; u < n; ++u) {
      const int h = static_cast<int>(u % kv_heads);
      const int64_t bi = u / kv_heads;  // = b * tq + i: the source row
      const int b = static_cast<int>(bi / tq), i = static_cast<int>(bi % tq);
      bool ok = true;
      store_row(dst, row_f32(u, buf.data()), dst.row(b, h, t0 + i), &ok);
      if (!ok) first_bad = std::min(first_bad, u);
    }
  }
  if (first_bad < n) {
    const int h = static_cast<int>(first_bad % kv_heads);
    const int64_t bi = first_bad / kv_heads;
    std::vector<float> buf(static_cast<size_t>(hd));
    const float* x = row_f32(first_bad, buf.data());
    int d = 0;
    while (d < hd && std::fabs(x[d]) <= kF16Max) ++d;
    ZINC_THROW("kv_store: " << kv_storage_name(dst.storage) << " KV cache cannot hold value "
                            << x[d] << " (sequence " << bi / tq << ", position " << t0 + bi % tq
                            << ", kv head " << h << ", element " << d
                            << "): quantized caches need finite values within +-65504, the "
                               "fp16 range of their group params");
  }
}

}  // namespace zinc::quant
