#include "runtime/cli/bench_command.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "offload/host_bandwidth.hpp"
#include "offload/memory_arena.hpp"
#include "offload/uring_file.hpp"
#include "quant/kv_quant.hpp"
#include "runtime/backend/cuda_probe.hpp"
#include "runtime/cli/bench_report.hpp"
#include "runtime/cli/deepspeed_args.hpp"
#include "runtime/cli/plan_setup.hpp"
#include "runtime/cli/run_setup.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/hash.hpp"
#include "runtime/common/stats.hpp"
#include "runtime/generate/metrics.hpp"

namespace po = boost::program_options;

namespace zinc::cli {
namespace {

// The pipeline's counters over one run: after - before.
runtime::ZeroStats stats_delta(const runtime::ZeroStats& a, const runtime::ZeroStats& b) {
  runtime::ZeroStats d;
  d.gathers = b.gathers - a.gathers;
  d.gathered_bytes = b.gathered_bytes - a.gathered_bytes;
  d.blob_bytes = b.blob_bytes - a.blob_bytes;
  d.acquires = b.acquires - a.acquires;
  d.source_bytes = b.source_bytes - a.source_bytes;
  d.disk_s = b.disk_s - a.disk_s;
  d.copy_s = b.copy_s - a.copy_s;
  d.gather_s = b.gather_s - a.gather_s;
  d.dequantize_s = b.dequantize_s - a.dequantize_s;
  d.wait_disk_s = b.wait_disk_s - a.wait_disk_s;
  d.wait_copy_s = b.wait_copy_s - a.wait_copy_s;
  d.wait_gather_s = b.wait_gather_s - a.wait_gather_s;
  d.wait_other_s = b.wait_other_s - a.wait_other_s;
  d.compute_s = b.compute_s - a.compute_s;
  return d;
}

// Prompts of exactly `len` deterministic random ids in [3, vocab), one per sequence of this
// rank: sequence i of rank r is the request's sequence r * batch + i.
std::vector<runtime::Prompt> make_prompts(int batch, int len, int rank, int vocab, uint64_t seed) {
  const uint64_t key = seed ^ 0x7a696e632d62656eull;  // "zinc-ben"
  std::vector<runtime::Prompt> out;
  for (int i = 0; i < batch; ++i) {
    runtime::Prompt p;
    p.index = static_cast<uint64_t>(rank) * batch + i;
    for (int t = 0; t < len; ++t)
      p.ids.push_back(3 + static_cast<int32_t>(splitmix64_at(key, p.index * len + t) % (vocab - 3)));
    out.push_back(std::move(p));
  }
  return out;
}


struct RunSample {
  runtime::RunMetrics metrics;
  runtime::ZeroStats pipeline;  // rank 0's stage times over the run
  double kv_wait_s = 0, kv_cpu_s = 0, kv_store_s = 0, kv_attention_s = 0;  // rank 0's host KV times (GenerationStats)
};

}  // namespace

std::vector<int> parse_batch_sizes(const std::string& text) {
  std::vector<int> out;
  size_t i = 0;
  const std::string bad = "--batch-size '" + text + "': expected positive integers separated by commas, e.g. 1,8,32";
  while (i <= text.size()) {
    const size_t comma = std::min(text.find(',', i), text.size());
    const std::string item = text.substr(i, comma - i);
    char* end = nullptr;
    errno = 0;
    const long v = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || v < 1 || v > INT_MAX) throw UsageError(bad);
    out.push_back(static_cast<int>(v));
    i = comma + 1;
  }
  return out;
}

bool parse_bench_options(int argc, char** argv, BenchOptions* o, std::string* help) {
  std::string batches;
  // DeepSpeed ZeRO-Inference's spellings become zinc's options first.
  const DeepSpeedArgs ds = translate_deepspeed_args(std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
  o->warnings = ds.warnings;
  std::vector<char*> zargv{argc > 0 ? argv[0] : nullptr};
  for (const std::string& a : ds.args) zargv.push_back(const_cast<char*>(a.c_str()));
  argc = static_cast<int>(zargv.size());
  argv = zargv.data();
  po::options_description desc(
      "zinc bench: prefill/decode latency and throughput per batch size, the weight stream against\n"
      "the pinned H2D link (roofline fraction), peak device memory and the pipeline's stage times\n"
      "usage: [mpirun -np N] zinc bench --model M [--batch-size 1,8,32] [--prompt-len 512] "
      "[--gen-len 32] [--loops 3] [options]\n"
      "DeepSpeed run_model.py's spellings work too: --dummy --model facebook/opt-30b, --cpu-offload,\n"
      "--disk-offload --offload-dir D, --pin-memory 0|1, --quant_bits 4|8, --quant_group_size G,\n"
      "--deepspeed-config ds.json (runtime/cli/deepspeed_args.hpp)\noptions");
  desc.add_options()("help,h", "show this help");
  add_run_options(desc, &o->run);
  desc.add_options()
      ("batch-size", po::value<std::string>(&batches)->default_value("1"),
       "sequences per rank, one value or a comma list (a sweep), e.g. 1,8,32; auto (with "
       "--plan auto): the planner's")
      ("prompt-len", po::value<int>(&o->prompt_len)->default_value(512), "tokens per prompt (random ids)")
      ("gen-len", po::value<int>(&o->gen_len)->default_value(32), "tokens generated per sequence (>= 2)")
      ("loops", po::value<int>(&o->loops)->default_value(3),
       "timed runs per batch size, after the warm-up runs (medians are reported)")
      ("warmup", po::value<int>(&o->warmup)->default_value(1),
       "untimed runs per batch size before the timed ones (0: none, e.g. for long single runs)")
      ("seed", po::value<uint64_t>(&o->run.seed)->default_value(0), "seed of the random prompt ids")
      ("json", po::value<std::string>(&o->json), "write the header and rows as JSON to this file")
      ("csv", po::value<std::string>(&o->csv), "write the rows as CSV to this file (launch/plot_bench.py)")
      ("quiet", po::bool_switch(&o->quiet), "no progress on stderr")
      ("deepspeed-config", po::value<std::string>(),
       "a DeepSpeed config: its offload_param, quantized_initialization and aio keys become "
       "zinc's options (read before the others are parsed)");
  po::variables_map vm;
  if (!parse_command(argc, argv, desc, nullptr, "bench", help, &vm)) return false;
  finish_run_options(vm, &o->run);
  if (batches == "auto") {
    if (!(o->run.plan == "auto" && o->run.plan_given))
      throw UsageError("--batch-size auto is the planner's choice: add --plan auto");
  } else {
    o->batch_sizes = parse_batch_sizes(batches);
  }
  if (o->gen_len < 2) throw UsageError("--gen-len must be >= 2 (decode needs a step after the prefill)");
  if (o->prompt_len < 1) throw UsageError("--prompt-len must be >= 1");
  if (o->loops < 1) throw UsageError("--loops must be >= 1");
  if (o->warmup < 0) throw UsageError("--warmup must be >= 0");
  check_token_count("--prompt-len", o->prompt_len, 1);
  check_token_count("--gen-len", o->gen_len, 2);
  // Each rank makes batch random prompts and holds batch x (prompt + gen) token slots in
  // its step buffers, whose rows and positions are 32-bit.
  for (int batch : o->batch_sizes) {
    const int64_t slots = static_cast<int64_t>(batch) * (o->prompt_len + o->gen_len);
    if (slots > INT32_MAX)
      throw UsageError("--batch-size " + std::to_string(batch) + " x (--prompt-len " + std::to_string(o->prompt_len) +
                       " + --gen-len " + std::to_string(o->gen_len) + ") tokens = " + std::to_string(slots) +
                       " token slots per rank, more than 2^31-1");
  }
  return true;
}

int run_bench(const BenchOptions& b, collectives::MpiCommunicator& mpi) {
  const int rank = mpi.rank(), ranks = mpi.size();
  const bool show = rank == 0 && !b.quiet;
  auto say = [&](const std::string& line) {
    if (show) std::cerr << line << std::endl;
  };
  if (rank == 0)
    for (const std::string& w : b.warnings) std::cerr << "zinc: warning: " << w << std::endl;
  GenerateOptions o = b.run;
  o.backend = runtime::resolve_backend(o.backend);
  o.max_new_tokens = b.gen_len;
  o.batch_size = 0;
  std::vector<int> batch_sizes = b.batch_sizes;  // empty: --batch-size auto
  int max_batch = batch_sizes.empty() ? 0 : *std::max_element(batch_sizes.begin(), batch_sizes.end());

  // The link first (as generate): 1 GiB copies on a GPU; a smaller memcpy on the CPU.
  const size_t probe = o.backend == "cpu" ? size_t(256) << 20 : size_t(1) << 30;
  say("load " + o.model + " (measuring the " + (o.backend == "cpu" ? "memcpy" : "pinned H2D") + " link first) ...");
  RunSetup setup = make_run_setup(o, mpi, probe);
  start_trace(o, mpi.rank());
  // --plan auto: planned for the largest batch (or the planner's own), before the load.
  const std::optional<PlannedRun> planned =
      plan_and_apply(o, setup, mpi, max_batch, 2048, b.prompt_len, b.gen_len, b.quiet);
  if (batch_sizes.empty()) {
    ZINC_CHECK(planned, "--batch-size auto needs --plan auto");
    batch_sizes = {planned->plan.batch};
    max_batch = planned->plan.batch;
  }
  runtime::Backend& backend = *setup.backend;
  collectives::Communicator& comm = *setup.comm;
  resolve_prefetch_depth(o, setup, max_batch);
  const runtime::LoadOptions lo = make_load_options(o, max_batch, b.prompt_len, b.prompt_len + b.gen_len);
  const double t0 = now_s();
  runtime::LoadedModel loaded = runtime::load_for_generation(lo, backend, comm);
  const double load_s = seconds_since(t0);
  runtime::Model& model = *loaded.model;
  const runtime::ModelConfig& c = model.config();
  ZINC_CHECK(c.vocab_size > 3, "the model's vocabulary (" << c.vocab_size << ") is too small for random prompts");
  say("load: " + std::to_string(load_s) + " s");

  // --kv-offload: the host's read bandwidth, with the threads the KV attention uses, so the
  // step can be held against max(weight stream, KV read) (issue 11, target 3).
  double host_read_gbs = planned ? planned->host_read_gbs : 0, disk_raw_gbs = planned ? planned->disk_gbs : 0;
  if (o.offload == "nvme" && disk_raw_gbs == 0) {
    say("measuring the store's raw O_DIRECT read bandwidth ...");
    disk_raw_gbs = raw_read_gbs(o.model, o);
  }
  if (o.kv_offload && host_read_gbs == 0) {
    say("measuring the host's read bandwidth (1 GiB, " + std::to_string(setup.threads) + " threads) ...");
    host_read_gbs = offload::measure_read_bandwidth(size_t(1) << 30, setup.threads, 5) / 1e9;
  }
  runtime::GenerationOptions g = make_generation_options(o, setup);
  // Host KV bytes one decode step reads, averaged over the steps: step s (1..gen-1) sees
  // prompt + s keys, so the mean is prompt + gen / 2 keys of every layer, kv head, K and V.
  const double kv_row_bytes =
      static_cast<double>(quant::kv_row_code_bytes(setup.kv_storage, c.head_dim) +
                          quant::kv_row_param_bytes(setup.kv_storage, c.head_dim, std::min(g.kv.group, c.head_dim)));
  const double kv_keys_mean = b.prompt_len + b.gen_len / 2.0;

  g.ignore_eos = true;
  const auto show_steps = [&](int step, int steps) {
    if (step >= 2) std::cerr << "\rdecode step " << step - 1 << "/" << steps - 1 << std::flush;
  };
  std::vector<BenchRow> rows;
  for (const int batch : batch_sizes) {
    const std::vector<runtime::Prompt> prompts = make_prompts(batch, b.prompt_len, rank, c.vocab_size, o.seed);
    g.batch_size = batch;
    g.progress = nullptr;
    backend.arena().reset_high_water_mark();  // this batch size's peak
    for (int w = 1; w <= b.warmup; ++w) {
      say("batch " + std::to_string(batch) + ": warm-up " + std::to_string(w) + "/" + std::to_string(b.warmup));
      runtime::generate(model, backend, prompts, g);
    }
    std::vector<RunSample> samples;
    for (int loop = 1; loop <= b.loops; ++loop) {
      say("loop " + std::to_string(loop) + "/" + std::to_string(b.loops) + ": prefill");
      g.progress = show ? std::function<void(int, int)>(show_steps) : nullptr;
      const runtime::ZeroStats before = loaded.zero ? loaded.zero->stats() : runtime::ZeroStats{};
      const runtime::GenerationResult r = runtime::generate(model, backend, prompts, g);
      const runtime::ZeroStats after = loaded.zero ? loaded.zero->stats() : runtime::ZeroStats{};
      if (show) std::cerr << "\n";
      RunSample s{runtime::aggregate_metrics(r.stats, comm), stats_delta(before, after), r.stats.kv_host_wait_s,
                  r.stats.kv_host_cpu_s, r.stats.kv_host_store_s, r.stats.kv_host_attention_s};
      const int64_t want = static_cast<int64_t>(batch) * ranks * b.gen_len;
      ZINC_CHECK(s.metrics.generated_tokens == want,
                 "bench: " << s.metrics.generated_tokens << " tokens generated, expected " << want);
      samples.push_back(s);
    }
    auto med = [&](auto get) {
      std::vector<double> v;
      for (const RunSample& s : samples) v.push_back(get(s));
      return median(v);
    };
    BenchRow row;
    row.batch_per_rank = batch;
    row.batch = static_cast<double>(batch) * ranks;
    row.generated_tokens = row.batch * b.gen_len;
    row.decode_tokens = row.batch * (b.gen_len - 1);
    row.prefill_s = med([](const RunSample& s) { return s.metrics.prefill_s; });
    row.decode_s = med([](const RunSample& s) { return s.metrics.decode_s; });
    row.decode_tok_s = med([](const RunSample& s) { return s.metrics.decode_tok_s; });
    row.total_tok_s = med([](const RunSample& s) { return s.metrics.total_tok_s; });
    row.step_ms = med([](const RunSample& s) { return s.metrics.decode_ms_per_token; });
    const WeightStreamRate rate = weight_stream_rate(loaded, row.step_ms * 1e-3, setup.link);
    row.stream_bytes_per_step = static_cast<double>(rate.bytes_per_step);
    row.stream_gbs = rate.gbs;
    row.roofline_fraction = rate.roofline_fraction;
    row.peak_device_bytes = static_cast<double>(samples.back().metrics.peak_bytes);  // since the reset
    row.dequantize_s = med([](const RunSample& s) { return s.pipeline.dequantize_s; });
    row.copy_s = med([](const RunSample& s) { return s.pipeline.copy_s; });
    row.gather_s = med([](const RunSample& s) { return s.pipeline.gather_s; });
    row.disk_s = med([](const RunSample& s) { return s.pipeline.disk_s; });
    row.wait_s = med([](const RunSample& s) { return s.pipeline.wait_s(); });
    row.kv_wait_s = med([](const RunSample& s) { return s.kv_wait_s; });
    row.kv_cpu_s = med([](const RunSample& s) { return s.kv_cpu_s; });
    row.kv_store_s = med([](const RunSample& s) { return s.kv_store_s; });
    row.kv_attention_s = med([](const RunSample& s) { return s.kv_attention_s; });
    if (o.kv_offload && host_read_gbs > 0 && row.step_ms > 0) {
      row.kv_read_bytes_per_step = static_cast<double>(batch) * c.num_layers * 2.0 * c.num_kv_heads * kv_keys_mean * kv_row_bytes;
      const double step_s = row.step_ms * 1e-3, kv_s = row.kv_read_bytes_per_step / (host_read_gbs * 1e9);
      const double weights_s = setup.link.h2d_gbs > 0 ? row.stream_bytes_per_step / (setup.link.h2d_gbs * 1e9) : 0.0;
      row.kv_read_fraction = kv_s / step_s;
      row.step_over_bound = step_s / std::max(kv_s, weights_s);
    }
    // The disk's achieved rate: the run's bytes from the store over its prefill + decode
    // time (disk_s is the readers' summed busy time: with two readers in flight it halved
    // the rate, 0.87 for 1.66 GB/s on the H200's disk).
    row.nvme_gbs = med([](const RunSample& s) {
      const double wall = s.metrics.prefill_s + s.metrics.decode_s;
      return wall > 0 ? static_cast<double>(s.pipeline.source_bytes) / wall / 1e9 : 0.0;
    });
    if (disk_raw_gbs > 0) row.nvme_fraction = row.nvme_gbs / disk_raw_gbs;
    if (planned) {
      try {  // the plan's choices at this batch
        const runtime::RunPlan p = runtime::evaluate_plan(planned->request, batch, planned->plan.kv_on_host,
                                                          planned->plan.kv_storage, planned->plan.tier);
        row.predicted_prefill_s = p.prefill_s;
        row.predicted_step_ms = p.step_s * 1e3;
      } catch (const Error&) {
      }
    }
    rows.push_back(row);
  }
  finish_trace(o, rank);
  if (rank != 0) return 0;

  BenchHeader h;
  h.backend = backend.name();
  h.device = runtime::describe_cuda();
  h.host_cores = std::thread::hardware_concurrency();
  h.host_memory_bytes = host_memory_bytes();
  h.h2d_gbs = setup.link.h2d_gbs;
  h.h2d_probe_bytes = setup.link.bytes;
  h.host_read_gbs = host_read_gbs;
  h.disk_raw_gbs = disk_raw_gbs;
  if (planned)
    for (int i = 0; i < 4; ++i) h.host_attention[i] = planned->request.rates.host_attention[i];
  h.link = o.backend == "cpu" ? "cpu backend: a host memcpy, not a PCIe link" : "pinned host -> device";
  h.model = o.model;
  h.model_type = c.model_type;
  h.quant = quant::quant_format_name(loaded.quant);
  h.group_size = loaded.group_size;
  h.weights = loaded.zero ? "zero3" : "resident";
  h.offload = o.offload;
  h.kv = o.kv_offload ? std::string("host (") + quant::kv_storage_name(setup.kv_storage) + ")" : "device";
  h.dtype = quant::dtype_name(backend.compute_dtype());
  h.ranks = ranks;
  h.threads = setup.threads;
  h.prompt_len = b.prompt_len;
  h.gen_len = b.gen_len;
  h.loops = b.loops;
  h.warmup = b.warmup;
  h.load_s = load_s;
  h.commit = git_commit();
  h.date_utc = zinc::utc_now();
  if (planned) h.plan = planned->plan.describe();
  print_bench_header(std::cout, h);
  print_bench_table(std::cout, rows);
  if (!b.json.empty()) write_bench_json(b.json, h, rows);
  if (!b.csv.empty()) write_bench_csv(b.csv, rows);
  return 0;
}

}  // namespace zinc::cli
