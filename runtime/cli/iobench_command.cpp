#include "runtime/cli/iobench_command.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/memory_arena.hpp"
#include "offload/nvme_reader.hpp"
#include "offload/pinned_pool.hpp"
#include "offload/shard_read_ahead.hpp"
#include "partition/shard.hpp"
#include "partition/store.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/output_file.hpp"
#include "runtime/common/stats.hpp"

namespace po = boost::program_options;

namespace zinc::cli {
namespace {

}  // namespace

bool parse_iobench_options(int argc, char** argv, IoBenchOptions* o, std::string* help) {
  po::options_description desc(
      "zinc iobench: NVMe tier read bandwidth vs raw O_DIRECT bandwidth of the same file\n"
      "usage: zinc iobench FILE.zinc.h5 [--nvme-block-size 1MiB] [--nvme-queue-depth 16] "
      "[--ranks N] [--repeat 3] [--json F]\noptions");
  desc.add_options()("help,h", "show this help")(
      "store", po::value<std::string>(&o->store)->required(), "the zinc store (positional)")(
      "nvme-queue-depth", po::value<unsigned>(&o->queue_depth)->default_value(16), "reads in flight")(
      "nvme-block-size", po::value<std::string>(&o->block_size)->default_value("1MiB"), "bytes per read")(
      "ranks", po::value<int>(&o->ranks)->default_value(1), "world size whose shards the tier reads")(
      "readers", po::value<int>(&o->readers)->default_value(2),
      "read-ahead reader threads of the tier, each with its own io_uring file (generate uses 2)")(
      "staging", po::value<int>(&o->staging)->default_value(2), "staging buffers of the tier's ring")(
      "repeat", po::value<int>(&o->repeat)->default_value(3), "repetitions (median reported)")(
      "json", po::value<std::string>(&o->json), "also write the results as JSON");
  po::positional_options_description pos;
  pos.add("store", 1);
  if (!parse_command(argc, argv, desc, &pos, "iobench", help, nullptr)) return false;
  if (o->ranks < 1 || o->repeat < 1) throw UsageError("--ranks and --repeat must be >= 1");
  if (o->readers < 1 || o->staging < o->readers) throw UsageError("need --readers >= 1 and --staging >= --readers");
  return true;
}

int run_iobench(const IoBenchOptions& o) {
  offload::UringOptions uo;
  uo.queue_depth = o.queue_depth;
  uo.block_bytes = offload::parse_bytes(o.block_size);
  const auto store = std::make_shared<const partition::StoreReader>(o.store);
  const auto& ms = store->manifests();

  // raw: the whole file, in big aligned reads
  offload::UringFile raw(o.store, uo);
  const uint64_t file_bytes = raw.size();
  offload::AlignedBuffer buf(offload::raw_read_chunk(uo));
  std::vector<double> raw_s;
  const auto raw_pass = [&] { raw_s.push_back(offload::time_raw_read(raw, file_bytes, buf)); };

  // tier: every shard of every blob for `ranks` ranks, read through the NVMe tier's disk
  // stage as generate runs it: ShardReadAhead (R readers, a ring of pinned staging buffers)
  // over the NVMe SliceReader (aligned reads, zero padding, page CRC-32C checks).
  std::vector<offload::ShardReadAhead::Read> cycle;
  size_t max_shard = 0;
  uint64_t tier_bytes = 0;
  for (size_t b = 0; b < ms.size(); ++b) {
    tier_bytes += ms[b].bytes;
    for (int rank = 0; rank < o.ranks; ++rank) {
      const auto range = partition::shard_range(ms[b].bytes, o.ranks, rank, partition::kPageBytes);
      cycle.push_back({b, range.offset, range.shard_bytes});
      max_shard = std::max(max_shard, range.shard_bytes);
    }
  }
  offload::PinnedPool pool(offload::mlock_pin, partition::round_up(max_shard, partition::kPageBytes) * o.staging);
  std::vector<uint8_t*> staging;
  for (int i = 0; i < o.staging; ++i) staging.push_back(pool.allocate(max_shard));
  // Raw and tier passes alternate, so a disk whose speed drifts (a VM's) affects both alike.
  std::vector<double> tier_s;
  for (int r = 0; r < o.repeat; ++r) {
    raw_pass();
    std::vector<offload::SliceReader> readers;
    for (int i = 0; i < o.readers; ++i) readers.push_back(offload::nvme_slice_reader(store, uo, nullptr));
    const double t0 = now_s();
    offload::ShardReadAhead ahead(std::move(readers), cycle, staging);
    double b0 = 0, b1 = 0;
    for (uint64_t k = 0; k < cycle.size(); ++k) {
      ahead.get(k, &b0, &b1);
      ahead.release(k);
    }
    tier_s.push_back(seconds_since(t0));
  }  // the ring's readers run on past the cycle's end; they are stopped, not timed
  const double raw_gbs = file_bytes / median(raw_s) / 1e9;
  const double tier_gbs = tier_bytes / median(tier_s) / 1e9;
  std::printf("%-6s %14s %10s %10s\n", "read", "bytes", "median_s", "GB/s");
  std::printf("%-6s %14llu %10.3f %10.3f\n", "raw", static_cast<unsigned long long>(file_bytes),
              median(raw_s), raw_gbs);
  std::printf("%-6s %14llu %10.3f %10.3f\n", "tier", static_cast<unsigned long long>(tier_bytes),
              median(tier_s), tier_gbs);
  std::printf("tier / raw = %.1f%%  (queue depth %u, block %s, %d rank shards, %d readers, %d staging, "
              "%d repeats)\n",
              100.0 * tier_gbs / raw_gbs, uo.queue_depth, offload::format_bytes(uo.block_bytes).c_str(),
              o.ranks, o.readers, o.staging, o.repeat);
  if (!o.json.empty()) {
    nlohmann::json j{{"store", o.store},          {"file_bytes", file_bytes}, {"raw_gbs", raw_gbs},
                     {"tier_bytes", tier_bytes},  {"tier_gbs", tier_gbs},
                     {"ratio", tier_gbs / raw_gbs}, {"queue_depth", uo.queue_depth},
                     {"block_bytes", uo.block_bytes}, {"ranks", o.ranks}, {"readers", o.readers},
                     {"staging", o.staging}, {"repeat", o.repeat}};
    write_output_file(o.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace zinc::cli
