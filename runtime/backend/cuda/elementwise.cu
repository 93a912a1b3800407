// Element-wise ops and row copies (kernels.hpp, "elementwise.cu"): add, add_bias,
// activation, silu_mul, convert as grid-stride maps in fp32 (packs of 8 elements moved
// with 16-byte accesses when every pointer is 16-byte aligned, else one element per
// step); embedding, split_qkv, last_rows and kv_write as one row-gather copy kernel
// (whole rows moved in the widest word their size and alignment allow).
// The fp32 math is the CPU backend's, term for term (runtime/backend/cpu/cpu_backend.cpp).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "runtime/backend/cuda/cuda_types.cuh"
#include "runtime/backend/cuda/kernels.hpp"

namespace zinc::runtime::cuda {
namespace {

constexpr int kThreads = 256;

// ---- element-wise maps -------------------------------------------------------------------

// out[i] = op(a[i], b[i]) (b unused unless kBinary), in fp32; N = kPack (16-byte packs,
// all pointers 16-byte aligned) or 1. out may alias a or b: each element is read and
// written by the same thread, reads first.
template <int N, bool kBinary, typename TA, typename TO, class Op>
__global__ void map_kernel(const TA* a, const TA* b, TO* out, int64_t count, Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if constexpr (N == kPack) {
    const int64_t packs = count / kPack;
    for (int64_t p = tid; p < packs; p += stride) {
      float x[kPack], y[kPack];
      load8_f32(a + p * kPack, x);
      if constexpr (kBinary) load8_f32(b + p * kPack, y);
#pragma unroll
      for (int j = 0; j < kPack; ++j) x[j] = op(x[j], kBinary ? y[j] : 0.0f);
      store8_f32(out + p * kPack, x);
    }
    done = packs * kPack;
  }
  for (int64_t i = done + tid; i < count; i += stride) {
    const float x = load_f32(a + i);
    const float y = kBinary ? load_f32(b + i) : 0.0f;
    store_f32(out + i, op(x, y));
  }
}

template <bool kBinary, typename TA, typename TO, class Op>
void launch_map(const void* a, const void* b, void* out, int64_t count, Op op, cudaStream_t s) {
  if (count == 0) return;
  const auto* pa = static_cast<const TA*>(a);
  const auto* pb = static_cast<const TA*>(b);
  auto* po = static_cast<TO*>(out);
  const bool vec = aligned16(a) && aligned16(out) && (!kBinary || aligned16(b)) && count >= kPack;
  if (vec) {
    map_kernel<kPack, kBinary><<<grid_for(count / kPack, kThreads), kThreads, 0, s>>>(pa, pb, po, count, op);
    ZINC_CUDA_LAUNCH_CHECK("map_kernel<8>");
  } else {
    map_kernel<1, kBinary><<<grid_for(count, kThreads), kThreads, 0, s>>>(pa, pb, po, count, op);
    ZINC_CUDA_LAUNCH_CHECK("map_kernel<1>");
  }
}

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct IdentityOp {
  __device__ float operator()(float a, float) const { return a; }
};
struct ReluOp {
  __device__ float operator()(float x, float) const { return x > 0.f ? x : 0.f; }
};
struct SiluOp {
  __device__ float operator()(float x, float) const { return x / (1.0f + expf(-x)); }
};
struct GeluTanhOp {  // BLOOM's bloom_gelu_forward, term for term
  __device__ float operator()(float x, float) const {
    return x * 0.5f * (1.0f + tanhf(0.79788456f * x * (1.0f + 0.044715f * x * x)));
  }
};
struct GeluOp {  // exact (erf) GELU
  __device__ float operator()(float x, float) const { return 0.5f * x * (1.0f + erff(x * 0.70710678f)); }
};
struct SiluMulOp {
  __device__ float operator()(float g, float u) const { return g / (1.0f + expf(-g)) * u; }
};

// ---- add_bias ------------------------------------------------------------------------------

// x[r, c] += bias[c]: threads (x) over columns (packs of 8 when kVec), each keeping its
// bias in registers while it walks the rows (grid y, grid-stride).
template <bool kVec, typename T>
__global__ void add_bias_kernel(T* x, const T* bias, int64_t rows, int64_t cols) {
  const int64_t units = kVec ? cols / kPack : cols;
  const int64_t ustride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += ustride) {
    if constexpr (kVec) {
      float bv[kPack];
      load8_f32(bias + u * kPack, bv);
      for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        T* p = x + r * cols + u * kPack;
        float v[kPack];
        load8_f32(p, v);
#pragma unroll
        for (int j = 0; j < kPack; ++j) v[j] = v[j] + bv[j];
        store8_f32(p, v);
      }
    } else {
      const float bv = load_f32(bias + u);
      for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        T* p = x + r * cols + u;
        store_f32(p, load_f32(p) + bv);
      }
    }
  }
}

// ---- row copies ----------------------------------------------------------------------------

// The rows of embedding, split_qkv, last_rows and kv_write: `rows` copies of row_words
// words each, row r from map.src(r) to map.dst(r) (word offsets of the rows' starts).
// Block (bx, by): threadIdx.x over a row's words, threadIdx.y over rows; blocks stride
// over groups of by rows.
template <typename W, class Map>
__global__ void copy_rows_kernel(const W* __restrict src, W* __restrict dst, int64_t rows, int64_t row_words,
                                 Map map) {
  const int64_t rstride = static_cast<int64_t>(gridDim.x) * blockDim.y;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; r < rows; r += rstride) {
    W* base = dst;
    const int64_t dr = map.dst(r, &base);
    const W* s = src + map.src(r) * row_words;
    W* d = base + dr * row_words;
    for (int64_t w = threadIdx.x; w < row_words; w += blockDim.x) d[w] = s[w];
  }
}

// Row maps: src(r) is the source row index, dst(r, &base) the destination row index
// (a map may switch `base` to another destination array, as split_qkv does).
struct EmbeddingMap {
  const int32_t* ids;
  __device__ int64_t src(int64_t r) const { return ids[r]; }
  template <typename W>
  __device__ int64_t dst(int64_t r, W**) const {
    return r;
  }
};

struct LastRowsMap {
  int64_t tq;
  __device__ int64_t src(int64_t b) const { return b * tq + tq - 1; }
  template <typename W>
  __device__ int64_t dst(int64_t b, W**) const {
    return b;
  }
};

struct KvWriteMap {
  int64_t tq, t_max, t0;
  __device__ int64_t src(int64_t r) const { return r; }
  template <typename W>
  __device__ int64_t dst(int64_t r, W**) const {
    const int64_t b = r / tq, i = r - b * tq;  // once per row
    return b * t_max + t0 + i;
  }
};

// qkv as rows of hd: row 3j + k (k = 0, 1, 2 for q, k, v) goes to row j of q, k or v.
template <typename W>
struct SplitQkvMap {
  W* k;
  W* v;
  __device__ int64_t src(int64_t r) const { return r; }
  __device__ int64_t dst(int64_t r, W** base) const {
    const int64_t j = r / 3, which = r - 3 * j;
    if (which == 1) *base = k;
    if (which == 2) *base = v;
    return j;
  }
};

template <typename W, class Map>
void launch_copy_rows_as(const void* src, void* dst, int64_t rows, int64_t row_bytes, Map map, cudaStream_t s) {
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(W));
  int bx = 32;
  while (bx < kThreads && bx < words) bx *= 2;
  const int by = kThreads / bx;
  const int64_t groups = (rows + by - 1) / by;
  const unsigned grid = static_cast<unsigned>(groups < 65536 ? groups : 65536);
  copy_rows_kernel<W><<<grid, dim3(bx, by), 0, s>>>(static_cast<const W*>(src), static_cast<W*>(dst), rows, words,
                                                     map);
  ZINC_CUDA_LAUNCH_CHECK("copy_rows_kernel");
}

// The widest word (16, 8, 4 or 2 bytes) that divides the row size and every base address
// (`extra` pointers are further destinations of the same rows).
int copy_word_bytes(int64_t row_bytes, const void* src, const void* dst, const void* extra1 = nullptr,
                    const void* extra2 = nullptr) {
  uintptr_t bits = static_cast<uintptr_t>(row_bytes) | reinterpret_cast<uintptr_t>(src) |
                   reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(extra1) |
                   reinterpret_cast<uintptr_t>(extra2);
  for (int w = 16; w > 1; w /= 2)
    if (bits % static_cast<uintptr_t>(w) == 0) return w;
  return 1;
}

// Maps templated on the word type (split_qkv's destinations) are built by make(W*).
template <class MakeMap>
void launch_copy_rows(const void* src, void* dst, int64_t rows, int64_t row_bytes, int word, MakeMap make,
                      cudaStream_t s) {
  if (rows == 0 || row_bytes == 0) return;
  switch (word) {
    case 16:
      launch_copy_rows_as<uint4>(src, dst, rows, row_bytes, make(static_cast<uint4*>(nullptr)), s);
      return;
    case 8:
      launch_copy_rows_as<uint2>(src, dst, rows, row_bytes, make(static_cast<uint2*>(nullptr)), s);
      return;
    case 4:
      launch_copy_rows_as<uint32_t>(src, dst, rows, row_bytes, make(static_cast<uint32_t*>(nullptr)), s);
      return;
    case 2:
      launch_copy_rows_as<uint16_t>(src, dst, rows, row_bytes, make(static_cast<uint16_t*>(nullptr)), s);
      return;
    default:
      launch_copy_rows_as<uint8_t>(src, dst, rows, row_bytes, make(static_cast<uint8_t*>(nullptr)), s);
      return;
  }
}

size_t element_size(quant::DType t, const char* what) {
  size_t size = 0;
  dispatch_float_type(t, what, [&](auto tag) { size = sizeof(typename decltype(tag)::type); });
  return size;
}

}  // namespace

void add(quant::DType t, const void* a, const void* b, void* out, int64_t count, cudaStream_t s) {
  if (count == 0) return;
  dispatch_float_type(t, "cuda::add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<true, T, T>(a, b, out, count, AddOp{}, s);
  });
}

void add_bias(quant::DType t, void* x, const void* bias, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows == 0 || cols == 0) return;
  dispatch_float_type(t, "cuda::add_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto* px = static_cast<T*>(x);
    const auto* pb = static_cast<const T*>(bias);
    const bool vec = cols % kPack == 0 && aligned16(x) && aligned16(bias);
    const int64_t units = vec ? cols / kPack : cols;
    const unsigned gx = grid_for(units, kThreads);
    const unsigned gy = static_cast<unsigned>(rows < 65535 ? rows : 65535);
    if (vec) {
      add_bias_kernel<true><<<dim3(gx, gy), kThreads, 0, s>>>(px, pb, rows, cols);
    } else {
      add_bias_kernel<false><<<dim3(gx, gy), kThreads, 0, s>>>(px, pb, rows, cols);
    }
    ZINC_CUDA_LAUNCH_CHECK("add_bias_kernel");
  });
}

void activation(quant::DType t, void* x, int64_t count, Activation act, cudaStream_t s) {
  if (count == 0) return;
  dispatch_float_type(t, "cuda::activation", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (act) {
      case Activation::Relu:
        launch_map<false, T, T>(x, nullptr, x, count, ReluOp{}, s);
        return;
      case Activation::Silu:
        launch_map<false, T, T>(x, nullptr, x, count, SiluOp{}, s);
        return;
      case Activation::GeluTanh:
        launch_map<false, T, T>(x, nullptr, x, count, GeluTanhOp{}, s);
        return;
      case Activation::Gelu:
        launch_map<false, T, T>(x, nullptr, x, count, GeluOp{}, s);
        return;
    }
    ZINC_THROW("cuda::activation: unknown activation " << static_cast<int>(act));
  });
}

void silu_mul(quant::DType t, const void* gate, const void* up, void* out, int64_t count, cudaStream_t s) {
  if (count == 0) return;
  dispatch_float_type(t, "cuda::silu_mul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<true, T, T>(gate, up, out, count, SiluMulOp{}, s);
  });
}

void embedding(quant::DType t, const int32_t* ids, const void* table, int64_t n, int64_t d, void* out,
               cudaStream_t s) {
  if (n == 0 || d == 0) return;
  const int64_t row_bytes = d * static_cast<int64_t>(element_size(t, "cuda::embedding"));
  const int word = copy_word_bytes(row_bytes, table, out);
  launch_copy_rows(table, out, n, row_bytes, word, [&](auto*) { return EmbeddingMap{ids}; }, s);
}

void split_qkv(quant::DType t, const void* qkv, int64_t n, int heads, int head_dim, void* q, void* k, void* v,
               cudaStream_t s) {
  if (n == 0 || heads == 0 || head_dim == 0) return;
  const int64_t row_bytes = static_cast<int64_t>(head_dim) * static_cast<int64_t>(element_size(t, "cuda::split_qkv"));
  const int64_t rows = n * heads * 3;  // qkv as [n * H * 3, hd]
  const int word = copy_word_bytes(row_bytes, qkv, q, k, v);
  launch_copy_rows(qkv, q, rows, row_bytes, word,
                   [&](auto* w) {
                     using W = std::remove_pointer_t<decltype(w)>;
                     return SplitQkvMap<W>{static_cast<W*>(k), static_cast<W*>(v)};
                   },
                   s);
}

void last_rows(quant::DType t, const void* x, int batch, int tq, int64_t d, void* out, cudaStream_t s) {
  if (batch == 0 || d == 0) return;
  const int64_t row_bytes = d * static_cast<int64_t>(element_size(t, "cuda::last_rows"));
  const int word = copy_word_bytes(row_bytes, x, out);
  launch_copy_rows(x, out, batch, row_bytes, word, [&](auto*) { return LastRowsMap{tq}; }, s);
}

void kv_write(quant::DType t, const void* src, void* cache, const AttentionShape& sh, cudaStream_t s) {
  const int64_t rows = static_cast<int64_t>(sh.batch) * sh.tq;
  const int64_t row_elems = static_cast<int64_t>(sh.kv_heads) * sh.head_dim;
  if (rows == 0 || row_elems == 0) return;
  const int64_t row_bytes = row_elems * static_cast<int64_t>(element_size(t, "cuda::kv_write"));
  const int word = copy_word_bytes(row_bytes, src, cache);
  launch_copy_rows(src, cache, rows, row_bytes, word,
                   [&](auto*) { return KvWriteMap{sh.tq, sh.t_max, sh.t0}; }, s);
}

void convert(quant::DType src_t, const void* src, quant::DType dst_t, void* dst, int64_t count, cudaStream_t s) {
  if (count == 0) return;
  if (src_t == dst_t) {  // a plain copy (src and dst do not overlap)
    const size_t bytes = static_cast<size_t>(count) * element_size(src_t, "cuda::convert");
    ZINC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
    return;
  }
  dispatch_float_type(src_t, "cuda::convert (source)", [&](auto st) {
    using TS = typename decltype(st)::type;
    dispatch_float_type(dst_t, "cuda::convert (destination)", [&](auto dt) {
      using TD = typename decltype(dt)::type;
      launch_map<false, TS, TD>(src, nullptr, dst, count, IdentityOp{}, s);
    });
  });
}

}  // namespace zinc::runtime::cuda
