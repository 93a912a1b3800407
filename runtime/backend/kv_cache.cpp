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
    // q, k, v and the outputs stay in the compute dtype on the host: the attention and the
    // store read it and the attention writes it (no conversion pass, no fp32 copy).
    const size_t e = quant::dtype_size(backend.compute_dtype());
    const size_t q_row = static_cast<size_t>(shape.heads) * shape.head_dim * e;
    const size_t kv_row = static_cast<size_t>(shape.kv_heads) * shape.head_dim * e;
    staging_[0] = backend.alloc_host(rows * q_row, "KV offload staging (queries)");
    staging_[1] = backend.alloc_host(rows * kv_row, "KV offload staging (keys)");
    staging_[2] = backend.alloc_host(rows * kv_row, "KV offload staging (values)");
    staging_[3] = backend.alloc_host(rows * q_row, "KV offload staging (outputs)");
    staged_.push_back(backend.create_event());
    for (PrefillSlot& slot : prefill_) {
      slot.mask = backend.alloc_host(rows, "KV offload prefill staging (key mask)");
      for (int i = 0; i < 2; ++i) slot.kv[i] = backend.alloc_host(rows * kv_row, "KV offload prefill staging (keys/values)");
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
  backend_.download(slot.kv[0].data(), k, s);
  backend_.download(slot.kv[1].data(), v, s);
  slot.ready.record(s);
  AttentionShape own = sh;  // the step's k, v as a cache of exactly its tq positions
  own.t_max = sh.tq;
  const std::initializer_list<int64_t> dims = {sh.batch, sh.tq, shape_.kv_heads, shape_.head_dim};
  backend_.attention(q, k.reshaped(dims), v.reshaped(dims), mask, bias.slopes, own, scale, out, s);

  const quant::KvView kview = host_->k(layer).from_sequence(first_seq);
  const quant::KvView vview = host_->v(layer).from_sequence(first_seq);
  const quant::DType t = k.dtype;
  worker_->submit([this, &slot, kview, vview, sh, t] {
    backend_.bind_thread();
    const trace::Span span("prefill store");
    slot.ready.synchronize();
    quant::kv_store(kview, t, slot.kv[0].data(), sh.batch, sh.tq, 0, sh.kv_heads);
    quant::kv_store(vview, t, slot.kv[1].data(), sh.batch, sh.tq, 0, sh.kv_heads);
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
  ZINC_CHECK((r0 + rows) * q_width * quant::dtype_size(q.dtype) <= staging_[0].bytes(),
             "KV offload: a step of rows " << r0 << " .. " << r0 + rows - 1 << " exceeds the run's staging buffers");
  ZINC_CHECK(lane.index >= 0 && lane.index < static_cast<int>(staged_.size()),
             "KV offload: lane " << lane.index << " of " << staged_.size() << " prepared");
  const size_t first[4] = {r0 * q_width, r0 * kv_width, r0 * kv_width, r0 * q_width};
  const quant::DType t = q.dtype;
  void* rows_at[4];  // this micro-batch's rows of q, k, v and the output, in the compute dtype
  for (int i = 0; i < 4; ++i) rows_at[i] = staging_[i].as<uint8_t>() + first[i] * quant::dtype_size(t);
  // q, k, v to pinned host memory. The previous layer's output upload from these rows
  // was queued on `s` before them, so their arrival means it is done too.
  const Tensor* src[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i) backend_.download(rows_at[i], *src[i], s);
  Event& staged = staged_[static_cast<size_t>(lane.index)];
  staged.record(s);
  const quant::KvView kview = host_->k(layer).from_sequence(first_seq);
  const quant::KvView vview = host_->v(layer).from_sequence(first_seq);
  const uint8_t* mask = host_mask_.as<uint8_t>() + static_cast<size_t>(first_seq) * t_max_;
  const CpuAttentionProblem p = cpu_attention_problem(sh, scale, rows_at[0], rows_at[3], mask, bias.host_slopes, t);
  // The host work runs on the worker, in order after any prefill stores still queued.
  const void* k_rows = rows_at[1];
  const void* v_rows = rows_at[2];
  const uint64_t job = worker_->submit([this, &staged, k_rows, v_rows, t, kview, vview, sh, p] {
    backend_.bind_thread();
    const double t_begin = now_s();
    staged.synchronize();
    const double t_store = now_s();
    quant::kv_store(kview, t, k_rows, sh.batch, sh.tq, sh.t0, sh.kv_heads);
    quant::kv_store(vview, t, v_rows, sh.batch, sh.tq, sh.t0, sh.kv_heads);
    const double t_attend = now_s();
    cpu_attention(p, kview, vview);
    const double t_attended = now_s();
    trace::span("q/k/v wait", t_begin, t_store);
    trace::span("kv store", t_store, t_attend);
    trace::span("attention", t_attend, t_attended);
    host_times_.wait_s += t_store - t_begin;
    host_times_.store_s += t_attend - t_store;
    host_times_.attention_s += t_attended - t_attend;
    host_times_.cpu_s += seconds_since(t_store);
  });
  lane.pause();  // another lane queues its GPU work while this one's runs on the host
  {
    const trace::Span span("attention wait");
    worker_->wait(job);
  }
  lane.resume();
  backend_.upload(out, rows_at[3], s);
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
