#include "offload/device_bandwidth.hpp"

#include <vector>

#include "runtime/common/stats.hpp"

namespace zinc::offload {

CopyBandwidth measure_h2d_bandwidth(Device& device, size_t bytes, int repeats) {
  CopyBandwidth r;
  r.bytes = bytes;
  r.repeats = repeats;
  HostBuffer host = device.alloc_host(bytes, "H2D bandwidth probe (host)");
  DeviceBuffer dev = device.alloc(bytes, "H2D bandwidth probe (device)");
  Stream s = device.create_stream();
  Event a = device.create_event(), b = device.create_event();
  std::vector<double> seconds;
  for (int i = 0; i <= repeats; ++i) {  // copy 0 is the warm-up
    a.record(s);
    device.copy_to_device(dev.data(), host.data(), bytes, s);
    b.record(s);
    b.synchronize();
    if (i > 0) seconds.push_back(Event::elapsed_s(a, b));
  }
  const double t = median(seconds);
  r.h2d_gbs = t > 0 ? static_cast<double>(bytes) / t / 1e9 : 0.0;
  return r;
}

}  // namespace zinc::offload
