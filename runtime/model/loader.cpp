#include "runtime/model/loader.hpp"

#include <iostream>

#include "offload/nvme_reader.hpp"
#include "partition/store.hpp"
#include "runtime/common/paths.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/decoder.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/workspace.hpp"

namespace zinc::runtime {
namespace {

// A store's config.json (and generation_config.json), as the model's config.
ModelConfig store_config(const partition::StoreInfo& info, const std::string& path) {
  ModelConfig config = parse_config_text(info.config_json, path + ":/config.json");
  if (!info.generation_config_json.empty())
    apply_generation_config_text(info.generation_config_json, path + ":/generation_config.json", &config);
  return config;
}

const std::string kDummy = "dummy:";

}  // namespace

ModelInfo model_info(const LoadOptions& o) {
  ModelInfo m;
  m.quant = o.quant;
  m.group_size = o.group_size;
  if (o.model.compare(0, kDummy.size(), kDummy) == 0) {
    m.config = dummy_config(o.model.substr(kDummy.size()));
  } else if (is_directory(o.model)) {
    m.config = load_config(o.model);
  } else {
    ZINC_CHECK(path_exists(o.model), o.model << ": no such model: --model takes a Hugging Face "
                                           "directory, a FILE.zinc.h5 store or dummy:SHAPE");
    const partition::StoreReader store(o.model);
    m.config = store_config(store.info(), o.model);
    m.store = true;
    m.quant = store.info().quant;
    m.group_size = store.info().group_size;
  }
  return m;
}

LoadedModel load_for_generation(const LoadOptions& o, Backend& backend,
                                collectives::Communicator& comm) {
  LoadedModel out;
  ZINC_CHECK(o.group_size > 0, "--group-size must be > 0, got " << o.group_size);
  const bool is_store = o.model.compare(0, 6, "dummy:") != 0 && !is_directory(o.model);
  ZINC_CHECK(o.offload != Tier::Nvme || is_store,
             "--offload nvme reads the weights in place from a zinc store: give --model "
             "FILE.zinc.h5 (zinc convert makes one from " << o.model << ")");
  std::unique_ptr<ZeroWeights> zero;
  ModelConfig config;
  ZeroOptions zo = o.pipeline;
  zo.tier = o.offload;
  // The planner's working set, once the config (and so the schedule) is known.
  const auto size_step = [&](const ModelConfig& c) {
    // Position k of the schedule uses slot k % K: beyond one slot per blob load of a
    // forward pass, a slot would only hold the next pass's copy of a blob still held, at
    // the cost of a largest blob of device memory each (a million slots took 12+ GB).
    // --prefetch-depth is clamped to the loads, which rank 0 says.
    const int loads = static_cast<int>(zo.schedule.size());
    if (zo.prefetch_depth > loads) {
      if (comm.rank() == 0)
        std::cerr << "zinc: warning: --prefetch-depth " << zo.prefetch_depth << " is more than the " << loads
                  << " blob loads of a forward pass: using " << loads << std::endl;
      zo.prefetch_depth = loads;
    }
    if (o.step_batch <= 0) return;
    const quant::DType t = backend.compute_dtype();
    zo.activation_bytes = activation_bytes(c, o.step_batch, o.step_prompt_len, o.micro_batch, t);
    zo.kv_bytes = o.kv_on_device ? KvCache::device_bytes(kv_shape(c), o.step_batch, o.step_t_max, t) : 0;
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
    config = store_config(info, o.model);
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
      zo.more_readers = [shared_store, nvme = o.nvme] { return offload::nvme_slice_reader(shared_store, nvme, nullptr); };
      zero = std::make_unique<ZeroWeights>(store.manifests(), offload::nvme_slice_reader(shared_store, o.nvme, &out.nvme),
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
