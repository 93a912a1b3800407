// The Catch2 main of zinc_mpi_tests, the multi-rank tests run under mpirun (ctest mpi.np1 .. mpi.np4):
// MPI is initialised once for the whole run through collectives::MpiSession (which asks for
// MPI_THREAD_MULTIPLE), then every rank runs the same test cases in the same order.
//
// No run may hang: the tests enter every collective on all ranks in the same order, and as a
// last resort a watchdog aborts the whole job (MPI_Abort, exit code 124) when the run takes
// longer than ZINC_MPI_TEST_TIMEOUT_S seconds (default 100, below ctest's TIMEOUT of 120).
#define CATCH_CONFIG_RUNNER
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "catch.hpp"
#include "collectives/mpi_communicator.hpp"

namespace {

class Watchdog {
 public:
  Watchdog(int rank, int seconds) {
    thread_ = std::thread([this, rank, seconds] {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) return;
      std::fprintf(stderr, "zinc_mpi_tests: rank %d still running after %d s (a collective hangs?): aborting\n",
                   rank, seconds);
      std::fflush(stderr);
      zinc::collectives::MpiSession::abort(124);
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  zinc::collectives::MpiSession mpi(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const char* limit = std::getenv("ZINC_MPI_TEST_TIMEOUT_S");
  const int seconds = limit && std::atoi(limit) > 0 ? std::atoi(limit) : 100;
  int rc = 0;
  {
    Watchdog watchdog(rank, seconds);
    std::printf("zinc_mpi_tests: rank %d of %d, MPI thread level %d (MPI_THREAD_MULTIPLE = %d)\n", rank, size,
                zinc::collectives::MpiSession::thread_level(), MPI_THREAD_MULTIPLE);
    std::fflush(stdout);
    rc = Catch::Session().run(argc, argv);
  }
  // Every rank's exit status reaches mpirun: one failing rank fails the run.
  return rc;
}
