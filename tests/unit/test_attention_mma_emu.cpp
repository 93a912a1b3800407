// The tensor-core prefill kernel's block algorithm (runtime/backend/cuda/attention_prefill_mma.cuh)
// run on the host, without a GPU: its primitives (cp.async, ldmatrix, mma.m16n8k16, shuffles, ballots,
// barriers) are emulated here from the PTX ISA's definitions, each thread of a block a fiber (ucontext)
// and each warp primitive a rendezvous of its 32 lanes, so the file's index math (fragment layouts, tile
// offsets, masks, ALiBi positions, the online softmax, the double buffer's waits) is checked against a
// double-precision reference on the same shapes the op table runs on the GPU.
//
// What the emulation makes visible: a fragment or ldmatrix address mixed up gives wrong numbers; shared
// memory starts as NaN bits and masked / out-of-range cache rows hold NaN, so reading a row that was
// not copied (or waiting too little: a cp.async lands only at the cp.async.wait_group that covers it)
// shows as NaN; a warp primitive that not all 32 lanes reach, or that lanes reach as different
// primitives, fails. What it cannot show: a race that a missing __syncthreads opens (the fibers take
// turns at every primitive, nearly in lock step), timing, bank conflicts, the mma's own rounding order.
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "quant/dtype.hpp"
#include "runtime/backend/attention_shape.hpp"
#include "runtime/backend/cuda/attention_prefill_mma.cuh"
#include "unit/mma_emu_block.hpp"
#include "unit/mma_emu_ops.hpp"

namespace {

using zinc::quant::DType;
namespace mma = zinc::runtime::cuda::attn::mma;
using namespace zinc::test::mma_emu;

// ---- cases ------------------------------------------------------------------------------------------------

struct EmuCase {
  DType dt;
  int head_dim;
  int batch, heads, kv_heads, t_max, t0, tq;
  std::vector<int> pads;  // left padding per sequence
  bool alibi;
  int hole = 0;            // sequence 0 also masks every hole-th key
  bool dead_last = false;  // the last sequence has no real key
};

std::string describe(const EmuCase& c) {
  std::ostringstream o;
  o << zinc::quant::dtype_name(c.dt) << " hd=" << c.head_dim << " B=" << c.batch << " H=" << c.heads
    << " KVH=" << c.kv_heads << " t_max=" << c.t_max << " t0=" << c.t0 << " tq=" << c.tq
    << (c.alibi ? " alibi" : "") << (c.hole ? " holes" : "") << (c.dead_last ? " dead-last" : "");
  return o.str();
}

template <DType DT, int HD>
void run_case(const EmuCase& c) {
  INFO(describe(c));
  const int B = c.batch, H = c.heads, KVH = c.kv_heads, T = c.t0 + c.tq;
  const int64_t q_row = int64_t(H) * HD, kv_row = int64_t(KVH) * HD;
  const uint16_t nan_bits = 0x7fff;  // NaN in fp16 and bf16
  std::mt19937 gen(1234 + c.tq + 7 * c.t0 + HD);
  std::normal_distribution<float> nd(0.f, 1.f);

  std::vector<uint8_t> mask(size_t(B) * c.t_max, 0);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < T; ++j) {
      bool real = j >= c.pads[b];
      if (c.hole > 0 && b == 0 && j % c.hole == c.hole - 1) real = false;
      if (c.dead_last && b == B - 1) real = false;
      mask[size_t(b) * c.t_max + j] = real;
    }
  // Caches: real keys random; masked keys and positions >= T hold NaN (never to be read).
  std::vector<uint16_t> kc(size_t(B) * c.t_max * kv_row, nan_bits), vc(kc.size(), nan_bits);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < T; ++j) {
      if (!mask[size_t(b) * c.t_max + j]) continue;
      for (int64_t e = 0; e < kv_row; ++e) {
        kc[(size_t(b) * c.t_max + j) * kv_row + e] = round_elem<DT>(nd(gen));
        vc[(size_t(b) * c.t_max + j) * kv_row + e] = round_elem<DT>(nd(gen));
      }
    }
  std::vector<uint16_t> q(size_t(B) * c.tq * q_row);
  for (auto& x : q) x = round_elem<DT>(nd(gen));
  std::vector<float> slopes(H);
  for (int h = 0; h < H; ++h) slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / H);
  std::vector<uint16_t> out(q.size(), nan_bits);  // every row must be written

  zinc::runtime::AttentionShape sh{B, c.tq, c.t0, c.t_max, H, KVH, HD};
  const float scale = 1.0f / std::sqrt(float(HD));
  using Cfg = mma::Cfg<HD>;
  // Shared memory of the block (16-byte aligned), NaN bits at every block's start.
  std::vector<uint64_t> smem_words((Cfg::kSmemBytes + 7) / 8 + 2);
  unsigned char* smem = reinterpret_cast<unsigned char*>(smem_words.data());
  smem += (16 - reinterpret_cast<uintptr_t>(smem) % 16) % 16;

  Block blk;
  const int qblocks = (c.tq + mma::kBQ - 1) / mma::kBQ;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int qb = qblocks - 1; qb >= 0; --qb) {
        std::memset(smem, 0xff, Cfg::kSmemBytes);
        blk.run([&](int tid) {
          mma::prefill_block<EmuOps<DT>, HD>(q.data(), kc.data(), vc.data(), mask.data(),
                                             c.alibi ? slopes.data() : nullptr, sh, scale * mma::kLog2e,
                                             out.data(), smem, tid, h, b, qb);
        });
      }

  // The double-precision reference on the same (rounded) inputs.
  std::vector<double> ref(q.size(), 0.0);
  int no_key = 0;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < c.tq; ++i)
      for (int h = 0; h < H; ++h) {
        const int kvh = h / (H / KVH);
        const uint16_t* qv = q.data() + (size_t(b) * c.tq + i) * q_row + size_t(h) * HD;
        std::vector<double> s;
        std::vector<int> keys;
        int real_before = 0;
        for (int j = 0; j <= c.t0 + i; ++j) {
          if (!mask[size_t(b) * c.t_max + j]) continue;
          const uint16_t* kv = kc.data() + (size_t(b) * c.t_max + j) * kv_row + size_t(kvh) * HD;
          double dot = 0;
          for (int d = 0; d < HD; ++d) dot += double(elem<DT>(qv[d])) * elem<DT>(kv[d]);
          s.push_back(dot * scale + (c.alibi ? double(slopes[h]) * real_before : 0.0));
          keys.push_back(j);
          ++real_before;
        }
        if (keys.empty()) {
          no_key += h == 0;
          continue;
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        double* o = ref.data() + (size_t(b) * c.tq + i) * q_row + size_t(h) * HD;
        for (size_t t = 0; t < keys.size(); ++t) {
          const uint16_t* vv = vc.data() + (size_t(b) * c.t_max + keys[t]) * kv_row + size_t(kvh) * HD;
          for (int d = 0; d < HD; ++d) o[d] += s[t] / sum * elem<DT>(vv[d]);
        }
      }

  // The op table's bounds for the compute dtype (backend_ops_harness.cpp: bound()).
  const double rel = DT == DType::F16 ? 8 * 0x1p-11 : 8 * 0x1p-8, abs = DT == DType::F16 ? 4 * 0x1p-11 : 4 * 0x1p-8;
  size_t bad = 0, worst = 0;
  double worst_ratio = -1, max_err = 0;
  for (size_t e = 0; e < ref.size(); ++e) {
    const double got = elem<DT>(out[e]), err = std::fabs(got - ref[e]);
    const double tol = abs + rel * std::fabs(ref[e]);
    const double ratio = std::isnan(err) ? INFINITY : err / tol;
    if (!(err <= tol)) ++bad;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = e;
    }
    if (!std::isnan(err)) max_err = std::max(max_err, err);
  }
  INFO(no_key << " queries see no key; max |err| " << max_err << "; " << bad << " of " << ref.size()
              << " out of bounds; worst [" << worst << "]: got " << elem<DT>(out[worst]) << ", ref " << ref[worst]);
  CHECK(bad == 0);
}

void run(const EmuCase& c) {
  if (c.dt == DType::F16 && c.head_dim == 64) return run_case<DType::F16, 64>(c);
  if (c.dt == DType::F16 && c.head_dim == 128) return run_case<DType::F16, 128>(c);
  if (c.dt == DType::BF16 && c.head_dim == 64) return run_case<DType::BF16, 64>(c);
  if (c.dt == DType::BF16 && c.head_dim == 128) return run_case<DType::BF16, 128>(c);
  FAIL("no such variant");
}

}  // namespace

TEST_CASE("tensor-core prefill attention, emulated on the host: fragments, masks, ALiBi, softmax",
          "[attention][mma-emu]") {
  const EmuCase cases[] = {
      // GQA, two query blocks, left padding, ALiBi, t0 = 0, T not a multiple of 64
      {DType::F16, 64, 2, 4, 2, 80, 0, 77, {0, 5}, true},
      // MQA, a chunk after a prefix (t0 > 0), a mask with holes, the last sequence without any key
      {DType::BF16, 128, 3, 2, 1, 96, 9, 70, {3, 0, 0}, true, 4, true},
      // MHA, three query blocks and three key tiles, no ALiBi
      {DType::F16, 128, 1, 2, 2, 130, 0, 130, {0}, false},
      // tq = 8 after a long prefix (kend = 108: two tiles), padding past the first tile
      {DType::BF16, 64, 2, 2, 2, 112, 100, 8, {70, 0}, true},
      // only the last rows of a block see keys (padding 60 of 64 rows)
      {DType::F16, 64, 1, 1, 1, 64, 0, 64, {60}, true},
      // a block of one row whose last key opens a tile (key 64: the warp's tile skip at its edge)
      {DType::BF16, 128, 1, 2, 1, 65, 0, 65, {0}, false},
      // a prefix of exactly one tile (t0 = 64), GQA 4:1
      {DType::F16, 128, 2, 4, 1, 100, 64, 20, {0, 33}, true},
  };
  for (const EmuCase& c : cases) run(c);
}
