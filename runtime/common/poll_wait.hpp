// poll_until(done): waits for a condition that only a poll can see (an MPI request, a
// CUDA event) without keeping a core busy while the wait is long.
//
// Why: MPI_Wait and the blocking collectives of Open MPI, and cudaEventSynchronize by
// default, spin until they return, so a rank waiting for a stalled peer burned 100% of a
// core for as long as it waited (measured: 298 of 300 ticks in 3 s). Here the first
// kSpinS seconds poll back to back, as before, so a short wait ends as soon as it can;
// after that each pause is 1/32 of the time waited so far, at most kMaxPauseS: a long wait
// ends at most ~3% (or 1 ms) after its condition, and costs a poll per millisecond.
// Polls are also what moves MPI's nonblocking operations on, so they never stop.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

#include "runtime/common/clock.hpp"

namespace zinc {

struct PollPolicy {
  static constexpr double kSpinS = 0.002;      // polled back to back first
  static constexpr double kMaxPauseS = 0.001;  // the longest pause between polls
  static constexpr double kPauseFraction = 1.0 / 32;
  // The pause after a wait of `waited` seconds.
  static double pause_after(double waited) {
    return waited < kSpinS ? 0.0 : std::min(kMaxPauseS, waited * kPauseFraction);
  }
};

// Polls `done()` (true when the wait is over) until it returns true.
template <class Done>
void poll_until(Done&& done) {
  if (done()) return;
  const double t0 = now_s();
  while (!done()) {
    const double pause = PollPolicy::pause_after(now_s() - t0);
    if (pause > 0) std::this_thread::sleep_for(std::chrono::duration<double>(pause));
  }
}

}  // namespace zinc
