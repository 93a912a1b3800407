// WeightStream: construction (placement, slots, tiers, resident blobs), the compute
// thread's side (acquire/release) and the stats. The loader thread's side is
// weight_stream_loader.cpp; the contract is in weight_stream.hpp.
#include "offload/weight_stream.hpp"

#include <algorithm>

#include "collectives/stall_watch.hpp"
#include "offload/shard_read_ahead.hpp"
#include "partition/shard.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/trace.hpp"

namespace zinc::offload {
namespace {

double overlap(double a0, double a1, double b0, double b1) {
  return std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
}

// Every rank must stream the same blobs (each gather is a collective): a plan that
// differs between ranks would hang the first gather, so compare fingerprints exactly
// (two 32-bit halves: exact in a double) before any gather is made.
void check_ranks_agree(collectives::Communicator& comm, const Placement& p) {
  const uint64_t h = placement_fingerprint(p);
  const double hi = static_cast<double>(h >> 32), lo = static_cast<double>(h & 0xffffffffu);
  const std::vector<double> m = comm.allreduce_max({hi, lo, -hi, -lo});
  ZINC_CHECK(m[0] == -m[2] && m[1] == -m[3],
             "the ranks planned different weight placements (--gpu-memory-budget, --cpu-memory-budget "
             "or the options differ between ranks): every rank must stream the same blobs");
}

}  // namespace

WeightStream::WeightStream(std::vector<StreamBlob> blobs, SliceReader reader, Device& device,
                           collectives::Communicator& comm, DequantizeFn dequantize, const Stream& compute,
                           WeightStreamOptions opts)
    : blobs_(std::move(blobs)),
      device_(device),
      comm_(comm),
      dequantize_(std::move(dequantize)),
      compute_(compute),
      opts_(std::move(opts)) {
  const int n = comm.size(), r = comm.rank();
  const size_t count = blobs_.size();
  ZINC_CHECK(count > 0, "weight stream: no blobs");
  schedule_ = opts_.schedule;
  if (schedule_.empty())
    for (size_t b = 0; b < count; ++b) schedule_.push_back(static_cast<int>(b));
  std::vector<int> uses(count, 0);
  for (int b : schedule_) {
    ZINC_CHECK(b >= 0 && static_cast<size_t>(b) < count, "pipeline schedule names blob " << b << " of " << count);
    ++uses[b];
  }
  ZINC_CHECK(opts_.prefetch_depth >= 1, "--prefetch-depth " << opts_.prefetch_depth << " must be >= 1");

  // Sizes, then the plan: which blobs stay resident, how many slots.
  PlacementRequest req;
  for (size_t b = 0; b < count; ++b) {
    const partition::ShardRange range = partition::shard_range(blobs_[b].bytes, n, r, blobs_[b].alignment);
    shard_bytes_.push_back(range.shard_bytes);
    packed_bytes_.push_back(range.padded_bytes);
    req.packed_bytes.push_back(range.padded_bytes);
    req.unpacked_bytes.push_back(blobs_[b].unpacked_bytes);
    req.uses_per_pass.push_back(std::max(uses[b], 1));
  }
  // A blob read twice per pass is the tied embedding, held by the head with the head blob.
  const bool two_held = schedule_.size() > count;
  req.slots = std::max(opts_.prefetch_depth, two_held ? 2 : 1);
  const MemoryArena& arena = device.arena();
  req.budget = arena.budget() == 0 ? 0 : arena.budget() - std::min(arena.budget(), arena.used());
  req.kv_bytes = opts_.kv_bytes;
  req.activation_bytes = opts_.activation_bytes;
  req.policy = opts_.tier == Tier::Device ? PlacementRequest::Policy::All : opts_.residency;
  req.max_resident = opts_.max_resident;
  req.shard_bytes = shard_bytes_;
  req.nvme = opts_.tier == Tier::Nvme;
  req.host_budget = opts_.host_budget;
  const size_t staging_count = std::max<size_t>(req.slots, std::max(opts_.nvme_readers, 1));
  size_t max_shard = 0;
  for (size_t b = 0; b < count; ++b)
    max_shard = std::max(max_shard, partition::round_up(shard_bytes_[b], partition::kPageBytes));
  req.staging_bytes = req.nvme ? staging_count * max_shard : 0;
  placement_ = plan_placement(req);
  check_ranks_agree(comm, placement_);

  // Device memory first: a budget too small fails here, before any weight is read.
  slots_.resize(static_cast<size_t>(req.slots));
  max_packed_ = *std::max_element(req.packed_bytes.begin(), req.packed_bytes.end());
  const size_t max_unpacked = *std::max_element(req.unpacked_bytes.begin(), req.unpacked_bytes.end());
  for (Slot& s : slots_) {
    s.memory = device.alloc(max_packed_, "weight slot (gathered packed blob)");
    for (Event* e : {&s.copy_begin, &s.copied, &s.gather_begin, &s.gathered, &s.stall_begin, &s.stall_end,
                     &s.consumed})
      *e = device.create_event();
  }
  holds_.resize(static_cast<size_t>(held_buffers(req.slots)));
  for (Hold& h : holds_) {
    h.memory = device.alloc(max_unpacked, "dequantized weights of a held blob");
    h.busy_begin = device.create_event();
    h.freed = device.create_event();
  }
  records_.resize(slots_.size() + holds_.size() + 4);
  resident_.resize(count);
  for (size_t b = 0; b < count; ++b)
    if (placement_.resident(b)) resident_[b] = device.alloc(req.packed_bytes[b], "resident layer blob (packed)");
  copy_stream_ = device.create_stream();
  comm_stream_ = device.create_stream();
  epoch_ = device.create_event();
  epoch_.record(compute_);
  epoch_.synchronize();
  epoch_host_s_ = now_s();

  // Host memory: the shards kept in pinned host memory, and the NVMe staging ring.
  size_t max_nvme = 0, host_bytes = 0;
  for (size_t b = 0; b < count; ++b) {
    if (placement_.home[b] == Tier::Cpu) host_bytes += partition::round_up(shard_bytes_[b], partition::kPageBytes);
    if (placement_.home[b] == Tier::Nvme) max_nvme = std::max(max_nvme, shard_bytes_[b]);
  }
  const size_t staging_bytes =
      max_nvme > 0 ? staging_count * partition::round_up(max_nvme, partition::kPageBytes) : 0;
  // Chunks of at most 256 MiB; a small model gets one chunk of its own size.
  pool_ = std::make_unique<PinnedPool>(
      [&device](void* p, size_t bytes) { device.pin_host_memory(p, bytes); },
      std::clamp<size_t>(host_bytes + staging_bytes, partition::kPageBytes, PinnedPool::kDefaultChunk),
      [&device](void* p, size_t bytes) { device.unpin_host_memory(p, bytes); });
  loader_comm_ = comm.duplicate();  // collective: every rank constructs the stream together
  load_resident(reader);
  shards_.assign(count, nullptr);
  for (size_t b = 0; b < count; ++b) {
    if (placement_.home[b] != Tier::Cpu) continue;
    shards_[b] = pool_->allocate(shard_bytes_[b]);
    reader(b, r * shard_bytes_[b], shard_bytes_[b], shards_[b]);
  }
  if (max_nvme > 0) {
    std::vector<ShardReadAhead::Read> cycle;
    read_index_.assign(schedule_.size(), UINT64_MAX);
    for (size_t p = 0; p < schedule_.size(); ++p) {
      const size_t b = static_cast<size_t>(schedule_[p]);
      if (placement_.home[b] != Tier::Nvme) continue;
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

  horizon_ = slots_.size() - 1;  // every rank grants the first K positions by constructing
  loader_ = std::thread([this] { loader_main(); });
}

void WeightStream::load_resident(const SliceReader& reader) {
  size_t max_shard = 0;
  for (size_t b = 0; b < blobs_.size(); ++b)
    if (placement_.resident(b)) max_shard = std::max(max_shard, shard_bytes_[b]);
  if (max_shard == 0) return;
  HostBuffer host = device_.alloc_host(max_shard, "resident blob staging");
  const int r = comm_.rank();
  for (size_t b = 0; b < blobs_.size(); ++b) {
    if (!placement_.resident(b)) continue;
    const size_t S = shard_bytes_[b];
    reader(b, r * S, S, host.as<uint8_t>());
    uint8_t* base = resident_[b].bytes_ptr();
    device_.copy_to_device(base + r * S, host.data(), S, copy_stream_);
    {
      const collectives::WaitScope scope("the all-gather of resident blob " + blobs_[b].name + " at load");
      comm_.all_gather_inplace(base, S, copy_stream_);
    }
    copy_stream_.synchronize();  // the host staging is refilled for the next blob
  }
}

WeightStream::~WeightStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    finishing_ = true;
    for (Hold& h : holds_) h.held = false;  // an error may have left blobs held: nothing computes any more
  }
  cv_.notify_all();
  if (loader_.joinable()) loader_.join();
  read_ahead_.reset();
  try {  // nothing may still read or write the slots when their memory goes
    compute_.synchronize();
    copy_stream_.synchronize();
    comm_stream_.synchronize();
  } catch (const std::exception& e) {
    log_error(std::string("weight stream teardown: ") + e.what());
  }
}

int WeightStream::acquire(int blob) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t k = next_acquire_;
  const int expected = schedule_[k % schedule_.size()];
  ZINC_CHECK(blob == expected, "acquire(" << (blob >= 0 && static_cast<size_t>(blob) < blobs_.size()
                                                  ? blobs_[blob].name : std::to_string(blob))
                                          << "): the weight pipeline streams " << blobs_[expected].name
                                          << " next (position " << k
                                          << "); every rank must acquire the blobs in the forward pass's order");
  const int index = static_cast<int>(k % holds_.size());
  Hold& h = holds_[static_cast<size_t>(index)];
  ZINC_CHECK(!h.held, "acquire(" << blobs_[blob].name << "): all " << holds_.size()
                                 << " dequantized weight slots are held; release one first");
  if (h.unread) {  // the buffer's last position: released before, almost surely done on the device
    lock.unlock();   // (not held, so only this thread touches it; the loader goes on meanwhile)
    h.freed.synchronize();
    lock.lock();
    if (h.unread) harvest_hold(h);
  }
  Slot& s = slots_[k % slots_.size()];
  horizon_ = std::max(horizon_, k + slots_.size() - 1);
  cv_.notify_all();
  s.t_wait[0] = now_s();
  const auto loaded = [&] { return s.k == k && s.state == SlotState::Loaded; };
  if (!loaded()) {
    // The loader may be waiting for a peer's gather or for the disk: the watchdog sees both.
    const collectives::WaitScope scope("the weights of " + blobs_[blob].name + " (pipeline position " +
                                       std::to_string(k) + ")");
    cv_.wait(lock, loaded);
  }
  s.t_wait[1] = now_s();
  trace::span("weights wait", s.t_wait[0], s.t_wait[1]);
  if (s.error) std::rethrow_exception(s.error);
  s.state = SlotState::Acquired;
  s.acquired_unread = true;
  h.held = true;
  h.blob = blob;
  h.k = k;
  stats_.acquires += 1;
  ++next_acquire_;
  lock.unlock();
  // The compute stream's side: wait for the gather, dequantize into the held buffer; the
  // slot is free for the loader once that dequantize has run.
  s.stall_begin.record(compute_);
  if (s.streamed) compute_.wait(s.gathered);
  s.stall_end.record(compute_);
  h.busy_begin.record(compute_);
  const uint8_t* packed = s.streamed ? packed_of(s) : resident_[blob].bytes_ptr();
  dequantize_(index, static_cast<size_t>(blob), packed, h.memory.bytes_ptr(), compute_);
  s.consumed.record(compute_);
  return index;
}

void WeightStream::release(int blob) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Hold& h : holds_)
    if (h.held && h.blob == blob) {
      h.freed.record(compute_);  // the buffer's next dequantize is queued after it
      h.held = false;
      h.unread = true;
      return;
    }
  ZINC_THROW("release(" << blob << "): blob is not held");
}

double WeightStream::on_host_clock(const Event& e) const {
  return epoch_host_s_ + Event::elapsed_s(epoch_, e);
}

void WeightStream::wait_unread(Slot& s) {
  if (s.acquired_unread) s.consumed.synchronize();
  else if (s.loaded_unread && s.streamed) s.gathered.synchronize();
}

WeightStream::Record& WeightStream::record_of(uint64_t k) {
  Record& r = records_[k % records_.size()];
  if (r.k != k) {  // a position whose other half never came (prefetched past the last acquire)
    r = Record{};
    r.k = k;
  }
  return r;
}

void WeightStream::harvest(Slot& s) {
  StreamStats& st = stats_;
  if (s.loaded_unread && s.streamed) {
    st.copy_s += Event::elapsed_s(s.copy_begin, s.copied);
    st.gather_s += Event::elapsed_s(s.gather_begin, s.gathered);
  }
  if (s.acquired_unread) {
    st.dequantize_s += Event::elapsed_s(s.stall_end, s.consumed);
    Record& r = record_of(s.k);
    r.streamed = s.streamed;
    r.disk[0] = s.t_disk[0];
    r.disk[1] = s.t_disk[1];
    r.wait[0] = s.t_wait[0];
    r.wait[1] = s.t_wait[1];
    r.stall[0] = on_host_clock(s.stall_begin);
    r.stall[1] = on_host_clock(s.stall_end);
    if (s.streamed) {
      r.copy[0] = on_host_clock(s.copy_begin);
      r.copy[1] = on_host_clock(s.copied);
      r.gather[0] = on_host_clock(s.gather_begin);
      r.gather[1] = on_host_clock(s.gathered);
    }
    r.slot_in = true;
    if (r.hold_in) settle(r);
  }
  s.loaded_unread = s.acquired_unread = false;
}

void WeightStream::harvest_hold(Hold& h) {
  // Compute busy: the union of the positions' [dequantize start, freed] intervals. Holds
  // overlap (the tied head holds "embed" inside "head"; the decoder's lanes hold layer
  // l + 1 while a later lane still computes l), so each counts only past the last end.
  const double busy[2] = {on_host_clock(h.busy_begin), on_host_clock(h.freed)};
  stats_.compute_s += std::max(0.0, busy[1] - std::max(busy[0], compute_end_host_s_));
  compute_end_host_s_ = std::max(compute_end_host_s_, busy[1]);
  h.unread = false;
  Record& r = record_of(h.k);
  r.hold_in = true;
  if (r.slot_in) settle(r);
}

void WeightStream::settle(Record& r) {
  // The two waits: on the host (for the loader to queue the position) and the compute
  // stream's stall on "gathered"; each split by the stages it overlapped.
  StreamStats& st = stats_;
  for (const double* w : {static_cast<const double*>(r.wait), static_cast<const double*>(r.stall)}) {
    const double disk = overlap(w[0], w[1], r.disk[0], r.disk[1]);
    const double c = overlap(w[0], w[1], r.copy[0], r.copy[1]);
    const double g = overlap(w[0], w[1], r.gather[0], r.gather[1]);
    st.wait_disk_s += disk;
    st.wait_copy_s += c;
    st.wait_gather_s += g;
    st.wait_other_s += std::max(0.0, (w[1] - w[0]) - disk - c - g);
  }
  r = Record{};
}

StreamStats WeightStream::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Slot*> order;  // in schedule position order, as the loader harvests
  for (Slot& s : slots_)
    if (s.state != SlotState::Loading) order.push_back(&s);  // loading: read later
  std::sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) { return a->k < b->k; });
  for (Slot* s : order) {
    wait_unread(*s);
    harvest(*s);
  }
  std::vector<Hold*> released;  // in position order: the busy union counts each past the last end
  for (Hold& h : holds_)
    if (h.unread) released.push_back(&h);
  std::sort(released.begin(), released.end(), [](const Hold* a, const Hold* b) { return a->k < b->k; });
  for (Hold* h : released) {
    h->freed.synchronize();
    harvest_hold(*h);
  }
  return stats_;
}

size_t WeightStream::device_bytes() const {
  size_t n = 0;
  for (const Slot& s : slots_) n += s.memory.bytes();
  for (const Hold& h : holds_) n += h.memory.bytes();
  for (const DeviceBuffer& b : resident_) n += b.bytes();
  return n;
}

}  // namespace zinc::offload
