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

namespace {

using zinc::quant::DType;
namespace mma = zinc::runtime::cuda::attn::mma;

// ---- a block of fibers ------------------------------------------------------------------------------------

// What a lane brings to a warp primitive.
struct Slot {
  int op = 0;  // which primitive (all 32 lanes must agree)
  const uint16_t* p = nullptr;
  uint32_t a[4] = {}, b[2] = {};
  float c[4] = {};
  float f = 0;
  bool pred = false;
};

struct Copy {
  void* dst;
  const void* src;  // nullptr: zero fill
};

class Block {
 public:
  static constexpr int kThreads = mma::kThreads;
  static constexpr size_t kStack = 256 * 1024;

  Block() : stacks_(new char[kStack * kThreads]) {}

  // Runs body(tid) on kThreads fibers until all return; throws on a deadlock or a lane's error.
  void run(const std::function<void(int)>& body) {
    body_ = &body;
    for (int i = 0; i < kThreads; ++i) {
      done_[i] = false;
      pending_[i].clear();
      open_[i].clear();
      getcontext(&ctx_[i]);
      ctx_[i].uc_stack.ss_sp = stacks_.get() + kStack * i;
      ctx_[i].uc_stack.ss_size = kStack;
      ctx_[i].uc_link = &main_;
      makecontext(&ctx_[i], reinterpret_cast<void (*)()>(&Block::entry), 1, i);
    }
    for (auto& w : warps_) w.arrived = 0;
    block_arrived_ = 0;
    error_.clear();
    current() = this;
    int finished = 0;
    while (finished < kThreads) {
      const uint64_t before = events_;
      for (int i = 0; i < kThreads; ++i) {
        if (done_[i]) continue;
        cur_ = i;
        swapcontext(&main_, &ctx_[i]);
        if (done_[i]) ++finished;
      }
      if (!error_.empty()) throw std::runtime_error(error_);
      if (finished < kThreads && events_ == before)
        throw std::runtime_error("deadlock: a warp primitive or barrier not reached by every thread");
    }
  }

  static Block*& current() {
    static Block* b = nullptr;
    return b;
  }
  int tid() const { return cur_; }
  int lane() const { return cur_ % 32; }

  // A warp primitive: every lane deposits `in`, then each computes its result from all 32 slots.
  template <typename F>
  auto warp_op(const Slot& in, F&& result) {
    Warp& w = warps_[cur_ / 32];
    w.slots[lane()] = in;
    rendezvous(w.arrived, w.gen, 32);
    for (int l = 0; l < 32; ++l)
      if (w.slots[l].op != in.op) fail("lanes of one warp reached different primitives");
    auto r = result(w.slots, lane());
    rendezvous(w.arrived, w.gen, 32);  // no lane overwrites its slot before all have read
    return r;
  }
  void block_barrier() { rendezvous(block_arrived_, block_gen_, kThreads); }

  // cp.async: queued per thread; lands at the wait_group that covers its group.
  void cp_async(void* dst, const void* src) { open_[cur_].push_back({dst, src}); }
  void commit() {
    pending_[cur_].push_back(open_[cur_]);
    open_[cur_].clear();
  }
  void wait_group(size_t n) {
    auto& g = pending_[cur_];
    while (g.size() > n) {
      for (const Copy& c : g.front()) {
        if (c.src != nullptr)
          std::memcpy(c.dst, c.src, 16);
        else
          std::memset(c.dst, 0, 16);
      }
      g.erase(g.begin());
    }
  }

  void fail(const std::string& what) {
    if (error_.empty()) error_ = "thread " + std::to_string(cur_) + ": " + what;
    throw std::runtime_error(error_);
  }

 private:
  struct Warp {
    Slot slots[32];
    int arrived = 0;
    uint64_t gen = 0;
  };

  static void entry(int i) {
    Block& b = *current();
    try {
      (*b.body_)(i);
    } catch (const std::exception& e) {
      if (b.error_.empty()) b.error_ = std::string("thread ") + std::to_string(i) + ": " + e.what();
    }
    b.done_[i] = true;
    ++b.events_;
    // returns to main_ through uc_link
  }

  void yield() { swapcontext(&ctx_[cur_], &main_); }

  void rendezvous(int& arrived, uint64_t& gen, int n) {
    ++events_;
    const uint64_t my = gen;
    if (++arrived == n) {
      arrived = 0;
      ++gen;
      return;
    }
    while (gen == my) {
      yield();
      if (!error_.empty()) throw std::runtime_error("aborted");
    }
  }

  std::unique_ptr<char[]> stacks_;
  ucontext_t main_{};
  ucontext_t ctx_[kThreads]{};
  bool done_[kThreads] = {};
  int cur_ = 0;
  uint64_t events_ = 0;
  Warp warps_[mma::kWarps];
  int block_arrived_ = 0;
  uint64_t block_gen_ = 0;
  std::vector<std::vector<Copy>> pending_[kThreads];
  std::vector<Copy> open_[kThreads];
  const std::function<void(int)>* body_ = nullptr;
  std::string error_;
};

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
