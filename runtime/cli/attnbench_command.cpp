// `zinc attnbench`: see attnbench_command.hpp for what is measured and how.
#include "runtime/cli/attnbench_command.hpp"

#include <omp.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "runtime/backend/cpu/cpu_attention.hpp"
#include "offload/host_bandwidth.hpp"
#include "offload/host_kv_cache.hpp"
#include "offload/memory_arena.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/hash.hpp"
#include "runtime/common/output_file.hpp"
#include "runtime/common/stats.hpp"

namespace po = boost::program_options;

namespace zinc::cli {
namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::vector<quant::KvStorage> parse_storage_list(const std::string& list) {
  std::vector<quant::KvStorage> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      out.push_back(quant::parse_kv_storage(item));
    } catch (const Error& e) {
      throw UsageError(std::string("--kv-quant: ") + e.what());
    }
  }
  if (out.empty()) throw UsageError("--kv-quant: no storage given (e.g. f32,f16,int8,int4)");
  return out;
}

// Deterministic test values in [-sqrt(3), sqrt(3)) (variance 1) from a counter (splitmix64).
inline float hash_value(uint64_t x) {
  x = splitmix64_next(x);
  return (static_cast<float>(x >> 40) * (1.0f / 16777216.0f) - 0.5f) * 3.4641016f;
}

// Fills positions 0..context-1 of a cache through kv_store, a block of positions at a time
// (the same values for every storage: value = f(tensor, b, j, h, d)).
void fill_cache(const quant::KvView& view, int tensor, int batch, int kv_heads, int context,
                int hd) {
  constexpr int kBlock = 64;
  const int64_t row = static_cast<int64_t>(kv_heads) * hd;
  std::vector<float> src(static_cast<size_t>(batch) * kBlock * row);
  for (int t0 = 0; t0 < context; t0 += kBlock) {
    const int tq = std::min(kBlock, context - t0);
    const int64_t n = static_cast<int64_t>(batch) * tq * row;
    for (int64_t e = 0; e < n; ++e) {
      const int64_t bi = e / row;
      const int64_t b = bi / tq, j = t0 + bi % tq;
      src[e] =
          hash_value((((static_cast<uint64_t>(tensor) * batch + b) * context + j) * row) + e % row);
    }
    quant::kv_store(view, src.data(), batch, tq, t0, kv_heads);
  }
}

std::vector<runtime::CpuAttentionIsa> parse_isa_list(const std::string& list) {
  std::vector<runtime::CpuAttentionIsa> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      out.push_back(runtime::parse_cpu_attention_isa(item));
    } catch (const Error& e) {
      throw UsageError(std::string("--isa: ") + e.what());
    }
  }
  if (out.empty()) throw UsageError("--isa: none given (e.g. auto or avx2,avx512)");
  return out;
}

struct Result {
  quant::KvStorage storage;
  std::string isa_cap;  // --isa
  std::string isa;      // the K loops that ran
  std::string v_isa;    // the V loops that ran
  size_t bytes = 0;     // K + V bytes read per step
  double fill_s = 0;    // kv_store of the whole cache
  double median_s = 0;  // one decode step
  double gbs = 0;
  double read_gbs = 0;  // the read probe, passes interleaved with this storage's steps
  double fraction = 0;  // gbs / read_gbs
  double max_err = -1;  // vs the f32 output; -1 = no f32 run
};

}  // namespace

bool parse_attnbench_options(int argc, char** argv, AttnBenchOptions* o, std::string* help) {
  po::options_description desc(
      "zinc attnbench: decode attention over a host-memory KV cache vs the host's read "
      "bandwidth\nusage: zinc attnbench [--batch 32] [--heads 32] [--kv-heads H] [--head-dim 128] "
      "[--context 2048] [--kv-quant f32,f16,int8,int4] [--isa auto] [--threads 0] [--json F]\n"
      "options");
  desc.add_options()("help,h", "show this help")(
      "batch", po::value<int>(&o->batch)->default_value(32), "sequences (B)")(
      "heads", po::value<int>(&o->heads)->default_value(32), "query heads (H)")(
      "kv-heads", po::value<int>(&o->kv_heads)->default_value(0), "kv heads (KVH); 0 = --heads")(
      "head-dim", po::value<int>(&o->head_dim)->default_value(128), "head size (hd)")(
      "context", po::value<int>(&o->context)->default_value(2048), "keys per sequence")(
      "kv-quant", po::value<std::string>(&o->kv_quant)->default_value("f32,f16,int8,int4"),
      "KV storages to measure, comma-separated (f32, f16, int8, int4)")(
      "isa", po::value<std::string>(&o->isa)->default_value("auto"),
      "inner-loop instruction sets to cap at, comma-separated (auto, avx512-vnni, avx512, "
      "avx2, scalar): one row per storage and cap")(
      "group-size", po::value<int>(&o->group_size)->default_value(64),
      "int8 / int4 group along head_dim (must divide it)")(
      "threads", po::value<int>(&o->threads)->default_value(0), "OpenMP threads; 0 = all cores")(
      "repeat", po::value<int>(&o->repeat)->default_value(5), "timed steps (median reported)")(
      "bandwidth-bytes", po::value<std::string>(&o->bandwidth_bytes)->default_value("2GiB"),
      "buffer read by the bandwidth probe (several times the last-level cache)")(
      "json", po::value<std::string>(&o->json), "also write the results as JSON");
  if (!parse_command(argc, argv, desc, nullptr, "attnbench", help, nullptr)) return false;
  if (o->kv_heads == 0) o->kv_heads = o->heads;
  if (o->batch < 1 || o->heads < 1 || o->kv_heads < 1 || o->head_dim < 1 || o->context < 1 ||
      o->repeat < 1 || o->threads < 0)
    throw UsageError(
        "--batch, --heads, --kv-heads, --head-dim, --context and --repeat must be >= 1, "
        "--threads >= 0");
  if (o->heads % o->kv_heads != 0)
    throw UsageError("--heads " + std::to_string(o->heads) + " is not a multiple of --kv-heads " +
                     std::to_string(o->kv_heads));
  parse_storage_list(o->kv_quant);
  parse_isa_list(o->isa);
  o->command_line = "zinc";
  for (int i = 0; i < argc; ++i) o->command_line += std::string(" ") + argv[i];
  return true;
}

int run_attnbench(const AttnBenchOptions& o) {
  const auto storages = parse_storage_list(o.kv_quant);
  const auto isas = parse_isa_list(o.isa);
  const int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  omp_set_num_threads(threads);
  const int B = o.batch, H = o.heads, KVH = o.kv_heads, hd = o.head_dim, T = o.context;

  // The read probe runs one pass before every attention step (warm-ups included), so that
  // both see the same machine: on a shared host a neighbour's load moves both alike.
  const size_t probe_bytes = offload::parse_bytes(o.bandwidth_bytes);
  offload::ReadBandwidthProbe probe(probe_bytes, threads);
  probe.pass_seconds();  // warm-up
  std::vector<double> all_probe_s;

  // One decode step: query at cache index T - 1 sees keys 0..T-1.
  std::vector<float> q(static_cast<size_t>(B) * H * hd);
  for (size_t e = 0; e < q.size(); ++e) q[e] = hash_value(0x51ull << 40 | e);
  std::vector<uint8_t> mask(static_cast<size_t>(B) * T, 1);
  runtime::CpuAttentionProblem p;
  p.batch = B;
  p.tq = 1;
  p.t0 = T - 1;
  p.heads = H;
  p.kv_heads = KVH;
  p.head_dim = hd;
  p.q = q.data();
  p.key_mask = mask.data();
  p.mask_stride = T;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));

  std::vector<Result> results;
  std::vector<float> out_f32;
  for (const auto s : storages) {
    offload::HostKvCache cache(offload::HostKvShape{1, B, KVH, T, hd, o.group_size}, s);
    const quant::KvView k = cache.k(0), v = cache.v(0);
    double t0 = now_s();
    fill_cache(k, 0, B, KVH, T, hd);
    fill_cache(v, 1, B, KVH, T, hd);
    const double fill_s = seconds_since(t0);
    for (const auto isa : isas) {
      Result r;
      r.storage = s;
      r.isa_cap = runtime::cpu_attention_isa_name(isa);
      r.isa = runtime::cpu_attention_isa(k, isa, true);
      r.v_isa = runtime::cpu_attention_isa(v, isa, false);
      r.fill_s = fill_s;
      p.isa = isa;
      std::vector<float> out(q.size());
      p.out = out.data();
      std::vector<double> times, probe_s;
      for (int rep = -1; rep < o.repeat; ++rep) {  // rep = -1: warm-up
        const double ps = probe.pass_seconds();
        if (rep >= 0) probe_s.push_back(ps);
        t0 = now_s();
        runtime::cpu_attention(p, k, v);
        const double sec = seconds_since(t0);
        if (rep >= 0) times.push_back(sec);
      }
      r.bytes = cache.bytes();  // every row is visible: the whole K and V
      r.median_s = median(times);
      r.gbs = r.bytes / r.median_s / 1e9;
      r.read_gbs = probe.bytes() / median(probe_s) / 1e9;
      r.fraction = r.gbs / r.read_gbs;
      all_probe_s.insert(all_probe_s.end(), probe_s.begin(), probe_s.end());
      if (s == quant::KvStorage::F32 && out_f32.empty()) out_f32 = out;
      if (!out_f32.empty()) {
        double e = 0;
        for (size_t i = 0; i < out.size(); ++i)
          e = std::max(e, static_cast<double>(std::fabs(out[i] - out_f32[i])));
        r.max_err = e;
      }
      results.push_back(r);
    }
  }

  std::printf(
      "zinc attnbench: decode step (tq 1) over a host KV cache [B %d, KVH %d, T %d, hd %d], "
      "H %d, group %d; %d threads, median of %d\n",
      B, KVH, T, hd, H, o.group_size, threads, o.repeat);
  const double read_bw = probe.bytes() / median(all_probe_s);
  std::printf(
      "host read bandwidth: %.2f GB/s (median of %zu passes over a %s buffer, same "
      "threads, interleaved with the steps)\n",
      read_bw / 1e9, all_probe_s.size(), offload::format_bytes(probe.bytes()).c_str());
  std::printf("%-8s %-16s %14s %10s %10s %10s %9s %11s %9s\n", "storage", "isa", "kv_bytes",
              "step", "rate", "read", "of_read", "max_err", "fill");
  std::printf("%-8s %-16s %14s %10s %10s %10s %9s %11s %9s\n", "", "", "bytes", "ms", "GB/s",
              "GB/s", "%", "vs_f32", "s");
  for (const auto& r : results) {
    char err[32];
    if (r.max_err < 0) {
      std::snprintf(err, sizeof err, "-");
    } else {
      std::snprintf(err, sizeof err, "%.2e", r.max_err);
    }
    // the K loops' name; "+bf16" where the values ran the avx512-bf16 loops
    const std::string isa = r.isa + (r.v_isa == "avx512-bf16" ? "+bf16" : "");
    std::printf("%-8s %-16s %14zu %10.3f %10.2f %10.2f %9.1f %11s %9.2f\n",
                quant::kv_storage_name(r.storage), isa.c_str(), r.bytes, r.median_s * 1e3,
                r.gbs, r.read_gbs, 100.0 * r.fraction, err, r.fill_s);
  }
  std::printf(
      "isa = the K inner loops that ran (V: the same without VNNI; +bf16: int4 V as bf16 dot "
      "products); "
      "rate = kv_bytes (K+V codes and group params of every visible row) / median step time; "
      "read = probe bytes / median probe pass over the passes interleaved with that storage's "
      "steps; of_read = rate / read\n");
  double out_rms = 0;  // scale of the outputs, for reading max_err
  for (float x : out_f32) out_rms += static_cast<double>(x) * x;
  if (!out_f32.empty()) {
    out_rms = std::sqrt(out_rms / out_f32.size());
    std::printf("max_err = max |out - out_f32| over the step's %zu outputs; their rms is %.3g\n",
                out_f32.size(), out_rms);
  }

  if (!o.json.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : results) {
      rows.push_back(
          {{"storage", quant::kv_storage_name(r.storage)},
           {"isa", r.isa},
           {"v_isa", r.v_isa},
           {"isa_cap", r.isa_cap},
           {"kv_bytes", r.bytes},
           {"median_s", r.median_s},
           {"gbs", r.gbs},
           {"read_gbs", r.read_gbs},
           {"fraction_of_read_bandwidth", r.fraction},
           {"max_abs_err_vs_f32", r.max_err < 0 ? nlohmann::json() : nlohmann::json(r.max_err)},
           {"fill_s", r.fill_s}});
    }
    const nlohmann::json j{
        {"command_line", o.command_line},
        {"date", zinc::utc_now()},
        {"machine", {{"cores", omp_get_num_procs()}, {"cpu_model", cpu_model()}}},
        {"threads", threads},
        {"shape",
         {{"batch", B},
          {"heads", H},
          {"kv_heads", KVH},
          {"head_dim", hd},
          {"context", T},
          {"group_size", o.group_size},
          {"tq", 1}}},
        {"repeat", o.repeat},
        {"f32_output_rms", out_f32.empty() ? nlohmann::json() : nlohmann::json(out_rms)},
        {"read_bandwidth",
         {{"bytes", probe.bytes()}, {"passes", all_probe_s.size()}, {"gbs", read_bw / 1e9}}},
        {"results", rows}};
    write_output_file(o.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace zinc::cli
