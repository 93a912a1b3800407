#include "runtime/cli/plan_setup.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>

#include "offload/host_bandwidth.hpp"
#include "offload/memory_arena.hpp"
#include "offload/uring_file.hpp"
#include "runtime/backend/cpu/attention_probe.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/common/stats.hpp"

namespace zinc::cli {
namespace {

size_t read_cgroup_limit() {
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    std::string v;
    if (!(in >> v) || v == "max") continue;
    try {
      const unsigned long long n = std::stoull(v);
      if (n > 0 && n < (1ull << 60)) return static_cast<size_t>(n);  // v1 writes ~2^63 for "none"
    } catch (const std::exception&) {
    }
  }
  return 0;
}

size_t mem_total() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  while (in >> key) {
    if (key == "MemTotal:") return (in >> kib) ? kib * 1024 : 0;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

// The rates a backend's decode and prefill run at, beside the ones measured here. The
// H200's are calibrations from launch/results/BENCH.md: 650 TFLOP/s of prefill GEMMs
// (DeepSpeed's prefill reaches about that; zinc's GEMMs 890-930 on zeros), 0.7 TB/s of
// dequantized weights through dequantize + decode GEMMs (OPT-30B int4 b96: 85 ms of GPU
// work per pass of 60 GB), 1 TB/s of device KV through the decode attention (OPT-30B
// fp16 resident b64: 72 ms per step). The CPU backend's are rough, for tests.
void backend_rates(const std::string& backend, int threads, double host_read, runtime::PlanRates* r) {
  if (backend == "cpu") {
    r->gpu_flops = 2e10 * std::max(threads, 1);
    r->weight_pass = host_read / 3;
    r->device_kv_read = host_read;
    r->allgather = 5e9;  // MPI over shared memory
    return;
  }
  r->gpu_flops = 650e12;
  r->weight_pass = 0.7e12;
  r->device_kv_read = 1e12;
  r->allgather = 250e9;  // NCCL over NVLink, 2-4 H200s (DESIGN.md section 5)
}

std::string kv_quant_flag(quant::KvStorage s, quant::DType compute) {
  const bool native = (s == quant::KvStorage::F32 && compute == quant::DType::F32) ||
                      (s == quant::KvStorage::F16 && compute == quant::DType::F16);
  return native ? "none" : quant::kv_storage_name(s);
}

}  // namespace

size_t host_memory_limit() {
  const size_t cg = read_cgroup_limit();
  return cg > 0 ? cg : mem_total();
}

double raw_read_gbs(const std::string& path, const GenerateOptions& o) {
  offload::UringOptions uo;
  uo.queue_depth = o.nvme_queue_depth;
  uo.block_bytes = offload::parse_bytes(o.nvme_block_size);
  offload::UringFile raw(path, uo);
  const size_t chunk = offload::raw_read_chunk(uo);
  const uint64_t cap = (uint64_t(2) << 30) / chunk * chunk;  // whole chunks: exactly what is read
  const uint64_t bytes = std::min<uint64_t>(raw.size(), std::max<uint64_t>(cap, chunk));
  ZINC_CHECK(bytes > 0, path << ": an empty store");
  offload::AlignedBuffer buf(chunk);
  std::vector<double> t;
  for (int i = 0; i < 3; ++i) t.push_back(offload::time_raw_read(raw, bytes, buf));
  return static_cast<double>(bytes) / median(t) / 1e9;
}

std::optional<PlannedRun> plan_and_apply(GenerateOptions& o, RunSetup& setup, collectives::MpiCommunicator& mpi,
                                         int batch, int max_batch, int prompt_len, int gen_len, bool quiet) {
  // The default plan only where there is a device to plan for and the user placed nothing.
  if (o.plan != "auto" || (!o.plan_given && (setup.backend_name == "cpu" || o.placement_given))) return std::nullopt;
  ZINC_CHECK(o.offload != "none", "--plan auto decides which blobs stay on the device: drop --offload none");
  ZINC_CHECK(o.resident_blobs < 0, "--plan auto decides which blobs stay on the device: drop --resident-blobs");
  const bool talk = mpi.rank() == 0 && !quiet;
  runtime::Backend& be = *setup.backend;
  PlannedRun out;
  runtime::PlanRequest& r = out.request;
  runtime::LoadOptions lo = make_load_options(o, 0, 0, 0);
  const runtime::ModelInfo info = runtime::model_info(lo);
  r.config = info.config;
  r.quant = info.quant;
  r.group_size = info.group_size;
  r.have_store = info.store;
  r.compute = be.compute_dtype();
  r.ranks = mpi.size();
  r.prompt_len = prompt_len;
  r.gen_len = gen_len;
  r.batch = batch;
  r.max_batch = max_batch;
  r.micro_batch = o.micro_batch;
  r.prefetch_depth = o.prefetch_depth;
  r.prefetch_depth_given = o.prefetch_depth_given;
  r.lanes = host_kv_lanes(o, setup.backend_name);
  r.tier = offload::parse_offload(o.offload);
  r.tier_given = o.offload_given;
  r.kv = o.kv_offload ? runtime::PlanChoice::Host : runtime::PlanChoice::Auto;
  if (o.kv_quant == "auto")
    r.kv_storages = {runtime::parse_kv_quant("none", r.compute), quant::KvStorage::Int8, quant::KvStorage::Int4};
  else
    r.kv_storages = {runtime::parse_kv_quant(o.kv_quant, r.compute)};

  // Rates: the link measured at start, the host's read bandwidth and the disk's here;
  // every rank plans with the slowest rank's figures, so every rank makes the same plan.
  if (talk) std::cerr << "plan: measuring the host's read bandwidth (1 GiB, " << setup.threads << " threads)" << std::endl;
  out.host_read_gbs = offload::measure_read_bandwidth(size_t(1) << 30, setup.threads, 3) / 1e9;
  if (info.store && (r.tier == offload::Tier::Nvme || !r.tier_given)) {
    if (talk) std::cerr << "plan: measuring the store's raw O_DIRECT read bandwidth" << std::endl;
    out.disk_gbs = raw_read_gbs(o.model, o);
  }
  // The host KV work at this model's shape, per storage the plan may choose (not on the
  // CPU backend, whose "device" cache is host memory already).
  double attention_gbs[4] = {0, 0, 0, 0};
  if (r.kv != runtime::PlanChoice::Device && setup.backend_name != "cpu") {
    runtime::HostAttentionShape hs;
    hs.heads = r.config.num_heads;
    hs.kv_heads = r.config.num_kv_heads;
    hs.head_dim = r.config.head_dim;
    hs.keys = std::max(1, prompt_len + gen_len / 2);
    hs.io = r.compute;
    if (talk) std::cerr << "plan: measuring the host KV attention at this model's shape" << std::endl;
    for (quant::KvStorage st : r.kv_storages)
      attention_gbs[static_cast<int>(st)] =
          runtime::measure_host_attention_rate(st, hs, size_t(512) << 20, 3) / 1e9;
  }
  const size_t local = static_cast<size_t>(std::max(1, mpi.local_size()));
  // --cpu-memory-budget states this rank's host memory for the plan (shards + host KV).
  const size_t host = !o.cpu_memory_budget.empty()
                          ? offload::parse_bytes(o.cpu_memory_budget)
                          : static_cast<size_t>(0.85 * static_cast<double>(host_memory_limit())) / local;
  const size_t given = o.memory_budget.empty() ? 0 : offload::parse_bytes(o.memory_budget);
  const size_t device = given > 0 ? given
                        : be.driver_free_bytes() > 0
                            ? static_cast<size_t>(0.92 * static_cast<double>(be.driver_free_bytes()))
                            : host / 2;  // the CPU backend's "device" memory
  const std::vector<double> agreed = mpi.allreduce_max(
      {-setup.link.h2d_gbs, -out.host_read_gbs, -out.disk_gbs, -static_cast<double>(host), -static_cast<double>(device),
       -attention_gbs[0], -attention_gbs[1], -attention_gbs[2], -attention_gbs[3]});
  const double h2d = -agreed[0] > 0 ? -agreed[0] : -agreed[1];  // the CPU backend: a memcpy
  out.host_read_gbs = -agreed[1];
  out.disk_gbs = -agreed[2];
  r.host_memory = static_cast<size_t>(-agreed[3]);
  const size_t budget = static_cast<size_t>(-agreed[4]);
  r.gpu_budget = budget > be.arena().used() ? budget - be.arena().used() : 0;
  r.rates.h2d = h2d * 1e9;
  r.rates.host_read = out.host_read_gbs * 1e9;
  r.rates.disk = out.disk_gbs * 1e9;
  for (int i = 0; i < 4; ++i) r.rates.host_attention[i] = -agreed[static_cast<size_t>(5 + i)] * 1e9;
  backend_rates(setup.backend_name, setup.threads, r.rates.host_read, &r.rates);

  out.plan = runtime::plan_run(r);
  const runtime::RunPlan& p = out.plan;
  const std::string attention = runtime::host_attention_rates_text(r.rates.host_attention);
  if (talk)
    std::cerr << "plan: rates: H2D " << h2d << " GB/s, host read " << out.host_read_gbs << " GB/s"
              << (out.disk_gbs > 0 ? ", disk " + std::to_string(out.disk_gbs) + " GB/s" : std::string())
              << (attention.empty() ? attention : ", host KV attention " + attention + " GB/s")
              << "; budgets per rank: device " << offload::format_bytes(budget) << ", host "
              << offload::format_bytes(r.host_memory) << " (of " << offload::format_bytes(host_memory_limit())
              << " stated)\n"
              << p.describe() << std::endl;

  // The plan as flags: what the loader and the generator read.
  o.offload = offload::tier_name(p.tier);
  o.kv_offload = p.kv_on_host;
  o.prefetch_depth = p.prefetch_depth;
  o.kv_quant = p.kv_on_host ? kv_quant_flag(p.kv_storage, r.compute) : "none";
  if (p.tier == offload::Tier::Nvme) o.cpu_memory_budget = std::to_string(p.host_budget);
  o.memory_budget = std::to_string(budget);
  be.arena().set_budget(budget);
  setup.kv_storage = runtime::parse_kv_quant(o.kv_quant, r.compute);
  return out;
}

}  // namespace zinc::cli
