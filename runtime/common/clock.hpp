// The one clock zinc times things with: steady (monotonic) seconds as a double.
#pragma once

#include <chrono>

namespace zinc {

// Seconds on the steady clock since an arbitrary epoch: subtract two readings.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds since `t0` (a now_s() reading).
inline double seconds_since(double t0) { return now_s() - t0; }

}  // namespace zinc
