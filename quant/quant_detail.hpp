// Internal checks shared by quantize.cpp and quant_view.cpp. Not part of the quant API.
#pragma once

#include <cstdint>

#include "quant/quantize.hpp"

namespace zinc::quant::detail {

// The shape checks of quant_layout, quantize and dequantize: throws zinc::Error naming
// `what` for format None, a negative shape, group <= 0, cols % group != 0 or an odd group
// for a 4-bit format. Allocates nothing unless it throws.
void check_quant_shape(QuantFormat f, int64_t rows, int64_t cols, int group, const char* what);

}  // namespace zinc::quant::detail
