// Helpers shared by the CPU attention tests (test_cpu_attention.cpp,
// test_cpu_attention_isa.cpp): K / V caches with their own memory in either layout, a
// problem (queries, keys, values, mask, ALiBi) with a double-precision reference of
// Backend::attention over the caches' dequantized rows, the shared case table, and the
// instruction-set caps to run each case under.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/dtype.hpp"
#include "quant/kv_quant.hpp"
#include "runtime/backend/cpu/cpu_attention.hpp"
#include "unit/test_util.hpp"

namespace zinc::test::attn {

using quant::KvStorage;
using quant::KvView;

constexpr KvStorage kAllStorages[] = {KvStorage::F32, KvStorage::F16, KvStorage::Int8,
                                      KvStorage::Int4};
// Every instruction-set cap; those the CPU lacks fall back (cpu_attention_isa says which).
constexpr runtime::CpuAttentionIsa kAllIsas[] = {
    runtime::CpuAttentionIsa::Auto, runtime::CpuAttentionIsa::Avx512Vnni,
    runtime::CpuAttentionIsa::Avx512, runtime::CpuAttentionIsa::Avx2,
    runtime::CpuAttentionIsa::Scalar};

inline std::vector<float> randn(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A K or V cache with its own memory, in one of the two layouts.
struct OwnedKv {
  std::vector<uint8_t> data;
  std::vector<uint16_t> params;
  KvView view;

  OwnedKv(KvStorage s, int batch, int kv_heads, int t_max, int hd, int group, bool head_major) {
    const auto bytes = quant::kv_cache_bytes(s, batch, kv_heads, t_max, hd, group);
    data.assign(bytes.codes, 0);
    params.assign(bytes.params / 2 + 1, 0);
    view.storage = s;
    view.head_dim = hd;
    view.group = group;
    view.t_max = t_max;
    if (head_major) {  // [B, KVH, t_max, hd] (HostKvCache)
      view.seq_stride = static_cast<int64_t>(kv_heads) * t_max;
      view.head_stride = t_max;
      view.pos_stride = 1;
    } else {  // [B, t_max, KVH, hd] (the CPU backend)
      view.seq_stride = static_cast<int64_t>(t_max) * kv_heads;
      view.head_stride = 1;
      view.pos_stride = kv_heads;
    }
    view.data = data.data();
    view.params = params.data();
  }
};

struct Case {
  const char* name;
  int batch, tq, t0, heads, kv_heads, head_dim;
  bool alibi;
  std::vector<int> pad;  // left padding per sequence (keys 0..pad-1 masked)
  int holes = 0;         // > 0: also mask key j of odd sequences where j % holes == 1
};

struct Problem {
  Case c;
  int t_max;
  std::vector<float> q, kv_k, kv_v, slopes;  // kv_*: [B * n_keys, KVH * hd] source rows
  std::vector<uint8_t> mask;

  explicit Problem(const Case& cs, uint32_t seed) : c(cs), t_max(cs.t0 + cs.tq + 3) {
    const int n_keys = c.t0 + c.tq;
    q = randn(static_cast<size_t>(c.batch) * c.tq * c.heads * c.head_dim, seed);
    kv_k = randn(static_cast<size_t>(c.batch) * n_keys * c.kv_heads * c.head_dim, seed + 1);
    kv_v = randn(static_cast<size_t>(c.batch) * n_keys * c.kv_heads * c.head_dim, seed + 2);
    mask.assign(static_cast<size_t>(c.batch) * t_max, 0);
    for (int b = 0; b < c.batch; ++b) {
      const int pad = b < static_cast<int>(c.pad.size()) ? c.pad[b] : 0;
      for (int j = pad; j < n_keys; ++j)
        mask[b * t_max + j] = c.holes > 0 && b % 2 == 1 && j % c.holes == 1 ? 0 : 1;
    }
    if (c.alibi)
      for (int h = 0; h < c.heads; ++h) slopes.push_back(std::pow(2.0f, -8.0f * (h + 1) / c.heads));
  }

  runtime::CpuAttentionProblem problem(
      float* out, runtime::CpuAttentionIsa isa = runtime::CpuAttentionIsa::Auto) const {
    runtime::CpuAttentionProblem p;
    p.batch = c.batch;
    p.tq = c.tq;
    p.t0 = c.t0;
    p.heads = c.heads;
    p.kv_heads = c.kv_heads;
    p.head_dim = c.head_dim;
    p.q = q.data();
    p.out = out;
    p.key_mask = mask.data();
    p.mask_stride = t_max;
    p.alibi_slopes = c.alibi ? slopes.data() : nullptr;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    p.isa = isa;
    return p;
  }

  // Stores every key and value (positions 0 .. t0 + tq - 1) into the caches.
  void fill(const KvView& k, const KvView& v) const {
    const int n_keys = c.t0 + c.tq;
    quant::kv_store(k, kv_k.data(), c.batch, n_keys, 0, c.kv_heads);
    quant::kv_store(v, kv_v.data(), c.batch, n_keys, 0, c.kv_heads);
  }

  // Backend::attention's definition, in double, over the caches' dequantized rows; with
  // vnni_keys, the scores use q as the avx512-vnni loops round it for K's storage
  // (runtime::cpu_attention_vnni_query), so that those loops too must match to fp32.
  // spread (optional): per output, sum_t p_t * (v'_t - min_t) over the values' quant groups
  // (zero for f32 / f16): avx512-bf16 values round each weight p_t * scale_t to bf16, which
  // moves an output by at most 2^-8 of that.
  std::vector<float> reference(const KvView& k, const KvView& v, bool vnni_keys = false,
                               std::vector<float>* spread = nullptr) const {
    const int hd = c.head_dim, group = c.heads / c.kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<float> out(q.size(), 0.0f), kr(hd), vr(hd), qr(hd);
    if (spread != nullptr) spread->assign(q.size(), 0.0f);
    for (int b = 0; b < c.batch; ++b)
      for (int i = 0; i < c.tq; ++i)
        for (int h = 0; h < c.heads; ++h) {
          const float* qh = q.data() + ((static_cast<size_t>(b) * c.tq + i) * c.heads + h) * hd;
          if (vnni_keys) {
            runtime::cpu_attention_vnni_query(k.storage, hd, qh, qr.data());
            qh = qr.data();
          }
          std::vector<double> s;
          std::vector<int> js;
          int key_pos = 0;
          for (int j = 0; j <= c.t0 + i; ++j) {
            if (!mask[b * t_max + j]) continue;
            quant::kv_dequantize_row(k, k.row(b, h / group, j), kr.data());
            double dot = 0;
            for (int d = 0; d < hd; ++d) dot += static_cast<double>(qh[d]) * kr[d];
            double sc = dot * scale;
            if (c.alibi) sc += static_cast<double>(slopes[h]) * key_pos;
            ++key_pos;
            s.push_back(sc);
            js.push_back(j);
          }
          if (s.empty()) continue;  // sees no key: zeros
          double mx = s[0], sum = 0;
          for (double x : s) mx = std::max(mx, x);
          for (double& x : s) sum += (x = std::exp(x - mx));
          std::vector<double> o(hd, 0.0), sp(hd, 0.0);
          for (size_t t = 0; t < js.size(); ++t) {
            const int64_t r = v.row(b, h / group, js[t]);
            quant::kv_dequantize_row(v, r, vr.data());
            for (int d = 0; d < hd; ++d) o[d] += s[t] / sum * vr[d];
            if (spread != nullptr && quant::kv_storage_quantized(v.storage))
              for (int d = 0; d < hd; ++d)
                sp[d] += s[t] / sum *
                         (vr[d] - quant::f16_to_f32(v.row_params(r)[2 * (d / v.group) + 1]));
          }
          const size_t at = ((static_cast<size_t>(b) * c.tq + i) * c.heads + h) * hd;
          for (int d = 0; d < hd; ++d) out[at + d] = static_cast<float>(o[d]);
          if (spread != nullptr)
            for (int d = 0; d < hd; ++d) (*spread)[at + d] = static_cast<float>(sp[d]);
        }
    return out;
  }
};

inline const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"decode MHA", 2, 1, 37, 4, 4, 64, false, {}},
      {"decode GQA 4", 3, 1, 100, 8, 2, 128, false, {0, 9, 0}},
      {"decode GQA 8", 2, 1, 61, 16, 2, 128, false, {}},
      {"decode ALiBi, left padding", 3, 1, 50, 4, 4, 32, true, {0, 5, 20}},
      {"prefill after a prefix", 2, 5, 7, 4, 2, 48, false, {0, 3}},
      {"prefill, padding queries see no key", 2, 4, 0, 2, 1, 16, true, {0, 2}},
      {"head_dim 20 (scalar path)", 2, 3, 9, 6, 3, 20, true, {1, 0}},
      {"long context, key chunks", 1, 1, 1500, 4, 2, 64, true, {100}},
      {"prefill, key chunks", 1, 3, 700, 2, 1, 32, false, {0}},
  };
  return all;
}

inline int default_group(int hd) { return std::min(64, hd); }

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t* where) {
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= worst)) {
      worst = d;
      *where = i;
    }
  }
  return worst;
}

// Restores the OpenMP thread count when a test changes it.
struct ThreadCount {
  int saved = omp_get_max_threads();
  ~ThreadCount() { omp_set_num_threads(saved); }
};

// Runs pr under the cap `isa` (output NaN-filled first) and checks it against the
// reference: within 2e-5 (outputs are averages of N(0, 1) values; fp32 accumulation over
// <= 1500 keys). avx512-vnni keys must match the reference over their rounded q
// (Problem::reference's vnni_keys) to the same 2e-5, and the exact one within the
// rounding's own effect: q's grid step is max|q| / 32639 (int8 keys) or max|q| / 127
// (int4), moving these outputs by up to ~5e-5 / ~2e-2 (int4's own rounding of the keys
// moves them ~20x more). avx512-bf16 values may add 2^-8 of the reference's spread (see
// Problem::reference). Returns the output.
inline std::vector<float> check_isa(const Problem& pr, const KvView& k, const KvView& v,
                                    runtime::CpuAttentionIsa isa, const std::string& what) {
  std::vector<float> out(pr.q.size(), std::numeric_limits<float>::quiet_NaN());
  runtime::cpu_attention(pr.problem(out.data(), isa), k, v);
  const std::string k_isa = runtime::cpu_attention_isa(k, isa, true);
  const std::string v_isa = runtime::cpu_attention_isa(v, isa, false);
  const bool vnni = k_isa == "avx512-vnni", bf16 = v_isa == "avx512-bf16";
  std::vector<float> spread;
  const auto ref = pr.reference(k, v, vnni, &spread);
  size_t worst = 0;
  float excess = -1.0f;  // largest |out - ref| beyond what the loops may add
  for (size_t e = 0; e < out.size(); ++e) {
    const float d = std::fabs(out[e] - ref[e]) - (bf16 ? std::ldexp(spread[e], -8) : 0.0f);
    if (!(d <= excess)) {
      excess = d;
      worst = e;
    }
  }
  INFO(what << ", cap " << runtime::cpu_attention_isa_name(isa) << ", isa " << k_isa << " / "
            << v_isa << ": worst element " << worst << " = " << out[worst] << " vs " << ref[worst]
            << " (bf16 allowance " << (bf16 ? std::ldexp(spread[worst], -8) : 0.0f) << ")");
  CHECK(excess <= 2e-5f);
  if (vnni) {
    size_t at = 0;
    const float tol = k.storage == quant::KvStorage::Int8 ? 2e-4f : 5e-2f;
    CHECK(max_abs_diff(out, pr.reference(k, v), &at) <= tol);
  }
  return out;
}

}  // namespace zinc::test::attn
