// The ranks' agreement on the weight placement, at 82 blobs (LLaMA-2-70B's count: embed, 80 layers,
// head), under real mpirun:
//  - placement_fingerprint (pure, any np): plans of 82 blobs that differ in one blob's home — the
//    first, the 41st, the last, or any — or in the slot count all have different fingerprints
//    (the old check hashed the plan into one double and lost the blobs past ~33), and every rank
//    computes the same fingerprint for the same plan;
//  - (a) when every rank uses the same options (no residency; Fill with 1 or 2 resident blobs),
//    runtime::ZeroWeights is constructed on every rank, its plan is the one offload::plan_placement
//    gives, and (None, Fill 1) one forward pass of gathered blobs dequantizes to the same values as
//    a one-rank (SelfCommunicator) ZeroWeights of the same dummy weights;
//  - (b) np > 1: when exactly one rank's plan differs in ONE blob's home (checked with
//    plan_placement; the odd rank is the last or rank 0, and the blob is the first- or second-picked
//    resident, i.e. the head at index 81 or the embedding at index 0) or only in its slot count,
//    construction throws zinc::Error "the ranks planned different weight placements" on EVERY rank.
// Every rank makes the same collective calls in the same order: errors are caught and counted,
// then summed over the ranks.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"
#include "collectives/mpi_communicator.hpp"
#include "mpi/mpi_test_util.hpp"
#include "offload/placement.hpp"
#include "partition/blob.hpp"
#include "partition/shard.hpp"
#include "quant/quantize.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/common/hash.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/decoder.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/zero_weights.hpp"
#include "unit/test_util.hpp"

using namespace zinc;
using Policy = offload::PlacementRequest::Policy;
using zinc::mpitest::sum_over_ranks;

namespace {

constexpr size_t kBlobs = 82;

// tiny-llama's shapes with LLaMA-2-70B's depth, untied: embed + 80 layers + head = 82 blobs.
struct Model82 {
  runtime::ModelConfig config = runtime::dummy_config("tiny-llama");
  std::vector<partition::BlobManifest> manifests;
  Model82() {
    config.num_layers = 80;
    config.tie_word_embeddings = false;
    manifests = runtime::plan_manifests(runtime::blob_plan(config), quant::QuantFormat::Int8, 64);
  }
  offload::SliceReader reader() const {
    return [this](size_t b, size_t off, size_t n, uint8_t* dst) {
      partition::fill_dummy_slice(manifests[b], off, n, 11, 0.02f, dst);
    };
  }
  runtime::ZeroOptions options(Policy p, int max_resident, int depth = 2) const {
    runtime::ZeroOptions o;
    o.tier = offload::Tier::Cpu;
    o.prefetch_depth = depth;
    o.schedule = runtime::forward_schedule(config);
    o.residency = p;
    o.max_resident = max_resident;
    return o;
  }
  // The request WeightStream makes of the planner on rank `rank` of `world` (CPU backend: f32
  // compute, unlimited device budget), built here to check plans with offload::plan_placement.
  offload::PlacementRequest request(const runtime::ZeroOptions& o, int world, int rank) const {
    offload::PlacementRequest req;
    std::vector<int> uses(manifests.size(), 0);
    for (int b : o.schedule) ++uses[static_cast<size_t>(b)];
    for (size_t b = 0; b < manifests.size(); ++b) {
      const partition::BlobManifest& m = manifests[b];
      const int bits = quant::quant_bits(m.format);
      const size_t group_bytes = bits > 0 ? static_cast<size_t>(m.group_size) * bits / 8 : 1;
      const size_t align = partition::shard_alignment(std::max<size_t>(group_bytes, 1));
      const partition::ShardRange range = partition::shard_range(m.bytes, world, rank, align);
      size_t unpacked = 0;
      for (const partition::BlobParam& p : m.params)
        unpacked += runtime::unpacked_param_bytes(p, quant::DType::F32);
      req.packed_bytes.push_back(range.padded_bytes);
      req.shard_bytes.push_back(range.shard_bytes);
      req.unpacked_bytes.push_back(unpacked);
      req.uses_per_pass.push_back(std::max(uses[b], 1));
    }
    req.slots = std::max(o.prefetch_depth, o.schedule.size() > manifests.size() ? 2 : 1);
    req.policy = o.residency;
    req.max_resident = o.max_resident;
    return req;
  }
};

// The blobs whose home differs between two plans of the same length.
std::vector<size_t> differing_blobs(const offload::Placement& a, const offload::Placement& b) {
  std::vector<size_t> out;
  for (size_t i = 0; i < a.home.size() && i < b.home.size(); ++i)
    if (a.home[i] != b.home[i]) out.push_back(i);
  return out;
}

// One forward pass: per blob of the schedule, the FNV-1a of its dequantized parameters.
std::vector<uint64_t> walk_hashes(runtime::ZeroWeights& z, const Model82& m) {
  std::vector<uint64_t> out;
  for (int b : runtime::forward_schedule(m.config)) {
    const runtime::ParamTable& t = z.acquire(b);
    uint64_t h = kFnvOffset;
    for (const partition::BlobParam& p : m.manifests[static_cast<size_t>(b)].params) {
      const runtime::Tensor& v = t.at(p.name);
      h = fnv1a(v.ptr<float>(), static_cast<size_t>(v.numel()) * sizeof(float), h);
    }
    out.push_back(h);
    z.release(b);
  }
  return out;
}

std::string describe(const std::vector<size_t>& blobs) {
  std::string s;
  for (size_t b : blobs) s += (s.empty() ? "" : ", ") + std::to_string(b);
  return "{" + s + "}";
}

}  // namespace

TEST_CASE("placement_fingerprint tells apart 82-blob plans that differ in one blob", "[mpi][plan]") {
  offload::Placement base;
  base.home.assign(kBlobs, offload::Tier::Cpu);
  base.slots = 2;
  const uint64_t f0 = offload::placement_fingerprint(base);
  // The first, the 41st and the last blob, to each other tier.
  for (size_t blob : {size_t(0), size_t(40), kBlobs - 1})
    for (offload::Tier t : {offload::Tier::Device, offload::Tier::Nvme}) {
      offload::Placement p = base;
      p.home[blob] = t;
      INFO("blob " << blob << " on " << offload::tier_name(t));
      CHECK(offload::placement_fingerprint(p) != f0);
      // Each 32-bit half is what the ranks compare (exactly, as doubles): they differ as a whole.
      const uint64_t f = offload::placement_fingerprint(p);
      CHECK(((f >> 32) != (f0 >> 32) || (f & 0xffffffffu) != (f0 & 0xffffffffu)));
    }
  // Every single-blob change, and a change of the slot count alone, is a distinct fingerprint.
  std::set<uint64_t> seen{f0};
  size_t plans = 1;
  for (size_t blob = 0; blob < kBlobs; ++blob)
    for (offload::Tier t : {offload::Tier::Device, offload::Tier::Nvme}) {
      offload::Placement p = base;
      p.home[blob] = t;
      seen.insert(offload::placement_fingerprint(p));
      ++plans;
    }
  offload::Placement more_slots = base;
  more_slots.slots = 3;
  seen.insert(offload::placement_fingerprint(more_slots));
  ++plans;
  offload::Placement longer = base;  // one more blob, on the same tier
  longer.home.push_back(offload::Tier::Cpu);
  seen.insert(offload::placement_fingerprint(longer));
  ++plans;
  CHECK(seen.size() == plans);
  // The fields that are not part of the plan's identity do not matter.
  offload::Placement described = base;
  described.resident_bytes = 12345;
  described.host_bytes = 678;
  CHECK(offload::placement_fingerprint(described) == f0);

  // Every process computes the same fingerprint for the same plan (min == max over the ranks).
  collectives::MpiCommunicator comm;
  const double hi = static_cast<double>(f0 >> 32), lo = static_cast<double>(f0 & 0xffffffffu);
  const std::vector<double> m = comm.allreduce_max({hi, lo, -hi, -lo});
  CHECK(m[0] == hi);
  CHECK(m[1] == lo);
  CHECK(-m[2] == hi);
  CHECK(-m[3] == lo);
}

TEST_CASE("ZeroWeights of 82 blobs: the same options on every rank construct and stream", "[mpi][plan]") {
  collectives::MpiCommunicator comm;
  const Model82 model;
  // Deterministic and the same on every rank: a failure here stops all ranks alike.
  REQUIRE(model.manifests.size() == kBlobs);
  REQUIRE(runtime::forward_schedule(model.config).size() == kBlobs);

  // The reference values: the whole blobs read by one rank alone.
  std::vector<uint64_t> want;
  {
    runtime::CpuBackend be;
    collectives::SelfCommunicator self;
    runtime::ZeroWeights z(model.manifests, model.reader(), be, self, model.options(Policy::None, -1));
    want = walk_hashes(z, model);
  }
  struct Case {
    const char* name;
    Policy policy;
    int max_resident;
    int resident;  // blobs the plan keeps on the device
    bool walk;     // stream one forward pass (the slowest part at 4 ranks on 2 cores)
  };
  const Case cases[] = {{"no residency", Policy::None, -1, 0, true},
                        {"Fill, 1 resident", Policy::Fill, 1, 1, true},
                        {"Fill, 2 resident", Policy::Fill, 2, 2, false}};
  for (const Case& c : cases) {
    const runtime::ZeroOptions opts = model.options(c.policy, c.max_resident);
    const offload::Placement planned = offload::plan_placement(model.request(opts, comm.size(), comm.rank()));
    runtime::CpuBackend be;
    std::string error;
    size_t wrong = 0;
    try {
      runtime::ZeroWeights z(model.manifests, model.reader(), be, comm, opts);  // collective
      wrong += z.placement().home != planned.home;
      wrong += z.placement().slots != planned.slots;
      wrong += z.placement().resident_count() != c.resident;
      if (c.walk) wrong += walk_hashes(z, model) != want;  // every rank: the same 82 acquires
    } catch (const std::exception& e) {
      error = e.what();
    }
    const std::vector<double> totals =
        comm.allreduce_sum({error.empty() ? 0.0 : 1.0, static_cast<double>(wrong)});
    INFO(c.name << ", rank " << comm.rank() << " of " << comm.size() << ": " << error);
    CHECK(totals[0] == 0);  // constructed (and streamed) on every rank
    CHECK(totals[1] == 0);  // the planner's plan, and the one-rank values, on every rank
  }
  mpitest::note(comm, "checked 82-blob ZeroWeights with matching options on every rank");
}

TEST_CASE("ZeroWeights of 82 blobs: one rank's different plan throws on every rank", "[mpi][plan]") {
  collectives::MpiCommunicator comm;
  const int n = comm.size(), r = comm.rank();
  if (n == 1) {
    mpitest::note(comm, "skipped the plan-disagreement test: it needs at least 2 ranks");
    return;
  }
  const Model82 model;
  REQUIRE(model.manifests.size() == kBlobs);  // the same on every rank
  struct Case {
    const char* name;
    int odd_rank;            // the one rank with other options
    runtime::ZeroOptions base, odd;
    size_t differing_homes;  // blobs whose home differs between the two plans
  };
  const std::vector<Case> cases{
      {"last rank: Fill 1 vs None", n - 1, model.options(Policy::None, -1), model.options(Policy::Fill, 1), 1},
      {"rank 0: Fill 1 vs None", 0, model.options(Policy::None, -1), model.options(Policy::Fill, 1), 1},
      {"last rank: Fill 2 vs Fill 1", n - 1, model.options(Policy::Fill, 1), model.options(Policy::Fill, 2), 1},
      {"last rank: 3 slots vs 2", n - 1, model.options(Policy::None, -1, 2), model.options(Policy::None, -1, 3),
       0},
  };
  std::vector<size_t> all_differing;
  for (const Case& c : cases) {
    // What the planner makes of each side's options: exactly the expected difference.
    const offload::Placement base = offload::plan_placement(model.request(c.base, n, r));
    const offload::Placement odd = offload::plan_placement(model.request(c.odd, n, r));
    const std::vector<size_t> diff = differing_blobs(base, odd);
    all_differing.insert(all_differing.end(), diff.begin(), diff.end());
    {
      INFO(c.name << ": the plans differ in blobs " << describe(diff));
      CHECK(base.home.size() == kBlobs);
      CHECK(diff.size() == c.differing_homes);
      if (c.differing_homes == 0) CHECK(base.slots != odd.slots);
      CHECK(offload::placement_fingerprint(base) != offload::placement_fingerprint(odd));
    }
    if (diff.size() == 1)
      mpitest::note(comm, std::string(c.name) + ": the plans differ in blob " + describe(diff));

    runtime::CpuBackend be;
    std::string error;
    bool is_error = false;
    try {
      runtime::ZeroWeights z(model.manifests, model.reader(), be, comm, r == c.odd_rank ? c.odd : c.base);
    } catch (const zinc::Error& e) {
      error = e.what();
      is_error = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    const bool refused = is_error && error.find("planned different weight placements") != std::string::npos;
    const double refused_ranks = sum_over_ranks(comm, refused ? 1.0 : 0.0);
    INFO(c.name << ", rank " << r << " of " << n << ": '" << error << "'");
    CHECK(refused);
    CHECK(refused_ranks == n);  // every rank, so nobody waits in a gather
  }
  // The cases cover a differing blob past the ~33 that a double-hashed plan kept apart.
  std::sort(all_differing.begin(), all_differing.end());
  INFO("differing blobs over the cases: " << describe(all_differing));
  CHECK(!all_differing.empty());
  CHECK(all_differing.back() > 33);
}
