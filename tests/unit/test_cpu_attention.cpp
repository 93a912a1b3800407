// CPU attention over host KV caches (runtime/backend/cpu/cpu_attention.hpp, quant/kv_quant.hpp):
// the kernel against a scalar double-precision reference written here, for every storage
// (f16 / int8 / int4 against the reference on the dequantized values), both cache layouts,
// GQA, ALiBi, left padding, prefill, queries that see no key, odd head sizes and key
// chunking; thread-count independence; quantization error bounds; kv_store placement.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/backend/cpu/cpu_attention.hpp"
#include "offload/host_bandwidth.hpp"
#include "offload/host_kv_cache.hpp"
#include "quant/kv_quant.hpp"
#include "quant/dtype.hpp"
#include "test_util.hpp"
#include "unit/cpu_attention_test_util.hpp"

using namespace zinc;
using quant::KvStorage;
using quant::KvView;

using namespace zinc::test::attn;

TEST_CASE("cpu_attention equals a double-precision reference for every storage and layout",
          "[attention]") {
  uint32_t seed = 100;
  for (const Case& c : cases()) {
    const Problem pr(c, seed += 10);
    for (KvStorage s : kAllStorages) {
      for (bool head_major : {true, false}) {
        const int g = default_group(c.head_dim);
        OwnedKv k(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, head_major);
        OwnedKv v(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, head_major);
        pr.fill(k.view, v.view);
        for (auto isa : kAllIsas)
          check_isa(pr, k.view, v.view, isa,
                    std::string(c.name) + ", " + quant::kv_storage_name(s) + ", " +
                        (head_major ? "[B, KVH, T, hd]" : "[B, T, KVH, hd]"));
      }
    }
  }
}

TEST_CASE("cpu_attention's blocked loops: every query group size, head_dim 64 and 128",
          "[attention]") {
  // The AVX2 / AVX-512 loops block R rows x H heads (K) and H heads x slices (V) by the
  // group size (1, 2, 4, 8, 16 and multiples; 3 falls back to one head at a time), and
  // f32 / f16 rows of >= 256 bytes are read as eight interleaved streams of keys. Key counts
  // that are not a multiple of 8 or 16 (short last block, keys left over by the streams),
  // left padding and ALiBi exercise the tails; int8 with G 32 gives four quant groups per
  // 128-element row. Every instruction-set cap runs each case.
  uint32_t seed = 4000;
  for (int hd : {64, 128}) {
    for (int group : {1, 2, 3, 4, 8, 16}) {
      const int kv_heads = group >= 8 ? 1 : 2;
      for (int t0 : {5, 130}) {
        const Case c{"blocked", 2, 1, t0, kv_heads * group, kv_heads, hd, t0 > 100, {0, 3}};
        const Problem pr(c, seed += 7);
        for (KvStorage s : kAllStorages) {
          for (int g : {default_group(hd), 32}) {
            if (g != default_group(hd) && s != KvStorage::Int8) continue;
            const bool head_major = (group + t0) % 2 == 0;
            OwnedKv k(s, c.batch, c.kv_heads, pr.t_max, hd, g, head_major);
            OwnedKv v(s, c.batch, c.kv_heads, pr.t_max, hd, g, head_major);
            pr.fill(k.view, v.view);
            for (auto isa : kAllIsas)
              check_isa(pr, k.view, v.view, isa,
                        "hd " + std::to_string(hd) + ", group " + std::to_string(group) +
                            ", keys " + std::to_string(t0 + 1) + ", " + quant::kv_storage_name(s) +
                            " G " + std::to_string(g));
          }
        }
      }
    }
  }
}

TEST_CASE("cpu_attention: a query that sees no key outputs zeros", "[attention]") {
  const Case c{"all padding", 2, 3, 2, 4, 2, 32, false, {5, 1}};  // sequence 0 is all padding
  const Problem pr(c, 7);
  OwnedKv k(KvStorage::F16, c.batch, c.kv_heads, pr.t_max, c.head_dim, 32, true);
  OwnedKv v(KvStorage::F16, c.batch, c.kv_heads, pr.t_max, c.head_dim, 32, true);
  pr.fill(k.view, v.view);
  std::vector<float> out(pr.q.size(), 123.0f);
  runtime::cpu_attention(pr.problem(out.data()), k.view, v.view);
  const size_t per_seq = static_cast<size_t>(c.tq) * c.heads * c.head_dim;
  for (size_t e = 0; e < per_seq; ++e) REQUIRE(out[e] == 0.0f);
  // sequence 1, query 0 (cache index 2) sees keys 1..2
  bool nonzero = false;
  for (size_t e = per_seq; e < per_seq + c.heads * c.head_dim; ++e) nonzero |= out[e] != 0.0f;
  CHECK(nonzero);
}

TEST_CASE("cpu_attention is bit-identical for any thread count", "[attention]") {
  ThreadCount restore;
  uint32_t seed = 900;
  for (const Case& c : cases()) {
    const Problem pr(c, seed += 3);
    for (KvStorage s : kAllStorages) {
      const int g = default_group(c.head_dim);
      OwnedKv k(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, true);
      OwnedKv v(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, true);
      pr.fill(k.view, v.view);
      for (auto isa : kAllIsas) {
        std::vector<std::vector<float>> outs;
        for (int threads : {1, 2, 3}) {
          omp_set_num_threads(threads);
          outs.emplace_back(pr.q.size());
          runtime::cpu_attention(pr.problem(outs.back().data(), isa), k.view, v.view);
        }
        INFO(c.name << ", " << quant::kv_storage_name(s) << ", isa "
                    << runtime::cpu_attention_isa(k.view, isa));
        CHECK(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(outs[0].data(), outs[2].data(), outs[0].size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("f16 storage is the fp16 rounding of the stored values", "[attention]") {
  const int hd = 40;
  auto x = randn(3 * hd, 5, 300.0f);
  x[0] = 65504.0f;
  x[1] = 1e-7f;  // an fp16 subnormal
  OwnedKv kv(KvStorage::F16, 1, 3, 1, hd, 0, true);
  quant::kv_store(kv.view, x.data(), 1, 1, 0, 3);
  std::vector<float> row(hd);
  for (int h = 0; h < 3; ++h) {
    quant::kv_dequantize_row(kv.view, kv.view.row(0, h, 0), row.data());
    for (int d = 0; d < hd; ++d)
      REQUIRE(row[d] == quant::f16_to_f32(quant::f32_to_f16(x[h * hd + d])));
  }
}

TEST_CASE("int8 and int4 rows: codes in range and |x - x'| <= scale / 2", "[attention]") {
  const int hd = 128, group = 32;
  std::vector<std::vector<float>> rows;
  rows.push_back(randn(hd, 11));
  rows.push_back(randn(hd, 12, 1e4f));             // wide range
  rows.push_back(randn(hd, 13, 1e-5f));            // fp16 subnormal scales
  rows.push_back(std::vector<float>(hd, 0.0f));    // zeros: exact
  rows.push_back(std::vector<float>(hd, -3.25f));  // constant, fp16-exact: exact
  rows.push_back(std::vector<float>(hd, 0.1f));    // constant, not fp16-exact
  auto mixed = randn(hd, 14, 2.0f);
  for (int d = 0; d < group; ++d) mixed[d] = std::fabs(mixed[d]) + 7.0f;  // positive-only group
  mixed[40] = 65504.0f;
  mixed[41] = -65504.0f;
  rows.push_back(mixed);
  for (KvStorage s : {KvStorage::Int8, KvStorage::Int4}) {
    const int levels = quant::kv_storage_levels(s);
    for (size_t ri = 0; ri < rows.size(); ++ri) {
      const auto& x = rows[ri];
      std::vector<uint8_t> codes(hd);
      std::vector<uint16_t> params(2 * hd / group);
      REQUIRE(quant::kv_quantize_row(s, hd, group, x.data(), codes.data(), params.data()));
      OwnedKv kv(s, 1, 1, 1, hd, group, true);
      std::memcpy(kv.view.data, codes.data(), quant::kv_row_code_bytes(s, hd));
      std::memcpy(kv.view.params, params.data(), params.size() * 2);
      std::vector<float> deq(hd);
      quant::kv_dequantize_row(kv.view, 0, deq.data());
      for (int d = 0; d < hd; ++d) {
        const int c = s == KvStorage::Int8 ? codes[d] : (codes[d / 2] >> (4 * (d % 2))) & 15;
        REQUIRE(c <= levels);
        const float sc = quant::f16_to_f32(params[2 * (d / group)]);
        const float mn = quant::f16_to_f32(params[2 * (d / group) + 1]);
        INFO(quant::kv_storage_name(s) << " row " << ri << " element " << d << ": x " << x[d]
                                         << " x' " << deq[d] << " scale " << sc << " min " << mn);
        REQUIRE(sc >= 0.0f);
        REQUIRE(mn <= x[d]);
        // fp32 rounding of (x - min) / scale, code * scale and + min: a few ulp of |x|, |min|
        const float slack = 4e-7f * (std::fabs(x[d]) + std::fabs(mn));
        REQUIRE(std::fabs(x[d] - deq[d]) <= sc / 2 + slack);
      }
      if (ri == 3 || ri == 4)
        for (int d = 0; d < hd; ++d) REQUIRE(deq[d] == x[d]);
    }
  }
}

TEST_CASE("kv_store puts source row b * tq + i at position t0 + i of sequence b", "[attention]") {
  const int batch = 2, kv_heads = 3, hd = 16, t_max = 10, tq = 3, t0 = 5;
  std::vector<float> src(static_cast<size_t>(batch) * tq * kv_heads * hd);
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < tq; ++i)
      for (int h = 0; h < kv_heads; ++h)
        for (int d = 0; d < hd; ++d)
          src[((b * tq + i) * kv_heads + h) * hd + d] = 1000.0f * b + 100.0f * i + 10.0f * h + d;
  for (KvStorage s : kAllStorages) {
    for (bool head_major : {true, false}) {
      OwnedKv kv(s, batch, kv_heads, t_max, hd, 16, head_major);
      quant::kv_store(kv.view, src.data(), batch, tq, t0, kv_heads);
      std::vector<float> row(hd);
      for (int b = 0; b < batch; ++b)
        for (int h = 0; h < kv_heads; ++h)
          for (int j = 0; j < t_max; ++j) {
            quant::kv_dequantize_row(kv.view, kv.view.row(b, h, j), row.data());
            const int i = j - t0;
            for (int d = 0; d < hd; ++d) {
              INFO(quant::kv_storage_name(s)
                   << " b " << b << " h " << h << " j " << j << " d " << d);
              if (i < 0 || i >= tq) {
                REQUIRE(row[d] == 0.0f);  // untouched
              } else {
                const float want = src[((b * tq + i) * kv_heads + h) * hd + d];
                // a group spans 15 consecutive integers: int4's scale is exactly 1 (exact
                // codes); int8's is fp16(15 / 255) rounded up (error <= scale / 2)
                const float tol = s == KvStorage::F16    ? want * 1e-3f
                                  : s == KvStorage::Int8 ? 0.03f
                                                         : 0.0f;
                REQUIRE(std::fabs(row[d] - want) <= tol);
              }
            }
          }
    }
  }
  OwnedKv kv(KvStorage::Int8, batch, kv_heads, t_max, hd, 16, true);
  REQUIRE_THROWS_WITH(quant::kv_store(kv.view, src.data(), batch, tq, 8, kv_heads),
                      ZINC_CONTAINS("do not fit a cache of 10 positions"));
  src[(1 * tq + 2) * kv_heads * hd + 2 * hd + 7] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(
      quant::kv_store(kv.view, src.data(), batch, tq, t0, kv_heads),
      ZINC_CONTAINS("sequence 1, position 7, kv head 2, element 7") && ZINC_CONTAINS("65504"));
}

TEST_CASE("KV storage names, sizes and group-size errors", "[attention]") {
  for (KvStorage s : kAllStorages)
    CHECK(quant::parse_kv_storage(quant::kv_storage_name(s)) == s);
  REQUIRE_THROWS_WITH(quant::parse_kv_storage("int3"), ZINC_CONTAINS("f32, f16, int8, int4"));
  const auto b = quant::kv_cache_bytes(KvStorage::Int4, 2, 4, 100, 128, 64);
  CHECK(b.codes == 2u * 4 * 100 * 64);
  CHECK(b.params == 2u * 4 * 100 * 2 * 2 * 2);  // 2 groups x {scale, min} x fp16
  CHECK(quant::kv_cache_bytes(KvStorage::F16, 2, 4, 100, 128, 0).total() == 2u * 4 * 100 * 256);
  REQUIRE_THROWS_WITH(quant::check_kv_group(KvStorage::Int8, 80, 64),
                      ZINC_CONTAINS("group size 64 does not divide head_dim 80"));
  REQUIRE_THROWS_WITH(quant::check_kv_group(KvStorage::Int4, 10, 5), ZINC_CONTAINS("even"));
  REQUIRE_NOTHROW(quant::check_kv_group(KvStorage::F16, 80, 64));  // unquantized: ignored
  offload::HostKvShape shape{1, 1, 1, 8, 80, 64};
  REQUIRE_THROWS_WITH(offload::HostKvCache(shape, KvStorage::Int4),
                      ZINC_CONTAINS("group size 64 does not divide head_dim 80"));
}

TEST_CASE("HostKvCache: [B, KVH, t_max, hd] views with one kernel over them", "[attention]") {
  const Case c{"host cache", 2, 1, 20, 4, 2, 64, false, {0, 4}};
  const Problem pr(c, 31);
  offload::MemoryArena arena("host", 0);
  offload::HostKvShape shape{2, c.batch, c.kv_heads, pr.t_max, c.head_dim, 32};
  {
    offload::HostKvCache cache(shape, KvStorage::Int4, &arena);
    CHECK(arena.used() == cache.bytes());
    CHECK(cache.bytes() ==
          2 * 2 * quant::kv_cache_bytes(KvStorage::Int4, 2, 2, pr.t_max, 64, 32).total());
    const KvView k = cache.k(1), v = cache.v(1);
    CHECK(k.row(1, 1, 3) == (1 * 2 + 1) * pr.t_max + 3);
    CHECK(reinterpret_cast<uintptr_t>(k.data) % 64 == 0);
    pr.fill(k, v);
    for (auto isa : kAllIsas) check_isa(pr, k, v, isa, "HostKvCache int4");
    REQUIRE_THROWS_WITH(cache.k(2), ZINC_CONTAINS("no layer 2"));
  }
  CHECK(arena.used() == 0);
}

TEST_CASE("cpu_attention rejects inconsistent problems", "[attention]") {
  const Case c{"bad", 1, 1, 4, 4, 2, 32, false, {}};
  const Problem pr(c, 3);
  OwnedKv k(KvStorage::F32, 1, 2, pr.t_max, 32, 32, true);
  std::vector<float> out(pr.q.size());
  auto p = pr.problem(out.data());
  p.heads = 3;
  REQUIRE_THROWS_WITH(runtime::cpu_attention(p, k.view, k.view), ZINC_CONTAINS("not a multiple"));
  p = pr.problem(out.data());
  p.t0 = pr.t_max;
  REQUIRE_THROWS_WITH(runtime::cpu_attention(p, k.view, k.view), ZINC_CONTAINS("exceed the cache"));
  p = pr.problem(out.data());
  p.head_dim = 16;
  REQUIRE_THROWS_WITH(runtime::cpu_attention(p, k.view, k.view), ZINC_CONTAINS("head_dim 16"));
}

TEST_CASE("measure_read_bandwidth reads at a plausible rate", "[attention]") {
  const double bw = offload::measure_read_bandwidth(size_t{32} << 20, 1, 2);
  CHECK(bw > 1e8);   // > 100 MB/s
  CHECK(bw < 1e12);  // < 1 TB/s
  REQUIRE_THROWS_WITH(offload::measure_read_bandwidth(100, 2, 1), ZINC_CONTAINS("too few"));
}
