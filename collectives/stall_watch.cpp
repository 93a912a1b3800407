#include "collectives/stall_watch.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/common/clock.hpp"

namespace zinc::collectives {
namespace {

struct Entry {
  std::thread::id thread;
  std::string what;
  int channel = -1;
  uint64_t seq = 0;
  double start = 0;
};

struct Channel {
  std::string name;
  uint64_t entered = 0;
};

struct State {
  std::atomic<bool> enabled{false};
  std::mutex mu;  // channels, waits, steps
  std::map<int, Channel> channels;
  int next_channel = 0;
  std::map<uint64_t, Entry> waits;  // by token: creation order, so nested scopes sort inside out
  uint64_t next_token = 1;
  double longest_step = 0;
  std::mutex hooks_mu;  // held while the hooks run
  std::map<int, std::function<void()>> hooks;
  int next_hook = 0;
};

State& state() {
  static State* s = new State;  // never destroyed: scopes may end during static destruction
  return *s;
}

}  // namespace

bool StallWatch::enabled() { return state().enabled.load(std::memory_order_relaxed); }
void StallWatch::set_enabled(bool on) { state().enabled.store(on); }

int StallWatch::open_channel(const std::string& name) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  const int id = s.next_channel++;
  s.channels[id] = Channel{name, 0};
  return id;
}

void StallWatch::close_channel(int id) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.channels.erase(id);
}

uint64_t StallWatch::enter(int channel) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.channels.find(channel);
  return it == s.channels.end() ? 0 : ++it->second.entered;
}

void StallWatch::note_step(double seconds) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.longest_step = std::max(s.longest_step, seconds);
}

double StallWatch::longest_step_s() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.longest_step;
}

ProcessState StallWatch::snapshot() {
  State& s = state();
  ProcessState out;
  const double now = now_s();
  std::lock_guard<std::mutex> lock(s.mu);
  for (const auto& [id, c] : s.channels) out.channels.push_back({id, c.entered, c.name});
  std::map<std::thread::id, WaitInfo> by_thread;
  for (const auto& [token, e] : s.waits) {
    auto [it, first] = by_thread.try_emplace(e.thread);
    WaitInfo& w = it->second;
    if (first) w.waited_s = now - e.start;
    w.what += (first ? "" : ": ") + e.what;
    if (e.channel >= 0) {
      const auto c = s.channels.find(e.channel);
      w.what += " (collective " + std::to_string(e.seq) + " of communicator " + std::to_string(e.channel) +
                (c != s.channels.end() && !c->second.name.empty() ? ", " + c->second.name : std::string()) + ")";
      w.channel = e.channel;
      w.seq = e.seq;
    }
  }
  for (auto& [thread, w] : by_thread) out.waits.push_back(std::move(w));
  std::sort(out.waits.begin(), out.waits.end(),
            [](const WaitInfo& a, const WaitInfo& b) { return a.waited_s > b.waited_s; });
  return out;
}

int StallWatch::add_abort_hook(std::function<void()> hook) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.hooks_mu);
  const int id = s.next_hook++;
  s.hooks[id] = std::move(hook);
  return id;
}

void StallWatch::remove_abort_hook(int id) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.hooks_mu);
  s.hooks.erase(id);
}

void StallWatch::run_abort_hooks() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.hooks_mu);  // kept: the job ends after the hooks
  for (auto& [id, hook] : s.hooks) hook();
}

WaitScope::WaitScope(std::string what, int channel, uint64_t seq) {
  if (!StallWatch::enabled()) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  token_ = s.next_token++;
  s.waits.emplace(token_, Entry{std::this_thread::get_id(), std::move(what), channel, seq, now_s()});
}

WaitScope::~WaitScope() {
  if (token_ == 0) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.waits.erase(token_);
}

}  // namespace zinc::collectives
