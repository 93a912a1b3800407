// HostWorker: one background thread that runs host jobs in submission order, off the
// thread that queues the GPU's work (the host KV cache's prefill stores: kv_cache.cpp).
// Jobs are numbered from 1 in submission order; wait(n) returns once the first n are
// done. A job's exception is kept and rethrown by the next wait() or submit() on the
// owner's thread; later jobs are dropped. The destructor finishes the queued jobs and
// joins (their errors are then only logged by the caller's next wait, so call
// wait_all() before destruction where an error must surface). `on_start` runs first on
// the worker's thread (e.g. to give it the owner's OpenMP thread count: that setting is
// per thread, and a new thread starts from the process default).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace zinc {

class HostWorker {
 public:
  explicit HostWorker(std::function<void()> on_start = {})
      : on_start_(std::move(on_start)), thread_([this] { loop(); }) {}
  ~HostWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  HostWorker(const HostWorker&) = delete;
  HostWorker& operator=(const HostWorker&) = delete;

  // Queues a job; returns its number.
  uint64_t submit(std::function<void()> job) {
    std::unique_lock<std::mutex> lock(mu_);
    rethrow(lock);
    queue_.push_back(std::move(job));
    const uint64_t n = ++submitted_;
    lock.unlock();
    cv_.notify_all();
    return n;
  }
  // Until jobs 1..n are done (n beyond the submitted ones waits for all of them).
  void wait(uint64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return completed_ >= std::min(n, submitted_) || error_; });
    rethrow(lock);
  }
  void wait_all() { wait(UINT64_MAX); }
  uint64_t submitted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return submitted_;
  }

 private:
  void rethrow(std::unique_lock<std::mutex>&) {
    if (!error_) return;
    std::exception_ptr e = error_;
    error_ = nullptr;
    queue_.clear();
    completed_ = submitted_;
    std::rethrow_exception(e);
  }
  void loop() {
    if (on_start_) {
      try {
        on_start_();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = std::current_exception();
      }
    }
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      std::exception_ptr err;
      try {
        job();
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++completed_;
        if (err && !error_) error_ = err;
      }
      done_cv_.notify_all();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> queue_;
  uint64_t submitted_ = 0, completed_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
  std::function<void()> on_start_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace zinc
