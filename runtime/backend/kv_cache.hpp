// The key/value cache of a run, on the device or in host memory (--kv-offload); the
// decision lives here, not in model code: the model calls attend(), which writes the
// step's K/V where the cache is and computes attention there.
//   device  per layer K and V of shape [B, t_max, KVH, hd] in the compute dtype, plus the
//           key mask [B, t_max] (1 where the position holds a real token: left padding
//           stays 0), all in the backend's budgeted arena; Backend::kv_write + attention.
//   host    offload/host_kv_cache.hpp: per layer K and V as [B, KVH, t_max, hd] rows in a
//           storage of choice (the compute dtype, f16, or int8/int4 group-wise along hd);
//           decode: the step's q, k, v go to pinned host staging on the stream (each
//           micro-batch in its own rows of it); the worker thread waits on their event,
//           stores K/V and runs the CPU attention kernel (backend/cpu/cpu_attention.hpp);
//           the caller waits for that job and queues the output's upload. While it waits
//           it gives its lane's turn away (a LaneTurn: the decoder's micro-batch lanes,
//           decoder_lanes.cpp), so another micro-batch's GPU work is queued meanwhile.
//           prefill (t0 = 0: the keys are exactly the step's own): attention runs on the
//           device over the step's k, v, as the device cache would, and only k, v go to
//           the host, where a worker thread (common/host_worker.hpp) stores them while
//           the GPU goes on; two staging slots alternate, so micro-batch j + 1's copies
//           overlap micro-batch j's store. The worker runs jobs in order, so a decode
//           step's attention comes after every pending store; a new round waits for them.
// Allocated once per run for the largest round (begin() starts each one); nothing
// is allocated per step. Positions are shared by the batch: prompts are left-padded to a
// common length T and decode step s writes position T + s for every sequence, as
// transformers' generate() lays it out.
//
// Host buffers: the mask's host mirror and the staging buffers are pinned (alloc_host).
// set_mask() rewrites the mirror and uploads it on the compute stream: callers change it
// only after a host wait on that stream (the generator's per-step token read) has
// returned, so the previous upload has read it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "offload/host_kv_cache.hpp"
#include "runtime/common/host_worker.hpp"
#include "runtime/common/lane_turns.hpp"
#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

struct KvPlacement {
  bool on_host = false;                            // --kv-offload
  quant::KvStorage storage = quant::KvStorage::F32;  // host storage (--kv-quant)
  int group = 64;                                  // int8/int4 group along hd (<= hd)
};

// --kv-quant: "none" (the compute dtype), "f16", "int8", "int4".
quant::KvStorage parse_kv_quant(const std::string& name, quant::DType compute);

struct KvShape {
  int layers = 0, heads = 0, kv_heads = 0, head_dim = 0;  // heads: query heads (host staging)
};

// The attention bias of a family: ALiBi slopes F32 [H] on the device and on the host
// (BLOOM), or none.
struct AttentionBias {
  Tensor slopes;                       // device, or empty
  const float* host_slopes = nullptr;  // host mirror, or null
};

class KvCache {
 public:
  // Room for `batch` sequences of `t_max` positions; steps of at most `max_step_rows`
  // token rows (batch * prompt length; 0 = batch * t_max).
  KvCache(Backend& backend, const KvShape& shape, int batch, int t_max, KvPlacement where = {},
          int max_step_rows = 0);

  int capacity() const { return capacity_; }
  int batch() const { return batch_; }
  int t_max() const { return t_max_; }
  bool on_host() const { return host_ != nullptr; }

  // Starts a round of `batch` <= capacity() sequences: every key masked out.
  void begin(int batch);
  // Marks positions [t0, t0 + cols) of every sequence from a host mask [batch, cols] (U8)
  // and uploads the mask on the compute stream.
  void set_mask(int t0, int cols, const uint8_t* host_mask);

  // The step's k, v [B*tq, KVH*hd] of sequences first_seq .. first_seq+B-1 (a micro-batch
  // of the round, B = sh.batch) into layer `layer` at positions t0 .. t0+tq-1, then
  // out = attention(q over the cache) (Backend::attention's semantics); on stream s.
  // `lane`: the caller's micro-batch lane (host decode pauses it while the host works).
  void attend(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionShape& sh,
              const AttentionBias& bias, float scale, const Tensor& out, const Stream& s, const LaneTurn& lane = {});
  // Host KV: room for `lanes` micro-batch lanes in flight at once (one staging event
  // each); called before the lanes start. A no-op for a device cache.
  void prepare_lanes(int lanes);
  int max_lanes() const { return max_lanes_; }  // the most prepare_lanes() asked for (0: none)

  size_t bytes() const;  // device or host bytes of K, V and the mask
  // Host KV, decode steps since the cache was made, on the worker thread: seconds it
  // waited for a job's q/k/v to arrive (the GPU's work before attention, weights included:
  // with lanes, only what the other lanes' host work did not cover), and seconds of host
  // work (cpu_s: the K/V store and the CPU attention, store_s and attention_s
  // apart). All 0 for a device cache.
  struct HostTimes {
    double wait_s = 0, cpu_s = 0, store_s = 0, attention_s = 0;
  };
  HostTimes host_times() const { return host_times_; }
  // What the constructor allocates on the backend (the placement planner's KV share).
  static size_t device_bytes(const KvShape& shape, int batch, int t_max, quant::DType t);

 private:
  void prefill_on_host(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionShape& sh, const AttentionBias& bias, float scale, const Tensor& out,
                       const Stream& s);
  void attend_on_host(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v, const AttentionShape& sh,
                      const AttentionBias& bias, float scale, const Tensor& out, const Stream& s,
                      const LaneTurn& lane);

  Backend& backend_;
  KvShape shape_;
  int capacity_, batch_, t_max_;
  std::vector<DeviceBuffer> k_, v_;
  DeviceBuffer mask_;
  HostBuffer host_mask_;  // [capacity, t_max] pinned mirror of the mask
  std::unique_ptr<offload::HostKvCache> host_;
  HostBuffer staging_[4];  // host path: q, k, v, out, pinned, [max_step_rows, width] compute dtype
  std::vector<Event> staged_;  // host path, per lane: its q, k, v have reached the host
  // Host path, prefill: per staging slot the compacted key mask [B, tq] (pinned), k and v
  // as they arrive (compute dtype), and the event of their arrival.
  struct PrefillSlot {
    HostBuffer mask, kv[2];
    Event ready;
  };
  PrefillSlot prefill_[2];
  HostTimes host_times_;
  int max_lanes_ = 0;
  DeviceBuffer prefill_mask_;           // [B, tq] on the device
  std::unique_ptr<HostWorker> worker_;  // last: destroyed (its jobs finished) first
};

}  // namespace zinc::runtime
