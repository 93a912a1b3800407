// How a KV cache is stored in host memory (--kv-offload, --kv-quant), and writing into it.
//
// A cache (one layer's K or V) is a set of rows of head_dim (hd) elements. Row r of
// sequence b, kv head h, position j is
//     r(b, h, j) = b * seq_stride + h * head_stride + j * pos_stride        (strides in rows)
// so both [B, t_max, KVH, hd] (the CPU backend) and [B, KVH, t_max, hd] (HostKvCache, where
// the rows one kv head reads are contiguous) are views of the same kind.
//
// Storages (row r's bytes start at data + r * kv_row_code_bytes(storage, hd)):
//   f32   hd floats
//   f16   hd IEEE halves (round to nearest even)
//   int8  hd codes, one byte each            } asymmetric min/scale quantization, group-wise
//   int4  hd / 2 bytes, two codes per byte,  } along hd (FlexGen's scheme): groups of G
//         element 2k in the LOW nibble of    } consecutive elements, G dividing hd
//         byte k, 2k+1 in the high nibble    }
// The quantized storages keep per group {scale, min} as fp16 in a separate array: row r's
// params are params[r * (hd / G) * 2 + 2 * g + {0, 1}]. Dequantization is
//     x' = float(code) * scale + min                     (fp32: one multiply, one add)
// and quantization chooses, for a group with minimum lo and maximum hi,
//     min   = the largest fp16 <= lo                     (rounded DOWN)
//     scale = the smallest fp16 >= (hi - min) / levels   (rounded UP; levels = 255 or 15)
//     code  = round_half_even((x - min) / scale), clamped to [0, levels]; 0 when scale == 0
// Rounding min down and scale up keeps every code inside [0, levels] without clamping, so
// fp16 params cost nothing in accuracy: |x - x'| <= scale / 2 (plus fp32 rounding of the
// two operations above) holds for every element, with scale the stored fp16 scale. A
// constant group that fp16 represents exactly (all zeros, say) is stored exactly. Values
// must be finite with |x| <= 65504 (the fp16 range the params live in); kv_store throws
// naming the first one that is not. fp16 params (4 bytes per group) instead of fp32
// (8 bytes) save 6% of the bytes of an int8 row and 11% of an int4 row at hd 128, G 64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "quant/dtype.hpp"

namespace zinc::quant {

enum class KvStorage { F32, F16, Int8, Int4 };

// "f32", "f16", "int8", "int4"; parse throws zinc::Error listing the choices.
KvStorage parse_kv_storage(const std::string& name);
const char* kv_storage_name(KvStorage s);
bool kv_storage_quantized(KvStorage s);  // int8, int4
int kv_storage_levels(KvStorage s);      // highest code: 255 (int8), 15 (int4); 0 otherwise

// Throws zinc::Error unless the group size suits the storage and head_dim: quantized
// storages need 0 < group, head_dim % group == 0, and an even group for int4. Callers with
// small heads pass min(64, head_dim). The group is ignored for f32 and f16.
void check_kv_group(KvStorage s, int head_dim, int group);

size_t kv_row_code_bytes(KvStorage s, int head_dim);              // bytes of one row's codes
size_t kv_row_param_bytes(KvStorage s, int head_dim, int group);  // 0 for f32 / f16

struct KvBytes {
  size_t codes = 0;
  size_t params = 0;
  size_t total() const { return codes + params; }
};
// Bytes of one [B, KVH, t_max, hd] cache (one layer's K, or its V).
KvBytes kv_cache_bytes(KvStorage s, int batch, int kv_heads, int t_max, int head_dim, int group);

// One layer's K or V cache in host memory (see the file comment). Not owning.
struct KvView {
  KvStorage storage = KvStorage::F32;
  int head_dim = 0;            // hd
  int group = 0;               // G, quantized storages only
  int t_max = 0;               // positions per sequence (for bounds checks)
  int64_t seq_stride = 0;      // rows between sequences b and b+1
  int64_t head_stride = 0;     // rows between kv heads h and h+1
  int64_t pos_stride = 0;      // rows between positions j and j+1
  uint8_t* data = nullptr;     // codes, kv_row_code_bytes per row
  uint16_t* params = nullptr;  // [rows, hd / G, 2] fp16 {scale, min}; null for f32 / f16

  int64_t row(int b, int h, int j) const {
    return b * seq_stride + h * head_stride + j * pos_stride;
  }
  int groups() const { return kv_storage_quantized(storage) ? head_dim / group : 0; }
  uint8_t* row_codes(int64_t r) const {
    return data + r * static_cast<int64_t>(kv_row_code_bytes(storage, head_dim));
  }
  uint16_t* row_params(int64_t r) const { return params + r * 2 * groups(); }
  // The view whose sequence 0 is this one's sequence b0 (a micro-batch of the batch).
  KvView from_sequence(int b0) const {
    KvView v = *this;
    v.data = row_codes(b0 * seq_stride);
    if (params) v.params = row_params(b0 * seq_stride);
    return v;
  }
};

// Checks a view's fields (group, strides, non-null pointers); `what` names it in errors.
void check_kv_view(const KvView& v, const char* what);

// Writes the step's keys or values: src [batch * tq, kv_heads * hd] fp32, row b * tq + i
// going to position t0 + i of sequence b, quantized or converted as the view's storage
// says (OpenMP over rows). Throws when t0 + tq > t_max, or (int8 / int4) when a value is not
// finite or beyond +-65504 (nothing is promised about the rows written before that check).
void kv_store(const KvView& dst, const float* src, int batch, int tq, int t0, int kv_heads);
// The same from src in src_type (F32, F16 or BF16), each row widened exactly to fp32 on
// the way (no staging copy: the host KV path stores what the GPU sent in its compute dtype).
void kv_store(const KvView& dst, DType src_type, const void* src, int batch, int tq, int t0, int kv_heads);

// The exact reference of row r's values: out[hd] = x' from the definitions above.
void kv_dequantize_row(const KvView& v, int64_t r, float* out);

// One row's codes and params from fp32 (the quantization above; exposed for tests).
// Returns false when a value is not finite or beyond +-65504 (nothing written then).
bool kv_quantize_row(KvStorage s, int head_dim, int group, const float* x, uint8_t* codes,
                     uint16_t* params);

}  // namespace zinc::quant
