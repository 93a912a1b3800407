#include "offload/shard_read_ahead.hpp"

#include <pthread.h>

#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"

namespace zinc::offload {

ShardReadAhead::ShardReadAhead(std::vector<SliceReader> readers, std::vector<Read> cycle,
                               std::vector<uint8_t*> buffers)
    : readers_(std::move(readers)), cycle_(std::move(cycle)), buffers_(std::move(buffers)) {
  ZINC_CHECK(!cycle_.empty() && !readers_.empty() && buffers_.size() >= readers_.size(),
             "read-ahead: " << cycle_.size() << " reads, " << readers_.size() << " readers, "
                            << buffers_.size() << " buffers (need reads, readers, buffers >= readers)");
  done_.resize(buffers_.size());
  for (size_t i = 0; i < readers_.size(); ++i) workers_.emplace_back([this, i] { run(i); });
}

ShardReadAhead::~ShardReadAhead() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ShardReadAhead::run(size_t thread) {
  pthread_setname_np(pthread_self(), "zinc-nvme-read");  // top -H; the fault tests hold these
  const uint64_t depth = buffers_.size();
  for (uint64_t k = thread;; k += readers_.size()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || k < released_ + depth; });
      if (stop_) return;
    }
    const Read& r = cycle_[k % cycle_.size()];
    Done d;
    d.k = k;
    d.t_begin = now_s();
    try {
      readers_[thread](r.blob, r.offset, r.bytes, buffers_[k % depth]);
    } catch (...) {
      d.error = std::current_exception();
    }
    d.t_end = now_s();
    std::lock_guard<std::mutex> lock(mu_);
    done_[k % depth] = d;
    cv_.notify_all();
    if (d.error) return;  // nothing after a failed read: get(k) reports it
  }
}

const uint8_t* ShardReadAhead::get(uint64_t k, double* t_begin, double* t_end) {
  const size_t slot = k % buffers_.size();
  std::unique_lock<std::mutex> lock(mu_);
  ZINC_CHECK(k >= released_, "read-ahead: read " << k << " was already released");
  cv_.wait(lock, [&] { return done_[slot].k == k; });
  if (done_[slot].error) std::rethrow_exception(done_[slot].error);
  *t_begin = done_[slot].t_begin;
  *t_end = done_[slot].t_end;
  return buffers_[slot];
}

void ShardReadAhead::release(uint64_t k) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ZINC_CHECK(k == released_, "read-ahead: release(" << k << ") out of order (next is " << released_ << ")");
    ++released_;
  }
  cv_.notify_all();
}

}  // namespace zinc::offload
