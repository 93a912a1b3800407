// ResidentWeights: the whole model on the backend in the compute dtype, loaded once.
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

const Tensor& ParamTable::at(const std::string& name) const {
  auto it = map_.find(name);
  ZINC_CHECK(it != map_.end(), "blob '" << blob << "' has no tensor " << name);
  return it->second;
}

const partition::TensorView& checkpoint_tensor(const partition::Checkpoint& ckpt,
                                               const partition::ParamSpec& p) {
  // Original releases name tensors without the Hugging Face model prefix: OPT's
  // "decoder.*" for "model.decoder.*", BLOOM's "h.*" for "transformer.h.*".
  for (const std::string prefix : {"model.decoder.", "transformer."}) {
    if (ckpt.has(p.name) || p.name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string original =
        prefix == "transformer." ? p.name.substr(prefix.size()) : p.name.substr(std::string("model.").size());
    if (ckpt.has(original)) return ckpt.get(original, p.shape);
  }
  return ckpt.get(p.name, p.shape);
}

void bind_plan_to_checkpoint(std::vector<BlobPlan>& plan, const partition::Checkpoint& ckpt) {
  for (BlobPlan& b : plan)
    for (partition::ParamSpec& p : b.params) p.dtype = checkpoint_tensor(ckpt, p).dtype;
}

namespace {

class ResidentWeights final : public WeightProvider {
 public:
  ResidentWeights(const std::vector<BlobPlan>& plan, const partition::Checkpoint& ckpt,
                  Backend& backend) {
    const quant::DType t = backend.compute_dtype();
    for (const BlobPlan& b : plan) {
      ParamTable table;
      table.blob = b.name;
      for (const partition::ParamSpec& p : b.params) {
        const partition::TensorView& src = checkpoint_tensor(ckpt, p);
        DeviceBuffer buf = backend.alloc(src.numel() * quant::dtype_size(t), "weights");
        const Tensor view(buf.data(), t, p.shape);
        backend.upload_weights(view, src.dtype, src.data);
        table.set(p.name, view);
        bytes_ += buf.bytes();
        buffers_.push_back(std::move(buf));
      }
      tables_.push_back(std::move(table));
    }
  }

  const ParamTable& acquire(int blob) override { return tables_.at(static_cast<size_t>(blob)); }
  void release(int) override {}
  size_t resident_bytes() const override { return bytes_; }
  int max_held() const override { return static_cast<int>(tables_.size()); }

 private:
  std::vector<ParamTable> tables_;
  std::vector<DeviceBuffer> buffers_;
  size_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<WeightProvider> make_resident_weights(const std::vector<BlobPlan>& plan,
                                                      const partition::Checkpoint& ckpt,
                                                      Backend& backend) {
  return std::make_unique<ResidentWeights>(plan, ckpt, backend);
}

}  // namespace zinc::runtime
