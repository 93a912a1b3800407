// sampling.cu: Backend::sample on the GPU (kernels.hpp's `sample_workspace_bytes`,
// `sample`). The reference is runtime/backend/sampling.cpp (sample_with_draw).
//
// One block per row, no workspace: every pass re-reads the row of logits and recomputes
// what it needs (v = logit / temperature in fp32, p = exp(double(v - max)) / sum), which
// is bit-identical from pass to pass, so no [rows, vocab] scratch is needed.
//
// * Greedy (temperature <= 0): argmax_kernel, 512 threads, (value, index) reduction with
//   the lowest index winning ties, over the row converted to fp32. NaN never wins (the CPU
//   returns 0 when logits[0] is NaN; NaN rows are unspecified either way).
// * Sampling: sample_kernel, 1024 threads:
//   1. max of v (fused with the first top-k pass);
//   2. top-k (0 < k < vocab): the k-th largest v exactly, by MSB-first radix select over
//      the order-preserving uint32 key of v, 4 passes of 8-bit digits with 256-bin integer
//      histograms (deterministic); kept = v >= kth (ties with the k-th kept, as
//      TopKLogitsWarper; -0 and +0 compare equal as on the CPU);
//   3. sum = sum over kept, non-inf v of exp(double(v - max)), a fixed-order block reduction
//      (deterministic); p = exp(double(v - max)) / sum, 0 for filtered or infinite v;
//   4. top-p (top_p < 1), EXACT up to the rounding of the cumulative sums: the CPU drops,
//      in ascending stable order of p (ties by index), tokens while the cumulative mass is
//      <= thr = 1 - top_p, never the last. That set is {p < tau} plus the first r ties
//      (index order) of p == tau, where tau = max{p : mass(p' < p) <= thr}. p is a
//      nondecreasing function of v, so tau = p(tau_v) for tau_v = the largest v with
//      mass(v' < v) <= thr, found by MSB-first radix descent over the uint32 key of v
//      (4 passes, 256 bins of count and of mass in 2^-62 fixed point, integer atomics:
//      deterministic). One more pass gives S = mass(p < tau) and n = #(p == tau) (double,
//      fixed order), then r = the number of ties dropped: S + tau + tau ... <= thr added one
//      at a time as the CPU does (closed form clamp(floor((thr - S) / tau), 0, n - 1)
//      beyond 65536 ties), never all n; and the kept mass K = mass(p > tau) + (n - r) tau.
//      Tokens with equal p but different v are still treated as one tie group in index
//      order (the comparison is on p), so the result equals the CPU's except where the
//      CPU's sequential double sums and these sums (fixed point for the descent, a tree for
//      S and K) round to different sides of thr, i.e. when the removed mass is within
//      ~1e-13 of 1 - top_p.
//   5. draw: u = sequence_uniform(keys[r], counter); q = p / K for kept tokens (q = p
//      without top-p); chunks of 4096 tokens in index order, a block scan of q (double)
//      and, for the tie ranks at tau, of the tie count; the first index with u < acc wins,
//      else the last index with q > 0 (0 if none).
// A row holding a NaN or +inf gives kNonFiniteLogits (-1), as on the CPU: both kernels
// OR a per-thread flag over the block in their first pass (__syncthreads_or).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/backend/cuda/cuda_types.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/backend/sampling.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {
namespace {

// Order-preserving key of a float (a < b <=> key(a) < key(b); -0 just below +0) and back.
__device__ __forceinline__ uint32_t f2key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key2f(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

constexpr int kArgmaxThreads = 512;
constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr int kDrawItems = 4;  // consecutive tokens per thread in the draw's chunks
constexpr double kFix = 4611686018427387904.0;  // 2^62: fixed point of the top-p masses
constexpr double kTieLoopMax = 65536;           // ties dropped one by one up to this many

// ---- block reductions / scans (blockDim.x == kThreads; scratch of kWarps entries) ----

template <typename V, typename Op>
__device__ __forceinline__ V warp_reduce(V v, Op op) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// All threads get the result; safe to call back to back (syncs before reusing scratch).
template <typename V, typename Op>
__device__ V block_reduce(V v, Op op, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  V r = scratch[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, scratch[w]);
  return r;
}

// Exclusive prefix sum in thread order; *total = the block's sum. All threads get both.
template <typename V>
__device__ V block_exclusive_scan(V v, V* total, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  V incl = v;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const V n = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += n;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  V before = V(0), all = V(0);
  for (int w = 0; w < kWarps; ++w) {
    const V x = scratch[w];
    if (w < warp) before += x;
    all += x;
  }
  *total = all;
  V excl = __shfl_up_sync(0xffffffffu, incl, 1);
  if (lane == 0) excl = V(0);
  return before + excl;
}

struct MaxF {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumD {
  __device__ double operator()(double a, double b) const { return a + b; }
};
struct SumU {
  __device__ unsigned operator()(unsigned a, unsigned b) const { return a + b; }
};
struct MinI {
  __device__ int operator()(int a, int b) const { return min(a, b); }
};
struct MaxI {
  __device__ int operator()(int a, int b) const { return max(a, b); }
};

// ---- greedy ----

template <typename T>
__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_kernel(const T* __restrict__ logits, int vocab, int32_t* __restrict__ ids) {
  __shared__ float sv[kArgmaxThreads / 32];
  __shared__ int si[kArgmaxThreads / 32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  int bad = 0;
  for (int i = threadIdx.x; i < vocab; i += kArgmaxThreads) {
    const float v = load_f32(row + i);
    bad |= isnan(v) || v == INFINITY;
    if (v > bv || (v == bv && i < bi)) bv = v, bi = i;  // i increases: ties keep the first
  }
  if (__syncthreads_or(bad)) {
    if (threadIdx.x == 0) ids[blockIdx.x] = kNonFiniteLogits;
    return;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kArgmaxThreads / 32; ++w)
      if (sv[w] > bv || (sv[w] == bv && si[w] < bi)) bv = sv[w], bi = si[w];
    ids[blockIdx.x] = bi < vocab ? bi : 0;  // all NaN: 0
  }
}

// ---- sampling ----

struct RowParams {
  float temperature;
  float kth;    // keep v >= kth (-inf: top-k off)
  float mx;     // max v
  double sum;   // softmax denominator
};

template <typename T>
__device__ __forceinline__ float scaled(const T* row, int i, float temperature) {
  return load_f32(row + i) / temperature;  // as the CPU: v /= temperature in fp32
}

__device__ __forceinline__ double prob(float v, const RowParams& rp) {
  if (!(v >= rp.kth) || isinf(v)) return 0.0;
  return exp(static_cast<double>(v - rp.mx)) / rp.sum;
}

// Warp 0 (all lanes call): the digit d of the MSB-first radix select for the kk-th largest,
// cnt[kBins] the histogram: sum_{d' > d} cnt < kk <= sum_{d' >= d} cnt. Returns d and the
// new kk (kk minus the count above d) to lane 0 through *sel.
__device__ void select_topk_digit(const unsigned* cnt, unsigned kk, unsigned* sel) {
  const int lane = threadIdx.x & 31;
  // Lane l owns bins 255 - 8l - 7 .. 255 - 8l, walked from the top.
  unsigned own = 0;
#pragma unroll
  for (int e = 0; e < 8; ++e) own += cnt[255 - 8 * lane - e];
  unsigned incl = own;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned n = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += n;
  }
  unsigned above = incl - own;  // count in bins above this lane's
  if (above < kk && kk <= incl) {  // exactly one lane
    for (int e = 0; e < 8; ++e) {
      const int d = 255 - 8 * lane - e;
      if (kk <= above + cnt[d]) {
        sel[0] = static_cast<unsigned>(d);
        sel[1] = kk - above;
        break;
      }
      above += cnt[d];
    }
  }
}

// Warp 0 (all lanes call): the top-p descent's digit: the largest nonempty bin d with
// below + sum_{d' < d} mass[d'] <= thr (exists: the lowest nonempty bin qualifies as long
// as below <= thr). Writes d and its new `below` through sel_d / sel_below.
__device__ void select_topp_digit(const unsigned* cnt, const unsigned long long* mass, unsigned long long below,
                                  unsigned long long thr, int* sel_d, unsigned long long* sel_below) {
  const int lane = threadIdx.x & 31;
  unsigned long long own = 0;
#pragma unroll
  for (int e = 0; e < 8; ++e) own += mass[8 * lane + e];
  unsigned long long incl = own;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += n;
  }
  unsigned long long f = below + (incl - own);
  int best = -1;
  unsigned long long best_f = 0;
  for (int e = 0; e < 8; ++e) {
    const int d = 8 * lane + e;
    if (cnt[d] > 0 && f <= thr) best = d, best_f = f;
    f += mass[d];
  }
  const int top = warp_reduce(best, MaxI{});
  if (top >= 0 && best == top) {  // the owning lane
    *sel_d = top;
    *sel_below = best_f;
  }
  if (top < 0 && lane == 0) {  // cannot happen (see above); keep the lowest bin
    *sel_d = 0;
    *sel_below = below;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    sample_kernel(const T* __restrict__ logits, int vocab, float temperature, int top_k, float top_p,
                  const int64_t* __restrict__ keys, uint64_t counter, int32_t* __restrict__ ids) {
  __shared__ unsigned cnt[kBins];
  __shared__ unsigned long long mass[kBins];
  __shared__ double scratch_d[kWarps];
  __shared__ float scratch_f[kWarps];
  __shared__ unsigned scratch_u[kWarps];
  __shared__ int scratch_i[kWarps];
  __shared__ unsigned sel_k[2];
  __shared__ int sel_d;
  __shared__ unsigned long long sel_below;

  const int tid = threadIdx.x;
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const bool topk = top_k > 0 && top_k < vocab;
  const bool topp = top_p < 1.0f;

  RowParams rp;
  rp.temperature = temperature;
  rp.kth = -INFINITY;

  // 1 + 2. max, and the k-th largest v by radix select (pass 0 fused with the max).
  uint32_t prefix = 0, pmask = 0;
  unsigned kk = static_cast<unsigned>(top_k);
  float mx = -INFINITY;
  int bad = 0;
  for (int i = tid; i < vocab; i += kThreads) {
    const float x = load_f32(row + i);
    bad |= isnan(x) || x == INFINITY;
  }
  if (__syncthreads_or(bad)) {
    if (tid == 0) ids[blockIdx.x] = kNonFiniteLogits;
    return;
  }
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (!topk && shift < 24) break;
    if (topk) {
      for (int d = tid; d < kBins; d += kThreads) cnt[d] = 0;
      __syncthreads();
    }
    for (int i = tid; i < vocab; i += kThreads) {
      const float v = scaled(row, i, temperature);
      if (shift == 24) mx = fmaxf(mx, v);
      if (topk) {
        const uint32_t key = f2key(v);
        if ((key & pmask) == prefix) atomicAdd(&cnt[(key >> shift) & 0xffu], 1u);
      }
    }
    if (shift == 24) mx = block_reduce(mx, MaxF{}, scratch_f);
    if (topk) {
      __syncthreads();
      if (tid < 32) select_topk_digit(cnt, kk, sel_k);
      __syncthreads();
      prefix |= sel_k[0] << shift;
      pmask |= 0xffu << shift;
      kk = sel_k[1];
    }
  }
  if (topk) rp.kth = key2f(prefix);
  rp.mx = mx;
  rp.sum = 1.0;

  // 3. softmax denominator.
  {
    double local = 0.0;
    for (int i = tid; i < vocab; i += kThreads) {
      const float v = scaled(row, i, temperature);
      if (v >= rp.kth && !isinf(v)) local += exp(static_cast<double>(v - rp.mx));
    }
    rp.sum = block_reduce(local, SumD{}, scratch_d);
  }

  // 4. top-p threshold tau, ties to drop, kept mass.
  double tau = 0.0, kept_mass = 1.0;
  unsigned drop_ties = 0;
  if (topp) {
    const double thr = 1.0 - static_cast<double>(top_p);
    const unsigned long long thr_fx = __double2ull_rn(thr * kFix);
    prefix = 0;
    pmask = 0;
    unsigned long long below = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int d = tid; d < kBins; d += kThreads) cnt[d] = 0, mass[d] = 0;
      __syncthreads();
      for (int i = tid; i < vocab; i += kThreads) {
        const float v = scaled(row, i, temperature);
        const uint32_t key = f2key(v);
        if ((key & pmask) != prefix) continue;
        const unsigned d = (key >> shift) & 0xffu;
        atomicAdd(&cnt[d], 1u);
        const double p = prob(v, rp);
        if (p > 0.0) atomicAdd(&mass[d], __double2ull_rn(p * kFix));
      }
      __syncthreads();
      if (tid < 32) select_topp_digit(cnt, mass, below, thr_fx, &sel_d, &sel_below);
      __syncthreads();
      prefix |= static_cast<uint32_t>(sel_d) << shift;
      pmask |= 0xffu << shift;
      below = sel_below;
    }
    tau = prob(key2f(prefix), rp);
    double s_less = 0.0, s_more = 0.0;
    unsigned n_ties = 0;
    for (int i = tid; i < vocab; i += kThreads) {
      const double p = prob(scaled(row, i, temperature), rp);
      if (p < tau)
        s_less += p;
      else if (p == tau)
        ++n_ties;
      else
        s_more += p;
    }
    s_less = block_reduce(s_less, SumD{}, scratch_d);
    s_more = block_reduce(s_more, SumD{}, scratch_d);
    n_ties = block_reduce(n_ties, SumU{}, scratch_u);
    if (tau > 0.0 && n_ties > 0) {
      const double room = thr - s_less;
      double r = room > 0.0 ? floor(room / tau) : 0.0;
      r = fmin(r, static_cast<double>(n_ties - 1));
      if (r < kTieLoopMax) {
        // The CPU's own additions, tie after tie (exact when nothing lies below tau).
        if (tid == 0) {
          double cum = s_less;
          unsigned n = 0;
          while (n + 1 < n_ties && cum + tau <= thr) cum += tau, ++n;
          sel_k[0] = n;
        }
        __syncthreads();
        r = sel_k[0];
      }
      drop_ties = static_cast<unsigned>(r);
    }
    kept_mass = s_more + static_cast<double>(n_ties - drop_ties) * tau;
  }

  // 5. the draw, in index order.
  const double u = sequence_uniform(static_cast<uint64_t>(keys[blockIdx.x]), counter);
  double carry = 0.0;
  unsigned tie_carry = 0;
  int found = -1, last = -1;
  constexpr int kChunk = kThreads * kDrawItems;
  for (int base = 0; base < vocab; base += kChunk) {
    const int first = base + tid * kDrawItems;
    double p[kDrawItems];
    unsigned ties = 0;
#pragma unroll
    for (int e = 0; e < kDrawItems; ++e) {
      const int idx = first + e;
      p[e] = idx < vocab ? prob(scaled(row, idx, temperature), rp) : 0.0;
      if (topp && p[e] == tau) ++ties;
    }
    unsigned tie_rank = 0, tie_total = 0;
    if (topp) tie_rank = tie_carry + block_exclusive_scan(ties, &tie_total, scratch_u);
    double own = 0.0;
#pragma unroll
    for (int e = 0; e < kDrawItems; ++e) {
      if (topp) {
        bool keep = p[e] > tau;
        if (p[e] == tau) keep = tie_rank++ >= drop_ties;
        p[e] = keep ? p[e] / kept_mass : 0.0;
      }
      own += p[e];
    }
    double total = 0.0;
    double acc = carry + block_exclusive_scan(own, &total, scratch_d);
    int my_found = -1, my_last = -1;
#pragma unroll
    for (int e = 0; e < kDrawItems; ++e) {
      if (p[e] <= 0.0) continue;
      acc += p[e];
      my_last = first + e;
      if (my_found < 0 && u < acc) my_found = first + e;
    }
    const int f = block_reduce(my_found < 0 ? 0x7fffffff : my_found, MinI{}, scratch_i);
    last = max(last, block_reduce(my_last, MaxI{}, scratch_i));
    if (f != 0x7fffffff) {
      found = f;
      break;
    }
    carry += total;
    tie_carry += tie_total;
  }
  if (tid == 0) ids[blockIdx.x] = found >= 0 ? found : (last >= 0 ? last : 0);
}

template <typename T>
void sample_typed(const void* logits, int rows, int vocab, float temperature, int top_k, float top_p,
                  const int64_t* keys, uint64_t counter, int32_t* ids, cudaStream_t s) {
  const T* lt = static_cast<const T*>(logits);
  if (temperature <= 0.0f) {
    argmax_kernel<T><<<rows, kArgmaxThreads, 0, s>>>(lt, vocab, ids);
    ZINC_CUDA_LAUNCH_CHECK(argmax_kernel);
    return;
  }
  sample_kernel<T><<<rows, kThreads, 0, s>>>(lt, vocab, temperature, top_k, top_p, keys, counter, ids);
  ZINC_CUDA_LAUNCH_CHECK(sample_kernel);
}

}  // namespace

size_t sample_workspace_bytes(int rows, int vocab) {
  (void)rows;
  (void)vocab;
  return 0;  // every pass recomputes from the logits (see the top of this file)
}

void sample(quant::DType t, const void* logits, int rows, int vocab, float temperature, int top_k, float top_p,
            const int64_t* keys, uint64_t counter, int32_t* ids, void* workspace, size_t workspace_bytes,
            cudaStream_t s) {
  (void)workspace;
  (void)workspace_bytes;
  ZINC_CHECK(rows >= 0 && vocab > 0, "sample: bad shape (rows " << rows << ", vocab " << vocab << ")");
  if (rows == 0) return;
  ZINC_CHECK(logits != nullptr && ids != nullptr, "sample: logits and ids must not be null");
  ZINC_CHECK(temperature <= 0.0f || keys != nullptr, "sample: keys must not be null when sampling");
  ZINC_CHECK(temperature <= 0.0f || (top_k >= 0 && top_p > 0.0f && top_p <= 1.0f),
             "sample: top_k " << top_k << " / top_p " << top_p << " out of range");
  dispatch_float_type(t, "sample", [&](auto tag) {
    using T = typename decltype(tag)::type;
    sample_typed<T>(logits, rows, vocab, temperature, top_k, top_p, keys, counter, ids, s);
  });
}

}  // namespace zinc::runtime::cuda
