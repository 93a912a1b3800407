// ZeRO-3 shard arithmetic: pure functions, no I/O.
//
// A blob of B bytes is split into N equal shards of S bytes, S a multiple of `align`
// (4 KiB, and of the quant group's byte size), with N*S >= B: the last shards are padded
// with zeros. Rank r owns bytes [r*S, (r+1)*S) of the padded blob; the part of it that
// lies inside the real blob is [r*S, min((r+1)*S, B)) and may be empty.
#pragma once

#include <cstddef>

namespace zinc::partition {

constexpr size_t kPageBytes = 4096;

struct ShardRange {
  size_t shard_bytes = 0;  // S
  size_t offset = 0;       // r * S
  size_t valid_bytes = 0;  // bytes of [offset, offset + S) inside the blob (<= S, may be 0)
  size_t padded_bytes = 0; // N * S
};

// S = round_up(ceil(B / N), align), and S = align when B = 0 (every shard is a non-empty,
// all-padding buffer). world must be in 1..1024, rank in [0, world) and align > 0 (use
// shard_alignment()); anything else, or a size that overflows size_t, throws zinc::Error.
size_t shard_bytes(size_t blob_bytes, int world, size_t align);
ShardRange shard_range(size_t blob_bytes, int world, int rank, size_t align);
// lcm(4096, group_bytes): a shard boundary never splits a page or a quant group.
size_t shard_alignment(size_t group_bytes);
size_t round_up(size_t x, size_t multiple);

}  // namespace zinc::partition
