// What kv_quant.cpp and its AVX-512 row quantizer (kv_quantize_avx512.cpp) share, and the
// tests compare: the fp16 rounding helpers of the group params and both row quantizers.
#pragma once

#include <cstdint>

#include "quant/kv_quant.hpp"

namespace zinc::quant::detail {

// The largest fp16 <= x and the smallest fp16 >= x, for finite |x| <= 65504.
uint16_t f16_round_down(float x);
uint16_t f16_round_up(float x);

// kv_quantize_row's definition, element by element.
bool kv_quantize_row_scalar(KvStorage s, int head_dim, int group, const float* x, uint8_t* codes,
                            uint16_t* params);
// The same, bit for bit, 16 values at a time: needs AVX-512F/BW and group % 16 == 0.
bool kv_quantize_row_avx512(KvStorage s, int head_dim, int group, const float* x, uint8_t* codes,
                            uint16_t* params);
// True where kv_quantize_row takes the AVX-512 path for this group size.
bool kv_quantize_avx512_usable(int group);

}  // namespace zinc::quant::detail
