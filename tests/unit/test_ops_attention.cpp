// Backend ops against independent references, table-driven over every backend under test: kv_write into a
// [B, t_max, KVH, hd] cache and causal attention over it (prefill, chunks after a prefix, decode; MHA, GQA,
// MQA; left padding, masks with holes, ALiBi; on CUDA each of the three kernels: decode (tq < 8), the
// tensor-core prefill kernel (F16/BF16, hd 64/128) and the rows kernel (F32, other head_dims); NaN in the
// cache rows no query may read). How the inputs, references and bounds work and how a
// backend joins the table: backend_ops_harness.hpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "backend_ops_harness.hpp"
#include "catch.hpp"
#include "quant/dtype.hpp"
#include "runtime/backend/backend.hpp"

using namespace zinc;
using namespace zinc::test::ops;
using quant::DType;
using runtime::Backend;
using runtime::Tensor;

// ---- kv_write + attention -------------------------------------------------------------------------------

namespace {

struct AttnCase {
  int batch, heads, kv_heads, head_dim, t_max;
  int t0, tq;             // t0 > 0: the cache already holds keys 0 .. t0-1 (written first with kv_write)
  std::vector<int> pads;  // left padding of each sequence (masked keys 0 .. pad-1)
  bool alibi;
  int hole = 0;            // > 0: sequence 0 also masks every hole-th key (a mask that is not a prefix)
  bool dead_last = false;  // the last sequence has no real key at all (its queries output zeros)
  bool nan_cache = false;  // the caches start as NaN and masked keys are written as NaN (never to be read)
  Bound f32 = {1e-5, 1e-5};
};

std::string describe(const AttnCase& c) {
  std::ostringstream o;
  o << "attention B=" << c.batch << " H=" << c.heads << " KVH=" << c.kv_heads << " hd=" << c.head_dim
    << " t_max=" << c.t_max << " t0=" << c.t0 << " tq=" << c.tq << " pads={";
  for (size_t i = 0; i < c.pads.size(); ++i) o << (i ? "," : "") << c.pads[i];
  o << "}" << (c.alibi ? " alibi" : "") << (c.hole ? " holes" : "") << (c.dead_last ? " dead-last" : "")
    << (c.nan_cache ? " nan-cache" : "");
  return o.str();
}

}  // namespace

TEST_CASE("backend ops: kv_write and causal attention over a [B, t_max, KVH, hd] cache", "[ops]") {
  const AttnCase cases[] = {
      // prefill (t0 = 0, tq > 1)
      {1, 1, 1, 24, 8, 0, 5, {0}, false},
      {2, 4, 4, 64, 16, 0, 7, {0, 3}, true},        // MHA, left padding: seq 1's first queries see no key
      {3, 8, 2, 64, 33, 0, 13, {2, 0, 5}, false},   // GQA
      {2, 3, 1, 128, 20, 0, 9, {4, 1}, true},       // MQA
      {3, 8, 2, 128, 64, 0, 31, {0, 7, 30}, true},  // GQA, only the last query of seq 2 sees a key
      {1, 8, 1, 24, 12, 0, 12, {0}, false},         // MQA, the cache full
      {2, 4, 2, 24, 10, 0, 8, {0, 2}, true, 3},     // mask with holes
      {2, 8, 2, 64, 32, 6, 5, {0, 3}, true},        // a chunk after a prefix (t0 > 0, tq > 1)
      // prefill on the tensor-core kernel (F16/BF16, hd 64/128, tq >= 8; the rows kernel on F32): query
      // blocks of 64 rows, key tiles of 64, T not a multiple of either; NaN in every cache row not to be read
      {2, 8, 2, 64, 80, 0, 77, {0, 13}, true, 0, false, true},             // GQA, left padding, ALiBi
      {2, 4, 1, 128, 140, 0, 130, {5, 0}, false, 0, false, true},          // MQA, 3 query blocks, 3 tiles
      {3, 8, 2, 128, 160, 20, 77, {0, 9, 0}, true, 5, true, true},         // after a prefix, holes, dead seq
      {2, 4, 4, 64, 100, 64, 16, {0, 70}, true, 0, false, true},           // t0 = one tile, seq 1 padded past it
      {1, 8, 8, 128, 300, 0, 257, {0}, true},                              // MHA, 5 query blocks
      {2, 8, 2, 128, 72, 0, 65, {0, 64}, false, 0, false, true},           // a one-row block; seq 1: 1 real key
      // decode (tq = 1, t0 > 0)
      {1, 4, 4, 24, 16, 9, 1, {0}, false},
      {3, 8, 2, 64, 40, 23, 1, {0, 5, 22}, true},
      {2, 3, 1, 128, 64, 63, 1, {10, 0}, true},             // the last cache slot
      {3, 2, 2, 128, 24, 7, 1, {0, 2, 0}, false, 0, true},  // seq 2 without any real key
      {2, 8, 2, 24, 17, 11, 1, {3, 0}, true, 4},
  };
  for_each_backend("kv_write + attention", [&](Backend& be) {
    for (const AttnCase& c : cases) {
      INFO(describe(c));
      REQUIRE(static_cast<int>(c.pads.size()) == c.batch);
      Rig rig(be);
      const int B = c.batch, H = c.heads, KVH = c.kv_heads, hd = c.head_dim, T = c.t0 + c.tq;
      const int64_t kv_row = static_cast<int64_t>(KVH) * hd, q_row = static_cast<int64_t>(H) * hd;
      const uint32_t seed = static_cast<uint32_t>(101 + B * 7 + H * 5 + hd + c.t_max + c.t0);
      // The keys and values of positions 0 .. T-1 of every sequence, [B, T, KVH*hd].
      auto k_all = randn(static_cast<size_t>(B) * T * kv_row, seed + 1);
      auto v_all = randn(k_all.size(), seed + 2);
      auto q = randn(static_cast<size_t>(B) * c.tq * q_row, seed + 3);
      std::vector<uint8_t> mask(static_cast<size_t>(B) * c.t_max, 0);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < T; ++j) {
          bool real = j >= c.pads[b];
          if (c.hole > 0 && b == 0 && j % c.hole == c.hole - 1) real = false;
          if (c.dead_last && b == B - 1) real = false;
          mask[static_cast<size_t>(b) * c.t_max + j] = real;
          if (!real && c.nan_cache) {
            std::fill_n(k_all.begin() + (static_cast<size_t>(b) * T + j) * kv_row, kv_row, nan);
            std::fill_n(v_all.begin() + (static_cast<size_t>(b) * T + j) * kv_row, kv_row, nan);
          }
        }
      round_to(rig.dtype(), k_all);
      round_to(rig.dtype(), v_all);
      std::vector<float> slopes(static_cast<size_t>(H));
      for (int h = 0; h < H; ++h) slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / H);  // BLOOM's slopes

      // Caches start as the sentinel (or NaN); kv_write fills positions 0 .. T-1 in one or two steps.
      std::vector<float> sentinel;
      Tensor kc, vc;
      if (c.nan_cache) {
        sentinel.assign(static_cast<size_t>(B) * c.t_max * kv_row, nan);
        std::vector<float> k0 = sentinel, v0 = sentinel;
        kc = rig.input(k0, {B, c.t_max, KVH, hd});
        vc = rig.input(v0, {B, c.t_max, KVH, hd});
        round_to(rig.dtype(), sentinel);
      } else {
        kc = rig.sentinel({B, c.t_max, KVH, hd}, &sentinel);
        vc = rig.sentinel({B, c.t_max, KVH, hd});
      }
      auto write_step = [&](int t0, int tq) {
        std::vector<float> ks(static_cast<size_t>(B) * tq * kv_row), vs(ks.size());
        for (int b = 0; b < B; ++b)
          for (int i = 0; i < tq; ++i) {
            const size_t src = (static_cast<size_t>(b) * T + t0 + i) * kv_row,
                         dst = (static_cast<size_t>(b) * tq + i) * kv_row;
            std::copy_n(k_all.begin() + src, kv_row, ks.begin() + dst);
            std::copy_n(v_all.begin() + src, kv_row, vs.begin() + dst);
          }
        runtime::AttentionShape ws{B, tq, t0, c.t_max, H, KVH, hd};
        be.kv_write(rig.input(ks, {B * tq, kv_row}), kc, ws, rig.stream());
        be.kv_write(rig.input(vs, {B * tq, kv_row}), vc, ws, rig.stream());
      };
      if (c.t0 > 0) write_step(0, c.t0);
      write_step(c.t0, c.tq);

      {  // kv_write: positions 0 .. T-1 hold the keys and values, the rest is untouched
        std::vector<float> k_ref(sentinel), v_ref(sentinel);
        for (int b = 0; b < B; ++b)
          for (int t = 0; t < T; ++t) {
            const size_t src = (static_cast<size_t>(b) * T + t) * kv_row,
                         dst = (static_cast<size_t>(b) * c.t_max + t) * kv_row;
            std::copy_n(k_all.begin() + src, kv_row, k_ref.begin() + dst);
            std::copy_n(v_all.begin() + src, kv_row, v_ref.begin() + dst);
          }
        {
          INFO("kv_write: key cache");
          expect_bits(rig.read(kc), k_ref);
        }
        INFO("kv_write: value cache");
        expect_bits(rig.read(vc), v_ref);
      }

      runtime::AttentionShape sh{B, c.tq, c.t0, c.t_max, H, KVH, hd};
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      Tensor t_q = rig.input(q, {B * c.tq, q_row});
      Tensor tmask = rig.raw(DType::U8, mask, {B, c.t_max});
      Tensor tslopes = c.alibi ? rig.raw(DType::F32, slopes, {H}) : Tensor();
      Tensor out = rig.sentinel({B * c.tq, q_row});
      be.attention(t_q, kc, vc, tmask, tslopes, sh, scale, out, rig.stream());

      std::vector<double> ref(static_cast<size_t>(B) * c.tq * q_row, 0.0);
      int no_key_queries = 0;
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < c.tq; ++i)
          for (int h = 0; h < H; ++h) {
            const int kvh = h / (H / KVH);
            const float* qv =
                q.data() + (static_cast<size_t>(b) * c.tq + i) * q_row + static_cast<size_t>(h) * hd;
            std::vector<double> s;
            std::vector<int> keys;
            int real_before = 0;  // ALiBi position: real keys of sequence b before j
            for (int j = 0; j <= c.t0 + i; ++j) {
              if (!mask[static_cast<size_t>(b) * c.t_max + j]) continue;
              const float* kv =
                  k_all.data() + (static_cast<size_t>(b) * T + j) * kv_row + static_cast<size_t>(kvh) * hd;
              double dot = 0;
              for (int d = 0; d < hd; ++d) dot += static_cast<double>(qv[d]) * kv[d];
              s.push_back(dot * scale + (c.alibi ? static_cast<double>(slopes[h]) * real_before : 0.0));
              keys.push_back(j);
              ++real_before;
            }
            if (keys.empty()) {
              if (h == 0) ++no_key_queries;
              continue;  // outputs zeros
            }
            const double mx = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (double& x : s) sum += (x = std::exp(x - mx));
            double* o =
                ref.data() + (static_cast<size_t>(b) * c.tq + i) * q_row + static_cast<size_t>(h) * hd;
            for (size_t t = 0; t < keys.size(); ++t) {
              const float* vv = v_all.data() + (static_cast<size_t>(b) * T + keys[t]) * kv_row +
                                static_cast<size_t>(kvh) * hd;
              for (int d = 0; d < hd; ++d) o[d] += s[t] / sum * vv[d];
            }
          }
      INFO("attention output (" << no_key_queries << " queries see no key)");
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32));
    }
  });
}
