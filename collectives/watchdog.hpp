// The watchdog: a thread per rank that turns a cross-rank wait which does not finish into
// an error naming the ranks that did not arrive, then ends the job.
//
// Every 0.1 s it looks at this process's waits (collectives/stall_watch.hpp: the MPI
// collectives, the weight stream's acquire and gathers, the generator's per-step host
// wait). When one has lasted longer than limit_s() = max(--collective-timeout,
// step_factor x the longest generation step so far), it asks every peer's watchdog for its
// state over its own communicator (a duplicate of MPI_COMM_WORLD, so no other traffic is
// in the way) and gives them answer_s to answer; a stopped process cannot, a rank stuck
// elsewhere answers with collective counts behind this one's. It prints the verdict
// (collectives/stall_report.hpp) to stderr, runs the abort hooks (ncclCommAbort) for at
// most hooks_s, and calls MPI_Abort: the job ends within about
// poll_s + answer_s + hooks_s + Open MPI's kill (~1.5 s) of the limit, well inside 30 s.
// Meanwhile it answers the peers' questions, so with several waiting ranks each one's
// verdict names the same missing ones.
//
// Needs MPI_THREAD_MULTIPLE (as the weight stream's loader). Collective (every rank
// constructs it at the same point); one per process at a time.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace zinc::collectives {

struct WatchdogOptions {
  double timeout_s = 300;   // --collective-timeout; 0 or one rank: no watchdog
  double step_factor = 10;  // the limit grows to step_factor x the longest step
  double answer_s = 3;      // how long the peers get to answer a stalled rank
  double poll_s = 0.1;      // how often the thread looks at the waits
  double hooks_s = 10;      // the most the abort hooks may take before MPI_Abort
};

class Watchdog {
 public:
  explicit Watchdog(WatchdogOptions opts);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  bool running() const { return thread_.joinable(); }
  double limit_s() const;

 private:
  void run();
  void serve_queries();                           // answers the peers that asked
  void reap_answers(bool wait);                   // frees the sends of answers that completed
  void stall(double limit);  // asks, judges, prints, aborts (returns if the wait ended meanwhile)

  WatchdogOptions opts_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  int query_ = 0;                                 // the asking rank, received here
  double lower_asked_s_ = -1e30;                  // when a lower rank last asked (now_s)
  MPI_Request query_request_ = MPI_REQUEST_NULL;
  struct Answer {
    std::string text;                             // the buffer of the send in flight
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::list<Answer> answers_;                     // in flight (a list: buffers never move)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zinc::collectives
