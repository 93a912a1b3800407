// ZeroWeights: ZeRO-3 weights. Every rank owns only its shard [r*S, (r+1)*S) of every
// blob (quantized), on one of two tiers:
//   cpu   read once at load into host memory (the default);
//   nvme  read again from the zinc store at every acquire, with io_uring O_DIRECT into a
//         4 KiB-aligned staging buffer (offload/uring_file.hpp), checked against the
//         store's page checksums — host memory holds no weights at all. While blob b is
//         gathered and computed, a background thread reads blob b + 1's shard
//         (runtime/model/shard_prefetcher.hpp).
// acquire(b) copies the shard into a
// gather slot on the backend, all-gathers the whole blob (one collective per blob, moving
// the packed quantized bytes), and unpacks each parameter into the slot's compute-dtype
// tensors. Slots (kMaxHeldBlobs of them) are reused blob after blob: memory on the
// backend is bounded by the largest blob, not the model.
//
// The prefetch pipeline (offload issue) overlaps these steps with compute on streams;
// here they run in order.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "collectives/communicator.hpp"
#include "offload/uring_file.hpp"
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

class ShardPrefetcher;

// Produces bytes [offset, offset + bytes) of blob `blob` (zero past its end): from an HF
// checkpoint (quantize-at-load), a zinc store, or the dummy generator.
using SliceReader = std::function<void(size_t blob, size_t offset, size_t bytes, uint8_t* dst)>;

enum class Tier { Cpu, Nvme };

struct ZeroStats {
  uint64_t gathers = 0;
  uint64_t gathered_bytes = 0;  // sum of N * S over gathers: bytes each rank ends up with
  uint64_t blob_bytes = 0;      // sum of the blobs' real (unpadded) sizes over gathers
  double gather_s = 0;          // copy in + all-gather
  double unpack_s = 0;          // dequantize / convert
  uint64_t source_bytes = 0;    // shard bytes read from the tier at acquire (nvme)
  double source_s = 0;          // time acquire waited for them (reads not hidden by read-ahead)
};

class ZeroWeights final : public WeightProvider {
 public:
  // Tier::Cpu calls `reader` once per blob here; Tier::Nvme keeps it and calls it at
  // every acquire (it must then write 4 KiB-aligned-friendly data into aligned buffers).
  ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader,
              Backend& backend, collectives::Communicator& comm, Tier tier = Tier::Cpu);
  ~ZeroWeights() override;
  const ParamTable& acquire(int blob) override;
  void release(int blob) override;
  size_t resident_bytes() const override;

  const ZeroStats& stats() const { return stats_; }
  const std::vector<partition::BlobManifest>& manifests() const { return manifests_; }
  size_t shard_bytes(size_t blob) const { return shard_bytes_[blob]; }

 private:
  struct Slot {
    int held = -1;          // blob index, -1 when free
    DeviceBuffer gathered;  // N * S bytes of the largest blob
    DeviceBuffer params;    // compute-dtype tensors of the largest blob
    ParamTable table;
  };
  std::vector<partition::BlobManifest> manifests_;
  Backend& backend_;
  collectives::Communicator& comm_;
  Tier tier_;
  std::vector<size_t> shard_bytes_;              // S per blob
  std::vector<offload::AlignedBuffer> shards_;   // this rank's shard of each blob (Tier::Cpu)
  std::unique_ptr<ShardPrefetcher> prefetcher_;  // read-ahead of the next shard (Tier::Nvme)
  Slot slots_[kMaxHeldBlobs];
  ZeroStats stats_;
};

}  // namespace zinc::runtime
