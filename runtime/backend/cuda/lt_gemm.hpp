// LtGemm: the 16-bit GEMMs with a fused epilogue on cuBLASLt: out = x w^T + bias, or
// relu(x w^T + bias), in one kernel instead of the GEMM and one or two element-wise passes
// over [n, out] (OPT-30B's fc1 output is [16384, 28672] per micro-batch: each pass reads
// and writes 0.94 GB). Used by CudaBackend for F16 / BF16 only: the fp32 parity path keeps
// cublasGemmEx and the separate bias kernel, exactly as before.
//
// One matmul descriptor, three layouts and the heuristic's algorithm are made once per
// (dtype, n, in, out, epilogue) and kept; each call sets the bias pointer and runs. When
// the heuristic offers no algorithm, run() returns false and the caller falls back.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "quant/dtype.hpp"

namespace zinc::runtime::cuda {

class LtGemm {
 public:
  LtGemm(void* workspace, size_t workspace_bytes);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Row-major out[n, o] = (relu)(x[n, in] w[o, in]^T + bias[o]), all of type t (F16/BF16),
  // fp32 accumulation, on stream s. False: no algorithm for this shape (nothing queued).
  bool run(quant::DType t, const void* x, const void* w, const void* bias, bool relu, void* out, int64_t n,
           int64_t in, int64_t o, cudaStream_t s);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;
  };
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool>;
  Plan& plan(quant::DType t, int64_t n, int64_t in, int64_t o, bool relu);

  cublasLtHandle_t lt_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Key, Plan> plans_;
};

}  // namespace zinc::runtime::cuda
