// ZeRO-3 weights: what one all-gather moves (the packed quantized blob, ~0.28x of fp16 for
// 4-bit with group 64), and the slot contract of ZeroWeights.
#include "collectives/communicator.hpp"
#include "partition/shard.hpp"
#include "partition/store.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/decoder.hpp"
#include "runtime/model/loader.hpp"
#include "unit/test_util.hpp"

using namespace zinc;

namespace {

// Packed bytes of a LLaMA-2-7B decoder layer over its fp16 size.
double layer_ratio(quant::QuantFormat q) {
  const runtime::ModelConfig c = runtime::dummy_config("llama-2-7b");
  const auto plan = runtime::blob_plan(c);
  const auto m = partition::plan_blob(plan[1].name, plan[1].params, q, 64);
  int64_t params = 0;
  for (const auto& p : m.params) params += p.numel();
  return static_cast<double>(m.bytes) / (2.0 * static_cast<double>(params));
}

}  // namespace

TEST_CASE("a gathered layer is the packed quantized blob: 0.28x of fp16 for int4 g64", "[zero]") {
  CHECK(layer_ratio(quant::QuantFormat::Int4) == Approx(0.28125).margin(0.001));
  CHECK(layer_ratio(quant::QuantFormat::NF4) == Approx(0.265625).margin(0.001));
  CHECK(layer_ratio(quant::QuantFormat::Int8) == Approx(0.515625).margin(0.001));
  CHECK(layer_ratio(quant::QuantFormat::None) == Approx(1.0).margin(0.001));
}

TEST_CASE("each acquire gathers exactly one blob's shards; slots are bounded", "[zero]") {
  runtime::CpuBackend be;
  collectives::SelfCommunicator comm;
  const runtime::ModelConfig c = runtime::dummy_config("tiny-llama");
  const auto manifests = runtime::plan_manifests(runtime::blob_plan(c), quant::QuantFormat::NF4, 64);
  runtime::ZeroWeights z(
      manifests,
      [&](size_t b, size_t off, size_t n, uint8_t* dst) {
        partition::fill_dummy_slice(manifests[b], off, n, 7, 0.02f, dst);
      },
      be, comm);
  const size_t n = manifests.size();
  for (size_t b = 0; b < n; ++b) {
    const runtime::ParamTable& t = z.acquire(static_cast<int>(b));
    for (const auto& p : manifests[b].params) CHECK(t.has(p.name));
    CHECK(z.shard_bytes(b) % partition::kPageBytes == 0);
    CHECK(z.shard_bytes(b) - manifests[b].bytes < partition::kPageBytes);
    z.release(static_cast<int>(b));
  }
  // The loader runs ahead of the acquires by up to slots - 1 positions: it has gathered the
  // n acquired blobs and perhaps the next position's (blob 0 of the next pass), each once.
  const runtime::ZeroStats st = z.stats();
  REQUIRE(st.gathers >= n);
  REQUIRE(st.gathers <= n + z.slots() - 1);
  uint64_t expect_unpadded = 0, expect_gathered = 0;
  for (uint64_t k = 0; k < st.gathers; ++k) {
    expect_unpadded += manifests[k % n].bytes;
    expect_gathered += z.shard_bytes(k % n);
  }
  CHECK(st.blob_bytes == expect_unpadded);
  CHECK(st.gathered_bytes == expect_gathered);
  z.acquire(0);
  z.acquire(1);
  REQUIRE_THROWS_WITH(z.acquire(2), ZINC_CONTAINS("weight slots are held"));
  REQUIRE_THROWS_WITH(z.acquire(1), ZINC_CONTAINS("acquire the blobs in the forward pass's order"));
  z.release(0);
  REQUIRE_THROWS_WITH(z.release(0), ZINC_CONTAINS("not held"));
  CHECK_NOTHROW(z.acquire(2));
}

TEST_CASE("a store whose blobs do not match its config is refused before any read", "[zero]") {
  // A store converted from a 2-layer model whose config.json was then edited to 3 layers:
  // written here with the real StoreWriter, loaded with the real loader.
  test::TempDir dir;
  const std::string path = dir.path() + "/m.zinc.h5";
  runtime::ModelConfig c = runtime::dummy_config("tiny-llama");
  c.num_layers = 2;
  const auto manifests = runtime::plan_manifests(runtime::blob_plan(c), quant::QuantFormat::NF4, 64);
  partition::StoreInfo info;
  info.version = 1;
  info.quant = quant::QuantFormat::NF4;
  info.group_size = 64;
  info.created_by = "test";
  info.config_json = R"({"model_type": "llama", "vocab_size": 1024, "hidden_size": 256,
      "intermediate_size": 704, "num_hidden_layers": 3, "num_attention_heads": 8,
      "num_key_value_heads": 2})";
  {
    partition::StoreWriter w(path, info);
    for (const auto& m : manifests) {
      std::vector<uint8_t> bytes(m.bytes);
      partition::fill_dummy_slice(m, 0, m.bytes, 1, 0.02f, bytes.data());
      w.write_blob(m, bytes.data());
    }
    w.finish();
  }
  runtime::CpuBackend be;
  collectives::SelfCommunicator comm;
  runtime::LoadOptions o;
  o.model = path;
  REQUIRE_THROWS_WITH(runtime::load_for_generation(o, be, comm),
                      ZINC_CONTAINS("holds 4 blobs, its config.json implies 5"));
  CHECK(be.arena().high_water_mark() == 0);  // refused before anything was allocated
}
