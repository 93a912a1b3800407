// The generation loop (the contract is in generator.hpp). Per run: one KV cache, one
// logits buffer, the model's workspace and the pinned step buffers, all sized for the
// largest round; per step: the forward, the sample op and one host wait for the B
// token ids — the only device -> host traffic of a step.
#include "runtime/generate/generator.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <sstream>

#include "collectives/stall_watch.hpp"
#include "quant/dtype.hpp"
#include "runtime/backend/sampling.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/trace.hpp"
#include "runtime/generate/batch.hpp"
#include "runtime/model/workspace.hpp"

namespace zinc::runtime {
namespace {

void check_prompts(const ModelConfig& c, const std::vector<Prompt>& prompts,
                   const GenerationOptions& opts) {
  ZINC_CHECK(opts.max_new_tokens >= 1, "--max-new-tokens must be >= 1, got " << opts.max_new_tokens);
  ZINC_CHECK(opts.batch_size >= 0, "--batch-size must be >= 1, got " << opts.batch_size);
  validate(opts.sampling);
  for (const Prompt& p : prompts) {
    ZINC_CHECK(!p.ids.empty(), "prompt " << p.index + 1 << " is empty");
    for (int32_t id : p.ids)
      ZINC_CHECK(id >= 0 && id < c.vocab_size, "prompt " << p.index + 1 << ": token id " << id
                                                          << " is outside the vocabulary [0, "
                                                          << c.vocab_size << ")");
    // OPT's learned positions end at max_position_embeddings - 1 (transformers fails on an
    // index past its table). Positions go to prompt + new - 2: the last new token is never
    // fed back, so it needs none.
    const int64_t last_position = static_cast<int64_t>(p.ids.size()) + opts.max_new_tokens - 2;
    if (c.family == Family::Opt) {
      ZINC_CHECK(last_position < c.max_position_embeddings,
                 "prompt " << p.index + 1 << ": " << p.ids.size() << " tokens + " << opts.max_new_tokens
                           << " new need positions up to " << last_position << ", beyond the model's "
                           << c.max_position_embeddings << " learned positions (max_position_embeddings)");
    }
    ZINC_CHECK(last_position < INT32_MAX, "prompt " << p.index + 1 << ": " << p.ids.size() << " tokens + "
                                                    << opts.max_new_tokens << " new exceed 32-bit positions");
  }
}

// True when every sequence of every rank in lockstep is done.
bool all_done(int unfinished, collectives::Communicator* lockstep, int step) {
  if (!lockstep || lockstep->size() == 1) return unfinished == 0;
  const collectives::WaitScope scope("step " + std::to_string(step) + "'s lockstep (are all sequences done?)");
  return lockstep->allreduce_max({static_cast<double>(unfinished)})[0] == 0.0;
}

// Everything a run allocates, once, for rounds of up to `batch` sequences with
// prompts of up to `prompt_len` tokens.
struct RunBuffers {
  RunBuffers(Model& model, Backend& be, int batch, int prompt_len, const GenerationOptions& opts)
      : kv(be, kv_shape(model.config()), batch, prompt_len + opts.max_new_tokens, opts.kv,
           static_cast<int>(workspace_rows(batch, prompt_len, opts.micro_batch).micro)) {
    const ModelConfig& c = model.config();
    const quant::DType t = be.compute_dtype();
    model.reserve(batch, prompt_len, {opts.micro_batch, opts.kv_overlap});
    be.reserve_sampling(batch, c.vocab_size);
    logits = be.alloc(static_cast<size_t>(batch) * c.vocab_size * quant::dtype_size(t), "logits");
    ids = be.alloc(static_cast<size_t>(batch) * sizeof(int32_t), "sampled token ids");
    keys = be.alloc(static_cast<size_t>(batch) * sizeof(int64_t), "sampling stream keys");
    const size_t rows = static_cast<size_t>(batch) * prompt_len;
    host_ids = be.alloc_host(rows * sizeof(int32_t), "step token ids");
    host_positions = be.alloc_host(rows * sizeof(int32_t), "step positions");
    host_sampled = be.alloc_host(static_cast<size_t>(batch) * sizeof(int32_t), "sampled token ids (host)");
    host_keys = be.alloc_host(static_cast<size_t>(batch) * sizeof(int64_t), "sampling stream keys (host)");
    sampled = be.create_event();
  }
  KvCache kv;
  DeviceBuffer logits, ids, keys;
  HostBuffer host_ids, host_positions, host_sampled, host_keys;  // pinned
  Event sampled;  // the step's token ids are on the host
};

// Runs one round: prompts [chunk_first, chunk_first + chunk.size()) of the request.
// A throwaway batch (filler: this rank has no prompts left but others do) only keeps the
// forwards in step; its tokens are dropped.
void run_round(Model& model, Backend& backend, RunBuffers& rb, const std::vector<const Prompt*>& chunk,
                     size_t chunk_first, bool filler, const GenerationOptions& opts, GenerationResult* result) {
  const ModelConfig& c = model.config();
  const Stream& stream = backend.compute_stream();
  const int32_t pad = pad_token(c);
  std::vector<const std::vector<int32_t>*> prompt_ids;
  for (const Prompt* p : chunk) prompt_ids.push_back(&p->ids);
  const PaddedBatch pb = make_padded_batch(prompt_ids, pad);
  const int B = pb.batch, T = pb.length, V = c.vocab_size;
  const quant::DType t = backend.compute_dtype();

  KvCache& kv = rb.kv;
  kv.begin(B);
  kv.set_mask(0, T, pb.mask.data());
  const Tensor logits = view_of(rb.logits, t, {B, V});
  const Tensor ids = view_of(rb.ids, quant::DType::I32, {B});
  const Tensor keys = view_of(rb.keys, quant::DType::I64, {B});
  int32_t* step_ids = rb.host_ids.as<int32_t>();
  int32_t* step_pos = rb.host_positions.as<int32_t>();
  const int32_t* sampled = rb.host_sampled.as<int32_t>();
  for (int b = 0; b < B; ++b)
    rb.host_keys.as<int64_t>()[b] = static_cast<int64_t>(sequence_key(opts.sampling.seed, chunk[b]->index));
  backend.upload(keys, rb.host_keys.data(), stream);
  std::memcpy(step_ids, pb.ids.data(), pb.ids.size() * sizeof(int32_t));
  std::memcpy(step_pos, pb.positions.data(), pb.positions.size() * sizeof(int32_t));

  std::vector<std::vector<int32_t>> out(B);
  std::vector<bool> finished(B, false);
  std::vector<uint8_t> ones(B, 1);

  GenerationStats& st = result->stats;
  const KvCache::HostTimes kv_before = kv.host_times();
  const double t_start = now_s();
  double t_first = t_start;
  StepInputs in{B, T, 0, step_ids, step_pos};
  int forwards = 0;
  for (int s = 0;; ++s) {
    const double t_step = now_s();
    const trace::Span span(s == 0 ? "prefill" : "decode step");
    model.forward(in, kv, logits, false);
    ++forwards;
    // Only the B token ids come back; the host wait also retires this step's uploads
    // (ids, positions, mask), so their pinned buffers may be rewritten below.
    backend.sample(logits, opts.sampling, keys, static_cast<uint64_t>(s), ids, stream);
    backend.download(rb.host_sampled.data(), ids, stream);
    rb.sampled.record(stream);
    {
      // On a GPU the step's gathers (NCCL, on the device) end here: a peer that never joins
      // one keeps this wait from finishing, which the watchdog sees.
      const collectives::WaitScope scope("step " + std::to_string(s + 1) + ": the device's token ids");
      rb.sampled.synchronize();
    }
    int unfinished = 0;
    for (int b = 0; b < B; ++b) {
      if (finished[b]) {
        step_ids[b] = pad;  // as transformers: a finished row keeps being fed the pad token
        continue;
      }
      const int32_t tok = sampled[b];
      ZINC_CHECK(tok != kNonFiniteLogits || filler,
                 (s == 0 ? std::string("the prefill") : "decode step " + std::to_string(s))
                     << ": the logits of sequence " << chunk[b]->index + 1
                     << " hold NaN or +inf: the model's activations overflowed the compute dtype ("
                     << quant::dtype_name(backend.compute_dtype()) << ") or its weights are not finite; "
                     << "try --dtype bf16 or fp32");
      out[b].push_back(tok);
      step_ids[b] = tok;
      if ((!opts.ignore_eos && c.is_eos(tok)) || filler) finished[b] = true; else ++unfinished;
    }
    if (s == 0) {
      t_first = now_s();
      st.prefill_s += t_first - t_start;
    }
    if (opts.progress) opts.progress(s + 1, opts.max_new_tokens);
    // Stop when every sequence is done: running on could not change any of them.
    const bool done = s + 1 == opts.max_new_tokens || all_done(unfinished, opts.lockstep, s + 1);
    collectives::StallWatch::note_step(now_s() - t_step);  // the watchdog's limit grows with it
    if (done) break;
    // Step s feeds the token chosen at s, at cache index T + s and position len + s.
    kv.set_mask(T + s, 1, ones.data());
    for (int b = 0; b < B; ++b) step_pos[b] = pb.next_position[b] + s;
    in = StepInputs{B, 1, T + s, step_ids, step_pos};
  }
  st.decode_s += now_s() - t_first;
  st.decode_steps += forwards - 1;
  st.padded_slots += static_cast<int64_t>(B) * forwards;
  st.kv_bytes = std::max(st.kv_bytes, kv.bytes());
  st.kv_host_wait_s += kv.host_times().wait_s - kv_before.wait_s;
  st.kv_host_cpu_s += kv.host_times().cpu_s - kv_before.cpu_s;
  st.kv_lanes = std::max(st.kv_lanes, kv.max_lanes());
  st.kv_host_store_s += kv.host_times().store_s - kv_before.store_s;
  st.kv_host_attention_s += kv.host_times().attention_s - kv_before.attention_s;
  if (filler) return;
  for (int b = 0; b < B; ++b) {
    st.generated_tokens += static_cast<int64_t>(out[b].size());
    result->tokens[chunk_first + b] = std::move(out[b]);
  }
}

// Rank 0 says it once per process (zinc bench runs generate() many times).
void warn_once(const std::string& message, const collectives::Communicator* lockstep) {
  static std::atomic<bool> warned{false};
  if (message.empty() || (lockstep && lockstep->rank() != 0) || warned.exchange(true)) return;
  std::cerr << "zinc: warning: " << message << std::endl;
}

}  // namespace

std::string rope_position_warning(const ModelConfig& c, int64_t longest_prompt, int max_new_tokens) {
  if (c.family != Family::Llama || c.max_position_embeddings <= 0 || longest_prompt <= 0) return "";
  const int64_t last_position = longest_prompt + max_new_tokens - 2;  // the last new token is not fed
  if (last_position < c.max_position_embeddings) return "";
  std::ostringstream os;
  os << "the longest prompt (" << longest_prompt << " tokens) + " << max_new_tokens
     << " new tokens reach position " << last_position << ", beyond this " << c.model_type
     << " model's max_position_embeddings " << c.max_position_embeddings
     << ": RoPE runs on past the length it was trained for (as in transformers), where its output may degrade";
  return os.str();
}

int32_t pad_token(const ModelConfig& c) {
  if (c.pad_token_id >= 0) return c.pad_token_id;
  if (!c.eos_token_ids.empty()) return c.eos_token_ids.front();
  return 0;
}

GenerationResult generate(Model& model, Backend& backend, const std::vector<Prompt>& prompts,
                          const GenerationOptions& opts) {
  check_prompts(model.config(), prompts, opts);
  GenerationResult result;
  result.tokens.resize(prompts.size());
  GenerationStats& st = result.stats;
  st.sequences = static_cast<int64_t>(prompts.size());
  for (const Prompt& p : prompts) st.prompt_tokens += static_cast<int64_t>(p.ids.size());
  const size_t step = opts.batch_size > 0 ? static_cast<size_t>(opts.batch_size)
                                           : std::max<size_t>(prompts.size(), 1);
  size_t batches = (prompts.size() + step - 1) / step;
  int64_t longest = 0;  // over every rank: rank 0 warns for a long prompt another rank holds
  for (const Prompt& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.ids.size()));
  if (opts.lockstep && opts.lockstep->size() > 1) {
    const std::vector<double> most =
        opts.lockstep->allreduce_max({static_cast<double>(batches), static_cast<double>(longest)});
    batches = static_cast<size_t>(most[0]);
    longest = static_cast<int64_t>(most[1]);
  }
  warn_once(rope_position_warning(model.config(), longest, opts.max_new_tokens), opts.lockstep);
  const Prompt filler{{model.config().bos_token_id >= 0 ? model.config().bos_token_id : 0}, 0};
  // Sized once for the largest round: its sequence count and longest prompt.
  int max_batch = 1, max_len = 1;
  for (size_t mb = 0; mb * step < prompts.size(); ++mb) {
    const size_t first = mb * step, last = std::min(prompts.size(), first + step);
    max_batch = std::max(max_batch, static_cast<int>(last - first));
    for (size_t i = first; i < last; ++i) max_len = std::max(max_len, static_cast<int>(prompts[i].ids.size()));
  }
  RunBuffers buffers(model, backend, max_batch, max_len, opts);
  st.driver_bytes = backend.driver_used_bytes();  // every buffer of the run is allocated now
  for (size_t mb = 0; mb < batches; ++mb) {
    const size_t first = mb * step;
    std::vector<const Prompt*> chunk;
    for (size_t i = first; i < std::min(prompts.size(), first + step); ++i) chunk.push_back(&prompts[i]);
    const bool is_filler = chunk.empty();
    if (is_filler) chunk.push_back(&filler);
    run_round(model, backend, buffers, chunk, first, is_filler, opts, &result);
    if (!is_filler) ++st.rounds;
  }
  st.weight_bytes = model.weight_bytes();
  st.peak_bytes = backend.arena().high_water_mark();
  return result;
}

}  // namespace zinc::runtime
