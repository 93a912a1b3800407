// The placement planner: which weight blobs stay resident on the device and how many
// gather slots stream the rest, within the device budget (--gpu-memory-budget).
//
// Every blob costs its packed bytes per forward pass when streamed (the tied embedding
// twice: the head reads it again) and the same bytes, once, when resident, so the planner
// keeps the blobs with the most uses per byte first — the tied embedding, then the
// smallest blobs (DeepSpeed's persistence idea: small tensors stay put) — and then as many
// layers as fit. Resident blobs are kept packed (quantized, as gathered): four times more
// of them fit than dequantized fp16 copies, and dequantizing on the device is cheap next
// to moving the bytes. Each use unpacks a resident blob into a slot like any other.
//
// Memory on the device = slots * (largest packed blob + largest unpacked blob)
//                      + resident packed blobs + the KV cache (when on the device)
//                      + the activations of the largest step.
// A budget below the minimum (no blob resident) is refused here, before anything is
// loaded, with the minimum and its parts in the message.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace zinc::offload {

struct PlacementRequest {
  std::vector<size_t> packed_bytes;    // per blob: gathered (packed, padded) bytes
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
};

struct Placement {
  std::vector<bool> resident;          // per blob
  int slots = 0;
  size_t slot_bytes = 0;               // largest packed + largest unpacked blob
  size_t minimum_bytes = 0;            // slots + KV + activations (nothing resident)
  size_t resident_bytes = 0;           // packed bytes kept on the device
  size_t planned_bytes = 0;            // minimum + resident
  size_t streamed_bytes_per_pass = 0;  // packed bytes gathered per forward pass
  int resident_count() const;
  std::string describe() const;        // one line for logs
};

// Throws zinc::Error (naming --gpu-memory-budget, the minimum and its parts) when the
// budget cannot hold the minimum, or, for Policy::All, the whole model.
Placement plan_placement(const PlacementRequest& req);

}  // namespace zinc::offload
