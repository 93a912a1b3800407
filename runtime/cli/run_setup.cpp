#include "runtime/cli/run_setup.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "collectives/device_communicator.hpp"
#include "offload/memory_arena.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/common/output_file.hpp"
#include "runtime/common/paths.hpp"
#include "runtime/common/trace.hpp"
#include "runtime/model/config.hpp"
#include "runtime/model/workspace.hpp"

namespace zinc::cli {
namespace {

// The compute dtype --dtype asks for, given the checkpoint's torch_dtype where it is an HF
// directory (stores and dummy shapes use the default of the backend).
quant::DType compute_dtype_for(const GenerateOptions& o, const std::string& backend) {
  std::string torch_dtype;
  if (is_directory(o.model)) torch_dtype = runtime::load_config(o.model).torch_dtype;
  return runtime::choose_compute_dtype(o.dtype, backend, torch_dtype);
}

size_t budget_of(const GenerateOptions& o) {
  return o.memory_budget.empty() ? 0 : offload::parse_bytes(o.memory_budget);
}

}  // namespace

WeightStreamRate weight_stream_rate(const runtime::LoadedModel& m, double step_s, const offload::CopyBandwidth& link) {
  WeightStreamRate r;
  if (!m.zero || step_s <= 0) return r;
  r.bytes_per_step = m.zero->placement().streamed_bytes_per_pass;
  r.step_s = step_s;
  r.gbs = static_cast<double>(r.bytes_per_step) / step_s / 1e9;
  r.roofline_fraction = link.h2d_gbs > 0 ? r.gbs / link.h2d_gbs : 0.0;
  return r;
}

namespace {

// Threads per rank when --threads is 0: this rank's share of the node's cores, or of the
// cores it is bound to. mpirun binds each rank to ONE core by default when it starts one
// or two ranks, which would run the host KV attention and the shard packing on one core
// (16x slower on the GPU machine): say so, with the fix, instead of running slowly.
int default_threads(const collectives::MpiCommunicator& mpi) {
  const int node = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int share = std::max(1, node / std::max(1, mpi.local_size()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return share;
  const int bound = CPU_COUNT(&set);
  if (bound >= node) return share;  // not bound
  if (bound < share && mpi.rank() == 0)
    std::cerr << "zinc: warning: rank 0 is bound to " << bound << " of the node's " << node
              << " cores (mpirun binds each rank to one core by default for 1-2 ranks); its host work "
                 "(--kv-offload attention, the CPU backend) runs on " << bound
              << (bound == 1 ? " core" : " cores") << ". Start mpirun with --bind-to none, or --map-by slot:PE="
              << share << ", or pass --threads." << std::endl;
  return std::max(1, std::min(bound, share));
}

// --threads above the node's cores: each is an OpenMP thread with its own stack and
// buffers (100000 of them crashed inside libgomp), and none makes the host work faster.
// Clamped to the cores, which rank 0 says.
int bounded_threads(int requested, const collectives::MpiCommunicator& mpi) {
  const int node = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (requested <= node) return requested;
  if (mpi.rank() == 0)
    std::cerr << "zinc: warning: --threads " << requested << " is more than the " << node
              << " cores of this node: using " << node << std::endl;
  return node;
}

}  // namespace

RunSetup make_run_setup(const GenerateOptions& o, collectives::MpiCommunicator& mpi, size_t probe_bytes) {
  RunSetup r;
  collectives::WatchdogOptions wo;
  wo.timeout_s = o.collective_timeout_s;
  r.watchdog = std::make_unique<collectives::Watchdog>(wo);  // collective: every rank sets up together
  r.backend_name = runtime::resolve_backend(o.backend);
  r.threads = o.threads > 0 ? bounded_threads(o.threads, mpi) : default_threads(mpi);
  // The host work of every backend (the --kv-offload attention and K/V stores, shard
  // packing) runs in OpenMP regions of this thread and of threads that copy its count.
  omp_set_num_threads(r.threads);
  runtime::BackendOptions bo;
  bo.name = r.backend_name;
  bo.budget_bytes = budget_of(o);
  bo.threads = r.threads;
  bo.dtype = compute_dtype_for(o, r.backend_name);
  bo.local_rank = mpi.local_rank();
  r.backend = runtime::make_backend(bo);
  // Device buffers are gathered by NCCL on the GPU backends; the host work stays on MPI.
  if (r.backend_name != "cpu") r.nccl = collectives::make_nccl_communicator(mpi);
  r.comm = r.nccl ? r.nccl.get() : static_cast<collectives::Communicator*>(&mpi);
  // The link the weights stream over, measured by this binary before the load.
  if (probe_bytes > 0) {
    r.link = offload::measure_h2d_bandwidth(*r.backend, probe_bytes);
    r.backend->arena().reset_high_water_mark();  // the probe's buffer is gone: not part of the run's peak
  }
  // --kv-quant auto: the planner's choice replaces this (cli/plan_setup.cpp).
  r.kv_storage = runtime::parse_kv_quant(o.kv_quant == "auto" ? "none" : o.kv_quant, r.backend->compute_dtype());
  return r;
}

namespace {
std::string trace_path(const GenerateOptions& o, int rank) {
  return rank == 0 ? o.trace : o.trace + ".rank" + std::to_string(rank);
}
}  // namespace

void start_trace(const GenerateOptions& o, int rank) {
  if (o.trace.empty()) return;
  check_output_path(trace_path(o, rank), {}, /*replace=*/true);
  trace::start(rank);
  trace::name_thread("main");
}

void finish_trace(const GenerateOptions& o, int rank) {
  if (!o.trace.empty()) trace::write(trace_path(o, rank));
}

bool host_kv_lanes(const GenerateOptions& o, const std::string& backend_name) {
  return o.kv_overlap == "on" || (o.kv_overlap == "auto" && backend_name != "cpu");
}

void resolve_prefetch_depth(GenerateOptions& o, const RunSetup& setup, int step_batch) {
  if (!o.prefetch_depth_given && o.kv_offload && step_batch >= 2 && host_kv_lanes(o, setup.backend_name))
    o.prefetch_depth = std::max(o.prefetch_depth, runtime::kHostKvLaneSlots);
}

runtime::LoadOptions make_load_options(const GenerateOptions& o, int step_batch, int step_prompt_len,
                                       int step_t_max) {
  runtime::LoadOptions lo;
  lo.model = o.model;
  lo.quant = quant::parse_quant_format(o.quant);
  lo.quant_given = o.quant_given;
  lo.group_size = o.group_size;
  lo.group_size_given = o.group_size_given;
  lo.force_zero = o.zero;
  lo.offload = offload::parse_offload(o.offload);
  lo.pipeline.prefetch_depth = o.prefetch_depth;
  lo.pipeline.max_resident = o.resident_blobs;
  lo.pipeline.host_budget = o.cpu_memory_budget.empty() ? 0 : offload::parse_bytes(o.cpu_memory_budget);
  using Policy = offload::PlacementRequest::Policy;
  lo.pipeline.residency = (budget_of(o) != 0 || o.resident_blobs >= 0) ? Policy::Fill : Policy::None;
  lo.step_batch = step_batch;
  lo.step_prompt_len = step_prompt_len;
  lo.step_t_max = step_t_max;
  lo.micro_batch = o.micro_batch;
  lo.kv_on_device = !o.kv_offload;
  lo.nvme.queue_depth = o.nvme_queue_depth;
  lo.nvme.block_bytes = offload::parse_bytes(o.nvme_block_size);
  return lo;
}

runtime::GenerationOptions make_generation_options(const GenerateOptions& o, const RunSetup& setup) {
  runtime::GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.batch_size = o.batch_size;
  g.micro_batch = o.micro_batch;
  g.kv_overlap = runtime::parse_kv_overlap(o.kv_overlap);
  g.sampling.temperature = o.temperature;
  g.sampling.top_k = o.top_k;
  g.sampling.top_p = o.top_p;
  g.sampling.seed = o.seed;
  g.kv.on_host = o.kv_offload;
  g.kv.storage = setup.kv_storage;
  g.lockstep = setup.comm;  // every rank runs the same forwards (ZeRO gathers are collective)
  return g;
}

}  // namespace zinc::cli
