// WeightStream: ZeRO-3 weights streamed through a ring of gather slots, on three streams.
//
// Every rank owns only its shard [r*S, (r+1)*S) of every blob (packed: quantized), on one
// tier (offload/placement.hpp's Tier):
//   cpu     read once at load into pinned host memory (offload/pinned_pool.hpp);
//   nvme    read again for every use from the zinc store, in place, with io_uring O_DIRECT
//           into a ring of pinned staging buffers (offload/shard_read_ahead.hpp), checked
//           against the store's page CRCs — except the shards that fit
//           --cpu-memory-budget, which are read once and kept pinned like the cpu tier;
//   device  the placement planner keeps some (or, --offload none, all) blobs resident on
//           the device: gathered once at load, kept packed.
//
// Two kinds of device buffers: K gather slots (K = --prefetch-depth), each the packed bytes
// of one blob, and U = min(K, 2) dequantized buffers, each one blob's parameters in the
// compute dtype. The pipeline of one use (a schedule position k), in gather slot k % K and
// dequantized buffer k % U:
//   loader thread:  [disk: nvme read into staging] -> copy stream: H2D of this rank's shard
//                   into its part of the slot -> comm stream (waits "copied"): in-place
//                   all-gather -> record "gathered"
//   compute thread, acquire(b): the compute stream waits "gathered", runs the consumer's
//                   dequantize (the slot's packed blob -> the dequantized buffer), records
//                   "consumed" (the slot may be refilled after it) and returns the buffer's
//                   index; the layer computes on the compute stream; release(b) records
//                   "freed" on the compute stream (the buffer may be reused after it).
//   loader, before refilling the slot: host-waits "consumed" (so the slot's bytes and
//                   events may be reused; this host wait is what orders consumed -> copy).
// Ordering is by events only: copy -> comm -> dequantize -> consumed -> copy, and on the
// compute stream dequantize + compute -> freed -> the next dequantize into that buffer. The
// compute stream never waits on the host; the loader thread does (it runs ahead by at most
// K - 1 positions). Since a slot is free again once its blob is dequantized, not once the
// layer is done, the copy runs K - 1 blobs ahead of the dequantize for K packed blobs of
// memory (DESIGN.md section 7: with whole-layer slots two held blobs and the resident ones
// left the copy one blob ahead or none). Resident blobs skip the copy and the gather.
//
// Contract:
//  - Every rank calls acquire/release in the same order, which must be the schedule given
//    at construction (each forward pass walks it once); a different blob is an error.
//  - At most U blobs are held at once (the tied head holds "head" and "embed", the decode
//    lanes layer l + 1 while the last lane computes l: U = 2, so K >= 2).
//  - The loader only starts a gather that every rank has granted: acquire(k) grants
//    positions up to k + K - 1, so every rank's loader makes the same gathers and none
//    waits for a peer that stopped; the destructor lets the loader finish the granted
//    positions, then joins it.
//  - An error on the loader (a bad CRC, a read error) is re-thrown by the acquire that
//    wanted the blob; the loader stops there.
//  - The ranks compare their plans (placement_fingerprint) before the first gather.
// Stats: each stage's busy time from its events (disk: host clock around the read; copy,
// gather, dequantize: Event::elapsed_s on their streams), and the time compute waited for
// each blob (on the host for the loader, plus the compute stream's stall on "gathered"),
// split by the stage the awaited position was in meanwhile (intervals intersected on one
// timeline: event times are placed on the host clock through a reference event).
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collectives/communicator.hpp"
#include "offload/device.hpp"
#include "offload/pinned_pool.hpp"
#include "offload/placement.hpp"
#include "offload/slice_reader.hpp"

namespace zinc::offload {

class ShardReadAhead;

// What the pipeline knows of one blob.
struct StreamBlob {
  std::string name;           // "embed", "layer.0003", "head"
  size_t bytes = 0;           // packed size, unpadded
  size_t alignment = 4096;    // shard alignment (partition::shard_alignment)
  size_t unpacked_bytes = 0;  // the consumer's area for its dequantized parameters
};

struct WeightStreamOptions {
  Tier tier = Tier::Cpu;            // home of the streamed shards; Device: every blob resident
  int prefetch_depth = 2;           // gather slots K (>= 1; 2 when the schedule holds two blobs);
                                    // dequantized buffers U = min(K, 2)
  std::vector<int> schedule;        // blob order of one forward pass; empty: 0 .. n-1
  PlacementRequest::Policy residency = PlacementRequest::Policy::None;  // Cpu/Nvme tiers
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

struct StreamStats {
  uint64_t gathers = 0;             // streamed blob loads (resident blobs: at load only)
  uint64_t gathered_bytes = 0;      // sum of N * S over gathers: bytes each rank ends up with
  uint64_t blob_bytes = 0;          // sum of the blobs' real (unpadded) sizes over gathers
  uint64_t acquires = 0;
  uint64_t source_bytes = 0;        // shard bytes read from the NVMe tier
  // Busy time of each stage, seconds (disk: read-ahead threads; the rest from events).
  double disk_s = 0, copy_s = 0, gather_s = 0, dequantize_s = 0;
  // Time compute waited for its weights, split by the stage the awaited blob was in
  // meanwhile ("other": the loader was busy with earlier blobs or waited for a slot).
  double wait_disk_s = 0, wait_copy_s = 0, wait_gather_s = 0, wait_other_s = 0;
  double compute_s = 0;             // compute stream time with weights held, outside waits
                                    // (overlapping holds counted once)
  double wait_s() const { return wait_disk_s + wait_copy_s + wait_gather_s + wait_other_s; }
};

class WeightStream {
 public:
  // The consumer's dequantize stage, run by acquire() on the compute thread: `packed` is
  // the gathered blob (device memory), `unpacked` the slot's area of unpacked_bytes; it
  // queues its work on `compute`.
  using DequantizeFn = std::function<void(int slot, size_t blob, const uint8_t* packed, uint8_t* unpacked,
                                          const Stream& compute)>;

  // Tier::Cpu calls `reader` once per streamed blob here (resident blobs too, once);
  // Tier::Nvme keeps it and calls it from the read-ahead threads for every use. Device
  // memory (slots, resident blobs) is allocated before any shard is read, so a budget
  // too small fails first. Collective: every rank constructs its stream together.
  WeightStream(std::vector<StreamBlob> blobs, SliceReader reader, Device& device,
               collectives::Communicator& comm, DequantizeFn dequantize, const Stream& compute,
               WeightStreamOptions opts = {});
  ~WeightStream();
  WeightStream(const WeightStream&) = delete;
  WeightStream& operator=(const WeightStream&) = delete;

  // Waits for the blob's slot, dequantizes it on the compute stream into a dequantized
  // buffer; returns that buffer's index (0 .. held() - 1: the consumer's `slot`).
  int acquire(int blob);
  void release(int blob);

  // Complete once the caller is done (no acquire in progress): waits for the device.
  StreamStats stats();
  const std::vector<StreamBlob>& blobs() const { return blobs_; }
  size_t shard_bytes(size_t blob) const { return shard_bytes_[blob]; }
  const Placement& placement() const { return placement_; }
  const PinnedPool& pinned() const { return *pool_; }
  int slots() const { return static_cast<int>(slots_.size()); }
  int held() const { return static_cast<int>(holds_.size()); }  // U: blobs that may be held at once
  size_t device_bytes() const;  // slots, dequantized buffers and resident blobs

 private:
  // Free -> Loading (loader) -> Loaded -> Acquired (acquire queued the dequantize; the
  // loader refills it once "consumed" is done) -> Loading ...
  enum class SlotState { Free, Loading, Loaded, Acquired };
  struct Slot {
    SlotState state = SlotState::Free;
    uint64_t k = UINT64_MAX;         // schedule position it holds
    DeviceBuffer memory;             // packed: N * S of the largest blob
    // Events of the position it holds: copy stream (copy_begin, copied), comm stream
    // (gather_begin, gathered), compute stream (stall_begin/stall_end around its wait on
    // "gathered", consumed after the dequantize).
    Event copy_begin, copied, gather_begin, gathered, stall_begin, stall_end, consumed;
    bool streamed = false;           // copied and gathered (not resident)
    bool loaded_unread = false;      // the loader's stage times are not yet in stats_
    bool acquired_unread = false;    // the acquire's times are not yet in the position's record
    double t_disk[2] = {0, 0};       // host clock
    double t_wait[2] = {0, 0};       // host clock: the compute thread waited for the loader
    std::exception_ptr error;
  };
  // One dequantized buffer; `freed` is recorded by release() on the compute stream.
  struct Hold {
    DeviceBuffer memory;
    bool held = false;
    int blob = -1;
    uint64_t k = UINT64_MAX;
    Event busy_begin, freed;         // compute stream: before the dequantize; at release
    bool unread = false;             // released, its times not yet in the position's record
  };
  // What stats need of one position, filled by its slot's harvest (the loader's stage
  // intervals and the compute stream's stall) and its hold's (the busy interval); the
  // waits' split over the stages is added once both are in.
  struct Record {
    uint64_t k = UINT64_MAX;
    bool slot_in = false, hold_in = false;
    bool streamed = false;
    double disk[2] = {0, 0}, copy[2] = {0, 0}, gather[2] = {0, 0}, wait[2] = {0, 0}, stall[2] = {0, 0};
  };
  void load_resident(const SliceReader& reader);
  void loader_main();
  void load_position(uint64_t k, Slot& s);
  void harvest(Slot& s);  // adds a finished position's loader and stall times (events completed)
  void harvest_hold(Hold& h);  // adds a released position's busy time (its "freed" completed)
  Record& record_of(uint64_t k);  // the position's record (a ring of records)
  void settle(Record& r);  // both halves in: the waits' split into stats_, the record freed
  void wait_unread(Slot& s);  // host-waits the events harvest() will read
  uint64_t read_of(uint64_t k) const;  // position k's read in the read-ahead's sequence
  double on_host_clock(const Event& e) const;
  uint8_t* packed_of(Slot& s) { return s.memory.bytes_ptr(); }

  std::vector<StreamBlob> blobs_;
  Device& device_;
  collectives::Communicator& comm_;
  std::unique_ptr<collectives::Communicator> loader_comm_;  // the loader thread's
  DequantizeFn dequantize_;
  const Stream& compute_;
  WeightStreamOptions opts_;
  std::vector<int> schedule_;
  Placement placement_;
  std::vector<size_t> shard_bytes_;            // S per blob
  std::vector<size_t> packed_bytes_;           // N * S per blob (gathered, padded)
  size_t max_packed_ = 0;
  std::unique_ptr<PinnedPool> pool_;           // host shards (cpu) or staging ring (nvme)
  std::vector<uint8_t*> shards_;               // per blob: this rank's shard (tier Cpu)
  std::vector<DeviceBuffer> resident_;         // per blob: gathered packed blob, if resident
  std::unique_ptr<ShardReadAhead> read_ahead_; // nvme tier
  std::vector<uint64_t> read_index_;           // per schedule position: its read in the cycle
  uint64_t reads_per_pass_ = 0;
  Stream copy_stream_, comm_stream_;
  Event epoch_;                                // recorded at construction: the timeline's origin
  double epoch_host_s_ = 0;
  double compute_end_host_s_ = 0;  // harvest(): the end of the compute busy time counted so far
  std::vector<Slot> slots_;
  std::vector<Hold> holds_;
  std::vector<Record> records_;

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_acquire_ = 0;  // schedule position of the next acquire
  uint64_t horizon_ = 0;       // the loader may start positions <= horizon_
  bool finishing_ = false;
  StreamStats stats_;          // guarded by mu_
  std::thread loader_;
};

}  // namespace zinc::offload
