// Helpers of the multi-rank tests: verifiable values that every rank can predict (nccl-tests'
// idea: element i of rank r's data is a hash of (r, i)), the sum of a local count over all
// ranks, and rank-0-only notes. Every helper that communicates is a collective: all ranks call it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "collectives/communicator.hpp"
#include "runtime/common/hash.hpp"

namespace zinc::mpitest {

// The stream key of rank r's data in round `round` of test `salt`.
inline uint64_t key_of(uint64_t salt, int rank, uint64_t round = 0) {
  return splitmix64_mix(salt * 0x100000001b3ull + (static_cast<uint64_t>(rank) << 40) + round);
}

// Word i of rank r's data.
inline uint64_t expected_word(uint64_t salt, int rank, uint64_t round, uint64_t i) {
  return splitmix64_at(key_of(salt, rank, round), i);
}

// A value no rank's data holds at word i (filled where nothing has been gathered yet).
inline uint64_t poison_word(uint64_t i) { return 0xdeadbeefcafef00dull ^ i; }

// The sum of `local` over all ranks (collective).
inline double sum_over_ranks(collectives::Communicator& comm, double local) {
  return comm.allreduce_sum({local})[0];
}

// Printed once (by rank 0): skips and facts worth seeing in ctest's output.
inline void note(const collectives::Communicator& comm, const std::string& text) {
  if (comm.rank() != 0) return;
  std::printf("[np %d] %s\n", comm.size(), text.c_str());
  std::fflush(stdout);
}

}  // namespace zinc::mpitest
