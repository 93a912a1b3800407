// measure_host_attention_rate: see attention_probe.hpp.
#include "runtime/backend/cpu/attention_probe.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "offload/host_kv_cache.hpp"
#include "runtime/backend/cpu/cpu_attention.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/stats.hpp"

namespace zinc::runtime {
namespace {

// Every byte of n written by the OpenMP threads (static split, as the stores touch it).
// Codes of 0x3C: as f16 / f32 rows the finite 1.06 / 0.0115, as int8 / int4 codes ordinary
// values; params of 0x2C00 (fp16 0.0625) scale and minimum alike.
void touch(uint8_t* p, size_t n, uint8_t byte) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(n); i += 4096)
    std::memset(p + i, byte, std::min<size_t>(4096, n - static_cast<size_t>(i)));
}

void touch_params(uint16_t* p, size_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) p[i] = 0x2C00;
}

void fill_view(const quant::KvView& v, const quant::KvBytes& bytes) {
  touch(static_cast<uint8_t*>(v.data), bytes.codes, 0x3C);
  if (bytes.params > 0) touch_params(static_cast<uint16_t*>(v.params), bytes.params / 2);
}

}  // namespace

double measure_host_attention_rate(quant::KvStorage storage, const HostAttentionShape& sh, size_t cache_bytes,
                                   int repeats) {
  ZINC_CHECK(sh.heads > 0 && sh.kv_heads > 0 && sh.heads % sh.kv_heads == 0 && sh.head_dim > 0 && sh.keys > 0 &&
                 repeats >= 1,
             "host attention probe: bad shape (heads " << sh.heads << ", kv heads " << sh.kv_heads << ", head_dim "
                                                       << sh.head_dim << ", keys " << sh.keys << ", repeats "
                                                       << repeats << ")");
  ZINC_CHECK(sh.io == quant::DType::F32 || sh.io == quant::DType::F16 || sh.io == quant::DType::BF16,
             "host attention probe: rows of type " << quant::dtype_name(sh.io));
  const int group = std::min(sh.group, sh.head_dim);
  const int t_max = sh.keys;
  const size_t per_seq = 2 * quant::kv_cache_bytes(storage, 1, sh.kv_heads, t_max, sh.head_dim, group).total();
  const int batch = static_cast<int>(std::clamp<size_t>(cache_bytes / std::max<size_t>(per_seq, 1), 1, 1 << 16));
  offload::HostKvCache cache(offload::HostKvShape{1, batch, sh.kv_heads, t_max, sh.head_dim, group}, storage);
  const quant::KvView k = cache.k(0), v = cache.v(0);
  const quant::KvBytes one = quant::kv_cache_bytes(storage, batch, sh.kv_heads, t_max, sh.head_dim, group);
  fill_view(k, one);
  fill_view(v, one);

  // One decode step at the last position: its k and v rows, then the attention.
  const size_t e = quant::dtype_size(sh.io);
  const size_t q_elems = static_cast<size_t>(batch) * sh.heads * sh.head_dim;
  const size_t kv_elems = static_cast<size_t>(batch) * sh.kv_heads * sh.head_dim;
  std::vector<float> ones(std::max(q_elems, kv_elems), 0.5f);
  std::vector<uint8_t> q(q_elems * e), out(q_elems * e), kv_new(kv_elems * e);
  quant::convert(quant::DType::F32, ones.data(), sh.io, q.data(), q_elems);
  quant::convert(quant::DType::F32, ones.data(), sh.io, kv_new.data(), kv_elems);
  std::vector<uint8_t> mask(static_cast<size_t>(batch) * t_max, 1);
  CpuAttentionProblem p;
  p.batch = batch;
  p.tq = 1;
  p.t0 = t_max - 1;
  p.heads = sh.heads;
  p.kv_heads = sh.kv_heads;
  p.head_dim = sh.head_dim;
  p.q = q.data();
  p.out = out.data();
  p.io_dtype = sh.io;
  p.key_mask = mask.data();
  p.mask_stride = t_max;
  p.scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
  std::vector<double> times;
  for (int rep = -1; rep < repeats; ++rep) {  // rep -1: warm-up
    const double t0 = now_s();
    quant::kv_store(k, sh.io, kv_new.data(), batch, 1, t_max - 1, sh.kv_heads);
    quant::kv_store(v, sh.io, kv_new.data(), batch, 1, t_max - 1, sh.kv_heads);
    cpu_attention(p, k, v);
    if (rep >= 0) times.push_back(seconds_since(t0));
  }
  return static_cast<double>(cache.bytes()) / median(times);
}

std::string host_attention_rates_text(const double bytes_per_s[4]) {
  std::string text;
  for (int i = 0; i < 4; ++i) {
    if (bytes_per_s[i] <= 0) continue;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.2f", bytes_per_s[i] / 1e9);
    text += std::string(text.empty() ? "" : ", ") + quant::kv_storage_name(static_cast<quant::KvStorage>(i)) + " " + rate;
  }
  return text;
}

}  // namespace zinc::runtime
