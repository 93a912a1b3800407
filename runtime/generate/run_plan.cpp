// The run planner: candidates (batch x KV placement and storage x weight tier), each
// sized by offload::plan_placement and timed by the roofline model of run_plan.hpp.
#include "runtime/generate/run_plan.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "offload/memory_arena.hpp"
#include "partition/shard.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/common/error.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/decoder.hpp"
#include "runtime/model/workspace.hpp"
#include "runtime/model/zero_weights.hpp"

namespace zinc::runtime {
namespace {

// What the plan needs of the model, computed once per request.
struct ModelSizes {
  std::vector<size_t> packed, shard, unpacked;
  std::vector<int> uses;
  std::vector<int> schedule;   // blob order of a forward pass
  std::vector<bool> layer;     // per blob: a decoder layer (the host KV attention is in it)
  size_t unpacked_total = 0;   // every blob dequantized once: the GPU reads it per micro-batch
  double matmul_params = 0;    // weights multiplied per token (2 FLOPs each)
  bool two_held = false;       // the tied head holds the embedding too
};

ModelSizes model_sizes(const PlanRequest& r) {
  ModelSizes s;
  const std::vector<BlobPlan> plan = blob_plan(r.config);
  const std::vector<partition::BlobManifest> manifests = plan_manifests(plan, r.quant, r.group_size);
  s.schedule = forward_schedule(r.config);
  s.uses.assign(manifests.size(), 0);
  for (int b : s.schedule) ++s.uses[static_cast<size_t>(b)];
  s.two_held = s.schedule.size() > manifests.size();
  for (const partition::BlobManifest& m : manifests) {
    s.layer.push_back(m.name.compare(0, 6, "layer.") == 0);
    const partition::ShardRange range = partition::shard_range(m.bytes, r.ranks, 0, blob_alignment(m));
    s.packed.push_back(range.padded_bytes);
    s.shard.push_back(range.shard_bytes);
    size_t unpacked = 0;
    for (const partition::BlobParam& p : m.params) {
      unpacked += unpacked_param_bytes(p, r.compute);
      // Matrices are multiplied; the embedding table is only read by index, but its tied
      // use as the head is a product (counted once: the head's uses).
      if (p.shape.size() == 2 && m.name != "embed") s.matmul_params += static_cast<double>(p.numel());
    }
    s.unpacked.push_back(unpacked);
    s.unpacked_total += unpacked;
  }
  if (r.config.tie_word_embeddings)
    s.matmul_params += static_cast<double>(r.config.vocab_size) * r.config.hidden_size;
  for (auto& u : s.uses) u = std::max(u, 1);
  return s;
}

size_t kv_row_bytes(quant::KvStorage st, int hd, int group) {
  return quant::kv_row_code_bytes(st, hd) + quant::kv_row_param_bytes(st, hd, std::min(group, hd));
}

quant::KvStorage device_storage(quant::DType t) {
  return t == quant::DType::F32 ? quant::KvStorage::F32 : quant::KvStorage::F16;  // bf16 rows: 2 bytes too
}

// Host bytes of a host KV cache (every layer's K and V rows) and its pinned staging.
size_t host_kv_bytes(const PlanRequest& r, int batch, quant::KvStorage st) {
  const ModelConfig& c = r.config;
  const size_t t_max = static_cast<size_t>(r.prompt_len) + r.gen_len;
  const size_t rows = 2ull * c.num_layers * batch * c.num_kv_heads * t_max;
  const size_t cache = rows * kv_row_bytes(st, c.head_dim, 64);
  // KvCache's staging: q, k, v, out for the largest micro-batch (fp32 and the compute
  // dtype), plus two prefill slots of k, v.
  const size_t step_rows = static_cast<size_t>(workspace_rows(batch, r.prompt_len, r.micro_batch).micro);
  const size_t q_w = static_cast<size_t>(c.num_heads) * c.head_dim, kv_w = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
  const size_t e = 4 + quant::dtype_size(r.compute);
  return cache + step_rows * (2 * q_w + 2 * kv_w) * e + 2 * step_rows * 2 * kv_w * e;
}

std::string gib(size_t bytes) { return offload::format_bytes(bytes); }

// The slot ring over one forward pass, simulated (offload/weight_stream.hpp): position k
// uses gather slot k % K; the loader copies the streamed positions in order, each once its
// slot's previous position has been dequantized (its compute started; a resident one only
// waits for its slot); compute takes the positions in order, each once its copy is done.
// Two passes from empty; the second's length is the step. Where resident blobs sit
// between streamed ones the copy runs fewer streamed blobs ahead than K - 1 and waits for
// slots (with whole-layer slots the H200 measured the copy stream idle 20-29% of a step:
// BENCH.md sections 2 and 7; packed-only slots make K cheap).
double ring_pass_s(const ModelSizes& s, const offload::Placement& pl, const std::vector<double>& copy_s,
                   const std::vector<double>& compute_s, int slots) {
  const size_t n = s.schedule.size(), total = 2 * n, K = static_cast<size_t>(std::max(slots, 1));
  std::vector<double> comp_start(total, 0.0), comp_end(total, 0.0);
  double loader = 0, compute = 0;
  for (size_t k = 0; k < total; ++k) {
    const size_t b = static_cast<size_t>(s.schedule[k % n]);
    const double slot_free = k >= K ? comp_start[k - K] : 0.0;
    const double start = std::max(loader, slot_free);
    const double copied = pl.resident(b) ? start : start + copy_s[b];
    loader = copied;
    comp_start[k] = std::max(compute, copied);
    compute = comp_start[k] + compute_s[b];
    comp_end[k] = compute;
  }
  return comp_end[total - 1] - comp_end[n - 1];
}

double need_rate(double rate, const char* what) {
  ZINC_CHECK(rate > 0, "--plan auto: no measured " << what << " to plan with");
  return rate;
}

RunPlan evaluate(const PlanRequest& r, const ModelSizes& s, int batch, bool kv_on_host, quant::KvStorage storage,
                 offload::Tier tier) {
  const ModelConfig& c = r.config;
  RunPlan p;
  p.batch = batch;
  p.kv_on_host = kv_on_host;
  p.kv_storage = kv_on_host ? storage : device_storage(r.compute);
  p.tier = tier;
  const int t_max = r.prompt_len + r.gen_len;
  const size_t host_kv = kv_on_host ? host_kv_bytes(r, batch, storage) : 0;
  const size_t device_kv = kv_on_host ? 0 : KvCache::device_bytes(kv_shape(c), batch, t_max, r.compute);
  p.kv_bytes = kv_on_host ? host_kv : device_kv;
  ZINC_CHECK(host_kv <= r.host_memory, "the host KV cache (" << gib(host_kv) << " at batch " << batch
                                                             << ") exceeds the host memory of "
                                                             << gib(r.host_memory) << " per rank by "
                                                             << gib(host_kv - r.host_memory));

  offload::PlacementRequest pr;
  pr.packed_bytes = s.packed;
  pr.shard_bytes = s.shard;
  pr.unpacked_bytes = s.unpacked;
  pr.uses_per_pass = s.uses;
  pr.budget = r.gpu_budget;
  pr.kv_bytes = device_kv;
  pr.activation_bytes = activation_bytes(c, batch, r.prompt_len, r.micro_batch, r.compute);
  const bool lanes = kv_on_host && r.lanes && batch >= 2;
  p.prefetch_depth = lanes && !r.prefetch_depth_given ? std::max(r.prefetch_depth, kHostKvLaneSlots) : r.prefetch_depth;
  pr.slots = std::max(p.prefetch_depth, s.two_held ? 2 : 1);
  pr.policy = offload::PlacementRequest::Policy::Fill;
  pr.nvme = tier == offload::Tier::Nvme;
  if (pr.nvme) {
    pr.staging_bytes = static_cast<size_t>(std::max(pr.slots, 2)) * *std::max_element(s.shard.begin(), s.shard.end());
    p.host_budget = r.host_memory - host_kv;
    ZINC_CHECK(p.host_budget >= pr.staging_bytes,
               "the NVMe staging ring (" << gib(pr.staging_bytes) << ") and the host KV cache (" << gib(host_kv)
                                         << ") exceed the host memory of " << gib(r.host_memory) << " per rank");
    pr.host_budget = p.host_budget;
  }
  p.placement = offload::plan_placement(pr);  // throws when the GPU budget cannot hold the minimum
  p.host_bytes = p.placement.host_bytes + host_kv + pr.staging_bytes;
  if (!pr.nvme) {
    ZINC_CHECK(p.host_bytes <= r.host_memory,
               "this rank's pinned weight shards (" << gib(p.placement.host_bytes) << ") and host KV ("
                                                    << gib(host_kv) << ") exceed its host memory of "
                                                    << gib(r.host_memory) << " by "
                                                    << gib(p.host_bytes - r.host_memory)
                                                    << (r.have_store ? "" : " (a zinc store would allow --offload nvme)"));
  }

  // Times of one decode step and of the prefill, per rank.
  const PlanRates& q = r.rates;
  const double w = static_cast<double>(p.placement.streamed_bytes_per_pass);
  p.t_h2d = w > 0 ? w / r.ranks / need_rate(q.h2d, "pinned H2D bandwidth") : 0.0;
  p.t_gather = r.ranks > 1 && w > 0 ? w * (r.ranks - 1) / r.ranks / need_rate(q.allgather, "all-gather bandwidth") : 0.0;
  p.t_disk = pr.nvme && p.placement.nvme_bytes_per_pass > 0
                 ? static_cast<double>(p.placement.nvme_bytes_per_pass) / need_rate(q.disk, "disk bandwidth")
                 : 0.0;
  const double keys = r.prompt_len + r.gen_len / 2.0;  // mean over the decode steps
  const double kv_read = static_cast<double>(batch) * c.num_layers * 2.0 * c.num_kv_heads * keys *
                         static_cast<double>(kv_row_bytes(p.kv_storage, c.head_dim, 64));
  const double pass = need_rate(q.weight_pass, "GPU weight-pass rate");
  const double flops = need_rate(q.gpu_flops, "GPU FLOP rate");
  const int micro = kv_on_host && batch >= 2 ? kHostKvLanes
                                             : (batch + micro_batch_size(batch, 1, r.micro_batch) - 1) /
                                                   micro_batch_size(batch, 1, r.micro_batch);
  p.t_gpu = micro * static_cast<double>(s.unpacked_total) / pass + 2.0 * s.matmul_params * batch / flops;
  if (kv_on_host) {
    const double frac = storage == quant::KvStorage::Int8 || storage == quant::KvStorage::Int4
                            ? q.attention_fraction_quantized
                            : q.attention_fraction_f16;
    p.t_kv = kv_read / (need_rate(q.host_read, "host read bandwidth") * frac);
  } else {
    p.t_kv = kv_read / need_rate(q.device_kv_read, "device KV read rate");
    p.t_gpu += p.t_kv;
  }
  // The ring: each blob's copy at the link's rate; each use's compute its share of the GPU
  // term by dequantized bytes, a layer's at least its share of the host KV read (the lanes
  // overlap the two within a layer).
  std::vector<double> copy_s(s.packed.size()), compute_s(s.packed.size());
  double unpacked_uses = 0;
  for (int b : s.schedule) unpacked_uses += static_cast<double>(s.unpacked[static_cast<size_t>(b)]);
  for (size_t b = 0; b < s.packed.size(); ++b) {
    copy_s[b] = q.h2d > 0 ? static_cast<double>(s.shard[b]) / q.h2d : 0.0;
    compute_s[b] = p.t_gpu * static_cast<double>(s.unpacked[b]) / unpacked_uses;
    if (kv_on_host && s.layer[b]) compute_s[b] = std::max(compute_s[b], p.t_kv / c.num_layers);
  }
  p.t_ring = ring_pass_s(s, p.placement, copy_s, compute_s, pr.slots);
  const std::pair<double, const char*> terms[] = {{p.t_h2d, "weight stream"}, {p.t_gather, "all-gather"},
                                                  {p.t_disk, "nvme"},         {kv_on_host ? p.t_kv : 0.0, "kv read"},
                                                  {p.t_gpu, "gpu"},           {p.t_ring, "slot ring"}};
  const auto* top = std::max_element(std::begin(terms), std::end(terms),
                                     [](const auto& a, const auto& b) { return a.first < b.first; });
  p.step_s = top->first;
  p.bound = top->second;
  p.decode_tok_s = p.step_s > 0 ? r.ranks * batch / p.step_s : 0.0;
  const double tokens = static_cast<double>(batch) * r.prompt_len;
  const double attn_flops = 2.0 * tokens * r.prompt_len * c.num_heads * c.head_dim * c.num_layers;  // causal half of 4x
  const double compute = (2.0 * s.matmul_params * tokens + attn_flops) / flops;
  p.prefill_s = std::max({p.t_h2d, p.t_gather, p.t_disk, compute});
  return p;
}

}  // namespace

RunPlan evaluate_plan(const PlanRequest& req, int batch, bool kv_on_host, quant::KvStorage storage,
                      offload::Tier tier) {
  return evaluate(req, model_sizes(req), batch, kv_on_host, storage, tier);
}

RunPlan plan_run(const PlanRequest& r) {
  ZINC_CHECK(r.gpu_budget > 0 && r.host_memory > 0, "--plan auto needs the GPU budget and the host memory per rank");
  ZINC_CHECK(r.batch >= 0 && r.max_batch >= 1 && r.ranks >= 1, "--plan auto: bad request");
  const ModelSizes s = model_sizes(r);
  struct Kv {
    bool host;
    quant::KvStorage storage;
  };
  std::vector<Kv> kvs;
  if (r.kv != PlanChoice::Host) kvs.push_back({false, device_storage(r.compute)});
  if (r.kv != PlanChoice::Device) {
    if (r.kv_storages.empty()) kvs.push_back({true, device_storage(r.compute)});
    for (quant::KvStorage st : r.kv_storages) kvs.push_back({true, st});
  }
  std::vector<offload::Tier> tiers = {r.tier};
  if (!r.tier_given && r.have_store && r.tier == offload::Tier::Cpu) tiers.push_back(offload::Tier::Nvme);
  const int lo = r.batch > 0 ? r.batch : 1, hi = r.batch > 0 ? r.batch : r.max_batch;
  std::vector<RunPlan> fits;
  std::string first_error;
  for (offload::Tier tier : tiers)
    for (const Kv& kv : kvs)
      for (int b = lo; b <= hi; ++b) {
        RunPlan p;
        try {
          p = evaluate(r, s, b, kv.host, kv.storage, tier);
        } catch (const Error& e) {
          if (b == lo && first_error.empty()) first_error = e.what();
          break;  // a larger batch needs more memory: it does not fit either
        }
        fits.push_back(std::move(p));
      }
  ZINC_CHECK(!fits.empty(), "--plan auto: no plan fits: " << first_error);
  // The fastest, or within 0.5% of it the first candidate: the cpu tier, the KV cache on
  // the device, the smaller batch (less latency, less memory).
  double top = 0;
  for (const RunPlan& p : fits) top = std::max(top, p.decode_tok_s);
  for (RunPlan& p : fits)
    if (p.decode_tok_s * 1.005 >= top) return std::move(p);
  return fits.front();
}

std::string RunPlan::describe() const {
  std::ostringstream o;
  o << "plan: batch " << batch << " per rank; KV cache "
    << (kv_on_host ? std::string("in host memory (") + quant::kv_storage_name(kv_storage) + ")" : std::string("on the device"))
    << ", " << offload::format_bytes(kv_bytes) << "; weights streamed from "
    << (tier == offload::Tier::Nvme ? "NVMe" : "pinned host memory") << "; " << placement.describe()
    << "; host memory " << offload::format_bytes(host_bytes) << " per rank\n";
  o.precision(4);
  o << "plan predicts: prefill " << prefill_s << " s, decode step " << step_s * 1e3 << " ms (" << bound
    << " bound; weights H2D " << t_h2d * 1e3 << " ms, all-gather " << t_gather * 1e3 << " ms, nvme " << t_disk * 1e3
    << " ms, kv read " << t_kv * 1e3 << " ms, gpu " << t_gpu * 1e3 << " ms, slot ring " << t_ring * 1e3
    << " ms), " << decode_tok_s << " tok/s";
  return o.str();
}

}  // namespace zinc::runtime
