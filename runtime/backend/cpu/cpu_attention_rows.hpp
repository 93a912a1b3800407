// Internal to cpu_attention: where a kernel's rows live, independent of the instruction
// set, shared by the AVX2 (cpu_attention_avx2*.cpp, blocks of 8 rows) and AVX-512
// (cpu_attention_avx512*.cpp, blocks of 16 rows) inner loops: the per-call Geometry, a
// block's row pointers (a short block repeats its last row; its results are dropped and
// its weights are zero) and the software prefetch of the rows ahead (the AVX2 loops', and
// the AVX-512 ones' for int8 / int4 rows: cpu_attention_avx512.hpp). Nothing here needs
// more than the baseline x86-64 instruction set (the prefetch is SSE).
#pragma once

#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>

#include "quant/kv_quant.hpp"

namespace zinc::runtime::detail::rows {

// Where rows live, computed once per kernel call (no per-row function calls or divisions).
struct Geometry {
  const uint8_t* data;
  const uint16_t* params;
  int64_t code_bytes;    // per row
  int64_t param_halves;  // per row: 2 * groups
  int groups;            // quant groups per row (0: f32 / f16)
  int prefetch_rows;     // how far ahead prefetch_ahead reads, a multiple of the block rows
  static constexpr int64_t kPrefetchBytes = 2048;
  Geometry(const quant::KvView& v, int block_rows)
      : data(v.data),
        params(v.params),
        code_bytes(static_cast<int64_t>(quant::kv_row_code_bytes(v.storage, v.head_dim))),
        param_halves(2 * static_cast<int64_t>(v.groups())),
        groups(v.groups()),
        prefetch_rows(std::max<int>(
            block_rows, static_cast<int>(kPrefetchBytes / code_bytes) / block_rows * block_rows)) {}
};

// One block of kRows rows: their codes and params, and the clamped row indices.
template <int kRows>
struct Block {
  const uint8_t* rows[kRows];
  const uint16_t* params[kRows];
  int64_t index[kRows];
  int m = 0;  // real rows
};

// Rows base .. base + kRows - 1 of the list (the last real one repeated past n).
template <int kRows>
inline void block_rows(const Geometry& g, const int64_t* rows, int base, int n, Block<kRows>* blk) {
  blk->m = std::min(kRows, n - base);
  const int64_t* rb = rows + base;
  const int last = blk->m - 1;
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = rb[r < last ? r : last];
    blk->index[r] = row;
    blk->rows[r] = g.data + row * g.code_bytes;
    blk->params[r] = g.params + row * g.param_halves;
    // scalar address arithmetic: GCC's vectorized 64-bit products of this loop cost more
    asm("" : "+r"(blk->params[r]));
  }
}

// Software prefetch of the rows prefetch_rows ahead (>= one block, about 2 KiB): one core
// keeps too few misses in flight on its own (measured: f32 rows at 45% of one core's read
// bandwidth without it, before rows were also read in order).
template <int kRows>
inline void prefetch_ahead(const Geometry& g, const int64_t* rows, int base, int n) {
  const int end = std::min(n, base + g.prefetch_rows + kRows);
  uintptr_t last_line = 0;  // params: one prefetch per cache line (several rows share one)
  for (int t = base + g.prefetch_rows; t < end; ++t) {
    const char* p = reinterpret_cast<const char*>(g.data + rows[t] * g.code_bytes);
    for (int64_t off = 0; off < g.code_bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    if (g.groups > 0) {
      const char* pp = reinterpret_cast<const char*>(g.params + rows[t] * g.param_halves);
      const uintptr_t line = reinterpret_cast<uintptr_t>(pp) >> 6;
      if (line != last_line) _mm_prefetch(pp, _MM_HINT_T0);
      last_line = line;
    }
  }
}

// Software prefetch of the rows first_row + t * step, t < min(count, the prefetch_rows of
// 16-row blocks), codes and params: the first rows of a stream, which the loops'
// prefetch_ahead does not reach (it runs prefetch_rows ahead of the block it is in). The
// driver issues it for a work item's first values while its keys run, and for the next
// item's first keys while the values run (cpu_attention.cpp).
inline void prefetch_start(const quant::KvView& v, int64_t first_row, int64_t step, int count) {
  const Geometry g(v, 16);
  count = std::min(count, g.prefetch_rows);
  uintptr_t last_line = 0;
  for (int t = 0; t < count; ++t) {
    const int64_t row = first_row + t * step;
    const char* p = reinterpret_cast<const char*>(g.data + row * g.code_bytes);
    for (int64_t off = 0; off < g.code_bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    if (g.groups > 0) {
      const char* pp = reinterpret_cast<const char*>(g.params + row * g.param_halves);
      const uintptr_t line = reinterpret_cast<uintptr_t>(pp) >> 6;
      if (line != last_line) _mm_prefetch(pp, _MM_HINT_T0);
      last_line = line;
    }
  }
}

}  // namespace zinc::runtime::detail::rows
