// zinc bench: the benchmark users run (shaped like DeepSpeed's run_model.py). Loads a model
// once, sized for the largest batch, then per batch size runs --warmup untimed runs and --loops
// timed generate calls of --prompt-len random tokens and exactly --gen-len new tokens per
// sequence (EOS ignored), and reports medians: prefill and decode latency, decode and
// total throughput, the weight stream against the pinned H2D link measured at start (the
// roofline fraction), peak device memory, the pipeline's stage times and the NVMe rate.
// Every rank runs the same generate calls; rank 0 prints and writes --json / --csv.
#pragma once

#include <string>
#include <vector>

#include "collectives/mpi_communicator.hpp"
#include "runtime/cli/options.hpp"

namespace zinc::cli {

struct BenchOptions {
  GenerateOptions run;            // the shared options (model, placement, backend, --seed)
  std::vector<int> batch_sizes;   // per rank; a sweep when several; empty: --batch-size auto
  int prompt_len = 512;
  int gen_len = 32;
  int loops = 3;                  // timed runs per batch size, after the warm-ups
  int warmup = 1;                 // untimed runs per batch size before them
  std::string json, csv;          // "" = not written
  bool quiet = false;             // no progress on stderr
  std::vector<std::string> warnings;  // from DeepSpeed's spellings (deepspeed_args.hpp), for rank 0
};

// Parses `zinc bench ARGS...` (argv[0] is "bench"); false when --help was shown.
bool parse_bench_options(int argc, char** argv, BenchOptions* out, std::string* help);
// "1,8,32" -> {1, 8, 32}; UsageError naming --batch-size for anything but positive integers.
std::vector<int> parse_batch_sizes(const std::string& text);

int run_bench(const BenchOptions& opts, collectives::MpiCommunicator& mpi);

}  // namespace zinc::cli
