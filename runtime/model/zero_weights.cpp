// ZeroWeights: the blobs described to the weight stream, and the dequantize stage.
#include "runtime/model/zero_weights.hpp"

#include <algorithm>

#include "partition/shard.hpp"

namespace zinc::runtime {
size_t blob_alignment(const partition::BlobManifest& m) {
  const int bits = quant::quant_bits(m.format);
  const size_t group_bytes = bits > 0 ? static_cast<size_t>(m.group_size) * bits / 8 : 1;
  return partition::shard_alignment(std::max<size_t>(group_bytes, 1));
}

ZeroWeights::ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader, Backend& backend,
                         collectives::Communicator& comm, ZeroOptions opts)
    : manifests_(std::move(manifests)), backend_(backend) {
  std::vector<offload::StreamBlob> blobs;
  for (const partition::BlobManifest& m : manifests_) {
    offload::StreamBlob b;
    b.name = m.name;
    b.bytes = m.bytes;
    b.alignment = blob_alignment(m);
    for (const partition::BlobParam& p : m.params) b.unpacked_bytes += unpacked_param_bytes(p, backend.compute_dtype());
    blobs.push_back(std::move(b));
  }
  stream_ = std::make_unique<offload::WeightStream>(
      std::move(blobs), std::move(reader), backend, comm,
      [this](int slot, size_t blob, const uint8_t* packed, uint8_t* unpacked, const Stream& s) {
        dequantize_blob(slot, blob, packed, unpacked, s);
      },
      backend.compute_stream(), std::move(opts));
  tables_.resize(static_cast<size_t>(stream_->held()) * manifests_.size());
  held_.assign(static_cast<size_t>(stream_->held()), nullptr);
}

void ZeroWeights::dequantize_blob(int slot, size_t blob, const uint8_t* packed, uint8_t* unpacked,
                                  const Stream& s) {
  const partition::BlobManifest& m = manifests_[blob];
  std::unique_ptr<SlotBlob>& e = tables_[static_cast<size_t>(slot) * manifests_.size() + blob];
  if (!e) {
    e = std::make_unique<SlotBlob>();
    e->table.blob = m.name;
    const quant::DType t = backend_.compute_dtype();
    for (const partition::BlobParam& p : m.params) {
      e->outs.emplace_back(unpacked, t, p.shape);
      e->table.set(p.name, e->outs.back());
      unpacked += unpacked_param_bytes(p, t);
    }
  }
  for (size_t i = 0; i < m.params.size(); ++i)
    backend_.dequantize(partition::param_view(m.params[i], m.group_size, packed), e->outs[i], s);
  held_[static_cast<size_t>(slot)] = &e->table;
}

const ParamTable& ZeroWeights::acquire(int blob) { return *held_[static_cast<size_t>(stream_->acquire(blob))]; }

void ZeroWeights::release(int blob) { stream_->release(blob); }

}  // namespace zinc::runtime
