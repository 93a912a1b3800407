// KvCache: allocation, the mask, and attention where the cache lives (contract in
// kv_cache.hpp).
#include "runtime/backend/kv_cache.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "runtime/backend/cpu/attention_problem.hpp"
#include "runtime/backend/cpu/cpu_attention.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/trace.hpp"

namespace zinc::runtime {
namespace {

size_t layer_elems(const KvShape& s, int batch, int t_max) {
  return static_cast<size_t>(batch) * t_max * s.kv_heads * s.head_dim;
}

}  // namespace

quant::KvStorage parse_kv_quant(const std::string& name, quant::DType compute) {
  if (name == "none") return compute == quant::DType::F16 ? quant::KvStorage::F16 : quant::KvStorage::F32;
  ZINC_CHECK(name == "f16" || name == "int8" || name == "int4",
             "--kv-quant '" << name << "' is not a KV storage (none, f16, int8, int4)");
  return quant::parse_kv_storage(name);
}

KvCache::KvCache(Backend& backend, const KvShape& shape, int batch, int t_max, KvPlacement where,
                 int max_step_rows)
    : backend_(backend), shape_(shape), capacity_(batch), batch_(batch), t_max_(t_max) {
  ZINC_CHECK(batch > 0 && t_max > 0 && shape.layers > 0, "KV cache: bad shape (batch " << batch << ", t_max "
                                                                                     << t_max << ")");
  host_mask_ = backend.alloc_host(static_cast<size_t>(batch) * t_max, "KV cache key mask (host mirror)");
  if (where.on_host) {
    offload::HostKvShape hs;
    hs.layers = shape.layers;
    hs.batch = batch;
    hs.kv_heads = shape.kv_heads;
    hs.t_max = t_max;
    hs.head_dim = shape.head_dim;
    hs.group = std::min(where.group, shape.head_dim);
    host_ = std::make_unique<offload::HostKvCache>(hs, where.storage);
    const size_t rows = max_step_rows > 0 ? static_cast<size_t>(max_step_rows) : static_cast<size_t>(batch) * t_max;
    const size_t q_row = static_cast<size_t>(shape.heads) * shape.head_dim * sizeof(float);
    const size_t kv_row = static_cast<size_t>(shape.kv_heads) * shape.head_dim * sizeof(float);
    staging_[0] = backend.alloc_host(rows * q_row, "KV offload staging (queries)");
    staging_[1] = backend.alloc_host(rows * kv_row, "KV offload staging (keys)");
    staging_[2] = backend.alloc_host(rows * kv_row, "KV offload staging (values)");
    staging_[3] = backend.alloc_host(rows * q_row, "KV offload staging (outputs)");
    // A compute dtype other than fp32 arrives in its own type and is converted on the host.
    const size_t e = quant::dtype_size(backend.compute_dtype());
    if (backend.compute_dtype() != quant::DType::F32) {
      raw_[0] = backend.alloc_host(rows * q_row / sizeof(float) * e, "KV offload staging (queries, compute dtype)");
      raw_[1] = backend.alloc_host(rows * kv_row / sizeof(float) * e, "KV offload staging (keys, compute dtype)");
      raw_[2] = backend.alloc_host(rows * kv_row / sizeof(float) * e, "KV offload staging (values, compute dtype)");
      raw_[3] = backend.alloc_host(rows * q_row / sizeof(float) * e, "KV offload staging (outputs, compute dtype)");
    }
    staged_.push_back(backend.create_event());
    const size_t e_kv = kv_row / sizeof(float) * e;
    for (PrefillSlot& slot : prefill_) {
      slot.mask = backend.alloc_host(rows, "KV offload prefill staging (key mask)");
      for (int i = 0; i < 2; ++i) {
        slot.f32[i] = backend.alloc_host(rows * kv_row, "KV offload prefill staging (keys/values)");
        if (backend.compute_dtype() != quant::DType::F32)
          slot.raw[i] = backend.alloc_host(rows * e_kv, "KV offload prefill staging (keys/values, compute dtype)");
      }
      slot.ready = backend.create_event();
    }
    prefill_mask_ = backend.alloc(rows, "KV offload prefill key mask");
    // The worker runs the host KV work with the creating thread's OpenMP thread count
    // (--threads), not the process default a new thread would start from.
    const int threads = omp_get_max_threads();
    worker_ = std::make_unique<HostWorker>([threads] {
      omp_set_num_threads(threads);
      trace::name_thread("kv worker");
    });
    return;
  }
  const quant::DType t = backend.compute_dtype();
  const size_t bytes = layer_elems(shape, batch, t_max) * quant::dtype_size(t);
  for (int l = 0; l < shape.layers; ++l) {
    k_.push_back(backend.alloc(bytes, "KV cache (keys)"));
    v_.push_back(backend.alloc(bytes, "KV cache (values)"));
  }
  mask_ = backend.alloc(static_cast<size_t>(batch) * t_max, "KV cache (key mask)");
  backend_.copy_to_device(mask_.data(), host_mask_.data(), host_mask_.bytes(), backend_.compute_stream());
}

void KvCache::begin(int batch) {
  ZINC_CHECK(batch > 0 && batch <= capacity_, "KV cache: a round of " << batch << " sequences, room for "
                                                                            << capacity_);
  if (worker_) worker_->wait_all();  // the last round's stores (and their errors)
  batch_ = batch;
  std::memset(host_mask_.data(), 0, host_mask_.bytes());
  if (!host_)
    backend_.copy_to_device(mask_.data(), host_mask_.data(), host_mask_.bytes(), backend_.compute_stream());
}

void KvCache::set_mask(int t0, int cols, const uint8_t* host_mask) {
  ZINC_CHECK(t0 >= 0 && t0 + cols <= t_max_, "KV cache: positions [" << t0 << ", " << t0 + cols
                                                                     << ") exceed its capacity " << t_max_);
  uint8_t* mirror = host_mask_.as<uint8_t>();
  for (int b = 0; b < batch_; ++b)
    for (int i = 0; i < cols; ++i) mirror[static_cast<size_t>(b) * t_max_ + t0 + i] = host_mask[b * cols + i];
  if (!host_)
    backend_.copy_to_device(mask_.data(), mirror, static_cast<size_t>(batch_) * t_max_, backend_.compute_stream());
}

void KvCache::attend(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v,
                     const AttentionShape& sh, const AttentionBias& bias, float scale, const Tensor& out,
                     const Stream& s, const LaneTurn& lane) {
  ZINC_CHECK(first_seq >= 0 && first_seq + sh.batch <= batch_ && sh.t_max == t_max_,
             "KV cache: a step of sequences " << first_seq << " .. " << first_seq + sh.batch - 1 << " x "
                                              << sh.t_max << " positions over a " << batch_ << " x " << t_max_
                                              << " cache");
  if (host_) {
    if (sh.t0 == 0)
      prefill_on_host(layer, first_seq, q, k, v, sh, bias, scale, out, s);
    else
      attend_on_host(layer, first_seq, q, k, v, sh, bias, scale, out, s, lane);
    return;
  }
  const quant::DType t = backend_.compute_dtype();
  const std::initializer_list<int64_t> dims = {sh.batch, t_max_, shape_.kv_heads, shape_.head_dim};
  const size_t seq_bytes = static_cast<size_t>(t_max_) * shape_.kv_heads * shape_.head_dim * quant::dtype_size(t);
  const Tensor kc(k_[layer].bytes_ptr() + first_seq * seq_bytes, t, dims);
  const Tensor vc(v_[layer].bytes_ptr() + first_seq * seq_bytes, t, dims);
  const Tensor mask(mask_.bytes_ptr() + static_cast<size_t>(first_seq) * t_max_, quant::DType::U8, {sh.batch, t_max_});
  backend_.kv_write(k, kc, sh, s);
  backend_.kv_write(v, vc, sh, s);
  backend_.attention(q, kc, vc, mask, bias.slopes, sh, scale, out, s);
}

void KvCache::prefill_on_host(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v,
                              const AttentionShape& sh, const AttentionBias& bias, float scale, const Tensor& out,
                              const Stream& s) {
  const size_t rows = static_cast<size_t>(sh.batch) * sh.tq;
  ZINC_CHECK(rows <= prefill_[0].mask.bytes(),
             "KV offload: a prefill of " << rows << " rows exceeds the run's staging buffers");
  const uint64_t job = worker_->submitted() + 1;
  worker_->wait(job > 2 ? job - 2 : 0);  // the job that last used this slot is done
  PrefillSlot& slot = prefill_[job % 2];
  // The mask first: the slot's event (recorded after it) then covers its upload too.
  uint8_t* m = slot.mask.as<uint8_t>();
  for (int b = 0; b < sh.batch; ++b)
    std::memcpy(m + static_cast<size_t>(b) * sh.tq, host_mask_.as<uint8_t>() + static_cast<size_t>(first_seq + b) * t_max_,
                static_cast<size_t>(sh.tq));
  const Tensor mask(prefill_mask_.data(), quant::DType::U8, {sh.batch, sh.tq});
  backend_.upload(mask, m, s);
  const bool f32 = k.dtype == quant::DType::F32;
  backend_.download(f32 ? slot.f32[0].data() : slot.raw[0].data(), k, s);
  backend_.download(f32 ? slot.f32[1].data() : slot.raw[1].data(), v, s);
  slot.ready.record(s);
  AttentionShape own = sh;  // the step's k, v as a cache of exactly its tq positions
  own.t_max = sh.tq;
  const std::initializer_list<int64_t> dims = {sh.batch, sh.tq, shape_.kv_heads, shape_.head_dim};
  backend_.attention(q, k.reshaped(dims), v.reshaped(dims), mask, bias.slopes, own, scale, out, s);

  const quant::KvView kview = host_->k(layer).from_sequence(first_seq);
  const quant::KvView vview = host_->v(layer).from_sequence(first_seq);
  const quant::DType t = k.dtype;
  const size_t n = static_cast<size_t>(k.numel());
  worker_->submit([this, &slot, kview, vview, sh, t, n, f32] {
    backend_.bind_thread();
    const trace::Span span("prefill store");
    slot.ready.synchronize();
    if (!f32)
      for (int i = 0; i < 2; ++i) quant::convert(t, slot.raw[i].data(), quant::DType::F32, slot.f32[i].data(), n);
    quant::kv_store(kview, slot.f32[0].as<float>(), sh.batch, sh.tq, 0, sh.kv_heads);
    quant::kv_store(vview, slot.f32[1].as<float>(), sh.batch, sh.tq, 0, sh.kv_heads);
  });
}

void KvCache::prepare_lanes(int lanes) {
  if (!host_) return;
  max_lanes_ = std::max(max_lanes_, lanes);
  while (static_cast<int>(staged_.size()) < lanes) staged_.push_back(backend_.create_event());
}

void KvCache::attend_on_host(int layer, int first_seq, const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionShape& sh, const AttentionBias& bias, float scale, const Tensor& out,
                             const Stream& s, const LaneTurn& lane) {
  // The micro-batch's own rows of the staging: with lanes, several are in flight at once.
  const size_t r0 = static_cast<size_t>(first_seq) * sh.tq, rows = static_cast<size_t>(sh.batch) * sh.tq;
  const size_t q_width = static_cast<size_t>(shape_.heads) * shape_.head_dim;
  const size_t kv_width = static_cast<size_t>(shape_.kv_heads) * shape_.head_dim;
  ZINC_CHECK((r0 + rows) * q_width * sizeof(float) <= staging_[0].bytes(),
             "KV offload: a step of rows " << r0 << " .. " << r0 + rows - 1 << " exceeds the run's staging buffers");
  ZINC_CHECK(lane.index >= 0 && lane.index < static_cast<int>(staged_.size()),
             "KV offload: lane " << lane.index << " of " << staged_.size() << " prepared");
  const size_t first[4] = {r0 * q_width, r0 * kv_width, r0 * kv_width, r0 * q_width};
  const size_t n[4] = {static_cast<size_t>(q.numel()), static_cast<size_t>(k.numel()), static_cast<size_t>(v.numel()),
                       static_cast<size_t>(out.numel())};
  const quant::DType t = q.dtype;
  const bool f32 = t == quant::DType::F32;
  float* f[4];
  void* arrived[4];  // where q, k, v arrive and the output leaves from: f, or raw_ in the compute dtype
  for (int i = 0; i < 4; ++i) {
    f[i] = staging_[i].as<float>() + first[i];
    arrived[i] = f32 ? static_cast<void*>(f[i]) : static_cast<uint8_t*>(raw_[i].data()) + first[i] * quant::dtype_size(t);
  }
  // q, k, v to pinned host memory. The previous layer's output upload from these rows
  // was queued on `s` before them, so their arrival means it is done too.
  const Tensor* src[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i) backend_.download(arrived[i], *src[i], s);
  Event& staged = staged_[static_cast<size_t>(lane.index)];
  staged.record(s);
  const quant::KvView kview = host_->k(layer).from_sequence(first_seq);
  const quant::KvView vview = host_->v(layer).from_sequence(first_seq);
  const uint8_t* mask = host_mask_.as<uint8_t>() + static_cast<size_t>(first_seq) * t_max_;
  const CpuAttentionProblem p = cpu_attention_problem(sh, scale, f[0], f[3], mask, bias.host_slopes);
  // The host work runs on the worker, in order after any prefill stores still queued.
  const uint64_t job = worker_->submit([this, &staged, f, arrived, n, t, f32, kview, vview, sh, p] {
    backend_.bind_thread();
    const double t_begin = now_s();
    staged.synchronize();
    const double t_staged = now_s();
    if (!f32)
      for (int i = 0; i < 3; ++i) quant::convert(t, arrived[i], quant::DType::F32, f[i], n[i]);
    const double t_store = now_s();
    quant::kv_store(kview, f[1], sh.batch, sh.tq, sh.t0, sh.kv_heads);
    quant::kv_store(vview, f[2], sh.batch, sh.tq, sh.t0, sh.kv_heads);
    const double t_attend = now_s();
    cpu_attention(p, kview, vview);
    const double t_attended = now_s();
    if (!f32) quant::convert(quant::DType::F32, f[3], t, arrived[3], n[3]);
    trace::span("q/k/v wait", t_begin, t_staged);
    trace::span("convert in", t_staged, t_store);
    trace::span("kv store", t_store, t_attend);
    trace::span("attention", t_attend, t_attended);
    trace::span("convert out", t_attended, now_s());
    host_times_.wait_s += t_staged - t_begin;
    host_times_.store_s += t_attend - t_store;
    host_times_.attention_s += t_attended - t_attend;
    host_times_.cpu_s += seconds_since(t_staged);
  });
  lane.pause();  // another lane queues its GPU work while this one's runs on the host
  {
    const trace::Span span("attention wait");
    worker_->wait(job);
  }
  lane.resume();
  backend_.upload(out, arrived[3], s);
}

size_t KvCache::device_bytes(const KvShape& shape, int batch, int t_max, quant::DType t) {
  return 2 * static_cast<size_t>(shape.layers) * layer_elems(shape, batch, t_max) * quant::dtype_size(t) +
         static_cast<size_t>(batch) * t_max;
}

size_t KvCache::bytes() const {
  if (host_) return host_->bytes() + host_mask_.bytes();
  size_t n = mask_.bytes();
  for (size_t l = 0; l < k_.size(); ++l) n += k_[l].bytes() + v_[l].bytes();
  return n;
}

}  // namespace zinc::runtime
