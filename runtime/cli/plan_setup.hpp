// `--plan auto` for zinc generate and zinc bench: the run planner's request from the
// command line, the rates measured at start and the machine's memory; its plan printed
// on rank 0 and written back into the options (the placement flags it chose), before
// anything long (the load) starts. runtime/generate/run_plan.hpp has the planner itself.
#pragma once

#include <optional>
#include <string>

#include "collectives/mpi_communicator.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/cli/run_setup.hpp"
#include "runtime/generate/run_plan.hpp"

namespace zinc::cli {

struct PlannedRun {
  runtime::PlanRequest request;  // what was planned for (evaluate_plan re-times other batches)
  runtime::RunPlan plan;
  double host_read_gbs = 0, disk_gbs = 0;  // measured here (0 when not needed)
};

// With --plan auto: plans for `batch` sequences per rank (0 = the planner picks, up to
// max_batch) of prompt_len + gen_len tokens, prints the plan on rank 0 (unless quiet) and
// rewrites o's placement options (--offload, --kv-offload, --kv-quant, the budgets) and
// (--cpu-memory-budget, when given, is the host memory the plan may use per rank; else 85%
// of host_memory_limit() shared by the node's ranks)
// setup's KV storage and arena budget to it. Every rank makes the same plan (the rates
// are agreed over MPI). Planned: with --plan auto given, or by default on a GPU backend when
// no placement flag is given (GenerateOptions::placement_given); else nothing (nullopt).
std::optional<PlannedRun> plan_and_apply(GenerateOptions& o, RunSetup& setup, collectives::MpiCommunicator& mpi,
                                         int batch, int max_batch, int prompt_len, int gen_len, bool quiet);

// The host memory this machine states: the cgroup's limit where one is set (a container's,
// or a multi-GPU host's whose memory grows as it is touched), else MemTotal.
size_t host_memory_limit();

// A zinc store's raw O_DIRECT read bandwidth (GB/s): its first min(size, 2 GiB) in aligned
// chunks of queue depth x block (at least 64 MiB), median of 3, the reads iobench times.
double raw_read_gbs(const std::string& path, const GenerateOptions& o);

}  // namespace zinc::cli
