// cpu_attention's choice of inner loops at run time: the most capable set that the CPU,
// the view and the caller's cap allow (the rungs and their conditions are in
// cpu_attention.hpp), the instruction sets' names, and cpu_attention_vnni_query.
#include <string>

#include "runtime/backend/cpu/cpu_attention.hpp"
#include "runtime/backend/cpu/cpu_attention_kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime {
namespace detail {

// The most capable inner loops at or below `cap` that the CPU and the view allow.
AttentionKernels kernels_for(const quant::KvView& v, CpuAttentionIsa cap, bool keys) {
  const bool quant = quant::kv_storage_quantized(v.storage);
  if (cap >= CpuAttentionIsa::Avx512Vnni && keys && cpu_has_avx512_vnni() && avx512_vnni_fits(v))
    return avx512_vnni_k_kernels(v.storage);
  const bool avx512 = cpu_has_avx512() && v.head_dim % 32 == 0 && (!quant || v.group % 32 == 0);
  if (cap >= CpuAttentionIsa::Avx512Vnni && !keys && avx512 &&
      v.storage == quant::KvStorage::Int4 && cpu_has_avx512_bf16())
    return avx512_bf16_v_kernels(v.storage);
  if (cap >= CpuAttentionIsa::Avx512 && avx512) return avx512_attention_kernels(v.storage);
  if (cap >= CpuAttentionIsa::Avx2 && cpu_has_avx2_fma_f16c() && v.head_dim % 16 == 0 &&
      (!quant || v.group % 16 == 0))
    return avx2_attention_kernels(v.storage);
  return scalar_attention_kernels(v.storage);
}

}  // namespace detail

CpuAttentionIsa parse_cpu_attention_isa(const std::string& name) {
  for (auto isa : {CpuAttentionIsa::Auto, CpuAttentionIsa::Avx512Vnni, CpuAttentionIsa::Avx512,
                   CpuAttentionIsa::Avx2, CpuAttentionIsa::Scalar})
    if (name == cpu_attention_isa_name(isa)) return isa;
  ZINC_THROW("unknown CPU attention instruction set '"
             << name << "' (choices: auto, avx512-vnni, avx512, avx2, scalar)");
}

const char* cpu_attention_isa_name(CpuAttentionIsa isa) {
  switch (isa) {
    case CpuAttentionIsa::Scalar:
      return "scalar";
    case CpuAttentionIsa::Avx2:
      return "avx2";
    case CpuAttentionIsa::Avx512:
      return "avx512";
    case CpuAttentionIsa::Avx512Vnni:
      return "avx512-vnni";
    case CpuAttentionIsa::Auto:
      break;
  }
  return "auto";
}

void cpu_attention_vnni_query(quant::KvStorage s, int hd, const float* q, float* out) {
  ZINC_CHECK(quant::kv_storage_quantized(s),
             "cpu_attention_vnni_query: " << quant::kv_storage_name(s) << " keys have no grid");
  ZINC_CHECK(detail::cpu_has_avx512_vnni() && hd % (s == quant::KvStorage::Int4 ? 64 : 32) == 0,
             "cpu_attention_vnni_query: needs the CPU's AVX512_VNNI and a head_dim the "
             "avx512-vnni loops take ("
                 << hd << ")");
  detail::vnni_query(s, hd, q, out);
}

const char* cpu_attention_isa(const quant::KvView& view, CpuAttentionIsa isa, bool keys) {
  return detail::kernels_for(view, isa, keys).isa;
}

}  // namespace zinc::runtime
