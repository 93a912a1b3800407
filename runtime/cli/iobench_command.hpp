// `zinc iobench`: the NVMe tier's read bandwidth against the raw O_DIRECT bandwidth of the
// same file and disk, measured by this binary (the goal: 85% of raw):
//   raw   the whole store file read with io_uring O_DIRECT in --nvme-block-size blocks
//   tier  every blob read as the ranks' shards would be (world size --ranks), through the
//         NVMe tier's disk stage (offload/shard_read_ahead.hpp: --readers threads,
//         a ring of --staging pinned buffers) over the NVMe SliceReader (aligned reads,
//         zero padding, page CRC-32C checks)
// Each is repeated --repeat times; the median is reported. O_DIRECT bypasses the page
// cache, so repeats read the device (or whatever caches below the guest).
#pragma once

#include <string>

namespace zinc::cli {

struct IoBenchOptions {
  std::string store;
  unsigned queue_depth = 16;
  std::string block_size = "1MiB";
  int ranks = 1;
  int readers = 2;   // read-ahead threads of the tier
  int staging = 2;   // staging buffers of its ring
  int repeat = 3;
  std::string json;
};

bool parse_iobench_options(int argc, char** argv, IoBenchOptions* out, std::string* help);
int run_iobench(const IoBenchOptions& opts);

}  // namespace zinc::cli
