// ZeroWeights: construction (placement, slots, tiers, resident blobs) and the compute
// thread's side (acquire/release). The loader thread's side is zero_loader.cpp.
#include "runtime/model/zero_weights.hpp"

#include <algorithm>
#include <cmath>

#include "partition/shard.hpp"
#include "runtime/model/shard_read_ahead.hpp"

namespace zinc::runtime {
namespace {

size_t blob_alignment(const partition::BlobManifest& m) {
  const int bits = quant::quant_bits(m.format);
  const size_t group_bytes = bits > 0 ? static_cast<size_t>(m.group_size) * bits / 8 : 1;
  return partition::shard_alignment(std::max<size_t>(group_bytes, 1));
}

double overlap(double a0, double a1, double b0, double b1) {
  return std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
}

}  // namespace

std::vector<int> forward_schedule(const ModelConfig& c) {
  std::vector<int> s;
  for (int b = 0; b <= head_blob(c); ++b) s.push_back(b);
  if (c.tie_word_embeddings) s.push_back(embed_blob());
  return s;
}

ZeroWeights::ZeroWeights(std::vector<partition::BlobManifest> manifests, SliceReader reader,
                         Backend& backend, collectives::Communicator& comm, ZeroOptions opts)
    : manifests_(std::move(manifests)), backend_(backend), comm_(comm), opts_(std::move(opts)) {
  const int n = comm.size(), r = comm.rank();
  const size_t blobs = manifests_.size();
  schedule_ = opts_.schedule;
  if (schedule_.empty())
    for (size_t b = 0; b < blobs; ++b) schedule_.push_back(static_cast<int>(b));
  std::vector<int> uses(blobs, 0);
  for (int b : schedule_) {
    ZINC_CHECK(b >= 0 && static_cast<size_t>(b) < blobs, "pipeline schedule names blob " << b
                                                             << " of " << blobs);
    ++uses[b];
  }
  ZINC_CHECK(opts_.prefetch_depth >= 1, "--prefetch-depth " << opts_.prefetch_depth << " must be >= 1");

  // Sizes, then the plan: which blobs stay resident, how many slots.
  offload::PlacementRequest req;
  for (size_t b = 0; b < blobs; ++b) {
    const partition::BlobManifest& m = manifests_[b];
    const partition::ShardRange range = partition::shard_range(m.bytes, n, r, blob_alignment(m));
    shard_bytes_.push_back(range.shard_bytes);
    req.packed_bytes.push_back(range.padded_bytes);
    size_t params = 0;
    for (const partition::BlobParam& p : m.params)
      params += unpacked_param_bytes(p, backend.compute_dtype());
    req.unpacked_bytes.push_back(params);
    req.uses_per_pass.push_back(std::max(uses[b], 1));
  }
  // A blob read twice per pass is the tied embedding, held by the head with the head blob.
  const bool two_held = schedule_.size() > blobs;
  req.slots = std::max(opts_.prefetch_depth, two_held ? 2 : 1);
  const offload::MemoryArena& arena = backend.arena();
  req.budget = arena.budget() == 0 ? 0 : arena.budget() - std::min(arena.budget(), arena.used());
  req.kv_bytes = opts_.kv_bytes;
  req.activation_bytes = opts_.activation_bytes;
  req.policy = opts_.residency;
  req.max_resident = opts_.max_resident;
  req.shard_bytes = shard_bytes_;
  req.nvme = opts_.tier == Tier::Nvme;
  req.host_budget = opts_.host_budget;
  const size_t staging_count = std::max<size_t>(req.slots, std::max(opts_.nvme_readers, 1));
  size_t max_shard = 0;
  for (size_t b = 0; b < blobs; ++b) max_shard = std::max(max_shard, partition::round_up(shard_bytes_[b], 4096));
  req.staging_bytes = req.nvme ? staging_count * max_shard : 0;
  placement_ = offload::plan_placement(req);
  // Every rank must stream the same blobs (each gather is a collective): a plan that
  // differs between ranks would hang the first gather, so compare before any is made.
  double plan_hash = static_cast<double>(placement_.slots);
  for (size_t b = 0; b < blobs; ++b) plan_hash = plan_hash * 3 + static_cast<int>(placement_.home[b]);
  plan_hash = std::fmod(plan_hash, 1e15);
  const std::vector<double> extremes = comm.allreduce_max({plan_hash, -plan_hash});
  ZINC_CHECK(extremes[0] == -extremes[1], "the ranks planned different weight placements (--gpu-memory-budget "
                                          "or the options differ between ranks): every rank must stream "
                                          "the same blobs");

  // Device memory first: a budget too small fails here, before any weight is read.
  slots_.resize(static_cast<size_t>(req.slots));
  const size_t max_gather = *std::max_element(req.packed_bytes.begin(), req.packed_bytes.end());
  const size_t max_params = *std::max_element(req.unpacked_bytes.begin(), req.unpacked_bytes.end());
  for (Slot& s : slots_) {
    s.gathered = backend.alloc(max_gather, "gathered layer blob");
    s.params = backend.alloc(max_params, "unpacked layer weights");
    s.loaded_event = backend.create_event();
    s.free_event = backend.create_event();
  }
  resident_.resize(blobs);
  for (size_t b = 0; b < blobs; ++b)
    if (placement_.resident(b)) resident_[b] = backend.alloc(req.packed_bytes[b], "resident layer blob (packed)");

  // Host memory: the shards kept in pinned host memory, and the NVMe staging ring.
  using offload::BlobHome;
  size_t max_nvme = 0, host_bytes = 0;
  for (size_t b = 0; b < blobs; ++b) {
    if (placement_.home[b] == BlobHome::Host) host_bytes += partition::round_up(shard_bytes_[b], 4096);
    if (placement_.home[b] == BlobHome::Nvme) max_nvme = std::max(max_nvme, shard_bytes_[b]);
  }
  const size_t staging_bytes = max_nvme > 0 ? staging_count * partition::round_up(max_nvme, 4096) : 0;
  // Chunks of at most 256 MiB; a small model gets one chunk of its own size.
  pool_ = std::make_unique<offload::PinnedPool>(
      [&backend](void* p, size_t bytes) { backend.pin_host_memory(p, bytes); },
      std::clamp<size_t>(host_bytes + staging_bytes, 4096, offload::PinnedPool::kDefaultChunk));
  loader_comm_ = comm.duplicate();  // collective: every rank constructs ZeroWeights together
  load_resident(reader);
  shards_.assign(blobs, nullptr);
  for (size_t b = 0; b < blobs; ++b) {
    if (placement_.home[b] != BlobHome::Host) continue;
    shards_[b] = pool_->allocate(shard_bytes_[b]);
    reader(b, r * shard_bytes_[b], shard_bytes_[b], shards_[b]);
  }
  if (max_nvme > 0) {
    std::vector<ShardReadAhead::Read> cycle;
    read_index_.assign(schedule_.size(), UINT64_MAX);
    for (size_t p = 0; p < schedule_.size(); ++p) {
      const size_t b = static_cast<size_t>(schedule_[p]);
      if (placement_.home[b] != BlobHome::Nvme) continue;
      read_index_[p] = cycle.size();
      cycle.push_back({b, r * shard_bytes_[b], shard_bytes_[b]});
    }
    reads_per_pass_ = cycle.size();
    std::vector<SliceReader> readers{std::move(reader)};
    for (int i = 1; opts_.more_readers && i < opts_.nvme_readers; ++i) readers.push_back(opts_.more_readers());
    std::vector<uint8_t*> staging;
    for (size_t i = 0; i < staging_count; ++i) staging.push_back(pool_->allocate(max_nvme));
    read_ahead_ = std::make_unique<ShardReadAhead>(std::move(readers), std::move(cycle), std::move(staging));
  }

  loader_stream_ = backend.create_stream();
  horizon_ = slots_.size() - 1;  // every rank grants the first K positions by constructing
  loader_ = std::thread([this] { loader_main(); });
}

void ZeroWeights::load_resident(const SliceReader& reader) {
  size_t max_shard = 0;
  for (size_t b = 0; b < manifests_.size(); ++b)
    if (placement_.resident(b)) max_shard = std::max(max_shard, shard_bytes_[b]);
  if (max_shard == 0) return;
  offload::AlignedBuffer host(max_shard);
  const int r = comm_.rank();
  for (size_t b = 0; b < manifests_.size(); ++b) {
    if (!placement_.resident(b)) continue;
    const size_t S = shard_bytes_[b];
    reader(b, r * S, S, host.data());
    auto* base = static_cast<uint8_t*>(resident_[b].data());
    backend_.copy_to_device(Tensor(base + r * S, quant::DType::U8, {static_cast<int64_t>(S)}), host.data());
    backend_.synchronize();
    comm_.all_gather_inplace(base, S);
  }
}

ZeroWeights::~ZeroWeights() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    finishing_ = true;
    for (Slot& s : slots_)  // an error may have left blobs held: nothing computes any more
      if (s.state == SlotState::Held) s.state = SlotState::Free;
  }
  cv_.notify_all();
  if (loader_.joinable()) loader_.join();
  read_ahead_.reset();
}

const ParamTable& ZeroWeights::acquire(int blob) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t k = next_acquire_;
  const int expected = schedule_[k % schedule_.size()];
  ZINC_CHECK(blob == expected, "acquire(" << (blob >= 0 && static_cast<size_t>(blob) < manifests_.size()
                                                  ? manifests_[blob].name : std::to_string(blob))
                                          << "): the weight pipeline streams "
                                          << manifests_[expected].name << " next (position " << k
                                          << "); every rank must acquire the blobs in the forward "
                                             "pass's order");
  Slot& s = slots_[k % slots_.size()];
  ZINC_CHECK(s.state != SlotState::Held,
             "acquire(" << manifests_[blob].name << "): all " << slots_.size()
                        << " weight slots are held; release one first");
  horizon_ = std::max(horizon_, k + slots_.size() - 1);
  cv_.notify_all();
  const double w0 = pipeline_now();
  if (busy_since_ > 0) stats_.compute_s += w0 - busy_since_;
  cv_.wait(lock, [&] { return s.k == k && s.state == SlotState::Loaded; });
  const double w1 = pipeline_now();
  if (s.error) std::rethrow_exception(s.error);
  const double disk = overlap(w0, w1, s.t_disk[0], s.t_disk[1]);
  const double copy = overlap(w0, w1, s.t_copy[0], s.t_copy[1]);
  const double gather = overlap(w0, w1, s.t_gather[0], s.t_gather[1]);
  const double unpack = overlap(w0, w1, s.t_unpack[0], s.t_unpack[1]);
  stats_.wait_disk_s += disk;
  stats_.wait_copy_s += copy;
  stats_.wait_gather_s += gather;
  stats_.wait_unpack_s += unpack;
  stats_.wait_other_s += std::max(0.0, (w1 - w0) - disk - copy - gather - unpack);
  stats_.acquires += 1;
  s.state = SlotState::Held;
  busy_since_ = w1;
  ++next_acquire_;
  lock.unlock();
  backend_.wait_event(0, s.loaded_event);
  return s.table;
}

void ZeroWeights::release(int blob) {
  std::unique_lock<std::mutex> lock(mu_);
  for (Slot& s : slots_)
    if (s.state == SlotState::Held && schedule_[s.k % schedule_.size()] == blob) {
      backend_.record_event(s.free_event, 0);  // the loader's stream waits for it
      s.state = SlotState::Free;
      if (std::none_of(slots_.begin(), slots_.end(), [](const Slot& o) { return o.state == SlotState::Held; })) {
        stats_.compute_s += pipeline_now() - busy_since_;  // nothing held: compute paused
        busy_since_ = 0;
      }
      lock.unlock();
      cv_.notify_all();
      return;
    }
  ZINC_THROW("release(" << blob << "): blob is not held");
}

ZeroStats ZeroWeights::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

size_t ZeroWeights::resident_bytes() const {  // on the backend; the pinned pool is reported apart
  size_t n = 0;
  for (const Slot& s : slots_) n += s.gathered.bytes() + s.params.bytes();
  for (const DeviceBuffer& b : resident_) n += b.bytes();
  return n;
}

}  // namespace zinc::runtime
