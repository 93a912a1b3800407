// ZeroWeights' loader thread: fills the gather slots in schedule order (the contract is in
// zero_weights.hpp). Per position: tier -> (staging) -> slot copy -> all-gather on the
// loader's communicator -> unpack; each stage's interval is kept for the wait attribution.
#include "partition/shard.hpp"
#include "runtime/model/shard_read_ahead.hpp"
#include "runtime/model/zero_weights.hpp"

namespace zinc::runtime {

void ZeroWeights::loader_main() {
  for (uint64_t k = 0;; ++k) {
    Slot& s = slots_[k % slots_.size()];
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return (k <= horizon_ && s.state == SlotState::Free) || (finishing_ && k > horizon_);
      });
      if (k > horizon_) return;  // finishing: every granted position is done
      s.state = SlotState::Loading;
      s.k = k;
      s.error = nullptr;
    }
    backend_.wait_event(loader_stream_, s.free_event);
    std::exception_ptr error;
    try {
      load_position(k, s);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      s.error = error;
      s.state = SlotState::Loaded;
      if (!error) {
        const size_t blob = static_cast<size_t>(schedule_[k % schedule_.size()]);
        if (!placement_.resident(blob)) {
          stats_.gathers += 1;
          stats_.gathered_bytes += static_cast<uint64_t>(comm_.size()) * shard_bytes_[blob];
          stats_.blob_bytes += manifests_[blob].bytes;
          if (placement_.home[blob] == offload::BlobHome::Nvme) stats_.source_bytes += shard_bytes_[blob];
        }
        stats_.disk_s += s.t_disk[1] - s.t_disk[0];
        stats_.copy_s += s.t_copy[1] - s.t_copy[0];
        stats_.gather_s += s.t_gather[1] - s.t_gather[0];
        stats_.unpack_s += s.t_unpack[1] - s.t_unpack[0];
      }
    }
    cv_.notify_all();
    if (error) return;  // acquire() re-throws it; nothing is loaded after a failure
  }
}

const uint8_t* ZeroWeights::stage_shard(uint64_t k, size_t blob, Slot& s) {
  if (placement_.home[blob] == offload::BlobHome::Host) {
    s.t_disk[0] = s.t_disk[1] = 0;
    return shards_[blob];
  }
  return read_ahead_->get(read_of(k), &s.t_disk[0], &s.t_disk[1]);
}

uint64_t ZeroWeights::read_of(uint64_t k) const {
  return k / schedule_.size() * reads_per_pass_ + read_index_[k % schedule_.size()];
}

void ZeroWeights::load_position(uint64_t k, Slot& s) {
  const size_t blob = static_cast<size_t>(schedule_[k % schedule_.size()]);
  const uint8_t* packed = nullptr;
  if (placement_.resident(blob)) {
    s.t_disk[0] = s.t_disk[1] = s.t_copy[0] = s.t_copy[1] = s.t_gather[0] = s.t_gather[1] = 0;
    packed = static_cast<const uint8_t*>(resident_[blob].data());
  } else {
    const size_t S = shard_bytes_[blob];
    const int r = comm_.rank();
    const uint8_t* shard = stage_shard(k, blob, s);
    auto* base = static_cast<uint8_t*>(s.gathered.data());
    s.t_copy[0] = pipeline_now();
    backend_.copy_to_device(Tensor(base + r * S, quant::DType::U8, {static_cast<int64_t>(S)}), shard,
                            loader_stream_);
    if (placement_.home[blob] == offload::BlobHome::Nvme) {
      backend_.synchronize_stream(loader_stream_);  // the copy has read the staging buffer
      read_ahead_->release(read_of(k));
    }
    s.t_copy[1] = s.t_gather[0] = pipeline_now();
    loader_comm_->all_gather_inplace(base, S);
    s.t_gather[1] = pipeline_now();
    packed = base;
  }
  s.t_unpack[0] = pipeline_now();
  unpack_into(s, blob, packed);
  s.t_unpack[1] = pipeline_now();
  backend_.record_event(s.loaded_event, loader_stream_);
}

void ZeroWeights::unpack_into(Slot& s, size_t blob, const uint8_t* packed) {
  const partition::BlobManifest& m = manifests_[blob];
  s.table = ParamTable();
  s.table.blob = m.name;
  const quant::DType t = backend_.compute_dtype();
  auto* out = static_cast<uint8_t*>(s.params.data());
  for (const partition::BlobParam& p : m.params) {
    Tensor view(out, t, {});
    for (int64_t d : p.shape) view.shape[view.ndim++] = d;
    backend_.unpack_param(p, m.group_size, packed, view);
    s.table.set(p.name, view);
    out += unpacked_param_bytes(p, t);
  }
}

}  // namespace zinc::runtime
