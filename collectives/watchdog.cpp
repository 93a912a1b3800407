#include "collectives/watchdog.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "collectives/mpi_check.hpp"
#include "collectives/mpi_communicator.hpp"
#include "collectives/stall_report.hpp"
#include "collectives/stall_watch.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/poll_wait.hpp"

namespace zinc::collectives {
namespace {

constexpr int kTagQuery = 1;   // "send me your state": one int, the asking rank
constexpr int kTagAnswer = 2;  // encode_state() text
constexpr int kMaxAnswer = 16384;

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// The wait past the limit to judge, if any: a collective when one is (its number says who
// did not arrive), else the longest.
const WaitInfo* overdue(const ProcessState& state, double limit) {
  const WaitInfo* pick = nullptr;
  for (const WaitInfo& w : state.waits) {
    if (w.waited_s <= limit) continue;
    if (!pick || (w.channel >= 0 && pick->channel < 0)) pick = &w;
  }
  return pick;
}

}  // namespace

Watchdog::Watchdog(WatchdogOptions opts) : opts_(opts) {
  ZINC_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  ZINC_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  if (size_ == 1 || opts_.timeout_s <= 0) return;
  ZINC_CHECK(!StallWatch::enabled(), "a watchdog is already running in this process");
  ZINC_CHECK(MpiSession::thread_level() == MPI_THREAD_MULTIPLE,
             "the watchdog calls MPI on its own thread: it needs MPI_THREAD_MULTIPLE (Open MPI: "
             "--enable-mpi-thread-multiple), or pass --collective-timeout 0");
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Comm_idup(MPI_COMM_WORLD, &comm_, &request));
  int done = 0;
  poll_until([&] {
    ZINC_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
  ZINC_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  ZINC_MPI_CHECK(MPI_Irecv(&query_, 1, MPI_INT, MPI_ANY_SOURCE, kTagQuery, comm_, &query_request_));
  StallWatch::set_enabled(true);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  StallWatch::set_enabled(false);
  // The question a peer may still send is never received: cancel the receive.
  if (query_request_ != MPI_REQUEST_NULL && MPI_Cancel(&query_request_) == MPI_SUCCESS)
    MPI_Wait(&query_request_, MPI_STATUS_IGNORE);
  reap_answers(true);
  if (MPI_Comm_free(&comm_) != MPI_SUCCESS) log_error("watchdog: MPI_Comm_free failed");
}

double Watchdog::limit_s() const {
  return std::max(opts_.timeout_s, opts_.step_factor * StallWatch::longest_step_s());
}

void Watchdog::run() {
  pthread_setname_np(pthread_self(), "zinc-watchdog");
  try {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::duration<double>(opts_.poll_s), [this] { return stop_; })) {
      lock.unlock();
      serve_queries();
      reap_answers(false);
      const double limit = limit_s();
      if (overdue(StallWatch::snapshot(), limit)) stall(limit);
      lock.lock();
    }
  } catch (const std::exception& e) {
    // An MPI error here means the job is already broken: say so and end it.
    std::fprintf(stderr, "zinc: error (rank %d): watchdog: %s\n", rank_, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
  }
}

void Watchdog::serve_queries() {
  for (;;) {
    int done = 0;
    MPI_Status status;
    ZINC_MPI_CHECK(MPI_Test(&query_request_, &done, &status));
    if (!done) return;
    const int asker = status.MPI_SOURCE;
    if (asker < rank_) lower_asked_s_ = now_s();  // it is judging a stall: it will end the job
    Answer& a = answers_.emplace_back();
    a.text = encode_state(StallWatch::snapshot());
    if (a.text.size() > static_cast<size_t>(kMaxAnswer)) a.text.resize(kMaxAnswer);
    ZINC_MPI_CHECK(MPI_Isend(a.text.data(), static_cast<int>(a.text.size()), MPI_CHAR, asker, kTagAnswer, comm_,
                             &a.request));
    ZINC_MPI_CHECK(MPI_Irecv(&query_, 1, MPI_INT, MPI_ANY_SOURCE, kTagQuery, comm_, &query_request_));
  }
}

void Watchdog::reap_answers(bool wait) {
  // At teardown an answer to a peer that has stopped listening may never complete: give
  // the sends a second, then let them go.
  const double until = now_s() + (wait ? 1.0 : 0.0);
  do {
    for (auto it = answers_.begin(); it != answers_.end();) {
      int done = 0;
      if (MPI_Test(&it->request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done)
        it = answers_.erase(it);
      else
        ++it;
    }
    if (answers_.empty() || now_s() >= until) break;
    sleep_s(0.01);
  } while (true);
  if (wait)
    for (Answer& a : answers_) MPI_Request_free(&a.request);
}

void Watchdog::stall(double limit) {
  // (Returns only when the wait ended after all while the peers were asked.)
  // Ask every peer, then judge by what came back within answer_s.
  std::vector<RankState> ranks(static_cast<size_t>(size_));
  std::vector<std::string> buffers(static_cast<size_t>(size_));
  std::vector<MPI_Request> asks(static_cast<size_t>(size_), MPI_REQUEST_NULL);
  std::vector<MPI_Request> replies(static_cast<size_t>(size_), MPI_REQUEST_NULL);
  int me = rank_, pending = 0;
  for (int p = 0; p < size_; ++p) {
    ranks[p].rank = p;
    if (p == rank_) continue;
    buffers[p].resize(kMaxAnswer);
    ZINC_MPI_CHECK(MPI_Irecv(buffers[p].data(), kMaxAnswer, MPI_CHAR, p, kTagAnswer, comm_, &replies[p]));
    ZINC_MPI_CHECK(MPI_Isend(&me, 1, MPI_INT, p, kTagQuery, comm_, &asks[p]));
    ++pending;
  }
  const double until = now_s() + opts_.answer_s;
  while (pending > 0 && now_s() < until) {
    serve_queries();  // a peer judging the same stall asks this rank too
    for (int p = 0; p < size_; ++p) {
      if (replies[p] == MPI_REQUEST_NULL) continue;
      int done = 0;
      MPI_Status status;
      ZINC_MPI_CHECK(MPI_Test(&replies[p], &done, &status));
      if (!done) continue;
      int count = 0;
      MPI_Get_count(&status, MPI_CHAR, &count);
      ranks[p].answered = true;
      ranks[p].state = decode_state(buffers[p].substr(0, static_cast<size_t>(count)));
      --pending;
    }
    sleep_s(0.01);
  }
  const ProcessState mine = StallWatch::snapshot();
  const WaitInfo* late = overdue(mine, limit);
  if (!late) {
    // The wait ended while the peers answered (late, not stalled): go on watching.
    for (int p = 0; p < size_; ++p) {
      if (replies[p] != MPI_REQUEST_NULL && MPI_Cancel(&replies[p]) == MPI_SUCCESS)
        MPI_Wait(&replies[p], MPI_STATUS_IGNORE);
      if (asks[p] != MPI_REQUEST_NULL) MPI_Request_free(&asks[p]);
    }
    return;
  }
  ranks[rank_].answered = true;
  ranks[rank_].state = mine;
  const StallVerdict v = judge_stall(rank_, *late, limit, ranks, opts_.answer_s);
  // A lower rank asked too: it is judging the same stall, and its abort ends this process
  // in a moment. One verdict is enough, so this rank speaks only if that does not happen.
  if (now_s() - lower_asked_s_ < 2 * opts_.answer_s + 1) {
    const double until = lower_asked_s_ + opts_.answer_s + opts_.hooks_s + 5;
    while (now_s() < until) {
      serve_queries();
      sleep_s(0.05);
    }
  }
  std::fprintf(stderr,
               "zinc: error (rank %d): %s\nzinc: rank %d ends the job (the limit is --collective-timeout %g s, or "
               "%g x the longest step when that is longer)\n",
               rank_, v.message.c_str(), rank_, opts_.timeout_s, opts_.step_factor);
  std::fflush(stderr);
  // ncclCommAbort and the like: on a thread of their own, so a hook that hangs cannot keep
  // the job alive past hooks_s.
  std::mutex m;
  std::condition_variable cv;
  bool hooks_done = false;
  std::thread hooks([&] {
    StallWatch::run_abort_hooks();
    std::lock_guard<std::mutex> lock(m);
    hooks_done = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, std::chrono::duration<double>(opts_.hooks_s), [&] { return hooks_done; });
  }
  if (hooks_done) hooks.join(); else hooks.detach();
  MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

}  // namespace zinc::collectives
