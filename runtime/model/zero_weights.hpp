// ZeroWeights: the WeightProvider of ZeRO-3 weights. The bytes are streamed by
// offload::WeightStream (offload/weight_stream.hpp: tiers, gather slots, the loader
// thread, the copy -> comm -> compute event order, stats); this class adds the compute
// stream's dequantize stage — every parameter of the gathered blob, from its typed view
// (partition::param_view) into the slot's unpacked area, with Backend::dequantize — and
// hands the model a ParamTable of those tensors.
//
// Contract (as WeightStream's): every rank acquires and releases in the schedule's order;
// a table stays valid until its release; at most --prefetch-depth blobs are held at once.
#pragma once

#include <climits>
#include <memory>
#include <vector>

#include "collectives/communicator.hpp"
#include "offload/weight_stream.hpp"
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

using offload::SliceReader;
using offload::Tier;
using ZeroOptions = offload::WeightStreamOptions;
using ZeroStats = offload::StreamStats;

class ZeroWeights final : public WeightProvider {
 public:
  // Tier::Cpu calls `reader` once per streamed blob here (resident blobs too, once);
  // Tier::Nvme keeps it and calls it from the read-ahead threads for every use.
  ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader, Backend& backend,
              collectives::Communicator& comm, ZeroOptions opts = {});
  const ParamTable& acquire(int blob) override;
  void release(int blob) override;
  size_t resident_bytes() const override { return stream_->device_bytes(); }
  // Every gather slot holds one streamed blob; with none, every blob is resident.
  int max_held() const override { return stream_->held() == 0 ? INT_MAX : stream_->held(); }

  // Complete once the caller is done (no acquire in progress).
  ZeroStats stats() const { return stream_->stats(); }
  const std::vector<partition::BlobManifest>& manifests() const { return manifests_; }
  size_t shard_bytes(size_t blob) const { return stream_->shard_bytes(blob); }
  const offload::Placement& placement() const { return stream_->placement(); }
  const offload::PinnedPool& pinned() const { return stream_->pinned(); }
  int slots() const { return stream_->slots(); }

 private:
  void dequantize_blob(int slot, size_t blob, const uint8_t* packed, uint8_t* unpacked, const Stream& s);

  std::vector<partition::BlobManifest> manifests_;
  Backend& backend_;
  // The tensors of blob b in slot k, built on first use (a slot's memory never moves), so
  // an acquire only queues the dequantize calls: [k * blobs + b].
  struct SlotBlob {
    ParamTable table;
    std::vector<Tensor> outs;  // in manifest order
  };
  std::vector<std::unique_ptr<SlotBlob>> tables_;
  std::vector<const ParamTable*> held_;  // per slot: the table of the blob it holds
  std::unique_ptr<offload::WeightStream> stream_;
};

// A blob's shard alignment (partition::shard_alignment of its quant group's bytes).
size_t blob_alignment(const partition::BlobManifest& m);

// Bytes one param takes in a slot's unpacked area (compute dtype, 64-byte aligned).
inline size_t unpacked_param_bytes(const partition::BlobParam& p, quant::DType t) {
  return (static_cast<size_t>(p.numel()) * quant::dtype_size(t) + 63) / 64 * 64;
}

}  // namespace zinc::runtime
