#include "runtime/cli/generate_command.hpp"

#include <algorithm>
#include <iostream>
#include <thread>

#include "offload/memory_arena.hpp"
#include "runtime/common/paths.hpp"
#include "runtime/model/config.hpp"
#include "runtime/generate/generator.hpp"
#include "runtime/cli/prompts.hpp"
#include "runtime/cli/plan_setup.hpp"
#include "runtime/cli/run_setup.hpp"
#include "runtime/generate/metrics.hpp"
#include "runtime/model/loader.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/output_file.hpp"

namespace zinc::cli {
namespace {

// Flattens per-prompt token lists as [count, tokens..., count, tokens...] for the gather.
std::vector<int32_t> flatten(const std::vector<std::vector<int32_t>>& seqs) {
  std::vector<int32_t> flat;
  for (const auto& s : seqs) {
    flat.push_back(static_cast<int32_t>(s.size()));
    flat.insert(flat.end(), s.begin(), s.end());
  }
  return flat;
}

void unflatten(const std::vector<int32_t>& flat, std::vector<std::vector<int32_t>>* out) {
  size_t i = 0;
  while (i < flat.size()) {
    const size_t n = static_cast<size_t>(flat[i++]);
    out->emplace_back(flat.begin() + i, flat.begin() + i + n);
    i += n;
  }
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

// Bytes one forward pass moves: every blob gathered once (the tied embedding twice).
uint64_t blob_bytes_total(const runtime::ZeroWeights& z) {
  uint64_t n = 0;
  for (const auto& m : z.manifests()) n += m.bytes;
  return n;
}

void print_zero_stats(std::ostream& os, const runtime::ZeroWeights& z, int ranks) {
  const runtime::ZeroStats s = z.stats();
  const offload::PinnedPool& pin = z.pinned();
  os << "ZeRO-3: " << z.manifests().size() << " blobs, " << offload::format_bytes(blob_bytes_total(z))
     << " of packed weights; " << s.gathers << " all-gathers moved "
     << offload::format_bytes(s.gathered_bytes) << " per rank (" << offload::format_bytes(s.blob_bytes)
     << " unpadded) over " << ranks << " rank" << (ranks > 1 ? "s" : "") << "\n";
  os << "placement: " << z.placement().describe() << "\n";
  os << "pinned host memory: " << offload::format_bytes(pin.reserved_bytes()) << " in " << pin.chunks()
     << " chunk" << (pin.chunks() == 1 ? "" : "s") << ", " << pin.pin_seconds() << " s to map and pin"
     << (pin.pinned() ? "" : " (NOT pinned: " + pin.pin_error() + ")") << "\n";
  os << "pipeline (rank 0, " << z.slots() << " slots): busy disk " << s.disk_s << " s, copy " << s.copy_s
     << " s, gather " << s.gather_s << " s, dequantize " << s.dequantize_s << " s; compute ran "
     << s.compute_s << " s (dequantize included) and waited " << s.wait_s() << " s for the weights (disk "
     << s.wait_disk_s << ", copy " << s.wait_copy_s << ", gather " << s.wait_gather_s << ", other "
     << s.wait_other_s << ")\n";
  if (s.source_bytes > 0)
    os << "NVMe tier: " << offload::format_bytes(s.source_bytes)
       << " read with io_uring O_DIRECT (CRC-checked, read ahead), "
       << (s.disk_s > 0 ? static_cast<double>(s.source_bytes) / s.disk_s / 1e9 : 0.0) << " GB/s while reading\n";
}

nlohmann::json zero_stats_json(const runtime::ZeroWeights& z, int ranks) {
  const runtime::ZeroStats s = z.stats();
  const offload::Placement& p = z.placement();
  const offload::PinnedPool& pin = z.pinned();
  return {{"blobs", z.manifests().size()},      {"packed_bytes", blob_bytes_total(z)},
          {"ranks", ranks},                     {"gathers", s.gathers},
          {"gathered_bytes", s.gathered_bytes}, {"gathered_unpadded_bytes", s.blob_bytes},
          {"slots", z.slots()},                 {"resident_blobs", p.resident_count()},
          {"resident_bytes", p.resident_bytes}, {"planned_device_bytes", p.planned_bytes},
          {"minimum_device_bytes", p.minimum_bytes},
          {"streamed_bytes_per_pass", p.streamed_bytes_per_pass},
          {"pinned_bytes", pin.reserved_bytes()}, {"pin_s", pin.pin_seconds()},
          {"pinned", pin.pinned()},
          {"busy_s", {{"disk", s.disk_s}, {"copy", s.copy_s}, {"gather", s.gather_s}, {"dequantize", s.dequantize_s}}},
          {"wait_s", {{"disk", s.wait_disk_s}, {"copy", s.wait_copy_s}, {"gather", s.wait_gather_s},
                      {"other", s.wait_other_s}}},
          {"compute_s", s.compute_s},           {"nvme_bytes", s.source_bytes}};
}

}  // namespace

int run_generate(const GenerateOptions& opts, collectives::MpiCommunicator& mpi) {
  const int rank = mpi.rank(), size = mpi.size();
  // Text prompts become ids with the model's tokenizer (which also decodes the outputs).
  const std::unique_ptr<runtime::Tokenizer> tokenizer =
      find_tokenizer(opts.model, opts.tokenizer, !opts.text_prompts.empty());
  GenerateOptions o = opts;
  o.backend = runtime::resolve_backend(o.backend);
  for (const std::string& text : opts.text_prompts) o.prompts.push_back(tokenizer->encode(text, true));
  std::vector<std::string> shown;  // how each prompt is printed
  for (const auto& ids : opts.prompts) shown.push_back(join(ids));
  for (const std::string& text : opts.text_prompts) shown.push_back(text);
  const size_t n = o.prompts.size();
  const size_t first = n * rank / size, last = n * (rank + 1) / size;  // this rank's block

  // The link is measured on the GPU backends only: on the CPU backend a "copy" is a memcpy.
  RunSetup setup = make_run_setup(o, mpi, o.backend != "cpu" ? size_t(1) << 30 : 0);
  start_trace(o, mpi.rank());
  runtime::Backend& backend = *setup.backend;
  collectives::Communicator& comm = *setup.comm;
  const offload::CopyBandwidth& link = setup.link;
  const int threads = setup.threads;
  // The largest step any rank takes (the same on every rank: the plan must agree).
  const size_t per_rank = (n + size - 1) / size;
  size_t longest = 0;
  for (const auto& p : o.prompts) longest = std::max(longest, p.size());
  // --plan auto: the planner's batch (rounds of it when the prompts are more), KV and tier.
  const std::optional<PlannedRun> planned =
      plan_and_apply(o, setup, mpi, o.batch_size, static_cast<int>(per_rank), static_cast<int>(longest),
                     o.max_new_tokens, o.quiet);
  if (planned && o.batch_size == 0 && static_cast<size_t>(planned->plan.batch) < per_rank)
    o.batch_size = planned->plan.batch;
  const quant::KvStorage kv_storage = setup.kv_storage;
  const int step_batch = static_cast<int>(o.batch_size > 0 ? std::min<size_t>(o.batch_size, per_rank) : per_rank);
  resolve_prefetch_depth(o, setup, step_batch);
  const runtime::LoadOptions lo = make_load_options(
      o, step_batch,
      static_cast<int>(longest), static_cast<int>(longest) + o.max_new_tokens);
  const double t0 = now_s();
  runtime::LoadedModel loaded = runtime::load_for_generation(lo, backend, comm);
  const double load_s = seconds_since(t0);
  runtime::Model& model = *loaded.model;

  std::vector<runtime::Prompt> mine;
  for (size_t i = first; i < last; ++i) mine.push_back(runtime::Prompt{o.prompts[i], i});
  const runtime::GenerationOptions g = make_generation_options(o, setup);
  runtime::GenerationResult result = runtime::generate(model, backend, mine, g);
  finish_trace(o, rank);
  result.stats.load_s = load_s;

  const auto gathered = comm.gather_varlen(flatten(result.tokens), 0);
  const runtime::RunMetrics metrics = runtime::aggregate_metrics(result.stats, comm);
  // Nodes: the ranks that are node-local rank 0 (MPI_COMM_TYPE_SHARED groups).
  const int nodes = static_cast<int>(mpi.allreduce_sum({mpi.local_rank() == 0 ? 1.0 : 0.0})[0]);
  if (rank != 0) return 0;

  std::vector<std::vector<int32_t>> tokens;
  for (const auto& part : gathered) unflatten(part, &tokens);
  ZINC_CHECK(tokens.size() == n, "gathered " << tokens.size() << " results for " << n << " prompts");
  const runtime::ModelConfig& c = model.config();
  if (!o.quiet) {
    std::cout << "model " << o.model << " (" << c.model_type << ", " << c.num_layers << " layers, hidden "
              << c.hidden_size << ", vocab " << c.vocab_size << "; " << quant::quant_format_name(loaded.quant)
              << (loaded.zero ? ", ZeRO-3 shards" : ", resident") << ") on " << size << " rank"
              << (size > 1 ? "s" : "") << (nodes > 1 ? " (" + std::to_string(nodes) + " nodes)" : std::string())
              << ", backend " << backend.name() << "\n";
    for (size_t i = 0; i < n; ++i) {
      // Text when the model has a tokenizer (ids are in --metrics-json), else ids.
      std::cout << "[" << i + 1 << "] prompt: " << shown[i] << "\n"
                << "[" << i + 1 << "] output: "
                << (tokenizer ? tokenizer->decode(tokens[i], true) : join(tokens[i]));
      if (!tokens[i].empty() && c.is_eos(tokens[i].back())) std::cout << "  (eos)";
      std::cout << "\n";
    }
  }
  runtime::print_metrics_table(std::cout, metrics);
  if (loaded.zero) print_zero_stats(std::cout, *loaded.zero, size);
  const runtime::GenerationStats& st = result.stats;  // rank 0's
  const WeightStreamRate rate =
      weight_stream_rate(loaded, st.decode_steps > 0 ? st.decode_s / static_cast<double>(st.decode_steps) : 0.0, link);
  if (rate.bytes_per_step > 0)
    std::cout << "weight stream: " << offload::format_bytes(rate.bytes_per_step) << " per forward; decode steps "
              << rate.step_s * 1e3 << " ms each = " << rate.gbs << " GB/s"
              << (link.h2d_gbs > 0 ? ", " + std::to_string(100.0 * rate.roofline_fraction) + "% of the pinned H2D " +
                                         std::to_string(link.h2d_gbs) + " GB/s measured at start"
                                   : std::string())
              << " (rank 0)\n";
  if (result.stats.driver_bytes > 0)
    std::cout << "device memory (rank 0): arena peak " << offload::format_bytes(backend.arena().high_water_mark())
              << "; the driver counted " << offload::format_bytes(result.stats.driver_bytes)
              << " in use with the run's buffers allocated (CUDA context and library handles included)\n";
  std::cout << "KV cache: " << (o.kv_offload ? std::string("host memory (") + quant::kv_storage_name(kv_storage) +
                                                   "), attention on the CPU" +
                                                   (result.stats.kv_lanes > 0
                                                        ? ", decode in " + std::to_string(result.stats.kv_lanes) +
                                                              " lanes (the CPU attends one while the device computes another)"
                                                        : std::string())
                                             : std::string("device"))
            << "\n";
  if (planned && st.decode_steps > 0) {
    const double measured = st.decode_s / static_cast<double>(st.decode_steps);
    std::cout << "plan: predicted decode step " << planned->plan.step_s * 1e3 << " ms, measured " << measured * 1e3
              << " ms (" << 100.0 * (measured / planned->plan.step_s - 1.0) << "%); prefill predicted "
              << planned->plan.prefill_s << " s, measured " << st.prefill_s << " s\n";
  }
  if (!o.metrics_json.empty()) {
    nlohmann::json j = runtime::metrics_to_json(metrics);
    j["model"] = o.model;
    j["model_type"] = c.model_type;
    j["backend"] = backend.name();
    if (planned)
      j["plan"] = {{"batch", planned->plan.batch},
                   {"kv_on_host", planned->plan.kv_on_host},
                   {"kv_storage", quant::kv_storage_name(planned->plan.kv_storage)},
                   {"tier", offload::tier_name(planned->plan.tier)},
                   {"bound", planned->plan.bound},
                   {"predicted_step_s", planned->plan.step_s},
                   {"predicted_prefill_s", planned->plan.prefill_s},
                   {"predicted_decode_tok_s", planned->plan.decode_tok_s}};
    j["compute_dtype"] = quant::dtype_name(backend.compute_dtype());
    j["h2d_gbs"] = link.h2d_gbs;
    j["driver_used_bytes"] = result.stats.driver_bytes;
    j["weight_stream"] = {{"bytes_per_step", rate.bytes_per_step}, {"step_s", rate.step_s}, {"gbs", rate.gbs},
                          {"roofline_fraction", rate.roofline_fraction}};
    j["threads_per_rank"] = threads;
    j["nodes"] = nodes;
    j["ranks_per_node_rank0"] = mpi.local_size();
    j["max_new_tokens"] = o.max_new_tokens;
    j["batch_size"] = o.batch_size;
    j["outputs"] = tokens;
    if (tokenizer) {
      std::vector<std::string> texts;
      for (const auto& t : tokens) texts.push_back(tokenizer->decode(t, true));
      j["output_texts"] = texts;
    }
    j["quant"] = quant::quant_format_name(loaded.quant);
    j["group_size"] = loaded.group_size;
    j["weights"] = loaded.zero ? "zero3" : "resident";
    j["offload"] = o.offload;
    j["prefetch_depth"] = o.prefetch_depth;
    j["kv_placement"] = o.kv_offload ? "host" : "device";
    j["kv_storage"] = o.kv_offload ? quant::kv_storage_name(kv_storage) : quant::dtype_name(backend.compute_dtype());
    if (loaded.zero) j["zero"] = zero_stats_json(*loaded.zero, size);
    write_output_file(o.metrics_json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace zinc::cli
