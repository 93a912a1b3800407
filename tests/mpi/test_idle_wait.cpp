// A rank waiting in a collective for a late peer does not keep a core busy: the last rank
// sleeps before joining each collective, and every other rank measures the CPU time its
// thread spent inside the call (CLOCK_THREAD_CPUTIME_ID) against the wall time. With
// MPI's blocking calls the waiting thread spun the whole time (about 100% of a core, or
// its share of an oversubscribed one); polled with pauses (common/poll_wait.hpp) it uses a
// few percent. Every collective of MpiCommunicator is covered, and duplicate().
#include <time.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "collectives/mpi_communicator.hpp"
#include "mpi/mpi_test_util.hpp"

using namespace zinc;

namespace {

constexpr double kLateS = 0.4;  // how long the last rank keeps the others waiting

double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs `call` on every rank, the last one kLateS late; returns this rank's CPU fraction of
// the wall time it spent in the call, or -1 where the call did not wait (the late rank; a
// gather's non-root ranks, whose sends complete at once).
double busy_fraction_waiting(collectives::MpiCommunicator& comm, const std::function<void()>& call) {
  const bool late = comm.rank() == comm.size() - 1;
  comm.barrier();
  if (late) std::this_thread::sleep_for(std::chrono::duration<double>(kLateS));
  const double c0 = thread_cpu_s(), w0 = wall_s();
  call();
  const double cpu = thread_cpu_s() - c0, wall = wall_s() - w0;
  return late || wall < kLateS / 2 ? -1.0 : cpu / wall;
}

}  // namespace

TEST_CASE("a rank waiting in a collective for a late peer does not spin", "[mpi][idle]") {
  collectives::MpiCommunicator comm;
  if (comm.size() == 1) {
    mpitest::note(comm, "idle waits: one rank waits for nobody (skipped)");
    return;
  }
  std::vector<uint64_t> buf(4096 / sizeof(uint64_t) * comm.size());
  const Stream no_device;
  std::unique_ptr<collectives::Communicator> dup;
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"barrier", [&] { comm.barrier(); }},
      {"allreduce_max", [&] { comm.allreduce_max({1.0, 2.0}); }},
      {"allreduce_sum", [&] { comm.allreduce_sum({1.0}); }},
      {"gather_varlen", [&] { comm.gather_varlen({comm.rank()}, 0); }},
      {"all_gather_inplace", [&] { comm.all_gather_inplace(buf.data(), 4096, no_device); }},
      {"broadcast_bytes", [&] { comm.broadcast_bytes(buf.data(), 64, comm.size() - 1); }},
      {"duplicate", [&] { dup = comm.duplicate(); }},
  };
  for (const auto& [name, call] : calls) {
    const double busy = busy_fraction_waiting(comm, call);
    const double worst = comm.allreduce_max({busy})[0];
    INFO(name << ": a waiting rank's thread was busy " << 100 * worst << "% of the wait (" << comm.size()
              << " ranks)");
    CHECK(worst >= 0);  // rank 0 waited in every one of these calls
    CHECK(worst < 0.25);
    mpitest::note(comm, name + ": waiting rank busy " + std::to_string(100 * worst) + "% of " +
                            std::to_string(kLateS) + " s");
  }
}
