// `zinc devbench`: the device's own ceilings, its dequantize and attention kernels,
// measured by this binary on the chosen backend (the numbers the roofline and the speed
// work compare to):
//   h2d / d2h  pinned host <-> device copies (--bytes, the weight stream's link)
//   d2d        a device-to-device copy, counted as bytes read + bytes written
//   dequant    Backend::dequantize of one [--rows, --cols] matrix per stored format into the
//              compute dtype, counted as packed bytes read + output bytes written, and
//              compared with d2d (the kernel's fraction of the memory's speed)
//   attn       (CUDA backend only) prefill attention, causal, B=4 H=64 hd=128 T=512 with
//              KVH 8 and 64, in fp16 and bf16: the kernel Backend::attention picks (the
//              tensor-core kernel there) against the SIMT rows kernel on the same inputs,
//              in ms and TFLOP/s (4 B H T^2 hd / 2 FLOP), with the largest |difference|
//              of their outputs
// Each is timed with events on the backend's compute stream: one warm-up, then the median
// of --repeat runs. Random codes with valid fp16 scales (the speed does not depend on the
// values). The default shape is LLaMA-2-70B's MLP matrix (8192 x 28672).
#pragma once

#include <string>

namespace zinc::cli {

struct DevBenchOptions {
  std::string backend = "auto";
  std::string dtype = "auto";
  std::string bytes = "1GiB";  // per copy
  long rows = 8192, cols = 28672;
  int group_size = 64;
  int repeat = 5;
  int local_rank = 0;          // filled by the CLI: the rank's GPU
  std::string json;
};

bool parse_devbench_options(int argc, char** argv, DevBenchOptions* out, std::string* help);
int run_devbench(const DevBenchOptions& opts);

}  // namespace zinc::cli
