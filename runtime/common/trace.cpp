#include "runtime/common/trace.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <vector>

#include "runtime/common/output_file.hpp"

namespace zinc::trace {
namespace {

struct Event {
  const char* name;
  int thread;
  double t0, t1;
};

std::atomic<bool> g_on{false};
std::mutex g_mu;
std::vector<Event> g_events;
std::vector<std::string> g_threads;  // index = the thread's row
int g_rank = 0;
double g_origin = 0;

// The current thread's row, assigned on its first span (under g_mu).
int& thread_row() {
  thread_local int row = -1;
  return row;
}
int row_locked() {
  int& row = thread_row();
  if (row < 0 || row >= static_cast<int>(g_threads.size())) {
    row = static_cast<int>(g_threads.size());
    g_threads.push_back("thread " + std::to_string(row));
  }
  return row;
}

void json_string(std::ostringstream& os, const std::string& s) {
  os << '"';
  for (char c : s) {
    if (c == '"' || c == '\\') os << '\\' << c;
    else if (static_cast<unsigned char>(c) < 0x20) os << ' ';
    else os << c;
  }
  os << '"';
}

}  // namespace

bool enabled() { return g_on.load(std::memory_order_relaxed); }

void start(int rank) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_rank = rank;
  if (!g_on.load()) g_origin = now_s();
  g_on.store(true);
}

void name_thread(const std::string& name) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_threads[static_cast<size_t>(row_locked())] = name;
}

void span(const char* name, double t0_s, double t1_s) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_events.push_back({name, row_locked(), t0_s, t1_s});
}

void write(const std::string& path) {
  std::ostringstream os;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    os << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
    bool first = true;
    for (size_t t = 0; t < g_threads.size(); ++t) {
      os << (first ? "" : ",\n") << "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":" << g_rank
         << ",\"tid\":" << t << ",\"args\":{\"name\":";
      json_string(os, g_threads[t]);
      os << "}}";
      first = false;
    }
    char buf[96];
    for (const Event& e : g_events) {
      std::snprintf(buf, sizeof buf, "\"ts\":%.3f,\"dur\":%.3f", (e.t0 - g_origin) * 1e6, (e.t1 - e.t0) * 1e6);
      os << (first ? "" : ",\n") << "{\"ph\":\"X\",\"name\":";
      json_string(os, e.name);
      os << ",\"pid\":" << g_rank << ",\"tid\":" << e.thread << "," << buf << "}";
      first = false;
    }
    os << "\n]}\n";
  }
  write_output_file(path, os.str());
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_on.store(false);
  g_events.clear();
  g_threads.clear();
}

size_t span_count() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_events.size();
}

}  // namespace zinc::trace
