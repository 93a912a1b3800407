#include "runtime/model/weights.hpp"

namespace zinc::runtime {

Tensor Weights::load(const std::string& name, std::vector<int64_t> shape) {
  const partition::TensorView& src = checkpoint_.get(name, shape);
  const quant::DType t = backend_.compute_dtype();
  DeviceBuffer buf = backend_.alloc(src.numel() * quant::dtype_size(t), "weights");
  Tensor view(buf.data(), t, {});
  for (int64_t d : shape) view.shape[view.ndim++] = d;
  backend_.upload_weights(view, src.dtype, src.data);
  bytes_ += buf.bytes();
  buffers_.push_back(std::move(buf));
  return view;
}

Linear Weights::linear(const std::string& prefix, int64_t out, int64_t in, bool bias) {
  Linear l;
  l.w = load(prefix + ".weight", {out, in});
  if (bias) l.b = load(prefix + ".bias", {out});
  return l;
}

Norm Weights::norm(const std::string& prefix, int64_t dim, bool weight, bool bias) {
  Norm n;
  if (weight) n.w = load(prefix + ".weight", {dim});
  if (bias) n.b = load(prefix + ".bias", {dim});
  return n;
}

}  // namespace zinc::runtime
