// Weights: device copies of checkpoint tensors, converted to the compute dtype, plus the
// small structs the layer code takes (Linear, Norm). Loading checks every tensor's
// presence, dtype and shape against the config before anything runs.
#pragma once

#include <string>
#include <vector>

#include "partition/safetensors.hpp"
#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

struct Linear {  // y = x w^T + b
  Tensor w;      // [out, in]
  Tensor b;      // [out], or empty
};

struct Norm {
  Tensor w;  // [D], or empty (no affine)
  Tensor b;  // [D], or empty
};

class Weights {
 public:
  Weights(Backend& backend, const partition::Checkpoint& checkpoint)
      : backend_(backend), checkpoint_(checkpoint) {}

  Tensor load(const std::string& name, std::vector<int64_t> shape);
  Linear linear(const std::string& prefix, int64_t out, int64_t in, bool bias);
  Norm norm(const std::string& prefix, int64_t dim, bool weight, bool bias);
  bool has(const std::string& name) const { return checkpoint_.has(name); }
  size_t bytes() const { return bytes_; }

 private:
  Backend& backend_;
  const partition::Checkpoint& checkpoint_;
  std::vector<DeviceBuffer> buffers_;
  size_t bytes_ = 0;
};

}  // namespace zinc::runtime
