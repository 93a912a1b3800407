// StallWatch: what this process is waiting for, as the watchdog (collectives/watchdog.hpp)
// needs to know it: the cross-rank waits in progress on each thread, the collectives each
// communicator has entered, the longest step so far, and what to run before the job is
// aborted (ncclCommAbort). Process-wide and MPI-free; every call is thread-safe.
//
// Channels: every communicator opens one. Communicators are created collectively in the
// same order on every rank and every rank makes the same calls on each, so channel ids
// agree between ranks and "the n-th collective of channel c" is the same call everywhere:
// comparing the counts of two ranks says which one did not arrive.
//
// Waits: a WaitScope marks a wait on the current thread from its construction to its
// destruction; nested scopes on one thread describe one wait from the outside in ("weight
// loader: all-gather of layer.0003" around "MPI all-gather (collective 58 of
// communicator 1)"). Scopes cost a lock and a clock reading, and nothing while no watchdog
// runs (StallWatch::enabled()).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace zinc::collectives {

struct ChannelCount {
  int id = 0;
  uint64_t entered = 0;  // collectives entered on it so far
  std::string name;
};

// One thread's wait: its scopes joined outermost first.
struct WaitInfo {
  std::string what;
  double waited_s = 0;  // since the outermost scope began
  int channel = -1;     // the innermost scope naming a collective: its channel (-1: none)
  uint64_t seq = 0;     // and number (the seq-th collective entered on the channel)
};

struct ProcessState {
  std::vector<ChannelCount> channels;
  std::vector<WaitInfo> waits;  // longest first
};

class StallWatch {
 public:
  // Whether a watchdog is running in this process: scopes are recorded only then.
  static bool enabled();
  static void set_enabled(bool on);

  static int open_channel(const std::string& name);
  static void close_channel(int id);
  // The collective being entered on the channel: returns its number (1, 2, ...).
  static uint64_t enter(int channel);

  // The generator's completed steps (prefill or decode), in seconds: the watchdog's limit
  // grows with the longest one (Watchdog::limit_s).
  static void note_step(double seconds);
  static double longest_step_s();

  static ProcessState snapshot();

  // Run by the watchdog before it aborts the job (ncclCommAbort of a live communicator).
  // The hook may run on another thread while its owner is blocked; remove_abort_hook waits
  // for a hook that is running.
  static int add_abort_hook(std::function<void()> hook);
  static void remove_abort_hook(int id);
  static void run_abort_hooks();
};

class WaitScope {
 public:
  // `what` says what this thread waits for; channel/seq name the collective when it is one
  // (the state then says "WHAT (collective SEQ of communicator CHANNEL, NAME)").
  explicit WaitScope(std::string what, int channel = -1, uint64_t seq = 0);
  ~WaitScope();
  WaitScope(const WaitScope&) = delete;
  WaitScope& operator=(const WaitScope&) = delete;

 private:
  uint64_t token_ = 0;  // 0: not recorded
};

}  // namespace zinc::collectives
