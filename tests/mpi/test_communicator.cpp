// MpiCommunicator under real mpirun, with verifiable data (nccl-tests' verifiable buffers): word i
// of rank r's data is splitmix64_at(key(r), i), so every rank can check every element it receives.
//  - all_gather_inplace of shards of 4 KiB, 64 KiB and 1 MiB + 4 KiB, on the CPU backend's compute
//    stream and on a stream of no device; guard words past the buffer stay untouched; a shard of
//    0 bytes (0 pages) is a no-op; a shard that is not a multiple of 4096 throws zinc::Error (on
//    every rank, before any MPI call) and the communicator still works afterwards;
//  - a duplicate() used from a second thread (all-gathers) while the main thread reduces on the
//    original (needs MPI_THREAD_MULTIPLE: skipped with a note otherwise);
//  - gather_varlen to rank 0 and to the last rank with rank-dependent lengths (r + 1 values,
//    1000 (r + 1) values, and empty contributions);
//  - allreduce_sum / allreduce_max of small vectors against their closed forms; barrier.
// Wrong elements are counted on each rank and summed over all ranks, so a CHECK fails everywhere.
// No REQUIRE precedes a collective: every rank makes the same calls in the same order.
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "collectives/mpi_communicator.hpp"
#include "mpi/mpi_test_util.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/common/error.hpp"
#include "unit/test_util.hpp"

using namespace zinc;
using zinc::mpitest::expected_word;
using zinc::mpitest::poison_word;
using zinc::mpitest::sum_over_ranks;

namespace {

constexpr size_t kGuardWords = 512;  // past the gathered bytes: must stay poisoned

// One verifiable all-gather into `buf` (resized to size() shards plus the guard): poisons it,
// writes this rank's shard, gathers, and returns the words this rank finds wrong (shards and guard).
size_t gather_round(collectives::Communicator& comm, std::vector<uint64_t>& buf, size_t shard_bytes,
                    const Stream& stream, uint64_t salt, uint64_t round) {
  const size_t words = shard_bytes / sizeof(uint64_t);
  const int n = comm.size(), r = comm.rank();
  buf.resize(words * static_cast<size_t>(n) + kGuardWords);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = poison_word(i);
  uint64_t* mine = buf.data() + static_cast<size_t>(r) * words;
  for (size_t i = 0; i < words; ++i) mine[i] = expected_word(salt, r, round, i);
  comm.all_gather_inplace(buf.data(), shard_bytes, stream);
  size_t wrong = 0;
  for (int q = 0; q < n; ++q) {
    const uint64_t* shard = buf.data() + static_cast<size_t>(q) * words;
    for (size_t i = 0; i < words; ++i) wrong += shard[i] != expected_word(salt, q, round, i);
  }
  for (size_t i = words * static_cast<size_t>(n); i < buf.size(); ++i) wrong += buf[i] != poison_word(i);
  return wrong;
}

}  // namespace

TEST_CASE("all_gather_inplace: every rank holds every rank's verifiable shard", "[mpi][allgather]") {
  collectives::MpiCommunicator comm;
  runtime::CpuBackend be;
  const Stream no_device;  // a stream of no device: synchronize() is a no-op
  const size_t sizes[] = {4096, 64 * 1024, (1u << 20) + 4096};
  std::vector<uint64_t> buf;
  for (size_t shard : sizes) {
    double wrong = 0;
    for (uint64_t round = 0; round < 3; ++round)
      wrong += static_cast<double>(
          gather_round(comm, buf, shard, round % 2 == 0 ? be.compute_stream() : no_device, shard, round));
    const double total_wrong = sum_over_ranks(comm, wrong);
    INFO("shard " << shard << " bytes, " << comm.size() << " ranks, rank " << comm.rank());
    CHECK(total_wrong == 0);
  }
  mpitest::note(comm, "all_gather_inplace checked with shards of 4096, 65536 and 1052672 bytes");
}

TEST_CASE("all_gather_inplace: 0 pages is a no-op, a partial page throws everywhere", "[mpi][allgather]") {
  collectives::MpiCommunicator comm;
  runtime::CpuBackend be;
  // 0 bytes is a multiple of 4096: nothing moves, the buffer keeps its bytes.
  std::vector<uint64_t> buf(kGuardWords);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = poison_word(i);
  std::string error;
  try {
    comm.all_gather_inplace(buf.data(), 0, be.compute_stream());
  } catch (const std::exception& e) {
    error = e.what();
  }
  size_t changed = 0;
  for (size_t i = 0; i < buf.size(); ++i) changed += buf[i] != poison_word(i);
  const std::vector<double> zero =
      comm.allreduce_sum({error.empty() ? 0.0 : 1.0, static_cast<double>(changed)});
  INFO("rank " << comm.rank() << ": " << error);
  CHECK(zero[0] == 0);  // no rank threw
  CHECK(zero[1] == 0);  // no rank's buffer changed

  // Not a multiple of 4096: zinc::Error on every rank, before any MPI call (so nobody waits).
  for (size_t bad : {size_t(1), size_t(8), size_t(100), size_t(4095), size_t(4097), size_t(8192 + 512)}) {
    std::vector<uint64_t> big((bad + 7) / 8 * static_cast<size_t>(comm.size()) + 8);
    CHECK_THROWS_AS(comm.all_gather_inplace(big.data(), bad, be.compute_stream()), zinc::Error);
    CHECK_THROWS_WITH(comm.all_gather_inplace(big.data(), bad, be.compute_stream()),
                      ZINC_CONTAINS("not a multiple of 4096"));
  }
  // The communicator is still in step on every rank.
  const double wrong = static_cast<double>(gather_round(comm, buf, 8192, be.compute_stream(), 77, 0));
  CHECK(sum_over_ranks(comm, wrong) == 0);
}

TEST_CASE("duplicate(): all-gathers on a second thread while the main thread reduces", "[mpi][threads]") {
  collectives::MpiCommunicator comm;
  // Every rank decides the same way (a skip on one rank only would leave the others waiting).
  const bool multiple = collectives::MpiSession::thread_level() >= MPI_THREAD_MULTIPLE;
  const double lacking = comm.allreduce_max({multiple ? 0.0 : 1.0})[0];
  if (lacking != 0) {
    mpitest::note(comm, "skipped the concurrent duplicate() test: MPI thread level " +
                            std::to_string(collectives::MpiSession::thread_level()) +
                            " on some rank, below MPI_THREAD_MULTIPLE");
    return;
  }
  std::unique_ptr<collectives::Communicator> dup = comm.duplicate();  // collective
  CHECK(dup->rank() == comm.rank());
  CHECK(dup->size() == comm.size());
  const int n = comm.size(), r = comm.rank();
  constexpr int kGathers = 150, kReduces = 1500;
  constexpr uint64_t kSalt = 0x5eed;

  std::atomic<size_t> gather_wrong{0};
  std::string gather_error;
  std::thread gatherer([&] {
    runtime::CpuBackend be;
    std::vector<uint64_t> buf;
    try {
      for (int k = 0; k < kGathers; ++k)
        gather_wrong += gather_round(*dup, buf, k % 3 == 0 ? 65536 : 4096, be.compute_stream(), kSalt, k);
    } catch (const std::exception& e) {
      gather_error = e.what();
    }
  });
  // Meanwhile: reductions on the original, each checked against its closed form.
  size_t reduce_wrong = 0;
  std::string reduce_error;
  try {
    for (int k = 0; k < kReduces; ++k) {
      const double low = static_cast<double>(expected_word(kSalt, r, k, 0) & 0xfffff);  // exact in a double
      const std::vector<double> s = comm.allreduce_sum({static_cast<double>(r), static_cast<double>(k), low});
      double want_low = 0;
      for (int q = 0; q < n; ++q) want_low += static_cast<double>(expected_word(kSalt, q, k, 0) & 0xfffff);
      reduce_wrong += s[0] != n * (n - 1) / 2.0;
      reduce_wrong += s[1] != static_cast<double>(n) * k;
      reduce_wrong += s[2] != want_low;
    }
  } catch (const std::exception& e) {
    reduce_error = e.what();
  }
  gatherer.join();
  dup->barrier();  // the duplicate, handed back to the main thread, still works
  const std::vector<double> totals =
      comm.allreduce_sum({static_cast<double>(gather_wrong.load()), static_cast<double>(reduce_wrong),
                          gather_error.empty() && reduce_error.empty() ? 0.0 : 1.0});
  INFO("rank " << r << ": gather error '" << gather_error << "', reduce error '" << reduce_error << "'");
  CHECK(totals[0] == 0);  // wrong gathered words, all ranks
  CHECK(totals[1] == 0);  // wrong reductions, all ranks
  CHECK(totals[2] == 0);  // ranks where a collective threw
  mpitest::note(comm, "duplicate(): checked " + std::to_string(kGathers) + " gathers beside " +
                          std::to_string(kReduces) + " reductions");
}

TEST_CASE("gather_varlen: the root gets every rank's values in rank order", "[mpi][gather]") {
  collectives::MpiCommunicator comm;
  const int n = comm.size(), r = comm.rank();
  auto value = [](uint64_t salt, int rank, size_t i) {
    return static_cast<int32_t>(static_cast<uint32_t>(expected_word(salt, rank, 0, i)));
  };
  // Lengths as a function of the rank: r + 1, 1000 (r + 1), odd ranks only, none at all.
  auto length = [](int kind, int rank) -> size_t {
    switch (kind) {
      case 0: return static_cast<size_t>(rank) + 1;
      case 1: return 1000 * (static_cast<size_t>(rank) + 1);
      case 2: return rank % 2 == 1 ? static_cast<size_t>(rank) : 0;
      default: return 0;
    }
  };
  std::vector<int> roots{0};
  if (n > 1) roots.push_back(n - 1);
  for (int kind = 0; kind < 4; ++kind)
    for (int root : roots) {
      const uint64_t salt = 1000 + static_cast<uint64_t>(kind);
      std::vector<int32_t> mine(length(kind, r));
      for (size_t i = 0; i < mine.size(); ++i) mine[i] = value(salt, r, i);
      std::vector<std::vector<int32_t>> got;
      std::string error;
      try {
        got = comm.gather_varlen(mine, root);
      } catch (const std::exception& e) {
        error = e.what();
      }
      size_t wrong = 0;
      if (r == root) {
        wrong += got.size() != static_cast<size_t>(n);
        for (int q = 0; q < n && q < static_cast<int>(got.size()); ++q) {
          wrong += got[q].size() != length(kind, q);
          for (size_t i = 0; i < got[q].size(); ++i) wrong += got[q][i] != value(salt, q, i);
        }
      } else {
        wrong += !got.empty();  // other ranks get {}
      }
      const std::vector<double> totals =
          comm.allreduce_sum({static_cast<double>(wrong), error.empty() ? 0.0 : 1.0});
      INFO("lengths kind " << kind << ", root " << root << ", rank " << r << ": " << error);
      CHECK(totals[0] == 0);
      CHECK(totals[1] == 0);
    }
}

TEST_CASE("allreduce_sum / allreduce_max match their closed forms", "[mpi][allreduce]") {
  collectives::MpiCommunicator comm;
  const int n = comm.size(), r = comm.rank();
  const double rd = r, nd = n;
  comm.barrier();
  // Small metric vectors: r, r^2, -r, 1, and a half (exact sums of binary fractions).
  const std::vector<double> mine{rd, rd * rd, -rd, 1.0, 0.5 * rd};
  const std::vector<double> sum = comm.allreduce_sum(mine);
  const std::vector<double> max = comm.allreduce_max(mine);
  const std::vector<double> want_sum{nd * (nd - 1) / 2, (nd - 1) * nd * (2 * nd - 1) / 6, -nd * (nd - 1) / 2,
                                     nd, nd * (nd - 1) / 4};
  const std::vector<double> want_max{nd - 1, (nd - 1) * (nd - 1), 0.0, 1.0, 0.5 * (nd - 1)};
  CHECK(sum == want_sum);
  CHECK(max == want_max);
  // A longer vector: element i of rank r is i + r (sum n i + n(n-1)/2, max i + n - 1) and a
  // verifiable value below 2^20 (sum and max computed from every rank's value).
  constexpr size_t kLen = 4096;
  std::vector<double> lin(kLen), hashed(kLen);
  for (size_t i = 0; i < kLen; ++i) {
    lin[i] = static_cast<double>(i) + rd;
    hashed[i] = static_cast<double>(expected_word(31, r, 0, i) & 0xfffff);
  }
  const std::vector<double> lin_sum = comm.allreduce_sum(lin), lin_max = comm.allreduce_max(lin);
  const std::vector<double> h_sum = comm.allreduce_sum(hashed), h_max = comm.allreduce_max(hashed);
  size_t wrong = 0;
  for (size_t i = 0; i < kLen; ++i) {
    double s = 0, m = 0;
    for (int q = 0; q < n; ++q) {
      const double v = static_cast<double>(expected_word(31, q, 0, i) & 0xfffff);
      s += v;
      m = std::max(m, v);
    }
    wrong += lin_sum[i] != nd * static_cast<double>(i) + nd * (nd - 1) / 2;
    wrong += lin_max[i] != static_cast<double>(i) + nd - 1;
    wrong += h_sum[i] != s;
    wrong += h_max[i] != m;
  }
  CHECK(wrong == 0);  // every rank computes the same closed forms: no further reduction needed
  // An empty vector reduces to an empty vector.
  CHECK(comm.allreduce_sum({}).empty());
  CHECK(comm.allreduce_max({}).empty());
  comm.barrier();
}
