#include "runtime/cli/store_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "offload/memory_arena.hpp"
#include "partition/shard.hpp"
#include "partition/store.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/host_worker.hpp"
#include "runtime/common/output_file.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/config.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/loader.hpp"

namespace zinc::cli {
namespace {

// The file's text, or "" when it does not exist.
std::string read_optional(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  ZINC_CHECK(!f.bad(), path << ": read error");
  return ss.str();
}

// Every file convert reads from the model directory (those that exist): the texts it copies,
// the index, and every safetensors file a tensor lives in.
std::vector<std::string> convert_inputs(const std::string& dir, const partition::Checkpoint& ckpt) {
  std::set<std::string> files;
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "model.safetensors", "model.safetensors.index.json"}) {
    files.insert(dir + "/" + name);
  }
  for (const std::string& name : ckpt.names()) {
    const partition::TensorView* t = ckpt.find(name);
    if (t != nullptr && t->file != nullptr) files.insert(*t->file);
  }
  return {files.begin(), files.end()};
}

// zinc info --verify: every page of every blob against its CRC-32C (the texts were verified
// when the store was opened). The first bad pages are listed with the blob, the page, its
// bytes in the blob and its file offset (for dd or a hex editor); any bad page is an error.
void verify_pages(const partition::StoreReader& store) {
  constexpr size_t kListed = 16;
  const auto& manifests = store.manifests();
  size_t pages = 0, failed = 0, listed = 0;
  std::string first;
  for (size_t b = 0; b < manifests.size(); ++b) {
    const partition::BlobManifest& m = manifests[b];
    const partition::StoreReader::PageCheck c = store.check_pages(b, kListed - listed);
    pages += c.pages;
    failed += c.failed;
    for (const size_t p : c.first_failed) {
      const size_t begin = p * partition::kPageBytes;
      const size_t last = std::min(begin + partition::kPageBytes, m.bytes) - 1;
      std::ostringstream where;
      where << "blob " << m.name << " page " << p << " (blob bytes " << begin << ".." << last
            << ", file offset " << store.file_offset(b) + begin << ")";
      std::cout << "  bad page: " << where.str() << "\n";
      if (first.empty()) first = where.str();
      ++listed;
    }
  }
  if (failed > listed) std::cout << "  ... and " << failed - listed << " more bad pages\n";
  std::cout.flush();
  ZINC_CHECK(failed == 0, store.path() << ": " << failed << " of " << pages
                                       << " pages fail their CRC-32C check (first: " << first
                                       << "): the file is corrupted; convert the model again");
  std::cout << "  verified: " << pages << " pages in " << manifests.size()
            << " blobs, every one matches its CRC-32C\n";
}

}  // namespace

int run_convert(const ConvertOptions& o, collectives::Communicator& comm) {
  if (comm.rank() != 0) {
    comm.barrier();
    return 0;
  }
  const double t0 = now_s();
  const quant::QuantFormat format = quant::parse_quant_format(o.quant);
  // dummy:SHAPE: the random weights `--model dummy:SHAPE` runs on (same seed), written as
  // a store, so the NVMe tier can be measured on a model no one has to download.
  const std::string kDummy = "dummy:";
  const bool dummy = o.model.compare(0, kDummy.size(), kDummy) == 0;
  const std::string shape = dummy ? o.model.substr(kDummy.size()) : "";
  const runtime::ModelConfig config = dummy ? runtime::dummy_config(shape) : runtime::load_config(o.model);
  const partition::Checkpoint ckpt = dummy ? partition::Checkpoint() : partition::Checkpoint::open_dir(o.model);
  std::vector<runtime::BlobPlan> plan = runtime::blob_plan(config);
  if (!dummy) runtime::bind_plan_to_checkpoint(plan, ckpt);
  const auto manifests = runtime::plan_manifests(plan, format, o.group_size);
  const uint64_t seed = runtime::LoadOptions{}.dummy_seed;
  // Before any work: the store and its temporary must not replace an input, a device or
  // (without --force) an existing file.
  const std::vector<std::string> inputs = dummy ? std::vector<std::string>{} : convert_inputs(o.model, ckpt);
  check_output_path(o.out, inputs, o.force);
  check_output_path(o.out + ".tmp", inputs, /*replace=*/true);  // a stale one is replaced

  partition::StoreInfo info;
  info.quant = format;
  info.group_size = o.group_size;
  info.created_by = std::string("zinc ") + ZINC_VERSION + " convert";
  info.config_json = dummy ? runtime::dummy_config_json(shape) : read_optional(o.model + "/config.json");
  info.generation_config_json = read_optional(o.model + "/generation_config.json");
  info.tokenizer_json = read_optional(o.model + "/tokenizer.json");
  info.tokenizer_config_json = read_optional(o.model + "/tokenizer_config.json");
  info.special_tokens_map_json = read_optional(o.model + "/special_tokens_map.json");
  for (const auto& m : manifests) info.blob_order.push_back(m.name);

  partition::StoreWriter writer(o.out, info, o.force);
  // Two buffers: blob b + 1 is quantized (all cores) while the writer thread writes blob b
  // (the disk), so a conversion costs about max(pack, write) instead of their sum. Only the
  // writer thread calls HDF5 between here and finish(). Declared after `writer`, so the
  // thread is joined before the writer goes (an error then removes the temporary).
  std::vector<uint8_t> buf[2];
  uint64_t written = 0;  // the writer thread's; read after its jobs are waited for
  size_t shown = 0;      // progress lines printed (by the writer thread)
  double pack_s = 0;
  uint64_t out_total = 0;
  for (const auto& m : manifests) out_total += m.bytes;
  const double in_total = dummy ? 0.0 : static_cast<double>(ckpt.total_bytes());
  HostWorker write_thread;
  try {
    for (size_t b = 0; b < manifests.size(); ++b) {
      const partition::BlobManifest& m = manifests[b];
      if (b >= 2) write_thread.wait(b - 1);  // the job that last used this buffer is done
      std::vector<uint8_t>& data = buf[b % 2];
      data.assign(m.bytes, 0);
      const double tp = now_s();
      if (dummy)
        partition::fill_dummy_slice(m, 0, m.bytes, seed, 0.02f, data.data());
      else
        runtime::pack_checkpoint_slice(ckpt, m, 0, m.bytes, data.data());
      pack_s += seconds_since(tp);
      write_thread.submit([&, b] {
        writer.write_blob(manifests[b], buf[b % 2].data());  // flushed to the file when it returns
        written += manifests[b].bytes;
        // Progress: the output so far, the input rate it stands for, the time left at it.
        const double t = seconds_since(t0), done = static_cast<double>(written) / static_cast<double>(out_total);
        std::fprintf(stderr, "\rzinc convert: [%zu/%zu] %-12s %s written (%.0f%%), %.3f GB/s of %s, %.0f s left ",
                     b + 1, manifests.size(), manifests[b].name.c_str(), offload::format_bytes(written).c_str(),
                     100 * done, (dummy ? static_cast<double>(written) : done * in_total) / t / 1e9,
                     dummy ? "output" : "input", t * (1 - done) / done);
        ++shown;
      });
    }
    write_thread.wait_all();
    writer.finish();
  } catch (...) {
    try {
      write_thread.wait_all();  // the thread is idle before the writer cleans up
    } catch (...) {
    }
    if (shown > 0) std::fprintf(stderr, "\n");  // the error goes below the progress line
    throw;
  }
  const double total_s = seconds_since(t0);
  std::fprintf(stderr, "\n");
  const std::string source =
      dummy ? "random weights of " + o.model
            : "checkpoint " + offload::format_bytes(ckpt.total_bytes()) + ", ratio " +
                  std::to_string(static_cast<double>(written) / static_cast<double>(ckpt.total_bytes()));
  std::printf("wrote %s: %s, %zu blobs, %s of weights (%s) in %.2f s (%.3f GB/s of output%s; quantize/pack %.2f s, "
              "overlapped with the writes)\n",
              o.out.c_str(), quant::quant_format_name(format), manifests.size(),
              offload::format_bytes(written).c_str(), source.c_str(), total_s, written / total_s / 1e9,
              dummy ? "" : (", " + std::to_string(in_total / total_s / 1e9) + " GB/s of input").c_str(), pack_s);
  comm.barrier();
  return 0;
}

int run_info(const InfoOptions& o, collectives::Communicator& comm) {
  if (comm.rank() != 0) return 0;
  partition::StoreReader store(o.store);
  const partition::StoreInfo& info = store.info();
  nlohmann::json cfg = nlohmann::json::parse(info.config_json, nullptr, false);
  uint64_t total = 0;
  size_t largest = 0;
  for (const auto& m : store.manifests()) {
    total += m.bytes;
    largest = std::max(largest, m.bytes);
  }
  std::cout << o.store << ": zinc store version " << info.version << " (" << info.created_by << ")\n"
            << "  model_type " << (cfg.is_object() ? cfg.value("model_type", "?") : "?")
            << ", weights " << quant::quant_format_name(info.quant) << ", group size " << info.group_size
            << "\n  " << store.manifests().size() << " blobs, " << offload::format_bytes(total)
            << " in all, largest " << offload::format_bytes(largest) << "\n"
            << "  tokenizer.json " << (info.tokenizer_json.empty() ? "absent" : "present")
            << ", generation_config.json " << (info.generation_config_json.empty() ? "absent" : "present")
            << "\n";
  if (o.blobs) {
    for (size_t b = 0; b < store.manifests().size(); ++b) {
      const auto& m = store.manifests()[b];
      std::printf("  %-12s %12zu bytes  %3zu tensors  file offset %llu\n", m.name.c_str(), m.bytes,
                  m.params.size(), static_cast<unsigned long long>(store.file_offset(b)));
    }
  }
  if (o.verify) verify_pages(store);
  return 0;
}

}  // namespace zinc::cli
