// CudaBackend's GEMMs (cuda_backend.hpp): cublasGemmEx, and for F16 / BF16 with a bias the
// cuBLASLt epilogue GEMM (lt_gemm.hpp) that adds the bias (and applies ReLU) in the GEMM.
#include "runtime/backend/cuda/cuda_backend.hpp"
#include "runtime/backend/cuda/cuda_check.hpp"
#include "runtime/backend/cuda/kernels.hpp"

namespace zinc::runtime {
namespace {

cudaStream_t native(const Stream& s) { return static_cast<cudaStream_t>(s.native()); }

cudaDataType_t cuda_type(quant::DType t) {
  switch (t) {
    case quant::DType::F32: return CUDA_R_32F;
    case quant::DType::F16: return CUDA_R_16F;
    case quant::DType::BF16: return CUDA_R_16BF;
    default: break;
  }
  ZINC_THROW("cuda backend: no GEMM type for " << quant::dtype_name(t));
}

}  // namespace

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Stream& s) {
  check_dtype(x, "linear input");
  check_dtype(w, "linear weight");
  const int64_t n = x.rows(), in = x.cols(), o = w.rows();
  ZINC_CHECK(w.cols() == in, "linear: input has " << in << " features, weight expects " << w.cols());
  ZINC_CHECK(out.rows() == n && out.cols() == o, "linear: output shape mismatch");
  if (fused_linear(x, w, bias, false, out, s)) return;
  // Row-major out[n, o] = x[n, in] w[o, in]^T is column-major out^T[o, n] = w^T^T x^T:
  // A = w (stored [in, o] column-major, transposed), B = x ([in, n] column-major).
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t ct = cuda_type(dtype_);
  ZINC_CUBLAS_CHECK(cublasSetStream(cublas_, native(s)));
  ZINC_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(o), static_cast<int>(n),
                                 static_cast<int>(in), &one, w.data, ct, static_cast<int>(in), x.data, ct,
                                 static_cast<int>(in), &zero, out.data, ct, static_cast<int>(o), CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
  if (!bias.empty()) cuda::add_bias(dtype_, out.data, bias.data, n, o, native(s));
}

bool CudaBackend::fused_linear(const Tensor& x, const Tensor& w, const Tensor& bias, bool relu, const Tensor& out,
                               const Stream& s) {
  if (!lt_ || bias.empty() || x.rows() == 0) return false;
  check_dtype(bias, "linear bias");
  ZINC_CHECK(bias.numel() == w.rows(), "linear: bias of " << bias.numel() << " for " << w.rows() << " outputs");
  return lt_->run(dtype_, x.data, w.data, bias.data, relu, out.data, x.rows(), x.cols(), w.rows(), native(s));
}

void CudaBackend::linear_activation(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
                                    const Tensor& out, const Stream& s) {
  check_dtype(x, "linear input");
  check_dtype(w, "linear weight");
  ZINC_CHECK(w.cols() == x.cols() && out.rows() == x.rows() && out.cols() == w.rows(),
             "linear_activation: shape mismatch");
  if (act == Activation::Relu && fused_linear(x, w, bias, true, out, s)) return;
  Backend::linear_activation(x, w, bias, act, out, s);
}

}  // namespace zinc::runtime
