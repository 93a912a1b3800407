// measure_host_attention_rate (runtime/backend/cpu/attention_probe.hpp): a finite positive
// rate for every storage and compute dtype, and bad shapes refused. No speed is asserted:
// rates are measured by benchmarks (zinc bench's plan rows), not unit tests.
#include <cmath>

#include "catch.hpp"
#include "runtime/backend/cpu/attention_probe.hpp"
#include "test_util.hpp"

using zinc::quant::DType;
using zinc::quant::KvStorage;
using zinc::runtime::HostAttentionShape;
using zinc::runtime::measure_host_attention_rate;

TEST_CASE("the host attention probe measures every storage at a model's shape", "[attention]") {
  for (KvStorage s : {KvStorage::F32, KvStorage::F16, KvStorage::Int8, KvStorage::Int4}) {
    for (DType io : {DType::F32, DType::F16, DType::BF16}) {
      HostAttentionShape sh;
      sh.heads = 16;
      sh.kv_heads = 2;
      sh.head_dim = 128;
      sh.keys = 40;
      sh.io = io;
      const double rate = measure_host_attention_rate(s, sh, size_t(4) << 20, 1);
      INFO(zinc::quant::kv_storage_name(s) << " " << zinc::quant::dtype_name(io) << ": " << rate);
      CHECK(std::isfinite(rate));
      CHECK(rate > 0);
    }
  }
}

TEST_CASE("the host attention probe refuses bad shapes", "[attention]") {
  HostAttentionShape sh;
  sh.heads = 6;
  sh.kv_heads = 4;
  sh.head_dim = 64;
  sh.keys = 8;
  REQUIRE_THROWS_WITH(measure_host_attention_rate(KvStorage::F16, sh, 1 << 20, 1), ZINC_CONTAINS("bad shape"));
  sh.heads = 8;
  sh.io = DType::I8;
  REQUIRE_THROWS_WITH(measure_host_attention_rate(KvStorage::F16, sh, 1 << 20, 1), ZINC_CONTAINS("rows of type I8"));
}

TEST_CASE("host_attention_rates_text names the measured storages in GB/s", "[attention]") {
  const double rates[4] = {0, 60.514e9, 0, 26.37e9};
  CHECK(zinc::runtime::host_attention_rates_text(rates) == "f16 60.51, int4 26.37");
  const double none[4] = {0, 0, 0, 0};
  CHECK(zinc::runtime::host_attention_rates_text(none).empty());
}
