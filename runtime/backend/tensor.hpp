// Tensor: a non-owning, row-major view of backend memory with a dtype and up to 4 dims.
// Model code passes Tensors to Backend ops; who owns the memory (a DeviceBuffer) is
// separate from how it is viewed. Shapes are set only by the checked constructors.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "quant/dtype.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime {

class Tensor {
 public:
  void* data = nullptr;
  quant::DType dtype = quant::DType::F32;

  Tensor() = default;
  Tensor(void* d, quant::DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
    set_shape(dims.begin(), dims.size());
  }
  Tensor(void* d, quant::DType t, const std::vector<int64_t>& dims) : data(d), dtype(t) {
    set_shape(dims.data(), dims.size());
  }

  bool empty() const { return data == nullptr; }
  int ndim() const { return ndim_; }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim_; ++i) n *= shape_[i];
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * quant::dtype_size(dtype); }
  // Rows = product of all dims but the last; cols = the last dim.
  int64_t cols() const { return ndim_ == 0 ? 1 : shape_[ndim_ - 1]; }
  int64_t rows() const { return ndim_ == 0 ? 1 : numel() / shape_[ndim_ - 1]; }

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
  // The first n rows (same trailing dims), viewed as [n, cols].
  Tensor first_rows(int64_t n) const { return Tensor(data, dtype, {n, cols()}); }
  // Rows [first, rows()) viewed as [rows() - first, cols] (a table with an index offset:
  // OPT's learned positions start at row 2).
  Tensor rows_from(int64_t first) const {
    ZINC_CHECK(first >= 0 && first <= rows(), "rows_from(" << first << ") of a tensor of " << rows() << " rows");
    return Tensor(static_cast<uint8_t*>(data) + first * cols() * quant::dtype_size(dtype), dtype,
                  {rows() - first, cols()});
  }
  // Rows [first, first + n) viewed as [n, cols] (a micro-batch's rows of a step).
  Tensor row_range(int64_t first, int64_t n) const {
    ZINC_CHECK(first >= 0 && n >= 0 && first + n <= rows(),
               "row_range(" << first << ", " << n << ") of a tensor of " << rows() << " rows");
    return rows_from(first).first_rows(n);
  }
  // The same elements under another shape of equal element count.
  Tensor reshaped(std::initializer_list<int64_t> dims) const {
    Tensor t(data, dtype, dims);
    ZINC_CHECK(t.numel() == numel(), "reshape of " << numel() << " elements to " << t.numel());
    return t;
  }

 private:
  template <typename It>
  void set_shape(It dims, size_t n) {
    ZINC_CHECK(n <= 4, "tensor with " << n << " dims: at most 4 supported");
    for (size_t i = 0; i < n; ++i) {
      ZINC_CHECK(dims[i] >= 0, "tensor dim " << i << " is negative (" << dims[i] << ")");
      shape_[ndim_++] = dims[i];
    }
  }
  int ndim_ = 0;
  int64_t shape_[4] = {1, 1, 1, 1};
};

}  // namespace zinc::runtime
