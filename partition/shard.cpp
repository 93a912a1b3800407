#include "partition/shard.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>

#include "runtime/common/error.hpp"

namespace zinc::partition {

namespace {

constexpr int kMaxWorld = 1024;

void check_world(int world) {
  ZINC_CHECK(world >= 1 && world <= kMaxWorld,
             "shard arithmetic: world size " << world << " is outside 1.." << kMaxWorld);
}

}  // namespace

size_t round_up(size_t x, size_t multiple) {
  ZINC_CHECK(multiple > 0, "round_up: the multiple must be > 0");
  const size_t rem = x % multiple;
  if (rem == 0) return x;
  ZINC_CHECK(x <= std::numeric_limits<size_t>::max() - (multiple - rem),
             "round_up: " << x << " rounded up to a multiple of " << multiple << " overflows");
  return x + (multiple - rem);
}

size_t shard_bytes(size_t blob_bytes, int world, size_t align) {
  check_world(world);
  ZINC_CHECK(align > 0, "shard arithmetic: the shard alignment must be > 0");
  const size_t n = static_cast<size_t>(world);
  const size_t per_rank = blob_bytes / n + (blob_bytes % n != 0 ? 1 : 0);  // ceil(B / N)
  size_t s = round_up(per_rank, align);
  if (s == 0) s = align;  // an empty blob still gets one aligned (all-padding) shard per rank
  ZINC_CHECK(s <= std::numeric_limits<size_t>::max() / n,
             "shard arithmetic: " << world << " shards of " << s << " bytes overflow size_t");
  return s;
}

ShardRange shard_range(size_t blob_bytes, int world, int rank, size_t align) {
  const size_t s = shard_bytes(blob_bytes, world, align);  // checks world and align
  ZINC_CHECK(rank >= 0 && rank < world,
             "shard arithmetic: rank " << rank << " is outside [0, " << world << ")");
  ShardRange r;
  r.shard_bytes = s;
  r.offset = static_cast<size_t>(rank) * s;
  r.valid_bytes = r.offset >= blob_bytes ? 0 : std::min(s, blob_bytes - r.offset);
  r.padded_bytes = static_cast<size_t>(world) * s;
  return r;
}

size_t shard_alignment(size_t group_bytes) {
  ZINC_CHECK(group_bytes > 0, "shard_alignment: the quant group's byte size must be > 0");
  const size_t factor = kPageBytes / std::gcd(kPageBytes, group_bytes);
  ZINC_CHECK(group_bytes <= std::numeric_limits<size_t>::max() / factor,
             "shard_alignment: lcm(" << kPageBytes << ", " << group_bytes << ") overflows");
  return factor * group_bytes;  // lcm(4096, group_bytes)
}

}  // namespace zinc::partition
