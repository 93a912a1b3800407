// QuantView: the checks of a view and the host's one format switch for dequantization
// (quant/quant_view.hpp has the contract).
#include "quant/quant_view.hpp"

#include <cstdint>

#include "quant/quant_detail.hpp"
#include "runtime/common/error.hpp"

namespace zinc::quant {

namespace {

bool is_raw_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

bool aligned_to(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

}  // namespace

void check_view(const QuantView& v, const char* what) {
  if (what == nullptr) what = "a quantized view";
  ZINC_CHECK(v.rows >= 0 && v.cols >= 0,
             what << " has a negative shape [" << v.rows << ", " << v.cols << "]");
  const bool empty = v.rows == 0 || v.cols == 0;
  if (v.format == QuantFormat::None) {
    ZINC_CHECK(is_raw_type(v.dtype), what << " is stored raw as " << dtype_name(v.dtype)
                                          << "; only F32, F16 and BF16 can be dequantized");
    if (empty) return;
    ZINC_CHECK(v.codes != nullptr, what << ": the view's elements (codes) are null");
    ZINC_CHECK(aligned_to(v.codes, dtype_size(v.dtype)),
               what << ": its " << dtype_name(v.dtype) << " elements at "
                    << static_cast<const void*>(v.codes) << " are not " << dtype_size(v.dtype)
                    << "-byte aligned");
    return;
  }
  detail::check_quant_shape(v.format, v.rows, v.cols, v.group, what);
  if (empty) return;
  ZINC_CHECK(v.codes != nullptr && v.scales != nullptr,
             what << " (" << quant_format_name(v.format)
                  << "): the view's codes and scales must not be null");
  ZINC_CHECK(aligned_to(v.scales, alignof(uint16_t)),
             what << " (" << quant_format_name(v.format) << "): its scales at "
                  << static_cast<const void*>(v.scales) << " are not 2-byte aligned");
  if (quant_has_mins(v.format)) {
    ZINC_CHECK(v.mins != nullptr,
               what << " (" << quant_format_name(v.format)
                    << ") stores a minimum per group, but the view's mins are null");
    ZINC_CHECK(aligned_to(v.mins, alignof(uint16_t)),
               what << " (" << quant_format_name(v.format) << "): its mins at "
                    << static_cast<const void*>(v.mins) << " are not 2-byte aligned");
  }
}

void dequantize(const QuantView& v, float* dst) {
  check_view(v, "the view given to dequantize");
  if (v.numel() == 0) return;
  ZINC_CHECK(dst != nullptr, "dequantize: no destination for " << v.numel() << " elements");
  if (v.format == QuantFormat::None) {
    convert(v.dtype, v.codes, DType::F32, dst, static_cast<size_t>(v.numel()));
    return;
  }
  dequantize(v.format, v.group, v.codes, v.scales, quant_has_mins(v.format) ? v.mins : nullptr,
             v.rows, v.cols, dst);
}

}  // namespace zinc::quant
