#include "runtime/cli/iobench_command.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/memory_arena.hpp"
#include "partition/shard.hpp"
#include "partition/store.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/model/loader.hpp"

namespace po = boost::program_options;

namespace zinc::cli {
namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

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
      "repeat", po::value<int>(&o->repeat)->default_value(3), "repetitions (median reported)")(
      "json", po::value<std::string>(&o->json), "also write the results as JSON");
  po::positional_options_description pos;
  pos.add("store", 1);
  if (!parse_command(argc, argv, desc, &pos, "iobench", help, nullptr)) return false;
  if (o->ranks < 1 || o->repeat < 1) throw UsageError("--ranks and --repeat must be >= 1");
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
  const size_t chunk = std::max<size_t>(uo.block_bytes * uo.queue_depth, 64u << 20);
  offload::AlignedBuffer buf(chunk);
  std::vector<double> raw_s;
  for (int r = 0; r < o.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t pos = 0; pos < file_bytes; pos += chunk) raw.read(pos, chunk, buf.data(), pos);
    raw_s.push_back(seconds(t0));
  }

  // tier: every shard of every blob for `ranks` ranks, as Tier::Nvme reads them
  const runtime::SliceReader tier = runtime::nvme_slice_reader(store, uo, nullptr);
  size_t max_shard = 0;
  uint64_t tier_bytes = 0;
  for (const auto& m : ms) {
    max_shard = std::max(max_shard, partition::shard_range(m.bytes, o.ranks, 0, partition::kPageBytes).shard_bytes);
    tier_bytes += m.bytes;
  }
  offload::AlignedBuffer staging(max_shard);
  std::vector<double> tier_s;
  for (int r = 0; r < o.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < ms.size(); ++b) {
      for (int rank = 0; rank < o.ranks; ++rank) {
        const auto range = partition::shard_range(ms[b].bytes, o.ranks, rank, partition::kPageBytes);
        tier(b, range.offset, range.shard_bytes, staging.data());
      }
    }
    tier_s.push_back(seconds(t0));
  }
  const double raw_gbs = file_bytes / median(raw_s) / 1e9;
  const double tier_gbs = tier_bytes / median(tier_s) / 1e9;
  std::printf("%-6s %14s %10s %10s\n", "read", "bytes", "median_s", "GB/s");
  std::printf("%-6s %14llu %10.3f %10.3f\n", "raw", static_cast<unsigned long long>(file_bytes),
              median(raw_s), raw_gbs);
  std::printf("%-6s %14llu %10.3f %10.3f\n", "tier", static_cast<unsigned long long>(tier_bytes),
              median(tier_s), tier_gbs);
  std::printf("tier / raw = %.1f%%  (queue depth %u, block %s, %d rank shards, %d repeats)\n",
              100.0 * tier_gbs / raw_gbs, uo.queue_depth, offload::format_bytes(uo.block_bytes).c_str(),
              o.ranks, o.repeat);
  if (!o.json.empty()) {
    nlohmann::json j{{"store", o.store},          {"file_bytes", file_bytes}, {"raw_gbs", raw_gbs},
                     {"tier_bytes", tier_bytes},  {"tier_gbs", tier_gbs},
                     {"ratio", tier_gbs / raw_gbs}, {"queue_depth", uo.queue_depth},
                     {"block_bytes", uo.block_bytes}, {"ranks", o.ranks}, {"repeat", o.repeat}};
    std::ofstream(o.json) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace zinc::cli
