// WeightStream's loader thread: fills the gather slots in schedule order (the contract is
// in weight_stream.hpp). Per position: host-wait the slot's previous use ("consumed") and
// read its times; tier -> (staging) -> H2D on the copy stream -> in-place all-gather on
// the comm stream (the loader's own communicator) -> "gathered".
#include <pthread.h>

#include "collectives/stall_watch.hpp"
#include "offload/shard_read_ahead.hpp"
#include "offload/weight_stream.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/trace.hpp"

namespace zinc::offload {

void WeightStream::loader_main() {
  pthread_setname_np(pthread_self(), "zinc-loader");  // top -H, gdb; the fault tests wait for it
  trace::name_thread("weight loader");
  try {
    device_.bind_thread();
  } catch (const std::exception& e) {
    log_error(std::string("weight stream loader: ") + e.what());  // its first copy reports it too
  }
  for (uint64_t k = 0;; ++k) {
    Slot& s = slots_[k % slots_.size()];
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        const bool reusable = s.state == SlotState::Free || s.state == SlotState::Acquired;
        return (k <= horizon_ && reusable) || (finishing_ && k > horizon_);
      });
      if (k > horizon_) return;  // finishing: every granted position is done
      s.state = SlotState::Loading;
    }
    std::exception_ptr error;
    try {
      wait_unread(s);  // the slot's previous use has finished on every stream
      {
        std::lock_guard<std::mutex> lock(mu_);
        harvest(s);
        s.k = k;
        s.error = nullptr;
      }
      const trace::Span span("load");
      load_position(k, s);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      s.k = k;
      s.error = error;
      s.state = SlotState::Loaded;
      s.loaded_unread = !error;
      if (!error) {
        const size_t blob = static_cast<size_t>(schedule_[k % schedule_.size()]);
        if (s.streamed) {
          stats_.gathers += 1;
          stats_.gathered_bytes += packed_bytes_[blob];
          stats_.blob_bytes += blobs_[blob].bytes;
          if (placement_.home[blob] == Tier::Nvme) stats_.source_bytes += shard_bytes_[blob];
        }
        stats_.disk_s += s.t_disk[1] - s.t_disk[0];
      }
    }
    cv_.notify_all();
    if (error) return;  // acquire() re-throws it; nothing is loaded after a failure
  }
}

uint64_t WeightStream::read_of(uint64_t k) const {
  return k / schedule_.size() * reads_per_pass_ + read_index_[k % schedule_.size()];
}

void WeightStream::load_position(uint64_t k, Slot& s) {
  const size_t blob = static_cast<size_t>(schedule_[k % schedule_.size()]);
  s.t_disk[0] = s.t_disk[1] = 0;
  s.streamed = !placement_.resident(blob);
  if (!s.streamed) return;  // resident: gathered once at load, dequantized by acquire()
  const size_t S = shard_bytes_[blob];
  const bool nvme = placement_.home[blob] == Tier::Nvme;
  const uint8_t* shard = shards_[blob];
  if (nvme) {
    const collectives::WaitScope scope("weight loader: the NVMe read of " + blobs_[blob].name + "'s shard");
    shard = read_ahead_->get(read_of(k), &s.t_disk[0], &s.t_disk[1]);
  }
  uint8_t* base = packed_of(s);
  s.copy_begin.record(copy_stream_);
  device_.copy_to_device(base + comm_.rank() * S, shard, S, copy_stream_);
  s.copied.record(copy_stream_);
  if (nvme) {
    s.copied.synchronize();  // the copy has read the staging buffer: the disk may refill it
    read_ahead_->release(read_of(k));
  }
  comm_stream_.wait(s.copied);
  s.gather_begin.record(comm_stream_);
  {
    const collectives::WaitScope scope("weight loader: the all-gather of " + blobs_[blob].name + " (pipeline position " +
                                       std::to_string(k) + ")");
    loader_comm_->all_gather_inplace(base, S, comm_stream_);
  }
  s.gathered.record(comm_stream_);
}

}  // namespace zinc::offload
