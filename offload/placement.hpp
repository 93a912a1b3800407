// The placement planner: where each weight blob lives — resident on the device, in
// pinned host memory, or on NVMe — and how many gather slots stream the non-resident
// ones, within the device budget (--gpu-memory-budget) and, for the NVMe tier, the host
// budget (--cpu-memory-budget: shards that fit stay pinned in host memory, read once).
//
// Every blob costs its packed bytes per forward pass when streamed (the tied embedding
// twice: the head reads it again) and the same bytes, once, when resident, so the planner
// keeps the blobs with the most uses per byte first — the tied embedding, then the
// smallest blobs (DeepSpeed's persistence idea: small tensors stay put) — and then as many
// layers as fit, spaced evenly in forward order (a run of resident layers would leave the
// copy stream idle while the compute races through them: LLaMA-2-70B NF4 at 48 GiB,
// b64, streamed at 67.8% of the link with a contiguous run; launch/results/BENCH.md). Resident blobs are kept packed (quantized, as gathered): four times more
// of them fit than dequantized fp16 copies, and dequantizing on the device is cheap next
// to moving the bytes. Each use unpacks a resident blob into a slot like any other.
//
// Memory on the device = slots * (largest packed blob + largest unpacked blob)
//                      + resident packed blobs + the KV cache (when on the device)
//                      + the activations of the largest step.
// A budget below the minimum (no blob resident) is refused here, before anything is
// loaded, with the minimum and its parts in the message.
//
// Host side (per rank, this rank's shards): with the cpu tier every streamed shard is in
// pinned host memory (a host budget too small for them is refused: use nvme); with the
// nvme tier the shards that fit the host budget (after the staging ring) stay in host
// memory, most uses per byte first, and the rest are read from the store at every use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace zinc::offload {

// Where a blob (or this rank's shard of it) lives: the one name for it. --offload says
// where the streamed shards live: none = every blob on the device (Tier::Device), cpu =
// pinned host memory (Tier::Cpu), nvme = read from the zinc store at every use (Tier::Nvme,
// except the shards that fit --cpu-memory-budget, which are kept in Tier::Cpu).
enum class Tier { Device, Cpu, Nvme };
const char* tier_name(Tier t);       // "device", "cpu", "nvme"
// --offload none|cpu|nvme; throws naming the flag otherwise.
Tier parse_offload(const std::string& name);

struct PlacementRequest {
  std::vector<size_t> packed_bytes;    // per blob: gathered (packed, padded) bytes
  std::vector<size_t> shard_bytes;     // per blob: this rank's shard (host side)
  std::vector<size_t> unpacked_bytes;  // per blob: its parameters in the compute dtype
  std::vector<int> uses_per_pass;      // per blob: reads per forward pass (>= 1)
  size_t budget = 0;                   // device budget; 0 = unlimited
  size_t kv_bytes = 0;                 // KV cache on the device (0 when on the host)
  size_t activation_bytes = 0;         // working set of the largest step
  int slots = 2;                       // gather slots (prefetch depth, at least 2 if needed)
  // Which blobs may stay resident: All (--offload none; must fit), Fill (as many as the
  // budget allows, capped by max_resident), or None.
  enum class Policy { None, Fill, All } policy = Policy::None;
  int max_resident = -1;               // cap for Fill; -1 = no cap
  bool nvme = false;                   // the tier of streamed shards: nvme (else cpu)
  size_t host_budget = 0;              // pinned host bytes for shards; 0 = unlimited (cpu),
                                       // none kept (nvme)
  size_t staging_bytes = 0;            // nvme: the staging ring, taken from host_budget first
};

// The dequantized buffers a weight stream of `slots` gather slots keeps (WeightStream's
// U): the blobs held at once, two at most (the tied head holds the embedding; the decode
// lanes hold layer l + 1 while the last lane computes l).
inline int held_buffers(int slots) { return slots < 2 ? slots : 2; }

struct Placement {
  std::vector<Tier> home;          // per blob
  bool resident(size_t blob) const { return home[blob] == Tier::Device; }
  int slots = 0;
  size_t slot_bytes = 0;               // a gather slot: the largest packed blob
  int held = 0;                        // dequantized buffers: held_buffers(slots)
  size_t held_bytes = 0;               // one of them: the largest unpacked blob
  size_t minimum_bytes = 0;            // slots + dequantized buffers + KV + activations (nothing resident)
  size_t resident_bytes = 0;           // packed bytes kept on the device
  size_t planned_bytes = 0;            // minimum + resident
  size_t streamed_bytes_per_pass = 0;  // packed bytes gathered per forward pass
  size_t host_bytes = 0;               // shards kept in pinned host memory (this rank)
  size_t nvme_bytes_per_pass = 0;      // shard bytes read from NVMe per pass (this rank)
  int resident_count() const;
  int count(Tier h) const;
  std::string describe() const;        // one line for logs
};

// An exact fingerprint of a plan (slot count and every blob's tier): ranks compare it
// before their first gather, since every rank must stream the same blobs.
uint64_t placement_fingerprint(const Placement& p);

// Throws zinc::Error (naming --gpu-memory-budget, the minimum and its parts) when the
// budget cannot hold the minimum, or, for Policy::All, the whole model.
Placement plan_placement(const PlacementRequest& req);

}  // namespace zinc::offload
