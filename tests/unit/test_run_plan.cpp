// The run planner (runtime/generate/run_plan.hpp) on the real built-in shapes with injected
// budgets and rates (the H200 machine's measured ones: DESIGN.md section 5): what it picks
// fits, is the best of its candidates, and what cannot fit is refused naming the shortfall.
#include <algorithm>
#include <string>

#include "runtime/common/error.hpp"
#include "runtime/generate/run_plan.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/workspace.hpp"
#include "tests/catch.hpp"

using namespace zinc;
using runtime::PlanChoice;
using runtime::PlanRequest;
using runtime::RunPlan;

namespace {

constexpr size_t kGiB = size_t(1) << 30;

PlanRequest h200(const std::string& shape, quant::QuantFormat q) {
  PlanRequest r;
  r.config = runtime::dummy_config(shape);
  r.quant = q;
  r.group_size = 64;
  r.compute = quant::DType::F16;
  r.prompt_len = 512;
  r.gen_len = 32;
  r.max_batch = 256;
  r.gpu_budget = 48 * kGiB;
  r.host_memory = 120 * kGiB;
  r.kv_storages = {quant::KvStorage::F16, quant::KvStorage::Int8, quant::KvStorage::Int4};
  r.rates.h2d = 55e9;
  r.rates.host_read = 87e9;
  r.rates.gpu_flops = 650e12;
  r.rates.weight_pass = 0.7e12;
  r.rates.device_kv_read = 1e12;
  return r;
}

void check_consistent(const PlanRequest& r, const RunPlan& p) {
  CHECK(p.placement.planned_bytes <= r.gpu_budget);
  CHECK(p.host_bytes <= r.host_memory);
  CHECK(p.step_s == std::max({p.t_h2d, p.t_gather, p.t_disk, p.kv_on_host ? p.t_kv : 0.0, p.t_gpu, p.t_ring}));
  // The ring's pass holds every copy and every use's compute: it is never below either.
  CHECK(p.t_ring >= 0.999 * std::max(p.t_h2d, p.t_gpu));
  CHECK(p.decode_tok_s == Approx(r.ranks * p.batch / p.step_s));
  CHECK(p.prefill_s >= p.t_h2d);
  // The weight stream term is the streamed bytes over the link.
  CHECK(p.t_h2d == Approx(static_cast<double>(p.placement.streamed_bytes_per_pass) / r.ranks / r.rates.h2d));
}

}  // namespace

TEST_CASE("the planner's OPT-30B int4 plan fits and beats its neighbours", "[plan]") {
  PlanRequest r = h200("opt-30b", quant::QuantFormat::Int4);
  const RunPlan p = runtime::plan_run(r);
  INFO(p.describe());
  check_consistent(r, p);
  // Every other candidate of the same kind is no faster (the search is exhaustive).
  for (int b : {1, 16, 64, p.batch - 1, p.batch + 1}) {
    if (b < 1 || b > r.max_batch) continue;
    for (quant::KvStorage st : r.kv_storages) {
      RunPlan o;
      try {
        o = runtime::evaluate_plan(r, b, true, st, offload::Tier::Cpu);
      } catch (const Error&) {
        continue;  // does not fit
      }
      CHECK(o.decode_tok_s <= p.decode_tok_s * 1.005);
    }
  }
  // A fixed batch is kept.
  r.batch = 32;
  CHECK(runtime::plan_run(r).batch == 32);
}

TEST_CASE("the planner's KV choice is the faster of the device and the host", "[plan]") {
  PlanRequest r = h200("llama-2-70b", quant::QuantFormat::NF4);
  const RunPlan both = runtime::plan_run(r);
  r.kv = PlanChoice::Device;
  const RunPlan device = runtime::plan_run(r);
  r.kv = PlanChoice::Host;
  const RunPlan host = runtime::plan_run(r);
  INFO(both.describe() << "\n" << device.describe() << "\n" << host.describe());
  CHECK_FALSE(device.kv_on_host);
  CHECK(host.kv_on_host);
  CHECK(both.decode_tok_s >= std::max(device.decode_tok_s, host.decode_tok_s) / 1.005);
  check_consistent(r, both);
  // More GPU memory for the KV cache keeps fewer layers resident: the planner trades them.
  CHECK(device.placement.resident_count() <= runtime::evaluate_plan(r, 1, false, quant::KvStorage::F16,
                                                                    offload::Tier::Cpu)
                                                 .placement.resident_count());
}

TEST_CASE("the planner streams OPT-175B NF4 at the link under a 48 GiB budget", "[plan]") {
  PlanRequest r = h200("opt-175b", quant::QuantFormat::NF4);
  const RunPlan p = runtime::plan_run(r);
  INFO(p.describe());
  check_consistent(r, p);
  // Bound by the stream: the link, or the slot ring's copies just behind it.
  CHECK((p.bound == "weight stream" || p.bound == "slot ring"));
  CHECK(p.step_s < 1.15 * p.t_h2d);
  CHECK(p.placement.resident_count() > 0);  // what fits beside the KV cache stays
  CHECK(p.host_bytes > 40 * kGiB);          // the rest is pinned on the host
}

TEST_CASE("the planner reads from NVMe when the host cannot hold the shards", "[plan]") {
  PlanRequest r = h200("opt-175b", quant::QuantFormat::NF4);
  r.host_memory = 32 * kGiB;  // OPT-175B NF4 is about 98 GB of shards on one rank
  r.kv = PlanChoice::Device;
  try {
    (void)runtime::plan_run(r);
    FAIL("a plan without a store");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("exceed its host memory") != std::string::npos);
    CHECK(m.find("a zinc store would allow --offload nvme") != std::string::npos);
  }
  r.have_store = true;
  r.rates.disk = 1.8e9;
  const RunPlan p = runtime::plan_run(r);
  INFO(p.describe());
  CHECK(p.tier == offload::Tier::Nvme);
  CHECK(p.bound == "nvme");
  CHECK(p.placement.nvme_bytes_per_pass > 0);
  CHECK(p.host_bytes <= r.host_memory);
  CHECK(p.t_disk == Approx(static_cast<double>(p.placement.nvme_bytes_per_pass) / r.rates.disk));
}

TEST_CASE("the planner refuses a GPU budget below one layer's minimum, naming it", "[plan]") {
  PlanRequest r = h200("opt-175b", quant::QuantFormat::NF4);
  r.gpu_budget = kGiB;
  try {
    (void)runtime::plan_run(r);
    FAIL("a plan in 1 GiB");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("no plan fits") != std::string::npos);
    CHECK(m.find("minimum") != std::string::npos);
  }
  r.gpu_budget = 48 * kGiB;
  r.rates.h2d = 0;  // a rate the plan needs was not measured
  CHECK_THROWS_WITH(runtime::plan_run(r), Catch::Contains("no measured pinned H2D bandwidth"));
}

TEST_CASE("the planner gives a host-KV decode in lanes a third gather slot unless the depth is given",
          "[plan]") {
  PlanRequest r = h200("opt-30b", quant::QuantFormat::Int4);
  const auto host = [&](int batch) { return runtime::evaluate_plan(r, batch, true, quant::KvStorage::Int4, offload::Tier::Cpu); };
  CHECK(host(96).prefetch_depth == runtime::kHostKvLaneSlots);
  CHECK(host(96).placement.slots == runtime::kHostKvLaneSlots);
  CHECK(host(1).prefetch_depth == 2);  // one sequence: no lanes
  CHECK(runtime::evaluate_plan(r, 32, false, quant::KvStorage::F16, offload::Tier::Cpu).prefetch_depth == 2);  // KV on the device
  r.lanes = false;  // --kv-overlap off
  CHECK(host(96).prefetch_depth == 2);
  r.lanes = true;
  r.prefetch_depth = 2;
  r.prefetch_depth_given = true;  // --prefetch-depth 2 is kept
  CHECK(host(96).placement.slots == 2);
  r.prefetch_depth = 5;
  CHECK(host(96).placement.slots == 5);
}

TEST_CASE("the planner's slot ring: packed-only slots keep the copy going between resident blobs",
          "[plan]") {
  // LLaMA-2-70B NF4 at 48 GiB, batch 128, KV on the device: with whole-layer slots the H200
  // measured 79.6% of the link at --prefetch-depth 2 and 98.4% at 4 (BENCH.md section 2).
  // A slot now holds the packed blob only and is free once dequantized, so two already
  // keep the copy going, and more cost a packed blob each.
  PlanRequest r = h200("llama-2-70b", quant::QuantFormat::NF4);
  r.prefetch_depth_given = true;
  r.prefetch_depth = 2;
  const RunPlan two = runtime::evaluate_plan(r, 128, false, quant::KvStorage::F16, offload::Tier::Cpu);
  r.prefetch_depth = 4;
  const RunPlan four = runtime::evaluate_plan(r, 128, false, quant::KvStorage::F16, offload::Tier::Cpu);
  INFO(two.describe() << "\n" << four.describe());
  CHECK(two.t_ring == Approx(two.t_h2d).epsilon(0.03));
  CHECK(four.placement.minimum_bytes - two.placement.minimum_bytes == 2 * two.placement.slot_bytes);
  CHECK(two.placement.held == 2);
  CHECK(four.placement.held == 2);
  // With a ring slot per streamed blob and none to spare, the copy does wait.
  r.prefetch_depth = 1;
  r.config.tie_word_embeddings = false;
  const RunPlan one = runtime::evaluate_plan(r, 128, false, quant::KvStorage::F16, offload::Tier::Cpu);
  CHECK(one.t_ring > 1.1 * one.t_h2d);
}
