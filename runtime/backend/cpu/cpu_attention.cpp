// cpu_attention: checks, the work split, one work item (visible keys, scores, softmax,
// weighted values) and the merge of key chunks. The choice of inner loops is in
// cpu_attention_isa.cpp, the loops in cpu_attention_avx512*.cpp / cpu_attention_avx2*.cpp /
// cpu_attention_scalar.cpp; the contract is in cpu_attention.hpp.
#include "runtime/backend/cpu/cpu_attention.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/backend/cpu/cpu_attention_kernels.hpp"
#include "runtime/backend/cpu/cpu_attention_rows.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime {
namespace {

using detail::AttentionKernels;
using detail::kernels_for;

// Keys are split into chunks only while there are fewer than kMinItems work items (so
// decode of a small batch still fills up to 64 cores), and no chunk is shorter than
// kMinChunkKeys keys (the merge is then a small fraction of the work).
constexpr int64_t kMinItems = 64;
constexpr int kMinChunkKeys = 256;
constexpr int64_t kSchedChunk = 8;  // see cpu_attention()

// The kernels read a work item's keys in blocks of eight rows. Taken in cache order, the
// eight rows of a block lie next to each other (one 4 KiB span for f32 at hd 128), and a
// core whose loops do more than stream (grouped-query heads, unpacking codes) then keeps
// too few misses in flight: the hardware prefetchers follow one sequential stream per
// region far better than several interleaved in one. So the visible keys are dealt into
// kStreams sequential streams, block t holding the t-th key of each (measured on one core
// of the development VM, f32 rows with 32 FMAs per 64 bytes: 107 ns per row with the
// eight rows adjacent, 63 ns from eight separate streams, 45-52 ns for one row after
// another). Only for rows of >= 256 bytes of codes (f32, f16 at hd >= 128): shorter rows
// make a block one short sequential run already, and 16 streams (codes and params) of
// int8 / int4 rows measured 10-15% slower. The order depends on the storages and the
// number of visible keys only, so results still do not depend on the thread count;
// softmax and the weighted sum just add in this order.
constexpr int kStreams = 8;
constexpr size_t kStreamsMinRowBytes = 256;

struct Plan {
  int chunks = 1;     // key chunks per (sequence, query, kv head)
  int chunk_len = 0;  // keys per chunk (a multiple of 16)
  int64_t items = 0;  // B * tq * KVH * chunks
  int group = 1;      // query heads per kv head
  bool streams = false;  // deal the keys into kStreams streams (see kStreams)
};

// From the shapes only, so that results never depend on the thread count.
Plan make_plan(const CpuAttentionProblem& p, const quant::KvView& k, const quant::KvView& v) {
  Plan plan;
  const int n_keys = p.t0 + p.tq;
  const int64_t units = static_cast<int64_t>(p.batch) * p.tq * p.kv_heads;
  int64_t chunks = 1;
  if (units < kMinItems) {
    chunks = std::min<int64_t>((kMinItems + units - 1) / units,
                               (n_keys + kMinChunkKeys - 1) / kMinChunkKeys);
    chunks = std::max<int64_t>(chunks, 1);
  }
  plan.chunk_len = static_cast<int>((n_keys + chunks - 1) / chunks + 15) / 16 * 16;
  plan.chunks = (n_keys + plan.chunk_len - 1) / plan.chunk_len;
  plan.items = units * plan.chunks;
  plan.group = p.heads / p.kv_heads;
  plan.streams = std::max(quant::kv_row_code_bytes(k.storage, k.head_dim),
                          quant::kv_row_code_bytes(v.storage, v.head_dim)) >= kStreamsMinRowBytes;
  return plan;
}

// Per-thread scratch, sized for the plan once per call.
struct Workspace {
  int stride = 0;                     // scores row length: chunk_len rounded up to 16
  std::vector<int64_t> krows, vrows;  // visible keys' rows in K and V
  std::vector<float> pos;             // ALiBi position of each visible key
  std::vector<int> keys;              // visible keys, in cache order
  std::vector<float> key_alibi;       // their ALiBi positions, in cache order
  std::vector<float> scores;          // [group, stride]: dots, then scores, then exp weights
  std::vector<float> q, qsum;         // [group, hd] kernel order; [group, hd / G_k]
  std::vector<float> acc, msum;       // [group, hd] kernel order; [group, hd / G_v]
  std::vector<float> row;             // [hd] natural order
  std::vector<float> tmp;             // the kernels' scratch
  std::vector<float> mx, sum;         // [group]

  Workspace(const Plan& plan, int hd, int kgroups, int vgroups) {
    stride = (plan.chunk_len + 15) / 16 * 16;
    krows.resize(plan.chunk_len);
    vrows.resize(plan.chunk_len);
    pos.resize(plan.chunk_len);
    keys.resize(plan.chunk_len);
    key_alibi.resize(plan.chunk_len);
    scores.resize(static_cast<size_t>(plan.group) * stride);
    q.resize(static_cast<size_t>(plan.group) * hd);
    qsum.resize(static_cast<size_t>(plan.group) * std::max(kgroups, 1));
    acc.resize(static_cast<size_t>(plan.group) * hd);
    msum.resize(static_cast<size_t>(plan.group) * std::max(vgroups, 1));
    row.resize(hd);
    tmp.resize(static_cast<size_t>(detail::kernel_tmp_floats(hd, plan.group)));
    mx.resize(plan.group);
    sum.resize(plan.group);
  }
};

// Kernel order <-> natural order of one head (see cpu_attention_kernels.hpp): nibble
// blocks of `block` elements, 0 = natural order.
void to_kernel_order(const float* x, int hd, int block, float* out) {
  if (block == 0) {
    std::memcpy(out, x, sizeof(float) * hd);
    return;
  }
  const int half = block / 2;
  for (int b = 0; b < hd; b += block)
    for (int t = 0; t < half; ++t) {
      out[b + t] = x[b + 2 * t];
      out[b + half + t] = x[b + 2 * t + 1];
    }
}

void from_kernel_order(const float* x, int hd, int block, float* out) {
  if (block == 0) {
    std::memcpy(out, x, sizeof(float) * hd);
    return;
  }
  const int half = block / 2;
  for (int b = 0; b < hd; b += block)
    for (int t = 0; t < half; ++t) {
      out[b + 2 * t] = x[b + t];
      out[b + 2 * t + 1] = x[b + half + t];
    }
}

struct Context {
  const CpuAttentionProblem& p;
  const quant::KvView& k;
  const quant::KvView& v;
  const AttentionKernels& kk;  // K's inner loops
  const AttentionKernels& vk;  // V's inner loops
  const Plan& plan;
  int64_t sched_chunk;  // items per scheduling chunk (consecutive items on one thread)
  float* partial;  // chunks > 1: [items, group, hd + 2] = {max, sum, acc[hd]}
};

// The first keys of item `next` (its chunk's first positions; a hint: masked keys too).
void prefetch_item_keys(const Context& cx, int64_t next) {
  const int64_t unit = next / cx.plan.chunks, bi = unit / cx.p.kv_heads;
  const int kvh = static_cast<int>(unit % cx.p.kv_heads), b = static_cast<int>(bi / cx.p.tq);
  const int jb = static_cast<int>(next % cx.plan.chunks) * cx.plan.chunk_len;
  detail::rows::prefetch_start(cx.k, cx.k.row(b, kvh, jb), cx.k.pos_stride,
                               std::min(cx.plan.chunk_len, cx.p.t0 + cx.p.tq - jb));
}

// One work item: query i of sequence b, kv head kvh, key chunk c.
void run_item(const Context& cx, int64_t item, Workspace& ws) {
  const CpuAttentionProblem& p = cx.p;
  const Plan& plan = cx.plan;
  const int hd = p.head_dim, group = plan.group;
  const int c = static_cast<int>(item % plan.chunks);
  const int64_t unit = item / plan.chunks;
  const int kvh = static_cast<int>(unit % p.kv_heads);
  const int64_t bi = unit / p.kv_heads;  // b * tq + i
  const int b = static_cast<int>(bi / p.tq), i = static_cast<int>(bi % p.tq);

  // The visible keys of this chunk, and their ALiBi positions.
  const uint8_t* mask = p.key_mask + b * p.mask_stride;
  const int jb = c * plan.chunk_len;
  const int je = std::min(jb + plan.chunk_len, p.t0 + i + 1);
  int n = 0;
  int key_pos = 0;
  if (p.alibi_slopes != nullptr)
    for (int j = 0; j < std::min(jb, je); ++j) key_pos += mask[j] != 0;
  const int64_t k0 = cx.k.row(b, kvh, 0), kstep = cx.k.pos_stride;  // locals: no reloads
  const int64_t v0 = cx.v.row(b, kvh, 0), vstep = cx.v.pos_stride;
  int* keys = ws.keys.data();
  float* key_alibi = ws.key_alibi.data();
  const bool alibi = p.alibi_slopes != nullptr;
  if (je > jb && std::memchr(mask + jb, 0, je - jb) == nullptr) {  // all visible: no branches
    n = je - jb;
    for (int t = 0; t < n; ++t) keys[t] = jb + t;
    if (alibi)
      for (int t = 0; t < n; ++t) key_alibi[t] = static_cast<float>(key_pos + t);
  } else {
    for (int j = jb; j < je; ++j) {
      if (!mask[j]) continue;
      keys[n] = j;
      key_alibi[n++] = static_cast<float>(key_pos++);
    }
  }
  // The kernels' order of the visible keys (see kStreams): list entry kStreams * t + s is
  // key s * m + t, m = n / kStreams; the last n % kStreams keys follow in order.
  int64_t* krows = ws.krows.data();
  int64_t* vrows = ws.vrows.data();
  float* pos = ws.pos.data();
  const int m = plan.streams ? n / kStreams : 0;
  if (m == 0 && n > 0 && keys[n - 1] - keys[0] == n - 1) {  // keys[0] + 0, 1, ..., n - 1
    int64_t kr = k0 + keys[0] * kstep, vr = v0 + keys[0] * vstep;
    for (int e = 0; e < n; ++e, kr += kstep, vr += vstep) {
      krows[e] = kr;
      vrows[e] = vr;
    }
  } else {
    for (int e = 0; e < n; ++e) {
      const int src = e < kStreams * m ? (e % kStreams) * m + e / kStreams : e;
      krows[e] = k0 + keys[src] * kstep;
      vrows[e] = v0 + keys[src] * vstep;
    }
  }
  if (alibi)  // (the softmax reads positions only with ALiBi)
    for (int e = 0; e < n; ++e)
      pos[e] = key_alibi[e < kStreams * m ? (e % kStreams) * m + e / kStreams : e];

  const int64_t q_row = static_cast<int64_t>(p.heads) * hd;
  float* part = cx.partial != nullptr ? cx.partial + item * group * (hd + 2) : nullptr;
  if (n == 0) {  // no visible key in this chunk (or at all: a padding query sees nothing)
    for (int g = 0; g < group; ++g) {
      if (part != nullptr) {
        float* pg = part + g * (hd + 2);
        pg[0] = -INFINITY;
        std::fill(pg + 1, pg + hd + 2, 0.0f);
      } else {
        std::fill_n(p.out + bi * q_row + static_cast<int64_t>(kvh * group + g) * hd, hd, 0.0f);
      }
    }
    return;
  }

  // Queries of the group's heads, in K's kernel order, and (for the loops that use them)
  // their sums per K quant group, in eight lanes (no serial chain of adds).
  const int kgroups = cx.k.groups(), vgroups = cx.v.groups();
  for (int g = 0; g < group; ++g) {
    const float* qh = p.q + bi * q_row + static_cast<int64_t>(kvh * group + g) * hd;
    to_kernel_order(qh, hd, cx.kk.nibble_block, ws.q.data() + g * hd);
    for (int cg = 0; cx.kk.uses_qsum && cg < kgroups; ++cg) {
      float lane[8] = {};
      const float* x = qh + cg * cx.k.group;
      int e = 0;
      for (; e + 8 <= cx.k.group; e += 8)
        for (int l = 0; l < 8; ++l) lane[l] += x[e + l];
      for (; e < cx.k.group; ++e) lane[0] += x[e];
      ws.qsum[g * kgroups + cg] =
          ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    }
  }

  // Scores, then softmax weights (unnormalised) in place.
  float* scores = ws.scores.data();
  // int8 / int4: the rows the loops' prefetch does not reach (prefetch_start), this item's
  // first values while the keys run, the next item's first keys (when it runs on this
  // thread) while the values run; at 528 keys (OPT-30B decode) a stream is 33 blocks.
  if (quant::kv_storage_quantized(cx.v.storage))
    detail::rows::prefetch_start(cx.v, v0 + keys[0] * vstep, vstep, n);
  cx.kk.k_scores(cx.k, ws.krows.data(), n, ws.q.data(), ws.qsum.data(), group, scores, ws.stride,
                 ws.tmp.data());
  for (int g = 0; g < group; ++g) {
    const float slope = p.alibi_slopes != nullptr ? p.alibi_slopes[kvh * group + g] : 0.0f;
    float* sg = scores + static_cast<int64_t>(g) * ws.stride;
    ws.sum[g] = cx.kk.softmax(sg, ws.pos.data(), n, p.scale, slope, &ws.mx[g]);
  }

  // Weighted values.
  std::fill(ws.acc.begin(), ws.acc.end(), 0.0f);
  std::fill(ws.msum.begin(), ws.msum.end(), 0.0f);
  if (quant::kv_storage_quantized(cx.k.storage) && (item + 1) % cx.sched_chunk != 0 &&
      item + 1 < plan.items)
    prefetch_item_keys(cx, item + 1);
  cx.vk.v_accumulate(cx.v, ws.vrows.data(), n, scores, ws.stride, group, ws.acc.data(),
                     ws.msum.data(), ws.tmp.data());
  for (int g = 0; g < group; ++g) {
    float* ag = ws.acc.data() + g * hd;
    for (int cg = 0; cg < vgroups; ++cg) {
      const float m = ws.msum[g * vgroups + cg];
      for (int e = 0; e < cx.v.group; ++e) ag[cg * cx.v.group + e] += m;
    }
    if (part != nullptr) {
      float* pg = part + g * (hd + 2);
      pg[0] = ws.mx[g];
      pg[1] = ws.sum[g];
      from_kernel_order(ag, hd, cx.vk.nibble_block, pg + 2);
    } else {
      float* o = p.out + bi * q_row + static_cast<int64_t>(kvh * group + g) * hd;
      from_kernel_order(ag, hd, cx.vk.nibble_block, ws.row.data());
      const float inv = 1.0f / ws.sum[g];
      for (int d = 0; d < hd; ++d) o[d] = ws.row[d] * inv;
    }
  }
}

// out of (b, i, h) from its chunks, in chunk order.
void merge_chunks(const CpuAttentionProblem& p, const Plan& plan, const float* partial) {
  const int hd = p.head_dim;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.tq * p.heads;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int h = static_cast<int>(r % p.heads);
    const int64_t bi = r / p.heads;
    const int kvh = h / plan.group, g = h % plan.group;
    const int64_t unit = bi * p.kv_heads + kvh;
    auto chunk = [&](int c) {
      return partial + ((unit * plan.chunks + c) * plan.group + g) * (hd + 2);
    };
    float mx = -INFINITY;
    for (int c = 0; c < plan.chunks; ++c) mx = std::max(mx, chunk(c)[0]);
    float* o = p.out + bi * p.heads * hd + static_cast<int64_t>(h) * hd;
    std::fill_n(o, hd, 0.0f);
    if (mx == -INFINITY) continue;  // no visible key at all
    float sum = 0.0f;
    for (int c = 0; c < plan.chunks; ++c) {
      const float* pc = chunk(c);
      if (pc[0] == -INFINITY) continue;
      const float w = std::exp(pc[0] - mx);
      sum += w * pc[1];
      for (int d = 0; d < hd; ++d) o[d] += w * pc[2 + d];
    }
    const float inv = 1.0f / sum;
    for (int d = 0; d < hd; ++d) o[d] *= inv;
  }
}

void check_problem(const CpuAttentionProblem& p, const quant::KvView& k, const quant::KvView& v) {
  ZINC_CHECK(
      p.batch >= 0 && p.tq >= 0 && p.t0 >= 0 && p.heads > 0 && p.kv_heads > 0 && p.head_dim > 0,
      "cpu_attention: bad shape (batch " << p.batch << ", tq " << p.tq << ", t0 " << p.t0
                                         << ", heads " << p.heads << ", kv_heads " << p.kv_heads
                                         << ", head_dim " << p.head_dim << ")");
  ZINC_CHECK(p.heads % p.kv_heads == 0, "cpu_attention: " << p.heads << " query heads are not a "
                                                          << "multiple of " << p.kv_heads
                                                          << " kv heads");
  quant::check_kv_view(k, "cpu_attention keys");
  quant::check_kv_view(v, "cpu_attention values");
  ZINC_CHECK(k.head_dim == p.head_dim && v.head_dim == p.head_dim,
             "cpu_attention: head_dim " << p.head_dim << " but the K / V views hold rows of "
                                        << k.head_dim << " / " << v.head_dim);
  const int n_keys = p.t0 + p.tq;
  ZINC_CHECK(n_keys <= k.t_max && n_keys <= v.t_max && n_keys <= p.mask_stride,
             "cpu_attention: keys 0.." << n_keys - 1 << " exceed the cache (t_max " << k.t_max
                                       << " / " << v.t_max << ", mask stride " << p.mask_stride
                                       << ")");
  ZINC_CHECK(p.q != nullptr && p.out != nullptr && p.key_mask != nullptr,
             "cpu_attention: q, out and key_mask must not be null");
  ZINC_CHECK(p.q != p.out, "cpu_attention: out must not alias q");
}

}  // namespace

void cpu_attention(const CpuAttentionProblem& p, const quant::KvView& k, const quant::KvView& v) {
  check_problem(p, k, v);
  if (p.batch == 0 || p.tq == 0) return;
  const Plan plan = make_plan(p, k, v);
  const AttentionKernels kk = kernels_for(k, p.isa, true), vk = kernels_for(v, p.isa, false);
  std::vector<float> partial;
  if (plan.chunks > 1)
    partial.resize(static_cast<size_t>(plan.items) * plan.group * (p.head_dim + 2));
  // Chunks of up to kSchedChunk consecutive items per thread (their streams continue from
  // one item to the next, and prefetch_item_keys knows the next one), while there are at
  // least 8 chunks per thread (the balance of dynamic scheduling). Results do not depend
  // on it: items are independent.
  const int64_t sched_chunk =
      std::clamp<int64_t>(plan.items / (8 * static_cast<int64_t>(omp_get_max_threads())), 1,
                          kSchedChunk);
  const Context cx{p, k, v, kk, vk, plan, sched_chunk,
                   partial.empty() ? nullptr : partial.data()};
#pragma omp parallel if (plan.items > 1)
  {
    Workspace ws(plan, p.head_dim, k.groups(), v.groups());
#pragma omp for schedule(dynamic, sched_chunk)
    for (int64_t item = 0; item < plan.items; ++item) run_item(cx, item, ws);
  }
  if (plan.chunks > 1) merge_chunks(p, plan, partial.data());
}

}  // namespace zinc::runtime
