#include "runtime/model/zero_weights.hpp"

#include <algorithm>
#include <chrono>

#include "partition/shard.hpp"
#include "runtime/model/shard_prefetcher.hpp"

namespace zinc::runtime {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t blob_alignment(const partition::BlobManifest& m) {
  const int bits = quant::quant_bits(m.format);
  const size_t group_bytes = bits > 0 ? static_cast<size_t>(m.group_size) * bits / 8 : 1;
  return partition::shard_alignment(std::max<size_t>(group_bytes, 1));
}

}  // namespace

ZeroWeights::ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader,
                         Backend& backend, collectives::Communicator& comm, Tier tier)
    : manifests_(std::move(manifests)), backend_(backend), comm_(comm), tier_(tier) {
  const int n = comm.size(), r = comm.rank();
  size_t max_gather = 0, max_params = 0;
  const size_t elem = quant::dtype_size(backend.compute_dtype());
  std::vector<partition::ShardRange> ranges;
  for (const partition::BlobManifest& m : manifests_) {
    ranges.push_back(partition::shard_range(m.bytes, n, r, blob_alignment(m)));
    shard_bytes_.push_back(ranges.back().shard_bytes);
    max_gather = std::max(max_gather, ranges.back().padded_bytes);
    size_t params = 0;
    for (const partition::BlobParam& p : m.params)
      params += partition::round_up(static_cast<size_t>(p.numel()) * elem, 64);
    max_params = std::max(max_params, params);
  }
  // The backend slots first: a budget too small for one layer fails here, naming the
  // minimum, before any weight is read.
  for (Slot& s : slots_) {
    s.gathered = backend.alloc(max_gather, "gathered layer blob");
    s.params = backend.alloc(max_params, "unpacked layer weights");
  }
  if (tier_ == Tier::Nvme) {
    prefetcher_ = std::make_unique<ShardPrefetcher>(
        std::move(reader), *std::max_element(shard_bytes_.begin(), shard_bytes_.end()));
    return;
  }
  for (size_t b = 0; b < manifests_.size(); ++b) {
    shards_.emplace_back(ranges[b].shard_bytes);
    reader(b, ranges[b].offset, ranges[b].shard_bytes, shards_.back().data());
  }
}

const ParamTable& ZeroWeights::acquire(int blob) {
  ZINC_CHECK(blob >= 0 && static_cast<size_t>(blob) < manifests_.size(),
             "acquire: no blob " << blob);
  Slot* slot = nullptr;
  for (Slot& s : slots_) {
    ZINC_CHECK(s.held != blob, "blob " << manifests_[blob].name << " acquired twice");
    if (!slot && s.held < 0) slot = &s;
  }
  ZINC_CHECK(slot, "acquire(" << manifests_[blob].name << "): all " << kMaxHeldBlobs
                              << " weight slots are held; release one first");
  const partition::BlobManifest& m = manifests_[blob];
  const size_t S = shard_bytes_[blob];
  const int n = comm_.size();

  const uint8_t* shard = nullptr;
  if (tier_ == Tier::Nvme) {
    double waited = 0;
    shard = prefetcher_->get(static_cast<size_t>(blob), comm_.rank() * S, S, &waited);
    stats_.source_s += waited;
    stats_.source_bytes += S;
  } else {
    shard = shards_[blob].data();
  }
  const double t0 = now_s();
  auto* base = static_cast<uint8_t*>(slot->gathered.data());
  backend_.copy_to_device(Tensor(base + comm_.rank() * S, quant::DType::U8, {static_cast<int64_t>(S)}),
                          shard);
  backend_.synchronize();  // the copy has read the staging buffer: the read-ahead may go
  if (tier_ == Tier::Nvme) {
    const size_t next = (static_cast<size_t>(blob) + 1) % manifests_.size();
    prefetcher_->prefetch(next, comm_.rank() * shard_bytes_[next], shard_bytes_[next]);
  }
  comm_.all_gather_inplace(base, S);
  const double t1 = now_s();

  slot->table = ParamTable();
  slot->table.blob = m.name;
  const quant::DType t = backend_.compute_dtype();
  auto* out = static_cast<uint8_t*>(slot->params.data());
  for (const partition::BlobParam& p : m.params) {
    Tensor view(out, t, {});
    for (int64_t d : p.shape) view.shape[view.ndim++] = d;
    backend_.unpack_param(p, m.group_size, base, view);
    slot->table.set(p.name, view);
    out += partition::round_up(static_cast<size_t>(p.numel()) * quant::dtype_size(t), 64);
  }
  backend_.synchronize();
  slot->held = blob;
  stats_.gathers += 1;
  stats_.gathered_bytes += static_cast<uint64_t>(n) * S;
  stats_.blob_bytes += m.bytes;
  stats_.gather_s += t1 - t0;
  stats_.unpack_s += now_s() - t1;
  return slot->table;
}

void ZeroWeights::release(int blob) {
  for (Slot& s : slots_)
    if (s.held == blob) {
      s.held = -1;
      return;
    }
  ZINC_THROW("release(" << blob << "): blob is not held");
}

ZeroWeights::~ZeroWeights() = default;

size_t ZeroWeights::resident_bytes() const {
  size_t n = prefetcher_ ? 2 * *std::max_element(shard_bytes_.begin(), shard_bytes_.end()) : 0;
  for (const auto& s : shards_) n += s.size();
  for (const Slot& s : slots_) n += s.gathered.bytes() + s.params.bytes();
  return n;
}

}  // namespace zinc::runtime
