#include "runtime/cli/bench_report.hpp"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "offload/memory_arena.hpp"
#include "quant/kv_quant.hpp"
#include "runtime/backend/cpu/attention_probe.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/output_file.hpp"

#include "zinc_git_commit.h"  // generated at build time (cmake/git_commit.cmake)

namespace zinc::cli {
namespace {

// One column of every output: its key (CSV header, JSON row), the table's title and
// unit, the table's scale and precision, and whether it is a count (integral).
struct Column {
  const char* key;
  const char* title;
  const char* unit;
  double BenchRow::*field;
  double scale;
  int precision;
  int width;
  bool integral;
};

const std::vector<Column>& columns() {
  static const std::vector<Column> cols = {
      {"batch_per_rank", "B/rank", "seq", &BenchRow::batch_per_rank, 1, 0, 6, true},
      {"batch", "batch", "seq", &BenchRow::batch, 1, 0, 6, true},
      {"prefill_s", "prefill", "s", &BenchRow::prefill_s, 1, 4, 9, false},
      {"decode_s", "decode", "s", &BenchRow::decode_s, 1, 4, 9, false},
      {"decode_tok_s", "decode", "tok/s", &BenchRow::decode_tok_s, 1, 1, 10, false},
      {"total_tok_s", "total", "tok/s", &BenchRow::total_tok_s, 1, 1, 10, false},
      {"decode_step_ms", "step", "ms", &BenchRow::step_ms, 1, 3, 9, false},
      {"stream_bytes_per_step", "stream", "MB/step", &BenchRow::stream_bytes_per_step, 1e-6, 2, 9, true},
      {"stream_gbs", "stream", "GB/s", &BenchRow::stream_gbs, 1, 3, 8, false},
      {"roofline_fraction", "roofline", "% link", &BenchRow::roofline_fraction, 100, 1, 8, false},
      {"peak_device_bytes", "peak mem", "MiB", &BenchRow::peak_device_bytes, 1.0 / (1 << 20), 1, 9, true},
      {"dequantize_s", "dequant", "s busy", &BenchRow::dequantize_s, 1, 4, 8, false},
      {"copy_s", "copy", "s busy", &BenchRow::copy_s, 1, 4, 8, false},
      {"gather_s", "gather", "s busy", &BenchRow::gather_s, 1, 4, 8, false},
      {"disk_s", "disk", "s busy", &BenchRow::disk_s, 1, 4, 8, false},
      {"wait_s", "wait", "s", &BenchRow::wait_s, 1, 4, 8, false},
      {"nvme_gbs", "nvme", "GB/s", &BenchRow::nvme_gbs, 1, 3, 7, false},
      {"nvme_fraction", "nvme", "% raw", &BenchRow::nvme_fraction, 100, 1, 7, false},
      {"kv_host_wait_s", "kv wait", "s", &BenchRow::kv_wait_s, 1, 4, 8, false},
      {"kv_host_cpu_s", "kv cpu", "s busy", &BenchRow::kv_cpu_s, 1, 4, 8, false},
      {"kv_host_store_s", "kv store", "s busy", &BenchRow::kv_store_s, 1, 4, 8, false},
      {"kv_host_attention_s", "kv attn", "s busy", &BenchRow::kv_attention_s, 1, 4, 8, false},
      {"kv_read_bytes_per_step", "kv read", "MB/step", &BenchRow::kv_read_bytes_per_step, 1e-6, 1, 9, true},
      {"kv_read_fraction", "kv read", "% host", &BenchRow::kv_read_fraction, 100, 1, 8, false},
      {"step_over_bound", "step", "/ bound", &BenchRow::step_over_bound, 1, 2, 7, false},
      {"predicted_prefill_s", "plan", "prefill s", &BenchRow::predicted_prefill_s, 1, 4, 9, false},
      {"predicted_step_ms", "plan", "step ms", &BenchRow::predicted_step_ms, 1, 3, 9, false},
      {"generated_tokens", "tokens", "per run", &BenchRow::generated_tokens, 1, 0, 8, true},
      {"decode_tokens", "decoded", "per run", &BenchRow::decode_tokens, 1, 0, 8, true},
  };
  return cols;
}

std::string raw_value(const Column& c, const BenchRow& r) {
  const double v = r.*(c.field);
  if (c.integral) return std::to_string(static_cast<long long>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string cell(const std::string& text, int width) {
  char buf[96];
  std::snprintf(buf, sizeof buf, " %*s", width, text.c_str());
  return buf;
}

}  // namespace

size_t host_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  while (in >> key) {
    if (key == "MemTotal:") {
      in >> kib;
      return kib * 1024;
    }
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

std::string git_commit() { return ZINC_GIT_COMMIT; }

void print_bench_header(std::ostream& os, const BenchHeader& h) {
  char gbs[32];
  std::snprintf(gbs, sizeof gbs, "%.2f", h.h2d_gbs);
  os << "# zinc bench  commit " << h.commit << "  " << h.date_utc << "\n"
     << "# backend " << h.backend << " (" << h.dtype << ", " << h.threads << " threads/rank), device: " << h.device
     << "\n"
     << "# host: " << h.host_cores << " cores, " << offload::format_bytes(h.host_memory_bytes) << " memory; "
     << h.ranks << " rank" << (h.ranks > 1 ? "s" : "") << "\n"
     << "# link: " << gbs << " GB/s pinned H2D (" << h.link << ", " << offload::format_bytes(h.h2d_probe_bytes)
     << " copies, median)\n";
  if (h.disk_raw_gbs > 0) {
    std::snprintf(gbs, sizeof gbs, "%.3f", h.disk_raw_gbs);
    os << "# disk: " << gbs << " GB/s raw O_DIRECT reads of the store (up to 2 GiB, median of 3)\n";
  }
  if (h.host_read_gbs > 0) {
    std::snprintf(gbs, sizeof gbs, "%.2f", h.host_read_gbs);
    os << "# host read: " << gbs << " GB/s (the KV attention's threads, 1 GiB, median)\n";
  }
  const std::string attention = runtime::host_attention_rates_text(h.host_attention);
  if (!attention.empty())
    os << "# host KV attention at this model's shape (store + attend, GB/s of K + V): " << attention << "\n";
  if (!h.plan.empty()) {
    std::istringstream lines(h.plan);
    for (std::string line; std::getline(lines, line);) os << "# " << line << "\n";
  }
  os
     << "# model " << h.model << " (" << h.model_type << "), quant " << h.quant;
  if (h.group_size > 0 && h.quant != "none") os << " group " << h.group_size;
  os << ", weights " << h.weights << ", offload " << h.offload << ", KV " << h.kv << "; loaded in " << h.load_s
     << " s\n"
     << "# prompt " << h.prompt_len << " tokens, " << h.gen_len << " generated (EOS ignored), " << h.loops
     << " timed loop" << (h.loops > 1 ? "s" : "") << " after " << h.warmup << " warm-up" << (h.warmup == 1 ? "" : "s")
     << ": medians\n";
}

void print_bench_table(std::ostream& os, const std::vector<BenchRow>& rows) {
  std::string title, unit;
  for (const Column& c : columns()) {
    title += cell(c.title, c.width);
    unit += cell(c.unit, c.width);
  }
  os << title << "\n" << unit << "\n";
  for (const BenchRow& r : rows) {
    std::string line;
    for (const Column& c : columns()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*f", c.precision, r.*(c.field) * c.scale);
      line += cell(buf, c.width);
    }
    os << line << "\n";
  }
}

namespace {

// {"int4": 24.1, ...} for the storages measured.
nlohmann::json host_attention_json(const BenchHeader& h) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < 4; ++i)
    if (h.host_attention[i] > 0) j[quant::kv_storage_name(static_cast<quant::KvStorage>(i))] = h.host_attention[i] / 1e9;
  return j;
}

}  // namespace

nlohmann::json bench_json(const BenchHeader& h, const std::vector<BenchRow>& rows) {
  nlohmann::json header = {{"backend", h.backend},
                           {"device", h.device},
                           {"host_cores", h.host_cores},
                           {"host_memory_bytes", h.host_memory_bytes},
                           {"h2d_gbs", h.h2d_gbs},
                           {"host_read_gbs", h.host_read_gbs},
                           {"disk_raw_gbs", h.disk_raw_gbs},
                           {"host_attention_gbs", host_attention_json(h)},
                           {"plan", h.plan},
                           {"h2d_probe_bytes", h.h2d_probe_bytes},
                           {"link", h.link},
                           {"model", h.model},
                           {"model_type", h.model_type},
                           {"quant", h.quant},
                           {"group_size", h.group_size},
                           {"weights", h.weights},
                           {"offload", h.offload},
                           {"kv", h.kv},
                           {"compute_dtype", h.dtype},
                           {"ranks", h.ranks},
                           {"threads_per_rank", h.threads},
                           {"prompt_len", h.prompt_len},
                           {"gen_len", h.gen_len},
                           {"loops", h.loops},
                           {"warmup", h.warmup},
                           {"load_s", h.load_s},
                           {"commit", h.commit},
                           {"date_utc", h.date_utc}};
  nlohmann::json out = {{"header", header}, {"rows", nlohmann::json::array()}};
  for (const BenchRow& r : rows) {
    nlohmann::json row = nlohmann::json::object();
    for (const Column& c : columns()) {
      const double v = r.*(c.field);
      if (c.integral)
        row[c.key] = static_cast<long long>(v);
      else
        row[c.key] = v;
    }
    out["rows"].push_back(row);
  }
  return out;
}

void write_bench_json(const std::string& path, const BenchHeader& h, const std::vector<BenchRow>& rows) {
  write_output_file(path, bench_json(h, rows).dump(2) + "\n");
}

void write_bench_csv(const std::string& path, const std::vector<BenchRow>& rows) {
  std::ostringstream s;
  for (size_t i = 0; i < columns().size(); ++i) s << (i ? "," : "") << columns()[i].key;
  s << "\n";
  for (const BenchRow& r : rows) {
    for (size_t i = 0; i < columns().size(); ++i) s << (i ? "," : "") << raw_value(columns()[i], r);
    s << "\n";
  }
  write_output_file(path, s.str());
}

}  // namespace zinc::cli
