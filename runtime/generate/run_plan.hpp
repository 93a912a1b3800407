// The run planner (`--plan auto`): from the model's shapes, the memory a rank may use and
// the bandwidths measured at start, choose what the placement flags would otherwise say —
// the batch per rank (when not given), where the KV cache lives and how it is stored, the
// weight tier (pinned host memory, or the zinc store on NVMe with what fits kept in host
// memory) and, through offload/placement.hpp, which blobs stay resident on the GPU — to
// maximise decode throughput, and predict the prefill and decode step times
// (docs/DESIGN.md, "The run planner").
//
// A pure function of its request: tests inject sizes and bandwidths. The time model is the
// roofline of DESIGN.md section 5 per rank:
//   step    = max(weights H2D, all-gather, NVMe reads, KV read, GPU work)
//             (the lanes overlap the host KV attention with the rest: decoder_lanes.cpp)
//   prefill = max(one weight pass, the GEMMs and attention at the GPU's effective rate)
// Memory: the device plan (slots + resident + device KV + activations) within the GPU
// budget, and this rank's pinned shards + host KV within its host memory. No candidate
// that fits -> zinc::Error naming what is short and by how much.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "offload/placement.hpp"
#include "quant/dtype.hpp"
#include "quant/kv_quant.hpp"
#include "quant/quantize.hpp"
#include "runtime/model/config.hpp"

namespace zinc::runtime {

// Rates the plan is made for (per rank; bytes/s and FLOP/s).
struct PlanRates {
  double h2d = 0;          // pinned host -> device (measured at start)
  double allgather = 0;    // NCCL all-gather bus bandwidth (ranks > 1)
  double disk = 0;         // O_DIRECT reads of the store (0: no store)
  double host_read = 0;    // host memory read by the KV attention's threads
  double gpu_flops = 0;    // dense fp16 GEMM rate reached at these shapes (prefill)
  // Calibrations of the GPU's decode work (their H200 values: plan_rates_for, from the
  // measurements in launch/results/BENCH.md): bytes of dequantized weights per second
  // through a forward's dequantize + GEMMs, and bytes of device KV per second through the
  // decode attention.
  double weight_pass = 0, device_kv_read = 0;
  // The host KV attention's rate as a fraction of host_read, per storage (BENCH.md:
  // f16 ~1.0, int8 / int4 ~0.65 on the H200 host).
  double attention_fraction_f16 = 0.95, attention_fraction_quantized = 0.65;
};

enum class PlanChoice { Auto, Device, Host };  // where the KV cache may go

struct PlanRequest {
  ModelConfig config;
  quant::QuantFormat quant = quant::QuantFormat::None;
  int group_size = 64;
  quant::DType compute = quant::DType::F16;
  int ranks = 1;
  int prompt_len = 512, gen_len = 32;
  int batch = 0;               // sequences per rank; 0 = the planner picks (1 .. max_batch)
  int max_batch = 1024;
  int micro_batch = 0;         // --micro-batch (0 = auto)
  int prefetch_depth = 2;
  bool prefetch_depth_given = false;  // else host-KV candidates get kHostKvLaneSlots slots
  bool lanes = true;           // a host-KV decode runs its micro-batches as lanes (--kv-overlap)
  size_t gpu_budget = 0;       // device bytes this rank may use (required)
  size_t host_memory = 0;      // host bytes this rank may use for shards + host KV (required)
  bool have_store = false;     // weights are a zinc store: the NVMe tier is possible
  offload::Tier tier = offload::Tier::Cpu;  // Cpu: the planner may still choose Nvme if the
  bool tier_given = false;                  // store exists and tier_given is false
  PlanChoice kv = PlanChoice::Auto;
  std::vector<quant::KvStorage> kv_storages;  // host storages to consider (empty: compute dtype)
  PlanRates rates;
};

struct RunPlan {
  int batch = 0;                  // per rank
  bool kv_on_host = false;
  quant::KvStorage kv_storage = quant::KvStorage::F16;  // host storage (kv_on_host)
  offload::Tier tier = offload::Tier::Cpu;
  size_t host_budget = 0;         // nvme: pinned bytes for shards (--cpu-memory-budget)
  offload::Placement placement;
  size_t kv_bytes = 0;            // the KV cache (device or host)
  size_t host_bytes = 0;          // this rank's pinned shards + host KV
  int prefetch_depth = 2;         // the gather slots planned for (--prefetch-depth)
  // Predictions (seconds) and the term that binds the decode step.
  double prefill_s = 0, step_s = 0, decode_tok_s = 0;  // tok/s over all ranks
  double t_h2d = 0, t_gather = 0, t_disk = 0, t_kv = 0, t_gpu = 0;
  double t_ring = 0;              // the slot ring's pass, simulated (copies waiting for slots)
  std::string bound;              // "weight stream", "all-gather", "nvme", "kv read", "gpu", "slot ring"
  std::string describe() const;   // the lines printed before the run
};

RunPlan plan_run(const PlanRequest& req);

// One candidate's figures (plan_run's inner step): throws zinc::Error when it does not fit.
RunPlan evaluate_plan(const PlanRequest& req, int batch, bool kv_on_host, quant::KvStorage storage,
                      offload::Tier tier);

}  // namespace zinc::runtime
