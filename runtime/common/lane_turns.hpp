// LaneTurns: M threads ("lanes") that take turns round robin, lane 0, 1, .., M-1, 0, ..
// Only the lane whose turn it is runs; the others wait in take(). The decoder runs each
// micro-batch of a host-KV decode step as a lane (decoder_lanes.cpp): a lane queues its
// GPU work in its turn and gives the turn away while the host computes its attention, so
// the next lane's GPU work is queued meanwhile. With one compute stream, queuing in turns
// keeps every lane's work in contiguous runs on that stream, which is what lets the lanes
// share the workspace's scratch (docs/DESIGN.md, "Host KV decode overlap").
//
// abort() ends every wait with LanesAborted (a lane that failed calls it, so the others
// stop instead of waiting for a turn that never comes). LaneTurn is one lane's handle;
// a default one (no turns) makes pause()/resume() no-ops: the code path without lanes.
#pragma once

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "runtime/common/trace.hpp"

namespace zinc {

struct LanesAborted : std::runtime_error {
  LanesAborted() : std::runtime_error("another micro-batch lane failed") {}
};

class LaneTurns {
 public:
  explicit LaneTurns(int lanes) : lanes_(lanes < 1 ? 1 : lanes) {}
  LaneTurns(const LaneTurns&) = delete;
  LaneTurns& operator=(const LaneTurns&) = delete;

  int lanes() const { return lanes_; }
  // Until it is `lane`'s turn.
  void take(int lane) {
    const trace::Span span("turn wait");
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || turn_ == lane; });
    if (aborted_) throw LanesAborted();
  }
  // `lane`'s turn ends (it must hold it); the next lane's begins.
  void pass(int lane) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (turn_ == lane) turn_ = (lane + 1) % lanes_;
    }
    cv_.notify_all();
  }
  void abort() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted_ = true;
    }
    cv_.notify_all();
  }

 private:
  const int lanes_;
  std::mutex mu_;
  std::condition_variable cv_;
  int turn_ = 0;
  bool aborted_ = false;
};

struct LaneTurn {
  LaneTurns* turns = nullptr;
  int index = 0;
  bool active() const { return turns != nullptr; }
  void pause() const {
    if (turns) turns->pass(index);
  }
  void resume() const {
    if (turns) turns->take(index);
  }
};

}  // namespace zinc
