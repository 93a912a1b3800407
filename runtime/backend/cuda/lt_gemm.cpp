// LtGemm (lt_gemm.hpp): cuBLASLt matmuls with a bias / ReLU-bias epilogue.
#include "runtime/backend/cuda/lt_gemm.hpp"

#include "runtime/backend/cuda/cuda_check.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {
namespace {

cudaDataType_t lt_type(quant::DType t) {
  ZINC_CHECK(t == quant::DType::F16 || t == quant::DType::BF16,
             "cuBLASLt epilogue GEMM: " << quant::dtype_name(t) << " (F16 or BF16 only)");
  return t == quant::DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
}

}  // namespace

LtGemm::LtGemm(void* workspace, size_t workspace_bytes) : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  ZINC_CUBLAS_CHECK(cublasLtCreate(&lt_));
}

LtGemm::~LtGemm() {
  for (auto& [key, p] : plans_) {
    if (p.d) cublasLtMatrixLayoutDestroy(p.d);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
  }
  if (lt_) cublasLtDestroy(lt_);
}

LtGemm::Plan& LtGemm::plan(quant::DType t, int64_t n, int64_t in, int64_t o, bool relu) {
  const Key key{static_cast<int>(t), n, in, o, relu};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  Plan& p = plans_[key];
  const cudaDataType_t ct = lt_type(t);
  // Column-major: out^T[o, n] = w^T[o, in] x^T[in, n], A = w stored [in, o] (transposed).
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  const cublasLtEpilogue_t epi = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof ct));
  ZINC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, ct, static_cast<uint64_t>(in), static_cast<uint64_t>(o), in));
  ZINC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, ct, static_cast<uint64_t>(in), static_cast<uint64_t>(n), in));
  ZINC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, ct, static_cast<uint64_t>(o), static_cast<uint64_t>(n), o));
  cublasLtMatmulPreference_t pref = nullptr;
  ZINC_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  cublasStatus_t rc = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &workspace_bytes_, sizeof workspace_bytes_);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (rc == CUBLAS_STATUS_SUCCESS)
    rc = cublasLtMatmulAlgoGetHeuristic(lt_, p.op, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // No algorithm (or the heuristic refusing the shape) is not an error: the caller falls back.
  p.ok = rc == CUBLAS_STATUS_SUCCESS && found > 0;
  if (p.ok) p.algo = result.algo;
  return p;
}

bool LtGemm::run(quant::DType t, const void* x, const void* w, const void* bias, bool relu, void* out, int64_t n,
                 int64_t in, int64_t o, cudaStream_t s) {
  ZINC_CHECK(bias != nullptr, "cuBLASLt epilogue GEMM without a bias");
  Plan& p = plan(t, n, in, o, relu);
  if (!p.ok) return false;
  ZINC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  const float one = 1.0f, zero = 0.0f;
  ZINC_CUBLAS_CHECK(cublasLtMatmul(lt_, p.op, &one, w, p.a, x, p.b, &zero, out, p.d, out, p.d, &p.algo, workspace_,
                                   workspace_bytes_, s));
  return true;
}

}  // namespace zinc::runtime::cuda
