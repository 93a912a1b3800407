// EmuOps: the tensor-core prefill kernel's primitives (cp.async, ldmatrix, mma.m16n8k16,
// shuffles, ballots, barriers) from the PTX ISA's definitions, over mma_emu_block.hpp's
// fibers, for test_attention_mma_emu.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "quant/dtype.hpp"
#include "runtime/backend/cuda/attention_prefill_mma.cuh"
#include "unit/mma_emu_block.hpp"

namespace zinc::test::mma_emu {

// ---- the primitives, from the PTX ISA ---------------------------------------------------------------------

template <DType DT>
float elem(uint16_t bits) {
  return DT == DType::F16 ? zinc::quant::f16_to_f32(bits) : zinc::quant::bf16_to_f32(bits);
}
template <DType DT>
uint16_t round_elem(float v) {
  return DT == DType::F16 ? zinc::quant::f32_to_f16(v) : zinc::quant::f32_to_bf16(v);
}

enum Op { kLdsm = 1, kLdsmT, kMma, kShfl, kBallot, kSyncWarp };

template <DType DT>
struct EmuOps {
  static Block& blk() { return *Block::current(); }
  static void check16(const void* p, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) blk().fail(std::string(what) + ": address not 16-byte aligned");
  }

  static void cp_async16(void* dst, const void* src, bool valid) {
    check16(dst, "cp.async destination");
    if (valid) check16(src, "cp.async source");
    blk().cp_async(dst, valid ? src : nullptr);
  }
  static void cp_async_commit() { blk().commit(); }
  static void cp_async_wait1() { blk().wait_group(1); }

  // ldmatrix .x4: lanes 8m .. 8m+7 give the row addresses of matrix m; without .trans lane l receives
  // row l/4, columns 2(l%4), 2(l%4)+1 of each matrix (the lower column in the lower half); with .trans
  // it receives rows 2(l%4), 2(l%4)+1 of column l/4.
  static void ldsm(uint32_t (&r)[4], const void* p, bool trans) {
    check16(p, "ldmatrix row");
    Slot in;
    in.op = trans ? kLdsmT : kLdsm;
    in.p = static_cast<const uint16_t*>(p);
    struct R {
      uint32_t v[4];
    };
    const R out = blk().warp_op(in, [&](const Slot* s, int l) {
      R o{};
      for (int m = 0; m < 4; ++m) {
        auto at = [&](int row, int col) -> uint32_t { return s[8 * m + row].p[col]; };
        const int g = l / 4, t = l % 4;
        o.v[m] = trans ? (at(2 * t, g) | at(2 * t + 1, g) << 16) : (at(g, 2 * t) | at(g, 2 * t + 1) << 16);
      }
      return o;
    });
    for (int m = 0; m < 4; ++m) r[m] = out.v[m];
  }
  static void ldsm_x4(uint32_t (&r)[4], const void* p) { ldsm(r, p, false); }
  static void ldsm_x4_trans(uint32_t (&r)[4], const void* p) { ldsm(r, p, true); }

  // mma.m16n8k16 .row.col, f32 accumulators. groupID g = lane / 4, t = lane % 4:
  //   A (16x16): a0,a1 = (g, 2t..2t+1); a2,a3 = (g+8, 2t..); a4,a5 = (g, 2t+8..); a6,a7 = (g+8, 2t+8..)
  //              in registers {a0,a1} {a2,a3} {a4,a5} {a6,a7}
  //   B (16x8):  b0,b1 = (2t..2t+1, g); b2,b3 = (2t+8.., g) in registers {b0,b1} {b2,b3}
  //   C, D (16x8): c0,c1 = (g, 2t..2t+1); c2,c3 = (g+8, 2t..2t+1)
  static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    Slot in;
    in.op = kMma;
    std::copy_n(a, 4, in.a);
    in.b[0] = b0;
    in.b[1] = b1;
    std::copy_n(d, 4, in.c);
    struct R {
      float v[4];
    };
    const R out = blk().warp_op(in, [&](const Slot* s, int lane) {
      float A[16][16], B[16][8], Cm[16][8];
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        auto lo = [](uint32_t u) { return elem<DT>(static_cast<uint16_t>(u & 0xffffu)); };
        auto hi = [](uint32_t u) { return elem<DT>(static_cast<uint16_t>(u >> 16)); };
        A[g][2 * t] = lo(s[l].a[0]);
        A[g][2 * t + 1] = hi(s[l].a[0]);
        A[g + 8][2 * t] = lo(s[l].a[1]);
        A[g + 8][2 * t + 1] = hi(s[l].a[1]);
        A[g][2 * t + 8] = lo(s[l].a[2]);
        A[g][2 * t + 9] = hi(s[l].a[2]);
        A[g + 8][2 * t + 8] = lo(s[l].a[3]);
        A[g + 8][2 * t + 9] = hi(s[l].a[3]);
        B[2 * t][g] = lo(s[l].b[0]);
        B[2 * t + 1][g] = hi(s[l].b[0]);
        B[2 * t + 8][g] = lo(s[l].b[1]);
        B[2 * t + 9][g] = hi(s[l].b[1]);
        Cm[g][2 * t] = s[l].c[0];
        Cm[g][2 * t + 1] = s[l].c[1];
        Cm[g + 8][2 * t] = s[l].c[2];
        Cm[g + 8][2 * t + 1] = s[l].c[3];
      }
      const int g = lane / 4, t = lane % 4;
      auto dot = [&](int row, int col) {
        double acc = Cm[row][col];
        for (int k = 0; k < 16; ++k) acc += static_cast<double>(A[row][k]) * B[k][col];
        return static_cast<float>(acc);
      };
      return R{{dot(g, 2 * t), dot(g, 2 * t + 1), dot(g + 8, 2 * t), dot(g + 8, 2 * t + 1)}};
    });
    std::copy_n(out.v, 4, d);
  }

  static uint32_t pack2(float lo, float hi) {
    return static_cast<uint32_t>(round_elem<DT>(lo)) | static_cast<uint32_t>(round_elem<DT>(hi)) << 16;
  }
  static void copy16(void* dst, const void* src) {
    check16(dst, "16-byte store");
    check16(src, "16-byte load");
    std::memcpy(dst, src, 16);
  }
  static float shfl_xor(float v, int m) {
    Slot in;
    in.op = kShfl;
    in.f = v;
    return blk().warp_op(in, [&](const Slot* s, int l) { return s[l ^ m].f; });
  }
  static unsigned ballot(bool p) {
    Slot in;
    in.op = kBallot;
    in.pred = p;
    return blk().warp_op(in, [](const Slot* s, int) {
      unsigned bits = 0;
      for (int l = 0; l < 32; ++l) bits |= static_cast<unsigned>(s[l].pred) << l;
      return bits;
    });
  }
  static int popc(unsigned v) { return __builtin_popcount(v); }
  static void sync_block() { blk().block_barrier(); }
  static void sync_warp() {
    Slot in;
    in.op = kSyncWarp;
    blk().warp_op(in, [](const Slot*, int) { return 0; });
  }
  static float exp2(float x) { return std::exp2(x); }
};

}  // namespace zinc::test::mma_emu
