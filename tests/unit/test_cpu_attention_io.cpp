// cpu_attention with queries and outputs in F16 / BF16 (CpuAttentionProblem::io_dtype) and
// kv_store from an F16 / BF16 source: the host KV path's compute-dtype rows, read and
// written in place. Each must give exactly what the fp32 path gives on the widened inputs,
// rounded once at the end: so the F16 path is the old convert-attend-convert, bit for bit.
#include <cstring>
#include <vector>

#include "unit/cpu_attention_test_util.hpp"

using namespace zinc::test::attn;
using zinc::quant::DType;

namespace {

std::vector<uint8_t> to_type(const std::vector<float>& x, DType t) {
  std::vector<uint8_t> out(x.size() * zinc::quant::dtype_size(t));
  zinc::quant::convert(DType::F32, x.data(), t, out.data(), x.size());
  return out;
}

std::vector<float> widened(const std::vector<uint8_t>& x, DType t) {
  std::vector<float> out(x.size() / zinc::quant::dtype_size(t));
  zinc::quant::convert(t, x.data(), DType::F32, out.data(), out.size());
  return out;
}

}  // namespace

TEST_CASE("cpu_attention in F16 / BF16 is the fp32 result on the widened queries, rounded once",
          "[attention]") {
  uint32_t seed = 4100;
  for (const Case& c : cases()) {  // includes key chunks (merged) and queries that see no key
    Problem pr(c, seed += 3);
    for (KvStorage s : {KvStorage::F16, KvStorage::Int4}) {
      const int g = default_group(c.head_dim);
      OwnedKv k(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, true);
      OwnedKv v(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, g, true);
      pr.fill(k.view, v.view);
      for (DType io : {DType::F16, DType::BF16}) {
        INFO(c.name << ", " << zinc::quant::kv_storage_name(s) << ", io " << zinc::quant::dtype_name(io));
        const std::vector<uint8_t> q_io = to_type(pr.q, io);
        Problem wide = pr;
        wide.q = widened(q_io, io);  // the queries the io path sees, in fp32
        std::vector<float> out32(pr.q.size());
        zinc::runtime::cpu_attention(wide.problem(out32.data()), k.view, v.view);

        std::vector<uint8_t> out_io(pr.q.size() * 2, 0xAB);
        zinc::runtime::CpuAttentionProblem p = wide.problem(nullptr);
        p.q = q_io.data();
        p.out = out_io.data();
        p.io_dtype = io;
        zinc::runtime::cpu_attention(p, k.view, v.view);
        const std::vector<uint8_t> want = to_type(out32, io);
        CHECK(std::memcmp(want.data(), out_io.data(), want.size()) == 0);
      }
    }
  }
}

TEST_CASE("cpu_attention refuses a query type other than F32, F16 and BF16", "[attention]") {
  const Problem pr(cases()[0], 7);
  OwnedKv k(KvStorage::F32, pr.c.batch, pr.c.kv_heads, pr.t_max, pr.c.head_dim, 64, true);
  pr.fill(k.view, k.view);
  std::vector<float> out(pr.q.size());
  zinc::runtime::CpuAttentionProblem p = pr.problem(out.data());
  p.io_dtype = DType::I8;
  REQUIRE_THROWS_WITH(zinc::runtime::cpu_attention(p, k.view, k.view), ZINC_CONTAINS("q / out of type I8"));
}

TEST_CASE("kv_store from F16 / BF16 rows writes what it writes from their fp32 values", "[attention]") {
  const int batch = 3, tq = 2, t0 = 5, kvh = 4, hd = 64, t_max = 9;
  const std::vector<float> x = randn(static_cast<size_t>(batch) * tq * kvh * hd, 31, 3.0f);
  for (KvStorage s : kAllStorages) {
    for (DType t : {DType::F16, DType::BF16}) {
      INFO(zinc::quant::kv_storage_name(s) << " from " << zinc::quant::dtype_name(t));
      const std::vector<uint8_t> src = to_type(x, t);
      const std::vector<float> wide = widened(src, t);
      OwnedKv a(s, batch, kvh, t_max, hd, 32, true), b(s, batch, kvh, t_max, hd, 32, true);
      zinc::quant::kv_store(a.view, wide.data(), batch, tq, t0, kvh);
      zinc::quant::kv_store(b.view, t, src.data(), batch, tq, t0, kvh);
      CHECK(a.data == b.data);
      CHECK(a.params == b.params);
    }
  }
  // A value an int4 cache cannot hold is named as before, from the widened row.
  std::vector<float> bad = x;
  bad[5 * hd + 3] = INFINITY;  // source row 5: sequence 0, query 1, kv head 1
  const std::vector<uint8_t> src = to_type(bad, DType::F16);
  OwnedKv c(KvStorage::Int4, batch, kvh, t_max, hd, 32, true);
  REQUIRE_THROWS_WITH(zinc::quant::kv_store(c.view, DType::F16, src.data(), batch, tq, t0, kvh),
                      ZINC_CONTAINS("cannot hold value inf") && ZINC_CONTAINS("kv head 1, element 3"));
  REQUIRE_THROWS_WITH(zinc::quant::kv_store(c.view, DType::I32, src.data(), batch, tq, t0, kvh),
                      ZINC_CONTAINS("source type I32"));
}
