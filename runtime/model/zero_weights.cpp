// ZeroWeights: the blobs described to the weight stream, and the dequantize stage.
#include "runtime/model/zero_weights.hpp"

#include <algorithm>

#include "partition/shard.hpp"

namespace zinc::runtime {
namespace {

size_t blob_alignment(const partition::BlobManifest& m) {
  const int bits = quant::quant_bits(m.format);
  const size_t group_bytes = bits > 0 ? static_cast<size_t>(m.group_size) * bits / 8 : 1;
  return partition::shard_alignment(std::max<size_t>(group_bytes, 1));
}

}  // namespace

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
  tables_.resize(static_cast<size_t>(stream_->slots()));
}

void ZeroWeights::dequantize_blob(int slot, size_t blob, const uint8_t* packed, uint8_t* unpacked,
                                  const Stream& s) {
  const partition::BlobManifest& m = manifests_[blob];
  ParamTable& table = tables_[static_cast<size_t>(slot)];
  table = ParamTable();
  table.blob = m.name;
  const quant::DType t = backend_.compute_dtype();
  for (const partition::BlobParam& p : m.params) {
    const Tensor out(unpacked, t, p.shape);
    backend_.dequantize(partition::param_view(p, m.group_size, packed), out, s);
    table.set(p.name, out);
    unpacked += unpacked_param_bytes(p, t);
  }
}

const ParamTable& ZeroWeights::acquire(int blob) { return tables_[static_cast<size_t>(stream_->acquire(blob))]; }

void ZeroWeights::release(int blob) { stream_->release(blob); }

}  // namespace zinc::runtime
