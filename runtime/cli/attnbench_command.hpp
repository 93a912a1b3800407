// `zinc attnbench`: decode attention over a KV cache in host memory (runtime/backend/cpu/cpu_attention.hpp)
// against the host's read bandwidth, both measured by this binary with the same threads
// (the goal: >= 70% of the multithreaded read bandwidth).
//
// For each --kv-quant storage it fills a [B, KVH, context, hd] cache (HostKvCache, one
// layer) and times one decode step (tq = 1, every key visible), --repeat times after one
// warm-up; the median is reported. Before every step the read probe
// (offload/host_bandwidth.hpp, --bandwidth-bytes) makes one pass, so both sides see the
// same machine (a shared host's neighbours move both alike). Derived numbers:
//   KV bytes  = 2 (K and V) * B * KVH * context * (code bytes + param bytes per row)
//   rate      = KV bytes / median step time / 1e9                       (GB/s)
//   read      = probe bytes / median of the probe passes interleaved with this storage
//   of_read   = rate / read
//   max_err   = largest |out - out_f32| over the step's outputs (f32 run first when listed)
// --isa LIST caps the inner loops (runtime::CpuAttentionIsa: auto, avx512-vnni, avx512,
// avx2, scalar); with several, each storage's cache is filled once and timed under each
// cap in turn, one row per (storage, cap), so that instruction sets compare on one machine
// at one time. The isa column names the K loops that ran (a cap the CPU or the shape
// cannot run falls back; "+bf16" where int4 values ran the avx512-bf16 loops); max_err is
// against the first f32 row.
// Prints a fixed-width table; --json FILE also writes the numbers with the machine (cores,
// CPU model from /proc/cpuinfo), thread count, date and command line.
#pragma once

#include <string>

namespace zinc::cli {

struct AttnBenchOptions {
  int batch = 32;
  int heads = 32;
  int kv_heads = 0;  // 0 = heads
  int head_dim = 128;
  int context = 2048;                          // keys per sequence
  std::string kv_quant = "f32,f16,int8,int4";  // storages to run, in this order
  std::string isa = "auto";                    // instruction-set caps, comma-separated
  int group_size = 64;                         // int8 / int4 group along head_dim
  int threads = 0;                             // 0 = all cores
  int repeat = 5;
  std::string bandwidth_bytes = "2GiB";  // buffer of the read-bandwidth probe
  std::string json;                      // "" = no JSON
  std::string command_line;              // filled by the parser, for the report
};

// Parses `zinc attnbench ARGS...` (argv[0] is "attnbench"); false when --help was shown.
bool parse_attnbench_options(int argc, char** argv, AttnBenchOptions* out, std::string* help);
int run_attnbench(const AttnBenchOptions& opts);

}  // namespace zinc::cli
