#include "runtime/generate/metrics.hpp"

#include <algorithm>
#include <cstdio>

#include "offload/memory_arena.hpp"

namespace zinc::runtime {

RunMetrics aggregate_metrics(const GenerationStats& s, collectives::Communicator& comm) {
  const double per_token = s.decode_steps > 0 ? s.decode_s / static_cast<double>(s.decode_steps) : 0;
  const std::vector<double> sums = comm.allreduce_sum(
      {static_cast<double>(s.sequences), static_cast<double>(s.prompt_tokens),
       static_cast<double>(s.generated_tokens), static_cast<double>(s.decode_steps)});
  const std::vector<double> maxes = comm.allreduce_max(
      {s.load_s, s.prefill_s, s.decode_s, s.prefill_s + s.decode_s, per_token,
       static_cast<double>(s.peak_bytes), static_cast<double>(s.weight_bytes),
       static_cast<double>(s.kv_bytes)});
  RunMetrics m;
  m.ranks = comm.size();
  m.sequences = static_cast<int64_t>(sums[0]);
  m.prompt_tokens = static_cast<int64_t>(sums[1]);
  m.generated_tokens = static_cast<int64_t>(sums[2]);
  m.decode_steps = static_cast<int64_t>(sums[3]);
  m.load_s = maxes[0];
  m.prefill_s = maxes[1];
  m.decode_s = maxes[2];
  m.total_s = maxes[3];
  m.decode_ms_per_token = maxes[4] * 1e3;
  m.peak_bytes = static_cast<size_t>(maxes[5]);
  m.weight_bytes = static_cast<size_t>(maxes[6]);
  m.kv_bytes = static_cast<size_t>(maxes[7]);
  auto rate = [](double n, double t) { return t > 0 ? n / t : 0.0; };
  m.prefill_tok_s = rate(static_cast<double>(m.prompt_tokens), m.prefill_s);
  m.decode_tok_s = rate(static_cast<double>(std::max<int64_t>(0, m.generated_tokens - m.sequences)),
                        m.decode_s);
  m.total_tok_s = rate(static_cast<double>(m.generated_tokens), m.total_s);
  return m;
}

void print_metrics_table(std::ostream& os, const RunMetrics& m) {
  char line[160];
  os << "\nmetrics (" << m.ranks << " rank" << (m.ranks > 1 ? "s" : "") << ", " << m.sequences
     << " sequences; times are the max over ranks)\n";
  std::snprintf(line, sizeof line, "%-8s %10s %10s %12s %12s\n", "phase", "time", "tokens",
                "throughput", "latency");
  os << line;
  std::snprintf(line, sizeof line, "%-8s %10s %10s %12s %12s\n", "", "s", "", "tok/s", "ms/token");
  os << line;
  std::snprintf(line, sizeof line, "%-8s %10.4f %10lld %12.1f %12s\n", "prefill", m.prefill_s,
                static_cast<long long>(m.prompt_tokens), m.prefill_tok_s, "-");
  os << line;
  std::snprintf(line, sizeof line, "%-8s %10.4f %10lld %12.1f %12.3f\n", "decode", m.decode_s,
                static_cast<long long>(std::max<int64_t>(0, m.generated_tokens - m.sequences)),
                m.decode_tok_s, m.decode_ms_per_token);
  os << line;
  std::snprintf(line, sizeof line, "%-8s %10.4f %10lld %12.1f %12s\n", "total", m.total_s,
                static_cast<long long>(m.generated_tokens), m.total_tok_s, "-");
  os << line;
  std::snprintf(line, sizeof line, "%.3f", m.load_s);
  os << "model load " << line << " s; peak backend memory " << offload::format_bytes(m.peak_bytes)
     << " (weights " << offload::format_bytes(m.weight_bytes) << ", KV cache "
     << offload::format_bytes(m.kv_bytes) << ")\n";
}

nlohmann::json metrics_to_json(const RunMetrics& m) {
  return nlohmann::json{{"ranks", m.ranks},
                        {"sequences", m.sequences},
                        {"prompt_tokens", m.prompt_tokens},
                        {"generated_tokens", m.generated_tokens},
                        {"decode_steps", m.decode_steps},
                        {"load_s", m.load_s},
                        {"prefill_s", m.prefill_s},
                        {"decode_s", m.decode_s},
                        {"total_s", m.total_s},
                        {"prefill_tok_s", m.prefill_tok_s},
                        {"decode_tok_s", m.decode_tok_s},
                        {"total_tok_s", m.total_tok_s},
                        {"decode_ms_per_token", m.decode_ms_per_token},
                        {"peak_backend_bytes", m.peak_bytes},
                        {"weight_bytes", m.weight_bytes},
                        {"kv_cache_bytes", m.kv_bytes}};
}

}  // namespace zinc::runtime
