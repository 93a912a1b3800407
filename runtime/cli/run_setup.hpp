// What `zinc generate` and `zinc bench` set up the same way before they generate: the
// stall watchdog, the backend (threads, compute dtype, budget), the communicator the ZeRO gathers use (NCCL on
// the GPU backends, MPI on the CPU), the measured pinned H2D link, the loader's options
// and the generation options that come from the command line.
#pragma once

#include <memory>
#include <string>

#include "collectives/mpi_communicator.hpp"
#include "collectives/watchdog.hpp"
#include "offload/device_bandwidth.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/generate/generator.hpp"
#include "runtime/model/loader.hpp"

namespace zinc::cli {

struct RunSetup {
  // First, so it is the last to go: it watches the NCCL setup and teardown too.
  std::unique_ptr<collectives::Watchdog> watchdog;  // idle with one rank or --collective-timeout 0
  std::string backend_name;  // resolved: "cpu" or "cuda"
  int threads = 0;           // per rank
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<collectives::Communicator> nccl;  // null on the CPU backend
  collectives::Communicator* comm = nullptr;        // nccl, else the MPI communicator
  offload::CopyBandwidth link;                      // h2d_gbs 0 when not measured
  quant::KvStorage kv_storage{};
};

// probe_bytes > 0 measures the pinned H2D link with copies of that size (the arena's high
// water mark is reset after it); 0 skips the probe.
RunSetup make_run_setup(const GenerateOptions& o, collectives::MpiCommunicator& mpi, size_t probe_bytes);

// --trace: start() checks the file can be written and starts recording (before the load);
// finish() writes this rank's spans (rank 0 to FILE, rank r to FILE.rank<r>).
void start_trace(const GenerateOptions& o, int rank);
void finish_trace(const GenerateOptions& o, int rank);

// Whether a host-KV decode of this run would run its micro-batches as lanes
// (--kv-overlap on, or auto on a GPU backend), and --prefetch-depth's default for it: the
// lanes hold two blobs at once, so they get kHostKvLaneSlots gather slots (model/workspace.hpp)
// unless the depth was given. Call after the plan (it may have moved the KV cache).
bool host_kv_lanes(const GenerateOptions& o, const std::string& backend_name);
void resolve_prefetch_depth(GenerateOptions& o, const RunSetup& setup, int step_batch);

// The loader's options for steps of up to step_batch sequences of step_prompt_len tokens
// and a KV capacity of step_t_max.
runtime::LoadOptions make_load_options(const GenerateOptions& o, int step_batch, int step_prompt_len,
                                       int step_t_max);

// The weight stream of a decode step: the packed bytes gathered per forward pass (the
// blobs not resident; 0 when the weights are resident) over the step time, and that
// rate's fraction of the pinned H2D link measured at start (the roofline fraction).
struct WeightStreamRate {
  size_t bytes_per_step = 0;
  double step_s = 0, gbs = 0, roofline_fraction = 0;
};
WeightStreamRate weight_stream_rate(const runtime::LoadedModel& m, double step_s, const offload::CopyBandwidth& link);

// max_new_tokens, batch_size, sampling, KV placement, lockstep over setup.comm.
runtime::GenerationOptions make_generation_options(const GenerateOptions& o, const RunSetup& setup);

}  // namespace zinc::cli
