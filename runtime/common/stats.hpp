// Small statistics shared by the benchmarks (medians of repeated timings).
#pragma once

#include <algorithm>
#include <vector>

namespace zinc {

// The median (the mean of the two middle values for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + m, v.end());
  const double hi = v[m];
  if (v.size() % 2 == 1) return hi;
  return (*std::max_element(v.begin(), v.begin() + m) + hi) / 2.0;
}

}  // namespace zinc
