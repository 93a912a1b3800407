// QuantView: one stored weight tensor as it lies in memory (a gathered layer blob, on the
// host or on a device), typed: its format, group size, shape and where its codes, scales
// and minimums are. Backends dequantize from a view (runtime::Backend::dequantize); the
// format switch for the host lives here, in quant/, and nowhere else.
//
// Storage (quant/quantize.hpp has the formats and the layout):
//   format != None  codes [rows * cols * bits / 8] bytes, scales fp16 [rows * cols / group],
//                   mins fp16 [rows * cols / group] (asymmetric formats only)
//   format == None  the elements raw in `dtype` (F32, F16 or BF16) at `codes`; no scales
// The layout keeps scales and mins 2-byte aligned (codes are padded to a multiple of
// kCodesAlign bytes), so a view's arrays can be read in place, on a GPU too.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/dtype.hpp"
#include "quant/quantize.hpp"

namespace zinc::quant {

struct QuantView {
  QuantFormat format = QuantFormat::None;  // None: raw elements of `dtype`
  DType dtype = DType::F16;                // raw storage dtype (format None)
  int group = 0;                           // elements per scale (quantized formats)
  int64_t rows = 0;                        // matrix rows; raw tensors: numel / cols
  int64_t cols = 0;                        // the last dim (quantization groups run along it)
  const uint8_t* codes = nullptr;          // codes, or the raw elements
  const uint16_t* scales = nullptr;        // fp16 per group; null for None
  const uint16_t* mins = nullptr;          // fp16 per group; asymmetric formats only

  int64_t numel() const { return rows * cols; }
};

// Checks a view's fields (shape against the group, pointers present, alignment); throws
// zinc::Error naming `what`.
void check_view(const QuantView& v, const char* what);

// Host memory: dst[rows * cols] = the view's values in fp32 (dequantized with the fast
// path of quant/quantize.hpp, bit-exact with dequantize_reference; raw types converted
// exactly). OpenMP-parallel; allocates nothing.
void dequantize(const QuantView& v, float* dst);

}  // namespace zinc::quant
