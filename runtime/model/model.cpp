#include "runtime/model/model.hpp"

namespace zinc::runtime {

std::unique_ptr<Model> create_model(const ModelConfig& config,
                                    const partition::Checkpoint& checkpoint, Backend& backend) {
  switch (config.family) {
    case Family::Llama: return create_llama(config, checkpoint, backend);
    case Family::Opt: return create_opt(config, checkpoint, backend);
  }
  ZINC_THROW("unknown model family");
}

std::unique_ptr<Model> load_model(const std::string& dir, Backend& backend) {
  const ModelConfig config = load_config(dir);
  const partition::Checkpoint checkpoint = partition::Checkpoint::open_dir(dir);
  return create_model(config, checkpoint, backend);
}

}  // namespace zinc::runtime
