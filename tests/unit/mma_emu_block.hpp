// The host emulation of a CUDA thread block for test_attention_mma_emu.cpp (which says
// what it checks and what it cannot): one fiber per thread (ucontext), warp primitives as
// rendezvous of their 32 lanes. The primitives themselves are in mma_emu_ops.hpp.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "quant/dtype.hpp"
#include "runtime/backend/cuda/attention_prefill_mma.cuh"

namespace zinc::test::mma_emu {

using zinc::quant::DType;
namespace mma = zinc::runtime::cuda::attn::mma;

// ---- a block of fibers ------------------------------------------------------------------------------------

// What a lane brings to a warp primitive.
struct Slot {
  int op = 0;  // which primitive (all 32 lanes must agree)
  const uint16_t* p = nullptr;
  uint32_t a[4] = {}, b[2] = {};
  float c[4] = {};
  float f = 0;
  bool pred = false;
};

struct Copy {
  void* dst;
  const void* src;  // nullptr: zero fill
};

class Block {
 public:
  static constexpr int kThreads = mma::kThreads;
  static constexpr size_t kStack = 256 * 1024;

  Block() : stacks_(new char[kStack * kThreads]) {}

  // Runs body(tid) on kThreads fibers until all return; throws on a deadlock or a lane's error.
  void run(const std::function<void(int)>& body) {
    body_ = &body;
    for (int i = 0; i < kThreads; ++i) {
      done_[i] = false;
      pending_[i].clear();
      open_[i].clear();
      getcontext(&ctx_[i]);
      ctx_[i].uc_stack.ss_sp = stacks_.get() + kStack * i;
      ctx_[i].uc_stack.ss_size = kStack;
      ctx_[i].uc_link = &main_;
      makecontext(&ctx_[i], reinterpret_cast<void (*)()>(&Block::entry), 1, i);
    }
    for (auto& w : warps_) w.arrived = 0;
    block_arrived_ = 0;
    error_.clear();
    current() = this;
    int finished = 0;
    while (finished < kThreads) {
      const uint64_t before = events_;
      for (int i = 0; i < kThreads; ++i) {
        if (done_[i]) continue;
        cur_ = i;
        swapcontext(&main_, &ctx_[i]);
        if (done_[i]) ++finished;
      }
      if (!error_.empty()) throw std::runtime_error(error_);
      if (finished < kThreads && events_ == before)
        throw std::runtime_error("deadlock: a warp primitive or barrier not reached by every thread");
    }
  }

  static Block*& current() {
    static Block* b = nullptr;
    return b;
  }
  int tid() const { return cur_; }
  int lane() const { return cur_ % 32; }

  // A warp primitive: every lane deposits `in`, then each computes its result from all 32 slots.
  template <typename F>
  auto warp_op(const Slot& in, F&& result) {
    Warp& w = warps_[cur_ / 32];
    w.slots[lane()] = in;
    rendezvous(w.arrived, w.gen, 32);
    for (int l = 0; l < 32; ++l)
      if (w.slots[l].op != in.op) fail("lanes of one warp reached different primitives");
    auto r = result(w.slots, lane());
    rendezvous(w.arrived, w.gen, 32);  // no lane overwrites its slot before all have read
    return r;
  }
  void block_barrier() { rendezvous(block_arrived_, block_gen_, kThreads); }

  // cp.async: queued per thread; lands at the wait_group that covers its group.
  void cp_async(void* dst, const void* src) { open_[cur_].push_back({dst, src}); }
  void commit() {
    pending_[cur_].push_back(open_[cur_]);
    open_[cur_].clear();
  }
  void wait_group(size_t n) {
    auto& g = pending_[cur_];
    while (g.size() > n) {
      for (const Copy& c : g.front()) {
        if (c.src != nullptr)
          std::memcpy(c.dst, c.src, 16);
        else
          std::memset(c.dst, 0, 16);
      }
      g.erase(g.begin());
    }
  }

  void fail(const std::string& what) {
    if (error_.empty()) error_ = "thread " + std::to_string(cur_) + ": " + what;
    throw std::runtime_error(error_);
  }

 private:
  struct Warp {
    Slot slots[32];
    int arrived = 0;
    uint64_t gen = 0;
  };

  static void entry(int i) {
    Block& b = *current();
    try {
      (*b.body_)(i);
    } catch (const std::exception& e) {
      if (b.error_.empty()) b.error_ = std::string("thread ") + std::to_string(i) + ": " + e.what();
    }
    b.done_[i] = true;
    ++b.events_;
    // returns to main_ through uc_link
  }

  void yield() { swapcontext(&ctx_[cur_], &main_); }

  void rendezvous(int& arrived, uint64_t& gen, int n) {
    ++events_;
    const uint64_t my = gen;
    if (++arrived == n) {
      arrived = 0;
      ++gen;
      return;
    }
    while (gen == my) {
      yield();
      if (!error_.empty()) throw std::runtime_error("aborted");
    }
  }

  std::unique_ptr<char[]> stacks_;
  ucontext_t main_{};
  ucontext_t ctx_[kThreads]{};
  bool done_[kThreads] = {};
  int cur_ = 0;
  uint64_t events_ = 0;
  Warp warps_[mma::kWarps];
  int block_arrived_ = 0;
  uint64_t block_gen_ = 0;
  std::vector<std::vector<Copy>> pending_[kThreads];
  std::vector<Copy> open_[kThreads];
  const std::function<void(int)>* body_ = nullptr;
  std::string error_;
};

}  // namespace zinc::test::mma_emu
