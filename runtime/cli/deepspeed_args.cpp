#include "runtime/cli/deepspeed_args.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/cli/options.hpp"
#include "runtime/common/paths.hpp"
#include "runtime/model/dummy_configs.hpp"

namespace zinc::cli {
namespace {

// What the DeepSpeed spellings (and the zinc options they meet) said.
struct Said {
  std::string offload, offload_from;  // cpu | nvme | none, and the option that said it
  std::string zinc_offload, zinc_quant, zinc_group;
  int bits = 0;
  std::string bits_from;
  std::string group, group_from;
  bool symmetric = false;
  bool dummy_switch = false;
  std::string model, offload_dir;
  std::string nvme_block, nvme_queue;
  std::vector<std::string> unused_keys;
};

[[noreturn]] void usage(const std::string& what) { throw UsageError(what); }

void set_offload(Said* s, const std::string& value, const std::string& from) {
  if (!s->offload.empty() && s->offload != value)
    usage(from + " (offload " + value + ") contradicts " + s->offload_from + " (offload " + s->offload + ")");
  s->offload = value;
  s->offload_from = from;
}

void set_bits(Said* s, int bits, const std::string& from) {
  if (bits != 4 && bits != 8) usage(from + ": " + std::to_string(bits) + " bits; zinc quantizes to 4 or 8");
  if (s->bits != 0 && s->bits != bits)
    usage(from + " (" + std::to_string(bits) + " bits) contradicts " + s->bits_from + " (" + std::to_string(s->bits) + ")");
  s->bits = bits;
  s->bits_from = from;
}

void set_group(Said* s, const std::string& g, const std::string& from) {
  if (!s->group.empty() && s->group != g) usage(from + " (" + g + ") contradicts " + s->group_from + " (" + s->group + ")");
  s->group = g;
  s->group_from = from;
}

bool truthy(const std::string& v, const std::string& option) {
  if (v == "1" || v == "true" || v == "True") return true;
  if (v == "0" || v == "false" || v == "False") return false;
  usage(option + " takes 0 or 1, not '" + v + "'");
}

std::string number_text(const nlohmann::json& v, const std::string& key, const std::string& file) {
  if (!v.is_number_integer() || v.get<long long>() <= 0)
    usage(file + ": " + key + " must be a positive integer, not " + v.dump());
  return std::to_string(v.get<long long>());
}

// The DeepSpeed config's placement and quantization keys; everything else is either known
// and unused by zinc (collected for one warning) or an error.
void read_deepspeed_config(const std::string& file, Said* s) {
  std::ifstream in(file);
  if (!in) usage("--deepspeed-config " + file + ": cannot read it");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    usage("--deepspeed-config " + file + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) usage("--deepspeed-config " + file + ": not a JSON object");
  const std::string from = "--deepspeed-config " + file;
  auto unknown = [&](const std::string& key) { usage(file + ": unknown DeepSpeed key '" + key + "'"); };
  auto object = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_object()) usage(file + ": " + key + " must be an object");
  };
  static const char* kIgnoredTop[] = {"train_batch_size", "train_micro_batch_size_per_gpu", "fp16", "bf16",
                                      "steps_per_print", "wall_clock_breakdown", "gradient_accumulation_steps"};
  for (const auto& [key, v] : j.items()) {
    if (key == "zero_optimization") {
      object(v, key);
      for (const auto& [k, w] : v.items()) {
        const std::string path = key + "." + k;
        if (k == "stage") {
          if (!w.is_number_integer() || w.get<int>() != 3) usage(file + ": " + path + " is " + w.dump() + "; zinc runs ZeRO-3");
          s->unused_keys.push_back(path);
        } else if (k == "offload_param") {
          object(w, path);
          for (const auto& [p, x] : w.items()) {
            const std::string q = path + "." + p;
            if (p == "device") {
              const std::string d = x.is_string() ? x.get<std::string>() : "";
              if (d != "cpu" && d != "nvme" && d != "none") usage(file + ": " + q + " must be cpu, nvme or none, not " + x.dump());
              set_offload(s, d, from + " " + q);
            } else if (p == "nvme_path") {
              if (!x.is_string()) usage(file + ": " + q + " must be a path");
              s->offload_dir = x.get<std::string>();
            } else if (p == "pin_memory") {
              if (!x.is_boolean()) usage(file + ": " + q + " must be true or false");
              if (!x.get<bool>()) s->unused_keys.push_back(q + " (false: zinc streams from pinned memory only)");
            } else if (p == "buffer_count" || p == "buffer_size" || p == "max_in_cpu") {
              s->unused_keys.push_back(q);
            } else {
              unknown(q);
            }
          }
        } else if (k.rfind("stage3_", 0) == 0 || k == "contiguous_gradients" || k == "overlap_comm" ||
                   k == "reduce_bucket_size" || k == "sub_group_size") {
          s->unused_keys.push_back(path);
        } else {
          unknown(path);
        }
      }
    } else if (key == "weight_quantization") {
      object(v, key);
      for (const auto& [k, w] : v.items()) {
        const std::string path = key + "." + k;
        if (k != "quantized_initialization") unknown(path);
        object(w, path);
        for (const auto& [p, x] : w.items()) {
          const std::string q = path + "." + p;
          if (p == "num_bits") {
            if (!x.is_number_integer()) usage(file + ": " + q + " must be 4 or 8");
            set_bits(s, x.get<int>(), from + " " + q);
          } else if (p == "group_size") {
            set_group(s, number_text(x, q, file), from + " " + q);
          } else if (p == "symmetric") {
            if (!x.is_boolean()) usage(file + ": " + q + " must be true or false");
            s->symmetric = x.get<bool>();
          } else if (p == "group_dim") {
            if (!x.is_number_integer() || x.get<int>() != 1)
              usage(file + ": " + q + " is " + x.dump() + "; zinc groups along each row's input dimension (1)");
          } else {
            unknown(q);
          }
        }
      }
    } else if (key == "aio") {
      object(v, key);
      for (const auto& [k, w] : v.items()) {
        const std::string path = key + "." + k;
        if (k == "block_size") s->nvme_block = number_text(w, path, file);
        else if (k == "queue_depth") s->nvme_queue = number_text(w, path, file);
        else if (k == "thread_count" || k == "single_submit" || k == "overlap_events" || k == "intra_op_parallelism")
          s->unused_keys.push_back(path);
        else unknown(path);
      }
    } else if (std::find(std::begin(kIgnoredTop), std::end(kIgnoredTop), key) != std::end(kIgnoredTop)) {
      s->unused_keys.push_back(key);
    } else {
      unknown(key);
    }
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string hub_dummy_shape(const std::string& hub_name) {
  std::string n = lower(hub_name);
  const size_t slash = n.rfind('/');
  if (slash != std::string::npos) n = n.substr(slash + 1);
  if (n == "bloom") n = "bloom-176b";
  for (const char* suffix : {"-hf", "-chat"})
    if (n.size() > std::string(suffix).size() && n.compare(n.size() - std::string(suffix).size(), std::string::npos, suffix) == 0)
      n = n.substr(0, n.size() - std::string(suffix).size());
  if (n.rfind("tiny-", 0) == 0) return "";  // zinc's own test shapes have no Hub name
  const std::vector<std::string> shapes = runtime::dummy_shapes();
  return std::find(shapes.begin(), shapes.end(), n) != shapes.end() ? n : "";
}

DeepSpeedArgs translate_deepspeed_args(const std::vector<std::string>& args) {
  DeepSpeedArgs out;
  Said s;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], inline_value;
    bool has_inline = false;
    if (name.rfind("--", 0) == 0 && name.find('=') != std::string::npos) {
      inline_value = name.substr(name.find('=') + 1);
      name = name.substr(0, name.find('='));
      has_inline = true;
    }
    auto value = [&]() -> std::string {
      if (has_inline) return inline_value;
      if (i + 1 >= args.size()) usage(name + " needs a value");
      return args[++i];
    };
    if (name == "--cpu-offload") {
      set_offload(&s, "cpu", name);
    } else if (name == "--disk-offload") {
      set_offload(&s, "nvme", name);
    } else if (name == "--offload") {
      s.zinc_offload = value();
    } else if (name == "--offload-dir") {
      s.offload_dir = value();
    } else if (name == "--pin-memory") {
      if (!truthy(value(), name)) out.warnings.push_back("--pin-memory 0 ignored: zinc streams from pinned memory only");
    } else if (name == "--quant_bits") {
      const std::string v = value();
      int bits = 0;
      try {
        size_t used = 0;
        bits = std::stoi(v, &used);
        if (used != v.size()) bits = 0;
      } catch (const std::exception&) {
      }
      if (bits == 0) usage(name + " takes 4 or 8, not '" + v + "'");
      set_bits(&s, bits, name);
    } else if (name == "--quant_group_size") {
      set_group(&s, value(), name);
    } else if (name == "--quant") {
      s.zinc_quant = value();
    } else if (name == "--group-size") {
      s.zinc_group = value();
    } else if (name == "--dummy" && !has_inline && (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)) {
      s.dummy_switch = true;  // DeepSpeed's switch; zinc's --dummy SHAPE passes through below
    } else if (name == "--model") {
      s.model = value();
    } else if (name == "--deepspeed-config") {
      read_deepspeed_config(value(), &s);
    } else {
      out.args.push_back(args[i]);
    }
  }
  // Quantization: DeepSpeed's bits and group, or zinc's --quant, not two different ones.
  if (s.bits != 0) {
    const std::string q = s.bits == 4 ? (s.symmetric ? "int4-sym" : "int4") : (s.symmetric ? "int8" : "int8-asym");
    if (!s.zinc_quant.empty() && s.zinc_quant != q)
      usage("--quant " + s.zinc_quant + " contradicts " + s.bits_from + " (" + q + ")");
    s.zinc_quant = q;
  }
  if (!s.group.empty()) {
    if (!s.zinc_group.empty() && s.zinc_group != s.group)
      usage("--group-size " + s.zinc_group + " contradicts " + s.group_from + " (" + s.group + ")");
    s.zinc_group = s.group;
  }
  if (!s.offload.empty()) {
    if (!s.zinc_offload.empty() && s.zinc_offload != s.offload)
      usage("--offload " + s.zinc_offload + " contradicts " + s.offload_from + " (" + s.offload + ")");
    s.zinc_offload = s.offload;
  }
  // The model: a Hub name becomes the dummy shape with --dummy; with the NVMe tier, the
  // store of that shape under --offload-dir.
  if (s.dummy_switch && s.model.empty()) usage("--dummy without a shape needs --model HUB_NAME (e.g. facebook/opt-30b)");
  if (!s.model.empty() && s.model.find('/') != std::string::npos && !path_exists(s.model) &&
      s.model.rfind("dummy:", 0) != 0) {
    const std::string shape = hub_dummy_shape(s.model);
    if (!s.dummy_switch)
      usage("--model " + s.model + " is not a local directory or store; zinc never downloads: add --dummy for "
            "random weights of its shape" + (shape.empty() ? "" : " (" + shape + ")"));
    if (shape.empty()) usage("--model " + s.model + ": no built-in shape of that name (zinc --help lists dummy shapes)");
    s.model = "dummy:" + shape;
  } else if (s.dummy_switch && s.model.rfind("dummy:", 0) != 0) {
    usage("--dummy with --model " + s.model + ": give a Hub name (facebook/opt-30b ...) or dummy:SHAPE");
  }
  if (s.zinc_offload == "nvme" && s.model.rfind("dummy:", 0) == 0) {
    if (s.offload_dir.empty()) usage("--disk-offload with --dummy needs --offload-dir DIR (where the zinc store is)");
    const std::string q = s.zinc_quant.empty() ? "none" : s.zinc_quant, g = s.zinc_group.empty() ? "64" : s.zinc_group;
    const std::string store = s.offload_dir + "/" + s.model.substr(6) + "." + q + ".g" + g + ".zinc.h5";
    if (!path_exists(store))
      ZINC_THROW("the NVMe tier reads a zinc store, and " << store << " does not exist: make it once with\n  zinc convert --model "
                 << s.model << " --quant " << q << " --group-size " << g << " --out " << store);
    s.model = store;
    s.zinc_quant.clear();  // the store keeps its own format
    s.zinc_group.clear();
  }
  if (!s.model.empty()) out.args.insert(out.args.end(), {"--model", s.model});
  if (!s.zinc_quant.empty()) out.args.insert(out.args.end(), {"--quant", s.zinc_quant});
  if (!s.zinc_group.empty()) out.args.insert(out.args.end(), {"--group-size", s.zinc_group});
  if (!s.zinc_offload.empty()) out.args.insert(out.args.end(), {"--offload", s.zinc_offload});
  if (!s.nvme_block.empty()) out.args.insert(out.args.end(), {"--nvme-block-size", s.nvme_block});
  if (!s.nvme_queue.empty()) out.args.insert(out.args.end(), {"--nvme-queue-depth", s.nvme_queue});
  if (!s.unused_keys.empty()) {
    std::ostringstream w;
    w << "DeepSpeed config keys zinc has no use for (ignored):";
    for (size_t i = 0; i < s.unused_keys.size(); ++i) w << (i ? ", " : " ") << s.unused_keys[i];
    out.warnings.push_back(w.str());
  }
  return out;
}

}  // namespace zinc::cli
