// The pinned host -> device copy bandwidth of a Device, measured by the binary that then
// streams weights over the same link (the roofline's B_pcie): one pinned buffer copied
// with the Device's own async copy on its own stream, timed with events; warm-up first,
// the median of `repeats` copies reported.
#pragma once

#include <cstddef>

#include "offload/device.hpp"

namespace zinc::offload {

struct CopyBandwidth {
  double h2d_gbs = 0;   // pinned host -> device, GB/s (1e9 bytes per second)
  size_t bytes = 0;     // per copy
  int repeats = 0;
};

CopyBandwidth measure_h2d_bandwidth(Device& device, size_t bytes = size_t(1) << 30, int repeats = 5);

}  // namespace zinc::offload
