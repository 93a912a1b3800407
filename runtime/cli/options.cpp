#include "runtime/cli/options.hpp"

#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "offload/memory_arena.hpp"

namespace po = boost::program_options;

namespace zinc::cli {

std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& where) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ',' || std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    const char* start = text.c_str() + i;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(start, &end, 10);
    if (end == start || errno != 0 || v < 0 || v > INT32_MAX ||
        (*end != '\0' && *end != ',' && !std::isspace(static_cast<unsigned char>(*end)))) {
      size_t stop = text.find_first_of(", \t", i);
      ZINC_THROW(where << ": '" << text.substr(i, stop == std::string::npos ? stop : stop - i)
                       << "' is not a token id (expected non-negative integers separated by "
                          "commas or spaces)");
    }
    ids.push_back(static_cast<int32_t>(v));
    i = static_cast<size_t>(end - text.c_str());
  }
  ZINC_CHECK(!ids.empty(), where << ": no token ids given");
  return ids;
}

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::ifstream in(path);
  ZINC_CHECK(in.good(), path << ": cannot open the prompts file");
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);
  }
  ZINC_CHECK(in.eof(), path << ": read error");
  ZINC_CHECK(!prompts.empty(), path << ": no prompts in the file");
  return prompts;
}

std::vector<std::vector<int32_t>> read_prompt_ids_file(const std::string& path) {
  std::ifstream in(path);
  ZINC_CHECK(in.good(), path << ": cannot open the prompts file");
  std::vector<std::vector<int32_t>> prompts;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    prompts.push_back(parse_token_ids(line, path + ":" + std::to_string(lineno)));
  }
  ZINC_CHECK(in.eof(), path << ": read error");
  ZINC_CHECK(!prompts.empty(), path << ": no prompts in the file");
  return prompts;
}

void check_token_count(const char* flag, int64_t value, int min) {
  if (value < min || value > kMaxSequenceTokens)
    throw UsageError(std::string(flag) + " must be in [" + std::to_string(min) + ", " +
                     std::to_string(kMaxSequenceTokens) + "], got " + std::to_string(value));
}

bool parse_command(int argc, char** argv, const po::options_description& desc,
                   const po::positional_options_description* positional, const char* command,
                   std::string* help, po::variables_map* vm_out) {
  std::ostringstream hs;
  hs << desc;
  *help = hs.str();
  po::variables_map local;
  po::variables_map& vm = vm_out ? *vm_out : local;
  try {
    po::command_line_parser parser(argc, argv);
    parser.options(desc);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) return false;
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + "\nrun 'zinc " + command + " --help' for the options");
  }
  return true;
}

void add_run_options(po::options_description& desc, GenerateOptions* o) {
  desc.add_options()
      ("trace", po::value<std::string>(&o->trace),
       "write a timeline of the run's host threads (decode lanes, KV worker, weight loader) "
       "as Chrome trace JSON to this file (rank r > 0: FILE.rank<r>); open it in Perfetto")
      ("model", po::value<std::string>(&o->model),
       "a Hugging Face directory (config.json + safetensors), a FILE.zinc.h5 store "
       "(zinc convert), or dummy:SHAPE (random weights, e.g. dummy:llama-2-13b)")
      ("dummy", po::value<std::string>(),
       "random weights of a built-in shape (opt-1.3b .. opt-175b, llama-2-7b/13b/70b, "
       "tiny-llama, tiny-opt): the same as --model dummy:SHAPE")
      ("quant", po::value<std::string>(&o->quant)->default_value("none"),
       "weight format: none, int8, int8-asym, int4, int4-sym, nf4 (a store keeps its own)")
      ("group-size", po::value<int>(&o->group_size)->default_value(64),
       "quantization group size along each row (input dimension)")
      ("zero", po::bool_switch(&o->zero),
       "stream ZeRO-3 shards even on one rank with --quant none")
      ("offload", po::value<std::string>(&o->offload)->default_value("cpu"),
       "where each rank keeps its weight shards: none (every blob gathered once and kept on "
       "the device), cpu (pinned host memory) or nvme (read from the zinc store with io_uring "
       "O_DIRECT at every use)")
      ("prefetch-depth", po::value<int>(&o->prefetch_depth)->default_value(2),
       "gather slots in the weight pipeline: blobs loaded ahead of the one computing + 1 "
       "(at most the blob loads of a forward pass: more are clamped to them; default 2, "
       "3 for a host-KV decode in lanes)")
      ("resident-blobs", po::value<int>(&o->resident_blobs)->default_value(-1),
       "keep at most this many blobs resident on the device (-1: as many as "
       "--gpu-memory-budget allows; none without a budget)")
      ("micro-batch", po::value<int>(&o->micro_batch)->default_value(0),
       "sequences per micro-batch inside each forward: every layer runs the batch in "
       "micro-batches while its weights are loaded once (0: auto, micro-batches of up to "
       "16384 token rows, so a big prefill's activations stay small)")
      ("kv-offload", po::bool_switch(&o->kv_offload),
       "keep the KV cache in host memory; attention runs on the CPU over it")
      ("kv-quant", po::value<std::string>(&o->kv_quant)->default_value("none"),
       "KV cache storage with --kv-offload: none (the compute dtype), f16, int8, int4 "
       "(group-wise along head_dim); auto with --plan auto: the planner may choose int8/int4")
      ("plan", po::value<std::string>(&o->plan)->default_value("auto"),
       "auto: choose the batch (zinc bench --batch-size auto), the KV cache's place and "
       "storage, the weight tier and the resident blobs for decode throughput from the "
       "model, the budgets and bandwidths measured at start, and print the prediction; "
       "placement flags given stay fixed. The default on a GPU when no placement flag "
       "(--offload, --gpu/--cpu-memory-budget, --resident-blobs, --kv-offload, --kv-quant) "
       "is given; given explicitly, it plans on any backend. off: the flags as given")
      ("kv-overlap", po::value<std::string>(&o->kv_overlap)->default_value("auto"),
       "with --kv-offload, decode steps run their micro-batches as lanes so the CPU attends "
       "one while the GPU computes another: auto (on, except with the CPU backend), on, off; "
       "without --micro-batch a lane step has 2 micro-batches")
      ("nvme-queue-depth", po::value<unsigned>(&o->nvme_queue_depth)->default_value(16),
       "reads in flight per rank for --offload nvme")
      ("nvme-block-size", po::value<std::string>(&o->nvme_block_size)->default_value("1MiB"),
       "bytes per read for --offload nvme (a multiple of 4096)")
      ("backend", po::value<std::string>(&o->backend)->default_value("auto"),
       "where the model's ops run: auto (cuda where a GPU is visible, else cpu), cpu, cuda "
       "(this build's backends: zinc --version)")
      ("dtype", po::value<std::string>(&o->dtype)->default_value("auto"),
       "compute dtype: auto (cpu: fp32; cuda: bf16 for a bfloat16 checkpoint, else fp16), fp32, fp16, bf16")
      ("threads", po::value<int>(&o->threads)->default_value(0),
       "CPU threads per rank (0: cores on the node / ranks on the node; more than the node's "
       "cores are clamped to them)")
      ("gpu-memory-budget", po::value<std::string>(&o->memory_budget),
       "device memory budget per rank, e.g. 48GiB (default: unlimited); the planner keeps "
       "as many blobs resident as fit and refuses a budget below the minimum before loading")
      ("cpu-memory-budget", po::value<std::string>(&o->cpu_memory_budget),
       "pinned host memory per rank for weight shards: with --offload nvme the shards that "
       "fit stay in host memory (read once) and the rest are read from the store at every "
       "use; with cpu, a cap (default: unlimited for cpu, none kept for nvme)")
      ("memory-budget", po::value<std::string>(&o->memory_budget),
       "the same as --gpu-memory-budget (the CPU backend's \"device\" memory)")
      ("collective-timeout", po::value<double>(&o->collective_timeout_s)->default_value(300),
       "seconds a rank may wait for its peers (a collective, its weights, a step) before the job "
       "is ended with an error naming the ranks that did not arrive; the limit grows to 10x the "
       "longest step when that is longer (0: no watchdog)");
}

void finish_run_options(const po::variables_map& vm, GenerateOptions* o) {
  o->quant_given = !vm["quant"].defaulted();
  if (vm.count("dummy")) {
    if (vm.count("model")) throw UsageError("give --model or --dummy, not both");
    o->model = "dummy:" + vm["dummy"].as<std::string>();
  }
  if (o->model.empty()) throw UsageError("no model: give --model DIR|FILE.zinc.h5|dummy:SHAPE or --dummy SHAPE");
  o->group_size_given = !vm["group-size"].defaulted();
  if (o->threads < 0) throw UsageError("--threads must be >= 0");
  if (o->group_size <= 0) throw UsageError("--group-size must be > 0");
  if (o->prefetch_depth < 1) throw UsageError("--prefetch-depth must be >= 1");
  if (!(o->collective_timeout_s >= 0) || o->collective_timeout_s > 1e9)
    throw UsageError("--collective-timeout must be a number of seconds >= 0 (0: no watchdog)");
  if (o->micro_batch < 0) throw UsageError("--micro-batch must be >= 0 (0: auto)");
  if (o->resident_blobs < -1) throw UsageError("--resident-blobs must be >= -1");
  o->offload_given = !vm["offload"].defaulted();
  o->plan_given = !vm["plan"].defaulted();
  o->prefetch_depth_given = !vm["prefetch-depth"].defaulted();
  o->placement_given = o->offload_given || vm.count("gpu-memory-budget") || vm.count("memory-budget") ||
                       vm.count("cpu-memory-budget") || !vm["resident-blobs"].defaulted() || o->kv_offload ||
                       !vm["kv-quant"].defaulted();
  if (o->plan != "auto" && o->plan != "off") throw UsageError("--plan must be auto or off (got '" + o->plan + "')");
  if (o->kv_quant == "auto" && !(o->plan == "auto" && o->plan_given))
    throw UsageError("--kv-quant auto lets the planner choose: add --plan auto");
  if (o->kv_quant != "none" && o->kv_quant != "auto" && !o->kv_offload)
    throw UsageError("--kv-quant " + o->kv_quant + " quantizes the host KV cache: add --kv-offload");
  if (o->kv_overlap != "auto" && o->kv_overlap != "on" && o->kv_overlap != "off")
    throw UsageError("--kv-overlap must be auto, on or off (got '" + o->kv_overlap + "')");
  if (vm.count("gpu-memory-budget") && vm.count("memory-budget"))
    throw UsageError("give --gpu-memory-budget or --memory-budget, not both");
  // 0 bytes is how the arena spells "unlimited": a budget that rounds to it ran unbudgeted.
  for (const char* flag : {"gpu-memory-budget", "memory-budget"}) {
    if (vm.count(flag) && offload::parse_bytes(o->memory_budget) == 0)
      throw UsageError(std::string("--") + flag + " " + o->memory_budget +
                       " is 0 bytes: give at least 1B, or no budget for an unlimited one");
  }
}

bool parse_generate_options(int argc, char** argv, GenerateOptions* o, std::string* help) {
  std::vector<std::string> prompt_ids;
  std::string prompts_file, prompt_ids_file;
  po::options_description desc(
      "zinc generate: batch generation on a Hugging Face model (LLaMA, OPT) directory\n"
      "usage: [mpirun -np N] zinc generate --model M (--prompt TEXT ... | --prompts-file F | "
      "--prompt-ids IDS ... | --prompt-ids-file F) "
      "[options]\noptions");
  desc.add_options()("help,h", "show this help");
  add_run_options(desc, o);
  desc.add_options()
      ("prompt-ids", po::value<std::vector<std::string>>(&prompt_ids),
       "one prompt as token ids, \"1,2,3\"; repeat for a batch")
      ("prompt", po::value<std::vector<std::string>>(&o->text_prompts),
       "one text prompt; repeat for a batch (needs the model's tokenizer)")
      ("prompts-file", po::value<std::string>(&prompts_file), "file with one text prompt per line")
      ("prompt-ids-file", po::value<std::string>(&prompt_ids_file),
       "file with one prompt of token ids per line")
      ("tokenizer", po::value<std::string>(&o->tokenizer),
       "tokenizer.json or a directory with one (default: the model's own)")
      ("max-new-tokens", po::value<int>(&o->max_new_tokens)->default_value(32),
       "tokens to generate per prompt (at most 2^30)")
      ("batch-size", po::value<int>(&o->batch_size)->default_value(0),
       "sequences per forward pass on each rank (0: all of the rank's prompts)")
      ("temperature", po::value<float>(&o->temperature)->default_value(0.0f, "0"),
       "sampling temperature; 0 = greedy")
      ("top-k", po::value<int>(&o->top_k)->default_value(0), "keep the k most likely tokens (0: off)")
      ("top-p", po::value<float>(&o->top_p)->default_value(1.0f, "1"), "nucleus sampling mass (1: off)")
      ("seed", po::value<uint64_t>(&o->seed)->default_value(0), "random seed for sampling")
      ("metrics-json", po::value<std::string>(&o->metrics_json), "write the metrics as JSON to this file")
      ("quiet", po::bool_switch(&o->quiet), "print only the metrics");
  po::variables_map vm;
  if (!parse_command(argc, argv, desc, nullptr, "generate", help, &vm)) return false;
  finish_run_options(vm, o);
  if (prompt_ids.empty() && prompts_file.empty() && prompt_ids_file.empty() && o->text_prompts.empty())
    throw UsageError("no prompts: give --prompt TEXT or --prompt-ids \"1,2,3\" (repeatable), "
                     "--prompts-file F or --prompt-ids-file F");
  for (size_t i = 0; i < prompt_ids.size(); ++i)
    o->prompts.push_back(parse_token_ids(prompt_ids[i], "--prompt-ids #" + std::to_string(i + 1)));
  if (!prompt_ids_file.empty()) {
    auto more = read_prompt_ids_file(prompt_ids_file);
    o->prompts.insert(o->prompts.end(), more.begin(), more.end());
  }
  if (!prompts_file.empty()) {
    auto more = read_prompts_file(prompts_file);
    o->text_prompts.insert(o->text_prompts.end(), more.begin(), more.end());
  }
  check_token_count("--max-new-tokens", o->max_new_tokens, 1);
  if (o->batch_size < 0) throw UsageError("--batch-size must be >= 0");
  return true;
}


bool parse_convert_options(int argc, char** argv, ConvertOptions* o, std::string* help) {
  po::options_description desc(
      "zinc convert: write a Hugging Face model as a zinc store (HDF5: quantized layer blobs,\n"
      "4 KiB aligned, with checksums), loadable at any world size\n"
      "usage: zinc convert --model DIR|dummy:SHAPE --out FILE.zinc.h5 [--quant nf4] [--group-size 64] [--force]\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value<std::string>(&o->model)->required(),
       "Hugging Face model directory, or dummy:SHAPE (the random weights of --model dummy:SHAPE)")
      ("out", po::value<std::string>(&o->out)->required(), "output store, e.g. model.zinc.h5")
      ("quant", po::value<std::string>(&o->quant)->default_value("nf4"),
       "none, int8, int8-asym, int4, int4-sym, nf4")
      ("group-size", po::value<int>(&o->group_size)->default_value(64), "quantization group size")
      ("force", po::bool_switch(&o->force),
       "replace an existing --out file (never an input, a device or a directory)");
  if (!parse_command(argc, argv, desc, nullptr, "convert", help, nullptr)) return false;
  if (o->group_size <= 0) throw UsageError("--group-size must be > 0");
  return true;
}

bool parse_info_options(int argc, char** argv, InfoOptions* o, std::string* help) {
  po::options_description desc(
      "zinc info: describe a zinc store\nusage: zinc info FILE.zinc.h5 [--blobs] [--verify]\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("store", po::value<std::string>(&o->store)->required(), "the store (positional)")
      ("blobs", po::bool_switch(&o->blobs), "list every blob")
      ("verify", po::bool_switch(&o->verify),
       "read every page of every blob and check its CRC-32C; list the bad ones, exit 1 if any");
  po::positional_options_description pos;
  pos.add("store", 1);
  return parse_command(argc, argv, desc, &pos, "info", help, nullptr);
}

}  // namespace zinc::cli
