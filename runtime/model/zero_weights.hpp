// ZeroWeights: ZeRO-3 weights streamed through a ring of gather slots.
//
// Every rank owns only its shard [r*S, (r+1)*S) of every blob (packed: quantized), on one
// tier:
//   cpu   read once at load into pinned host memory (offload/pinned_pool.hpp);
//   nvme  read again for every use from the zinc store, in place, with io_uring O_DIRECT
//         into a ring of pinned staging buffers (runtime/model/shard_read_ahead.hpp),
//         checked against the store's page CRCs — except the shards that fit
//         --cpu-memory-budget, which are read once and kept pinned like the cpu tier.
// The placement planner (offload/placement.hpp) may keep some blobs resident on the device
// (gathered once at load, kept packed) within the device budget.
//
// The pipeline: tier -> (staging) -> device slot -> all-gather -> unpack -> compute.
// A loader thread walks the forward pass's blob order (the schedule, repeated) and fills
// the K gather slots (K = --prefetch-depth, at least 2 when the tied head holds two blobs):
// for position k it waits until slot k % K is free, copies this rank's shard into it,
// all-gathers the blob on its own communicator (Communicator::duplicate) and unpacks every
// parameter into the slot's compute-dtype tensors; then the slot is "loaded". acquire(b)
// waits for its position's slot to be loaded; release(b) frees it. So while the model
// computes with blob k, blobs k+1 .. k+K-1 are being read, copied, gathered and unpacked.
//
// Contract:
//  - Every rank calls acquire/release in the same order, which must be the schedule given
//    at construction (each forward pass walks it once); a different blob is an error.
//  - A slot is reused only after the compute that read it finished: release() records a
//    "free" event on the compute stream that the loader's stream waits on before it copies
//    into the slot again, and acquire() makes the compute stream wait on the slot's
//    "loaded" event. (No-ops on the CPU backend, whose ops finish before returning; the
//    host-side flags order the two threads.)
//  - The loader only starts a gather that every rank has granted: acquire(k) grants
//    positions up to k + K - 1. All ranks make the same acquires, so at the end every
//    rank's loader has done the same gathers and none waits for a peer that stopped: the
//    destructor lets the loader finish the granted positions, then joins it.
//  - An error on the loader (a bad CRC, a read error) is re-thrown by the acquire that
//    wanted the blob; the loader stops there.
// Stats: each stage's busy time, and compute's waits split by the stage the awaited blob
// was in (intervals intersected), in stats(); the CLI prints them per run.
// For the CUDA backend: the loader's copy already names its stream; unpack_param takes
// none yet, so the CUDA backend must run a thread's ops on that thread's stream (or the op
// gains a stream argument) — to be settled with that backend.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "collectives/communicator.hpp"
#include "offload/pinned_pool.hpp"
#include "offload/placement.hpp"
#include "offload/uring_file.hpp"
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

class ShardReadAhead;

// Produces bytes [offset, offset + bytes) of blob `blob` (zero past its end): from an HF
// checkpoint (quantize-at-load), a zinc store, or the dummy generator.
using SliceReader = std::function<void(size_t blob, size_t offset, size_t bytes, uint8_t* dst)>;

enum class Tier { Cpu, Nvme };

struct ZeroOptions {
  Tier tier = Tier::Cpu;
  int prefetch_depth = 2;           // gather slots K (>= 1)
  std::vector<int> schedule;        // blob order of one forward pass; empty: 0 .. n-1
  offload::PlacementRequest::Policy residency = offload::PlacementRequest::Policy::None;
  int max_resident = -1;            // cap on resident blobs (Policy::Fill); -1 = budget decides
  size_t kv_bytes = 0;              // device KV cache, for the planner's minimum
  size_t activation_bytes = 0;      // device activations of the largest step, likewise
  // Tier::Nvme: more readers for the read-ahead (each its own io_uring file), so one
  // shard's reads are queued while the previous drains; null = the one reader only.
  std::function<SliceReader()> more_readers;
  int nvme_readers = 2;
  // Pinned host bytes for shards (--cpu-memory-budget): cpu tier, a cap (refused when the
  // shards exceed it); nvme tier, the shards that fit stay in host memory. 0: unlimited
  // (cpu), none kept (nvme).
  size_t host_budget = 0;
};

struct ZeroStats {
  uint64_t gathers = 0;             // streamed blob loads (resident blobs: at load only)
  uint64_t gathered_bytes = 0;      // sum of N * S over gathers: bytes each rank ends up with
  uint64_t blob_bytes = 0;          // sum of the blobs' real (unpadded) sizes over gathers
  uint64_t acquires = 0;
  uint64_t source_bytes = 0;        // shard bytes read from the NVMe tier
  // Busy time of each stage (loader and disk threads), seconds.
  double disk_s = 0, copy_s = 0, gather_s = 0, unpack_s = 0;
  // Time the compute thread waited in acquire(), split by the stage the awaited blob was
  // in meanwhile ("other": the loader was busy with earlier blobs or waited for a slot).
  double wait_disk_s = 0, wait_copy_s = 0, wait_gather_s = 0, wait_unpack_s = 0, wait_other_s = 0;
  double compute_s = 0;             // time compute ran with weights: from an acquire's return to
                                    // the next acquire, or to the release that leaves none held
  double wait_s() const { return wait_disk_s + wait_copy_s + wait_gather_s + wait_unpack_s + wait_other_s; }
};

class ZeroWeights final : public WeightProvider {
 public:
  // Tier::Cpu calls `reader` once per streamed blob here (resident blobs too, once);
  // Tier::Nvme keeps it and calls it from the read-ahead thread for every use.
  ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader,
              Backend& backend, collectives::Communicator& comm, ZeroOptions opts = {});
  ~ZeroWeights() override;
  const ParamTable& acquire(int blob) override;
  void release(int blob) override;
  size_t resident_bytes() const override;

  // Stats are complete once the caller is done (no acquire in progress).
  ZeroStats stats() const;
  const std::vector<partition::BlobManifest>& manifests() const { return manifests_; }
  size_t shard_bytes(size_t blob) const { return shard_bytes_[blob]; }
  const offload::Placement& placement() const { return placement_; }
  const offload::PinnedPool& pinned() const { return *pool_; }
  int slots() const { return static_cast<int>(slots_.size()); }

 private:
  enum class SlotState { Free, Loading, Loaded, Held };
  struct Slot {
    SlotState state = SlotState::Free;
    uint64_t k = UINT64_MAX;  // schedule position it holds
    DeviceBuffer gathered;    // N * S bytes of the largest blob
    DeviceBuffer params;      // compute-dtype tensors of the largest blob
    ParamTable table;
    EventId loaded_event = 0, free_event = 0;
    double t_disk[2] = {0, 0}, t_copy[2] = {0, 0}, t_gather[2] = {0, 0}, t_unpack[2] = {0, 0};
    std::exception_ptr error;
  };
  void load_resident(const SliceReader& reader);
  void loader_main();
  void load_position(uint64_t k, Slot& s);
  const uint8_t* stage_shard(uint64_t k, size_t blob, Slot& s);  // tier -> host shard
  uint64_t read_of(uint64_t k) const;  // position k's read in the read-ahead's sequence
  void unpack_into(Slot& s, size_t blob, const uint8_t* packed);

  std::vector<partition::BlobManifest> manifests_;
  Backend& backend_;
  collectives::Communicator& comm_;
  std::unique_ptr<collectives::Communicator> loader_comm_;  // the loader thread's
  ZeroOptions opts_;
  std::vector<int> schedule_;
  offload::Placement placement_;
  std::vector<size_t> shard_bytes_;            // S per blob
  std::unique_ptr<offload::PinnedPool> pool_;  // host shards (cpu) or staging ring (nvme)
  std::vector<uint8_t*> shards_;               // per blob: this rank's shard (home Host)
  std::vector<DeviceBuffer> resident_;         // per blob: gathered packed blob, if resident
  std::unique_ptr<ShardReadAhead> read_ahead_; // nvme tier
  std::vector<uint64_t> read_index_;           // per schedule position: its read in the cycle
  uint64_t reads_per_pass_ = 0;
  StreamId loader_stream_ = 0;
  std::vector<Slot> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_acquire_ = 0;  // schedule position of the next acquire
  uint64_t horizon_ = 0;       // the loader may start positions <= horizon_
  bool finishing_ = false;
  double busy_since_ = 0;      // when the compute thread last got a blob (0: none held)
  ZeroStats stats_;            // guarded by mu_
  std::thread loader_;
};

// Bytes one param takes in a slot's unpacked area (compute dtype, 64-byte aligned).
inline size_t unpacked_param_bytes(const partition::BlobParam& p, quant::DType t) {
  return (static_cast<size_t>(p.numel()) * quant::dtype_size(t) + 63) / 64 * 64;
}

// The blob order of one forward pass (weight_provider.hpp's fixed order): embed, layers,
// head, and the embedding again when the head is tied to it.
std::vector<int> forward_schedule(const ModelConfig& config);

}  // namespace zinc::runtime
