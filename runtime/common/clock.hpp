// The one clock zinc times things with: steady (monotonic) seconds as a double.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace zinc {

// Seconds on the steady clock since an arbitrary epoch: subtract two readings.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds since `t0` (a now_s() reading).
inline double seconds_since(double t0) { return now_s() - t0; }

// The wall clock now as ISO 8601 UTC ("2026-12-01T15:03:42Z"), for result headers.
inline std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace zinc
