#include "runtime/model/loader.hpp"


#include <cstring>

#include <nlohmann/json.hpp>

#include "partition/shard.hpp"
#include "runtime/common/paths.hpp"
#include "partition/store.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {


// A store's blobs must be exactly what this build's family code expects of its config.
void check_store_matches_plan(const std::string& path, const std::vector<BlobPlan>& plan,
                              const std::vector<partition::BlobManifest>& manifests) {
  ZINC_CHECK(plan.size() == manifests.size(),
             path << ": holds " << manifests.size() << " blobs, its config.json implies "
                  << plan.size());
  for (size_t b = 0; b < plan.size(); ++b) {
    const partition::BlobManifest& m = manifests[b];
    ZINC_CHECK(m.name == plan[b].name,
               path << ": blob " << b << " is '" << m.name << "', expected '" << plan[b].name << "'");
    ZINC_CHECK(m.params.size() == plan[b].params.size(),
               path << ": blob " << m.name << " has " << m.params.size() << " tensors, expected "
                    << plan[b].params.size());
    for (size_t i = 0; i < m.params.size(); ++i)
      ZINC_CHECK(m.params[i].name == plan[b].params[i].name && m.params[i].shape == plan[b].params[i].shape,
                 path << ": blob " << m.name << " tensor " << m.params[i].name << " "
                      << partition::shape_to_string(m.params[i].shape) << " does not match the expected "
                      << plan[b].params[i].name << " " << partition::shape_to_string(plan[b].params[i].shape));
  }
}

}  // namespace

OffloadChoice parse_offload(const std::string& name) {
  if (name == "none") return {Tier::Cpu, true};
  if (name == "cpu") return {Tier::Cpu, false};
  if (name == "nvme") return {Tier::Nvme, false};
  ZINC_THROW("--offload '" << name << "' is not a tier (none, cpu, nvme)");
}

SliceReader nvme_slice_reader(std::shared_ptr<const partition::StoreReader> reader,
                              const offload::UringOptions& opts,
                              std::shared_ptr<offload::UringFile>* file_out) {
  // The returned reader shares the store (manifests, page checksums) and owns the file.
  auto file = std::make_shared<offload::UringFile>(reader->path(), opts);
  std::vector<uint64_t> base;
  for (size_t b = 0; b < reader->manifests().size(); ++b) base.push_back(reader->file_offset(b));
  if (file_out) *file_out = file;
  return [reader, file, base](size_t b, size_t offset, size_t bytes, uint8_t* dst) {
    const size_t blob = reader->manifests()[b].bytes;
    const size_t valid = offset < blob ? std::min(bytes, blob - offset) : 0;
    const size_t pages = partition::round_up(valid, partition::kPageBytes);
    if (valid > 0) file->read(base[b] + offset, pages, dst, base[b] + offset + valid);
    std::memset(dst + valid, 0, bytes - valid);  // past the blob: padding, not file data
    reader->verify_slice(b, offset, valid, dst);
  };
}

std::vector<partition::BlobManifest> plan_manifests(const std::vector<BlobPlan>& plan,
                                                    quant::QuantFormat quant, int group_size) {
  std::vector<partition::BlobManifest> out;
  for (const BlobPlan& b : plan) out.push_back(partition::plan_blob(b.name, b.params, quant, group_size));
  return out;
}

void pack_checkpoint_slice(const partition::Checkpoint& ckpt, const partition::BlobManifest& m,
                           size_t offset, size_t bytes, uint8_t* dst) {
  partition::pack_slice(
      m, offset, bytes,
      [&](const partition::BlobParam& p) {
        const partition::TensorView& t =
            checkpoint_tensor(ckpt, partition::ParamSpec{p.name, p.shape, p.dtype, false});
        return partition::SourceTensor{t.dtype, t.data};
      },
      dst);
}

LoadedModel load_for_generation(const LoadOptions& o, Backend& backend,
                                collectives::Communicator& comm) {
  LoadedModel out;
  ZINC_CHECK(o.group_size > 0, "--group-size must be > 0, got " << o.group_size);
  const bool is_store = o.model.compare(0, 6, "dummy:") != 0 && !is_directory(o.model);
  ZINC_CHECK(o.offload == Tier::Cpu || is_store,
             "--offload nvme reads the weights in place from a zinc store: give --model "
             "FILE.zinc.h5 (zinc convert makes one from " << o.model << ")");
  const std::string kDummy = "dummy:";
  std::unique_ptr<ZeroWeights> zero;
  ModelConfig config;
  ZeroOptions zo = o.pipeline;
  zo.tier = o.offload;
  // The planner's working set, once the config is known.
  const auto size_step = [&](const ModelConfig& c) {
    if (o.step_batch <= 0) return;
    const quant::DType t = backend.compute_dtype();
    zo.activation_bytes = activation_bytes(c, o.step_batch, o.step_prompt_len, t);
    zo.kv_bytes = o.kv_on_device ? KvCache::device_bytes(c, o.step_batch, o.step_t_max, t) : 0;
  };

  if (o.model.compare(0, kDummy.size(), kDummy) == 0) {
    config = dummy_config(o.model.substr(kDummy.size()));
    zo.schedule = forward_schedule(config);
    size_step(config);
    const std::vector<BlobPlan> plan = blob_plan(config);
    auto manifests = plan_manifests(plan, o.quant, o.group_size);
    const auto& ms = manifests;
    zero = std::make_unique<ZeroWeights>(
        manifests,
        [&](size_t b, size_t offset, size_t bytes, uint8_t* dst) {
          partition::fill_dummy_slice(ms[b], offset, bytes, o.dummy_seed, 0.02f, dst);
        },
        backend, comm, zo);
    out.source = "dummy";
    out.quant = o.quant;
    out.group_size = o.group_size;
  } else if (is_directory(o.model)) {
    config = load_config(o.model);
    const partition::Checkpoint ckpt = partition::Checkpoint::open_dir(o.model);
    std::vector<BlobPlan> plan = blob_plan(config);
    bind_plan_to_checkpoint(plan, ckpt);  // every tensor checked before any is read
    out.source = "hf";
    out.quant = o.quant;
    out.group_size = o.group_size;
    if (o.quant == quant::QuantFormat::None && comm.size() == 1 && !o.force_zero) {
      out.model = create_model(config, make_resident_weights(plan, ckpt, backend), backend);
      return out;
    }
    const auto manifests = plan_manifests(plan, o.quant, o.group_size);
    zo.schedule = forward_schedule(config);
    size_step(config);
    zero = std::make_unique<ZeroWeights>(
        manifests,
        [&](size_t b, size_t offset, size_t bytes, uint8_t* dst) {
          pack_checkpoint_slice(ckpt, manifests[b], offset, bytes, dst);
        },
        backend, comm, zo);
  } else {
    ZINC_CHECK(path_exists(o.model), o.model << ": no such model: --model takes a Hugging Face "
                                           "directory, a FILE.zinc.h5 store or dummy:SHAPE");
    const auto shared_store = std::make_shared<const partition::StoreReader>(o.model);
    const partition::StoreReader& store = *shared_store;
    const partition::StoreInfo& info = store.info();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(info.config_json);
    } catch (const std::exception& e) {
      ZINC_THROW(o.model << ": its config.json is not valid JSON: " << e.what());
    }
    config = parse_config(j, o.model + ":/config.json");
    if (!info.generation_config_json.empty())
      apply_generation_config(nlohmann::json::parse(info.generation_config_json, nullptr, false),
                              o.model + ":/generation_config.json", &config);
    ZINC_CHECK(!o.quant_given || o.quant == info.quant,
               o.model << " holds " << quant::quant_format_name(info.quant) << " weights; --quant "
                       << quant::quant_format_name(o.quant)
                       << " asks for another format: convert again or drop --quant");
    ZINC_CHECK(!o.group_size_given || o.group_size == info.group_size,
               o.model << " was converted with --group-size " << info.group_size << ", not "
                       << o.group_size << ": convert again or drop --group-size");
    check_store_matches_plan(o.model, blob_plan(config), store.manifests());
    zo.schedule = forward_schedule(config);
    size_step(config);
    if (o.offload == Tier::Nvme) {
      zo.more_readers = [shared_store, nvme = o.nvme] { return nvme_slice_reader(shared_store, nvme, nullptr); };
      zero = std::make_unique<ZeroWeights>(store.manifests(), nvme_slice_reader(shared_store, o.nvme, &out.nvme),
                                           backend, comm, zo);
    } else {
      zero = std::make_unique<ZeroWeights>(
          store.manifests(),
          [&](size_t b, size_t offset, size_t bytes, uint8_t* dst) { store.read_slice(b, offset, bytes, dst); },
          backend, comm, zo);
    }
    out.source = "store";
    out.quant = info.quant;
    out.group_size = info.group_size;
  }
  out.zero = zero.get();
  out.model = create_model(config, std::move(zero), backend);
  return out;
}

}  // namespace zinc::runtime
