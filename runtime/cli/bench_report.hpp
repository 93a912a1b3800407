// The report of `zinc bench`: a run header (machine, build, model, the measured link) and
// one row per batch size, written three ways from one column list so they always agree:
// a fixed-width table with a units row (nccl-tests / llama-bench style), JSON (the header
// and a "rows" array) and CSV (a header line and one line per batch size).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace zinc::cli {

struct BenchHeader {
  std::string backend, device;        // backend name; runtime::describe_cuda()
  unsigned host_cores = 0;            // std::thread::hardware_concurrency
  size_t host_memory_bytes = 0;       // /proc/meminfo MemTotal
  double h2d_gbs = 0;                 // the link measured at start by this binary
  size_t h2d_probe_bytes = 0;
  double host_read_gbs = 0;           // --kv-offload: the host's read bandwidth, measured at start
  double disk_raw_gbs = 0;            // --offload nvme: the store's raw O_DIRECT bandwidth, at start
  // --plan auto: the host KV attention measured at the model's shape, per quant::KvStorage
  // (bytes/s of K + V, PlanRates::host_attention; 0 = not measured)
  double host_attention[4] = {0, 0, 0, 0};
  std::string link;                   // what the "H2D" copy is on this backend
  std::string model, model_type, quant, weights, offload, kv, dtype;
  int group_size = 0, ranks = 1, threads = 0, prompt_len = 0, gen_len = 0, loops = 0, warmup = 1;
  double load_s = 0;
  std::string commit, date_utc;
  std::string plan;                   // --plan auto: the planner's lines (RunPlan::describe); "" = none
};

// One batch size: medians over the timed loops (the warm-up excluded). Times are the max
// over ranks; the pipeline's stage times and the NVMe rate are rank 0's, per run.
struct BenchRow {
  double batch_per_rank = 0, batch = 0;           // batch = per rank x ranks
  double generated_tokens = 0, decode_tokens = 0; // per run: B*gen, B*(gen-1)
  double prefill_s = 0, decode_s = 0;
  double decode_tok_s = 0, total_tok_s = 0;       // B*(gen-1)/decode, B*gen/(prefill+decode)
  double step_ms = 0;                             // decode latency / decode steps
  double stream_bytes_per_step = 0, stream_gbs = 0, roofline_fraction = 0;
  double peak_device_bytes = 0;                   // arena high-water mark, max over ranks
  double dequantize_s = 0, copy_s = 0, gather_s = 0, disk_s = 0, wait_s = 0;
  double nvme_gbs = 0;                            // bytes read / disk busy time; 0 without nvme
  double nvme_fraction = 0;                       // nvme_gbs / the raw O_DIRECT bandwidth at start
  double kv_wait_s = 0, kv_cpu_s = 0;             // --kv-offload decode: host waits for q/k/v, host work
  double kv_store_s = 0, kv_attention_s = 0;      // two parts of kv_cpu_s: the K/V store, the attention
  // --kv-offload: host KV bytes the attention reads per decode step (mean over the steps),
  // that / step time / host read bandwidth, and the step over its bound
  // max(weight stream at the H2D link, KV read at the host read bandwidth) (issue 11: <= 1.25).
  double kv_read_bytes_per_step = 0, kv_read_fraction = 0, step_over_bound = 0;
  // --plan auto: the planner's prediction for this batch (0 without a plan, or when the
  // batch does not fit the plan's choices).
  double predicted_prefill_s = 0, predicted_step_ms = 0;
};

// Header helpers (the date is zinc::utc_now, runtime/common/clock.hpp): MemTotal in bytes
// (0 when unreadable); the commit the binary was built from (ZINC_GIT_COMMIT, written at
// every build by cmake/git_commit.cmake: "+changes" with uncommitted edits, "unknown"
// without git).
size_t host_memory_bytes();
std::string git_commit();

void print_bench_header(std::ostream& os, const BenchHeader& h);
void print_bench_table(std::ostream& os, const std::vector<BenchRow>& rows);
nlohmann::json bench_json(const BenchHeader& h, const std::vector<BenchRow>& rows);
// Throws zinc::Error naming the file when it cannot be written.
void write_bench_json(const std::string& path, const BenchHeader& h, const std::vector<BenchRow>& rows);
void write_bench_csv(const std::string& path, const std::vector<BenchRow>& rows);

}  // namespace zinc::cli
