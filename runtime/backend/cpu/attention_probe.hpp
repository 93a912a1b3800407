// The host KV attention's rate at one model's shape, measured at start for the run planner
// (runtime/generate/run_plan.hpp, PlanRates::host_attention).
//
// Why not a fraction of the host's read bandwidth: the attention streams the cache only
// while it has compute to spare. With grouped-query heads each K / V row serves
// H / KVH queries (LLaMA-2-70B: 8), int4 rows are unpacked, and at that shape the H200
// host's 16 cores reached 24 GB/s, a fifth of their read bandwidth, where OPT-30B (one
// query per row) reached 55 (run I, launch/results/bench-h200-2026-12-02-runI). A
// fixed fraction predicted LLaMA-2-70B's host-KV step at 514 ms; it took 1342.
//
// measure_host_attention_rate runs what a decode step runs on the host for one layer —
// kv_store of the new position from the compute dtype, then cpu_attention over `keys`
// positions with q and out in that dtype — on a cache of about `cache_bytes` (K + V; make
// it several times the last-level cache), batch chosen to fill it, every page written
// first by the threads that then read it. Returns K + V bytes read per second: the median
// of `repeats` steps after one untimed warm-up. The cache holds fixed finite codes, not a
// model's values: the loops' speed does not depend on the values.
#pragma once

#include <cstddef>
#include <string>

#include "quant/dtype.hpp"
#include "quant/kv_quant.hpp"

namespace zinc::runtime {

struct HostAttentionShape {
  int heads = 0, kv_heads = 0, head_dim = 0;
  int keys = 0;       // positions each query sees (the decode's mean context)
  int group = 64;     // int8 / int4 group along head_dim (clamped to head_dim)
  quant::DType io = quant::DType::F16;  // q, out and the stored rows: the compute dtype
};

// Throws zinc::Error for a bad shape or when the cache cannot be allocated.
double measure_host_attention_rate(quant::KvStorage storage, const HostAttentionShape& shape, size_t cache_bytes,
                                   int repeats);

// "f16 60.51, int8 38.26, int4 26.37" for the rates (bytes/s, indexed by quant::KvStorage)
// that were measured (> 0), in GB/s; "" when none was.
std::string host_attention_rates_text(const double bytes_per_s[4]);

}  // namespace zinc::runtime
