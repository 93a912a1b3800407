// Tensor: a non-owning, row-major view of backend memory with a dtype and up to 4 dims.
// Model code passes Tensors to Backend ops; who owns the memory (a DeviceBuffer) is
// separate from how it is viewed.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "quant/dtype.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime {

struct Tensor {
  void* data = nullptr;
  quant::DType dtype = quant::DType::F32;
  int ndim = 0;
  int64_t shape[4] = {1, 1, 1, 1};

  Tensor() = default;
  Tensor(void* d, quant::DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
    ZINC_CHECK(dims.size() <= 4, "tensor with " << dims.size() << " dims: at most 4 supported");
    for (int64_t v : dims) shape[ndim++] = v;
  }

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * quant::dtype_size(dtype); }
  // Rows = product of all dims but the last; cols = the last dim.
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  int64_t rows() const { return ndim == 0 ? 1 : numel() / shape[ndim - 1]; }

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
  // The first n rows (same trailing dims), viewed as [n, cols].
  Tensor first_rows(int64_t n) const { return Tensor(data, dtype, {n, cols()}); }
};

}  // namespace zinc::runtime
