// trace: an opt-in host-side timeline of a run (`--trace FILE` on generate and bench).
//
// Spans of named work, each on the thread that did it: the decode lanes' turns and their
// waits for the host attention (decoder_lanes.cpp, common/lane_turns.hpp), the KV worker's
// jobs split into their phases (backend/kv_cache.cpp), the compute thread's waits for
// weights and the loader's loads (offload/weight_stream*.cpp), and every forward step
// (generate/generator.cpp). Written by write() as Chrome trace-event JSON ("ph": "X"
// complete events, microseconds), which Perfetto (ui.perfetto.dev) and chrome://tracing
// open; pid is the MPI rank. It is for finding where a step's time goes when the stage
// totals of `zinc bench` do not say (DESIGN.md, "Host KV decode overlap").
//
// Off (the default) every call is one relaxed atomic load. On, a span takes a mutex: a few
// thousand per decode step at most (layers x lanes x phases), well under the step.
#pragma once

#include <string>

#include "runtime/common/clock.hpp"

namespace zinc::trace {

bool enabled();
void start(int rank);                      // spans are recorded from now on
void name_thread(const std::string& name); // the current thread's row in the timeline
void span(const char* name, double t0_s, double t1_s);  // on the current thread (now_s times)
// The recorded spans as Chrome trace-event JSON into `path` (write_output_file: every
// write checked). Throws zinc::Error naming the file.
void write(const std::string& path);
void reset();                              // off, and every span dropped (tests)
size_t span_count();

// Records [construction, destruction) as `name` when tracing is on. `name` must outlive
// the trace (a string literal).
class Span {
 public:
  explicit Span(const char* name) : name_(enabled() ? name : nullptr), t0_(name_ ? now_s() : 0) {}
  ~Span() {
    if (name_) span(name_, t0_, now_s());
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  const char* name_;
  double t0_;
};

}  // namespace zinc::trace
