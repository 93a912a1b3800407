#include "runtime/model/model.hpp"

namespace zinc::runtime {

std::vector<BlobPlan> blob_plan(const ModelConfig& config) {
  switch (config.family) {
    case Family::Llama: return llama_blob_plan(config);
    case Family::Opt: return opt_blob_plan(config);
    case Family::Bloom: return bloom_blob_plan(config);
  }
  ZINC_THROW("unknown model family");
}

KvOverlap parse_kv_overlap(const std::string& name) {
  if (name == "auto") return KvOverlap::Auto;
  if (name == "on") return KvOverlap::On;
  if (name == "off") return KvOverlap::Off;
  ZINC_THROW("--kv-overlap '" << name << "' is not one of auto, on, off");
}

KvShape kv_shape(const ModelConfig& c) {
  KvShape s;
  s.layers = c.num_layers;
  s.heads = c.num_heads;
  s.kv_heads = c.num_kv_heads;
  s.head_dim = c.head_dim;
  return s;
}

std::unique_ptr<Model> create_model(const ModelConfig& config,
                                    std::unique_ptr<WeightProvider> weights, Backend& backend) {
  switch (config.family) {
    case Family::Llama: return create_llama(config, std::move(weights), backend);
    case Family::Opt: return create_opt(config, std::move(weights), backend);
    case Family::Bloom: return create_bloom(config, std::move(weights), backend);
  }
  ZINC_THROW("unknown model family");
}

std::unique_ptr<Model> load_model(const std::string& dir, Backend& backend) {
  const ModelConfig config = load_config(dir);
  const partition::Checkpoint checkpoint = partition::Checkpoint::open_dir(dir);
  std::vector<BlobPlan> plan = blob_plan(config);
  bind_plan_to_checkpoint(plan, checkpoint);
  return create_model(config, make_resident_weights(plan, checkpoint, backend), backend);
}

}  // namespace zinc::runtime
