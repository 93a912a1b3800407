// The weight pipeline: the placement planner, the pinned pool, and ZeroWeights'
// K-slot ring — identical weights for every prefetch depth, residency and tier, the
// schedule contract, errors from the loader and disk threads, and the budget minimum.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "collectives/communicator.hpp"
#include "offload/memory_arena.hpp"
#include "offload/pinned_pool.hpp"
#include "offload/placement.hpp"
#include "partition/blob.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/decoder.hpp"
#include "runtime/model/loader.hpp"
#include "unit/test_util.hpp"

using namespace zinc;
using Policy = offload::PlacementRequest::Policy;

namespace {

offload::PlacementRequest request() {
  offload::PlacementRequest r;
  r.packed_bytes = {150, 100, 100, 100, 300};  // embed (tied: 2 uses), 3 layers, head
  r.unpacked_bytes = {800, 400, 400, 400, 600};
  r.uses_per_pass = {2, 1, 1, 1, 1};
  r.kv_bytes = 50;
  r.activation_bytes = 25;
  r.slots = 2;
  return r;
}

struct Fixture {
  runtime::ModelConfig config = runtime::dummy_config("tiny-llama");
  std::vector<partition::BlobManifest> manifests;
  std::atomic<int> reads{0};
  Fixture() {
    config.tie_word_embeddings = true;  // the head holds two blobs
    manifests = runtime::plan_manifests(runtime::blob_plan(config), quant::QuantFormat::Int8, 64);
  }
  offload::SliceReader reader(int fail_blob = -1, int fail_after = 0, int delay_ms = 0) {
    return [this, fail_blob, fail_after, delay_ms](size_t b, size_t off, size_t n, uint8_t* dst) {
      const int count = reads++;
      if (delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      if (static_cast<int>(b) == fail_blob && count >= fail_after)
        ZINC_THROW("injected read error in blob " << manifests[b].name);
      partition::fill_dummy_slice(manifests[b], off, n, 11, 0.02f, dst);
    };
  }
  runtime::ZeroOptions options(int depth, Policy p, int max_resident, offload::Tier tier,
                               size_t host_budget = 0) const {
    runtime::ZeroOptions o;
    o.host_budget = host_budget;
    o.tier = tier;
    o.prefetch_depth = depth;
    o.schedule = runtime::forward_schedule(config);
    o.residency = p;
    o.max_resident = max_resident;
    return o;
  }
};

// Every parameter's values over `passes` forward passes, in schedule order.
std::vector<float> walk(runtime::ZeroWeights& z, const Fixture& f, int passes) {
  std::vector<float> out;
  const std::vector<int> sched = runtime::forward_schedule(f.config);
  for (int pass = 0; pass < passes; ++pass)
    for (size_t i = 0; i < sched.size(); ++i) {
      const int b = sched[i];
      const bool head_then_embed = i + 1 < sched.size() && sched[i + 1] == 0 && b != 0;
      const runtime::ParamTable& t = z.acquire(b);
      for (const auto& p : f.manifests[b].params) {
        const runtime::Tensor& v = t.at(p.name);
        out.insert(out.end(), v.ptr<float>(), v.ptr<float>() + v.numel());
      }
      if (head_then_embed) {  // the tied head: embed acquired while the head is held
        const runtime::ParamTable& e = z.acquire(0);
        const runtime::Tensor& v = e.at(f.manifests[0].params[0].name);
        out.insert(out.end(), v.ptr<float>(), v.ptr<float>() + v.numel());
        z.release(0);
        ++i;
      }
      z.release(b);
    }
  return out;
}

}  // namespace

TEST_CASE("placement keeps the most uses per byte first, within the budget", "[placement]") {
  offload::PlacementRequest r = request();
  // slot = 300 + 800; minimum = 2 * 1100 + 50 + 25 = 2275
  r.policy = Policy::Fill;
  r.budget = 2275 + 250;  // the embedding (2 uses / 150 B) first, then one 100 B layer
  offload::Placement p = offload::plan_placement(r);
  CHECK(p.minimum_bytes == 2275);
  // (the one layer of three: the middle one, so the copy stream has work on both sides)
  CHECK(p.home == std::vector<offload::Tier>{offload::Tier::Device, offload::Tier::Cpu,
                                               offload::Tier::Device, offload::Tier::Cpu,
                                               offload::Tier::Cpu});
  CHECK(p.resident_bytes == 250);
  CHECK(p.planned_bytes <= r.budget);
  CHECK(p.streamed_bytes_per_pass == 100 + 100 + 300);

  r.max_resident = 1;
  CHECK(offload::plan_placement(r).resident_count() == 1);
  r.max_resident = -1;
  r.budget = 0;  // unlimited: everything
  CHECK(offload::plan_placement(r).resident_count() == 5);
  r.policy = Policy::None;
  CHECK(offload::plan_placement(r).resident_count() == 0);
  CHECK(offload::plan_placement(r).streamed_bytes_per_pass == 2 * 150 + 300 + 300);

  r.budget = 2274;
  REQUIRE_THROWS_WITH(offload::plan_placement(r),
                      ZINC_CONTAINS("is too small: the minimum is") && ZINC_CONTAINS("KV cache 50 B") &&
                          ZINC_CONTAINS("activations 25 B") && ZINC_CONTAINS("--gpu-memory-budget"));
  // Host side: the cpu tier keeps every streamed shard (a cap it exceeds is refused); the
  // nvme tier keeps what fits after the staging ring, most uses per byte first.
  r.policy = Policy::None;
  r.budget = 0;
  r.shard_bytes = {75, 50, 50, 50, 150};  // two ranks
  CHECK(offload::plan_placement(r).count(offload::Tier::Cpu) == 5);
  r.host_budget = 374;
  REQUIRE_THROWS_WITH(offload::plan_placement(r), ZINC_CONTAINS("--cpu-memory-budget") && ZINC_CONTAINS("--offload nvme"));
  r.nvme = true;
  r.staging_bytes = 200;  // 174 left: the embedding (2 uses / 75 B), one layer; 49 left
  p = offload::plan_placement(r);
  CHECK(p.home == std::vector<offload::Tier>{offload::Tier::Cpu, offload::Tier::Nvme,
                                                 offload::Tier::Cpu, offload::Tier::Nvme,
                                                 offload::Tier::Nvme});
  CHECK(p.host_bytes == 125);
  CHECK(p.nvme_bytes_per_pass == 50 + 50 + 150);
  r.nvme = false;
  r.host_budget = 0;
  r.policy = Policy::All;
  r.budget = 2275 + 749;  // the model is 750 B
  REQUIRE_THROWS_WITH(offload::plan_placement(r), ZINC_CONTAINS("--offload none"));
  r.budget = 2275 + 750;
  CHECK(offload::plan_placement(r).resident_count() == 5);
}

TEST_CASE("placement spaces the resident layers evenly in forward order", "[placement]") {
  offload::PlacementRequest r;
  r.packed_bytes.assign(12, 100);  // 12 equal layers
  r.packed_bytes.front() = 40;     // a small embedding
  r.unpacked_bytes.assign(12, 200);
  r.uses_per_pass.assign(12, 1);
  r.slots = 2;
  r.policy = Policy::Fill;
  r.budget = 2 * 300 + 40 + 3 * 100;  // the embedding and 3 of the 11 layers
  const offload::Placement p = offload::plan_placement(r);
  std::vector<int> resident;
  for (size_t b = 0; b < 12; ++b)
    if (p.resident(b)) resident.push_back(static_cast<int>(b));
  // layers are blobs 1..11; 3 of 11 at (2j + 1) * 11 / 6 = 1, 5, 9 of the group: blobs 2, 6, 10
  CHECK(resident == std::vector<int>{0, 2, 6, 10});
  CHECK(p.resident_bytes == 40 + 300);
  CHECK(p.streamed_bytes_per_pass == 8 * 100);
}

TEST_CASE("the pinned pool hands out aligned zeroed memory from large chunks", "[pinned]") {
  int pins = 0;
  offload::PinnedPool pool([&](void*, size_t) { ++pins; }, 1 << 20);
  uint8_t* a = pool.allocate(1000);
  uint8_t* b = pool.allocate(5000, 64);
  uint8_t* c = pool.allocate(3 << 20);  // larger than a chunk: a chunk of its own
  CHECK(reinterpret_cast<uintptr_t>(a) % 4096 == 0);
  CHECK(reinterpret_cast<uintptr_t>(b) % 64 == 0);
  CHECK(b >= a + 1000);
  CHECK(pool.chunks() == 2);
  CHECK(pins == 2);
  CHECK(pool.reserved_bytes() == (1 << 20) + (3 << 20));
  CHECK(c[0] == 0);
  CHECK(c[(3 << 20) - 1] == 0);
  CHECK(pool.pinned());

  offload::PinnedPool refused([](void*, size_t) { ZINC_THROW("mlock refused (test)"); }, 1 << 20);
  uint8_t* d = refused.allocate(100);
  d[99] = 7;  // still usable
  CHECK_FALSE(refused.pinned());
  CHECK_THAT(refused.pin_error(), ZINC_CONTAINS("mlock refused"));
  REQUIRE_THROWS_WITH(offload::PinnedPool(nullptr, 1000), ZINC_CONTAINS("multiple of 4096"));
}

TEST_CASE("every prefetch depth, residency and tier streams identical weights", "[pipeline]") {
  Fixture f;
  runtime::CpuBackend be0;
  collectives::SelfCommunicator comm;
  runtime::ZeroWeights base(f.manifests, f.reader(), be0, comm, f.options(1, Policy::None, -1, offload::Tier::Cpu));
  CHECK(base.slots() == 2);  // depth 1, but the tied head holds two blobs
  const std::vector<float> want = walk(base, f, 3);
  const auto sched = runtime::forward_schedule(f.config);
  // Loads run ahead of the acquires by at most slots - 1 positions.
  CHECK(base.stats().gathers >= 3 * sched.size());
  CHECK(base.stats().gathers <= 3 * sched.size() + 1);
  CHECK(base.stats().acquires == 3 * sched.size());
  // The staging ring (2 buffers of the largest shard) plus about half of the shards.
  size_t total = 0, largest = 0;
  for (const auto& m : f.manifests) {
    total += m.bytes;
    largest = std::max<size_t>(largest, m.bytes);
  }
  const size_t half_host = 3 * (largest + 4096) + total / 2;
  for (offload::Tier tier : {offload::Tier::Cpu, offload::Tier::Nvme})
    for (size_t host : {size_t(0), half_host})
    for (int depth : {1, 2, 3, 5})
      for (int resident : {0, 2, -1}) {
        if (tier == offload::Tier::Cpu && host != 0) continue;
        DYNAMIC_SECTION("tier " << (tier == offload::Tier::Cpu ? "cpu" : "nvme") << " host " << host
                                << " depth " << depth << " resident " << resident) {
          runtime::CpuBackend be;
          const Policy p = resident == 0 ? Policy::None : resident < 0 ? Policy::All : Policy::Fill;
          runtime::ZeroWeights z(f.manifests, f.reader(), be, comm, f.options(depth, p, resident, tier, host));
          if (tier == offload::Tier::Nvme && host != 0 && resident == 0) {
            CHECK(z.placement().count(offload::Tier::Cpu) > 0);  // a mix of both
            CHECK(z.placement().count(offload::Tier::Nvme) > 0);
          }
          CHECK(z.slots() == std::max(depth, 2));
          CHECK(walk(z, f, 3) == want);
          const int kept = resident < 0 ? static_cast<int>(f.manifests.size()) : resident;
          CHECK(z.placement().resident_count() == kept);
          const runtime::ZeroStats st = z.stats();
          uint64_t streamed = 0;
          for (int b : sched) streamed += !z.placement().resident(b);
          CHECK(st.gathers >= 3 * streamed);
          CHECK(st.gathers <= 3 * streamed + z.slots() - 1);
          if (tier == offload::Tier::Nvme)
            CHECK((st.source_bytes > 0) == (z.placement().count(offload::Tier::Nvme) > 0));
        }
      }
}

TEST_CASE("the pipeline enforces the schedule and reports the loader's errors", "[pipeline]") {
  Fixture f;
  collectives::SelfCommunicator comm;
  SECTION("out of order") {
    runtime::CpuBackend be;
    runtime::ZeroWeights z(f.manifests, f.reader(), be, comm, f.options(2, Policy::None, -1, offload::Tier::Cpu));
    REQUIRE_THROWS_WITH(z.acquire(2), ZINC_CONTAINS("streams embed next") && ZINC_CONTAINS("forward pass's order"));
    z.acquire(0);
    REQUIRE_THROWS_WITH(z.release(3), ZINC_CONTAINS("not held"));
  }
  SECTION("a read error in the second pass reaches the acquire that wanted the blob") {
    runtime::CpuBackend be;
    const int blobs = static_cast<int>(f.manifests.size());
    runtime::ZeroWeights z(f.manifests, f.reader(2, blobs + 2), be, comm,
                           f.options(3, Policy::None, -1, offload::Tier::Nvme));
    walk(z, f, 1);
    z.acquire(0);
    z.release(0);
    z.acquire(1);
    z.release(1);
    REQUIRE_THROWS_WITH(z.acquire(2), ZINC_CONTAINS("injected read error in blob layer.0001"));
  }  // the destructor returns: the loader stopped at the error
  SECTION("a budget below the minimum fails before any read") {
    runtime::CpuBackend be(64 << 10);
    f.reads = 0;
    REQUIRE_THROWS_WITH(runtime::ZeroWeights(f.manifests, f.reader(), be, comm,
                                             f.options(2, Policy::None, -1, offload::Tier::Cpu)),
                        ZINC_CONTAINS("is too small: the minimum is"));
    CHECK(f.reads == 0);
  }
  SECTION("compute's wait is attributed to the stage it waited on") {
    runtime::CpuBackend be;
    runtime::ZeroWeights z(f.manifests, f.reader(-1, 0, 20), be, comm,
                           f.options(1, Policy::None, -1, offload::Tier::Nvme));
    walk(z, f, 1);
    const runtime::ZeroStats st = z.stats();
    CHECK(st.disk_s >= 0.02 * 6);  // every read sleeps 20 ms
    CHECK(st.wait_disk_s > 0.0);
    CHECK(st.wait_s() >= st.wait_disk_s);
  }
}
