// partition/shard: ZeRO-3 shard arithmetic (pure functions, no device).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "partition/shard.hpp"
#include "runtime/common/error.hpp"
#include "unit/test_util.hpp"

using namespace zinc::partition;

namespace {

// Checks every invariant of the N shards of a B-byte blob.
void check_shards(size_t blob, int world, size_t align) {
  INFO("blob " << blob << " bytes, world " << world << ", align " << align);
  const size_t s = shard_bytes(blob, world, align);
  REQUIRE(s > 0);
  REQUIRE(s % align == 0);
  const size_t padded = static_cast<size_t>(world) * s;
  REQUIRE(padded >= blob);
  // S = round_up(ceil(B / N), align) < B / N + 1 + align, so the padding stays under N * align
  // (exactly N * align for an empty blob, whose shards are all padding).
  if (blob > 0) {
    REQUIRE(padded - blob < static_cast<size_t>(world) * align);
    REQUIRE(s - align < (blob + world - 1) / world);  // no smaller multiple of align would do
  } else {
    REQUIRE(s == align);
  }

  size_t valid_sum = 0;
  bool seen_short = false;
  std::vector<uint8_t> owners(blob <= (4u << 20) ? blob : 0, 0);
  for (int r = 0; r < world; ++r) {
    const ShardRange range = shard_range(blob, world, r, align);
    REQUIRE(range.shard_bytes == s);
    REQUIRE(range.padded_bytes == padded);
    REQUIRE(range.offset == static_cast<size_t>(r) * s);
    REQUIRE(range.valid_bytes <= s);
    REQUIRE(range.offset + range.valid_bytes <= std::max(blob, range.offset));
    if (seen_short) REQUIRE(range.valid_bytes == 0);  // only tail shards are short or empty
    if (range.valid_bytes < s) seen_short = true;
    valid_sum += range.valid_bytes;
    for (size_t i = 0; i < range.valid_bytes && !owners.empty(); ++i) ++owners[range.offset + i];
  }
  REQUIRE(valid_sum == blob);
  for (size_t i = 0; i < owners.size(); ++i) {
    if (owners[i] != 1) FAIL("byte " << i << " is owned by " << int(owners[i]) << " shards");
  }
}

}  // namespace

TEST_CASE("shards cover odd-sized blobs exactly once", "[shard]") {
  const size_t sizes[] = {0,     1,     2,       4095,         4096,    4097,    8191,
                          12288, 65537, 1000003, 4096 * 5 + 7, 1 << 20, 3 << 20, 70000000123ull};
  const size_t aligns[] = {1, 256, kPageBytes, 12288};
  for (size_t blob : sizes) {
    for (size_t align : aligns) {
      for (int world = 1; world <= 8; ++world) check_shards(blob, world, align);
    }
  }
}

TEST_CASE("shard sizes by hand, empty tail shards", "[shard]") {
  // 4097 bytes on 8 ranks: one page each, the second rank holds the last byte, the rest pad.
  REQUIRE(shard_bytes(4097, 8, kPageBytes) == 4096);
  REQUIRE(shard_range(4097, 8, 0, kPageBytes).valid_bytes == 4096);
  REQUIRE(shard_range(4097, 8, 1, kPageBytes).valid_bytes == 1);
  for (int r = 2; r < 8; ++r) {
    const ShardRange range = shard_range(4097, 8, r, kPageBytes);
    REQUIRE(range.valid_bytes == 0);
    REQUIRE(range.offset == static_cast<size_t>(r) * 4096);
  }
  REQUIRE(shard_range(4097, 8, 7, kPageBytes).padded_bytes == 8 * 4096);

  REQUIRE(shard_bytes(1000003, 3, kPageBytes) == 335872);  // ceil(333334.33) -> 82 pages
  REQUIRE(shard_bytes(8192, 2, kPageBytes) == 4096);
  REQUIRE(shard_bytes(8193, 2, kPageBytes) == 8192);
  REQUIRE(shard_bytes(0, 4, kPageBytes) == kPageBytes);  // an empty blob: one padded page each
  REQUIRE(shard_range(0, 4, 3, kPageBytes).valid_bytes == 0);
  REQUIRE(shard_bytes(100, 1, 12288) == 12288);
}

TEST_CASE("shard_alignment is lcm(4096, group bytes)", "[shard]") {
  REQUIRE(shard_alignment(32) == 4096);   // nf4, group 64
  REQUIRE(shard_alignment(24) == 12288);  // int4, group 48
  REQUIRE(shard_alignment(1) == 4096);
  REQUIRE(shard_alignment(3) == 12288);
  REQUIRE(shard_alignment(4096) == 4096);
  REQUIRE(shard_alignment(8192) == 8192);
  REQUIRE(shard_alignment(6144) == 12288);
  REQUIRE_THROWS_WITH(shard_alignment(0), ZINC_CONTAINS("must be > 0"));
}

TEST_CASE("round_up", "[shard]") {
  REQUIRE(round_up(0, 4096) == 0);
  REQUIRE(round_up(1, 4096) == 4096);
  REQUIRE(round_up(4096, 4096) == 4096);
  REQUIRE(round_up(4097, 4096) == 8192);
  REQUIRE(round_up(10, 3) == 12);
  REQUIRE_THROWS_WITH(round_up(5, 0), ZINC_CONTAINS("must be > 0"));
  REQUIRE_THROWS_WITH(round_up(std::numeric_limits<size_t>::max(), 4096),
                      ZINC_CONTAINS("overflows"));
}

TEST_CASE("shard arithmetic rejects bad arguments", "[shard]") {
  REQUIRE_THROWS_WITH(shard_bytes(100, 0, kPageBytes), ZINC_CONTAINS("world size 0"));
  REQUIRE_THROWS_WITH(shard_bytes(100, -3, kPageBytes), ZINC_CONTAINS("world size -3"));
  REQUIRE_THROWS_WITH(shard_bytes(100, 1025, kPageBytes), ZINC_CONTAINS("1..1024"));
  REQUIRE_NOTHROW(shard_bytes(100, 1024, kPageBytes));
  REQUIRE_THROWS_WITH(shard_bytes(100, 2, 0), ZINC_CONTAINS("alignment must be > 0"));
  REQUIRE_THROWS_WITH(shard_range(100, 4, 4, kPageBytes), ZINC_CONTAINS("rank 4"));
  REQUIRE_THROWS_WITH(shard_range(100, 4, -1, kPageBytes), ZINC_CONTAINS("rank -1"));
  REQUIRE_THROWS_WITH(shard_range(100, 0, 0, kPageBytes), ZINC_CONTAINS("world size"));
  REQUIRE_THROWS_AS(shard_bytes(std::numeric_limits<size_t>::max(), 1, kPageBytes), zinc::Error);
  REQUIRE_THROWS_AS(shard_bytes(std::numeric_limits<size_t>::max() - 5, 8, kPageBytes),
                    zinc::Error);
}
