#include "runtime/generate/generator.hpp"

#include <algorithm>
#include <chrono>

#include "runtime/generate/batch.hpp"

namespace zinc::runtime {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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
    if (c.family == Family::Opt) {
      const int64_t need = static_cast<int64_t>(p.ids.size()) + opts.max_new_tokens;
      ZINC_CHECK(need <= c.max_position_embeddings,
                 "prompt " << p.index + 1 << ": " << p.ids.size() << " tokens + "
                           << opts.max_new_tokens << " new exceed the model's "
                           << c.max_position_embeddings
                           << " learned positions (max_position_embeddings)");
    }
  }
}

// True when every sequence of every rank in lockstep is done.
bool all_done(int unfinished, collectives::Communicator* lockstep) {
  if (!lockstep || lockstep->size() == 1) return unfinished == 0;
  return lockstep->allreduce_max({static_cast<double>(unfinished)})[0] == 0.0;
}

// Runs one micro-batch: prompts [chunk_first, chunk_first + chunk.size()) of the request.
// A throwaway batch (filler: this rank has no prompts left but others do) only keeps the
// forwards in step; its tokens are dropped.
void run_micro_batch(Model& model, Backend& backend, const std::vector<const Prompt*>& chunk,
                     size_t chunk_first, bool filler, const GenerationOptions& opts,
                     GenerationResult* result) {
  const ModelConfig& c = model.config();
  const int32_t pad = pad_token(c);
  std::vector<const std::vector<int32_t>*> ids;
  for (const Prompt* p : chunk) ids.push_back(&p->ids);
  const PaddedBatch pb = make_padded_batch(ids, pad);
  const int B = pb.batch, T = pb.length, V = c.vocab_size;

  KvCache kv(backend, c, B, T + opts.max_new_tokens, opts.kv);
  kv.set_mask(0, T, pb.mask.data());
  DeviceBuffer logits_buf =
      backend.alloc(static_cast<size_t>(B) * V * quant::dtype_size(backend.compute_dtype()), "logits");
  const Tensor logits = logits_buf.view(backend.compute_dtype(), {B, V});
  ZINC_CHECK(backend.compute_dtype() == quant::DType::F32,
             "generate: logits in " << quant::dtype_name(backend.compute_dtype())
                                    << " need a conversion step");
  std::vector<float> host_logits(static_cast<size_t>(B) * V);

  std::vector<SequenceRng> rngs;
  for (const Prompt* p : chunk) rngs.emplace_back(opts.sampling.seed, p->index);
  std::vector<std::vector<int32_t>> out(B);
  std::vector<bool> finished(B, false);
  std::vector<int32_t> step_ids(B), step_pos(pb.next_position);
  std::vector<uint8_t> ones(B, 1);
  std::vector<float> work;

  GenerationStats& st = result->stats;
  const double t_start = now_s();
  double t_first = t_start;
  StepInputs in{B, T, 0, pb.ids.data(), pb.positions.data()};
  int forwards = 0;
  for (int s = 0;; ++s) {
    model.forward(in, kv, logits, false);
    ++forwards;
    backend.copy_to_host(host_logits.data(), logits);
    backend.synchronize();
    int unfinished = 0;
    for (int b = 0; b < B; ++b) {
      if (finished[b]) {
        step_ids[b] = pad;  // as transformers: a finished row keeps being fed the pad token
        continue;
      }
      const int32_t tok = sample_token(host_logits.data() + static_cast<size_t>(b) * V, V,
                                       opts.sampling, rngs[b], work);
      out[b].push_back(tok);
      step_ids[b] = tok;
      if (c.is_eos(tok) || filler) finished[b] = true; else ++unfinished;
    }
    if (s == 0) {
      t_first = now_s();
      st.prefill_s += t_first - t_start;
    }
    // Stop when every sequence is done: running on could not change any of them.
    if (s + 1 == opts.max_new_tokens || all_done(unfinished, opts.lockstep)) break;
    // Step s feeds the token chosen at s, at cache index T + s and position len + s.
    kv.set_mask(T + s, 1, ones.data());
    for (int b = 0; b < B; ++b) step_pos[b] = pb.next_position[b] + s;
    in = StepInputs{B, 1, T + s, step_ids.data(), step_pos.data()};
  }
  st.decode_s += now_s() - t_first;
  st.decode_steps += forwards - 1;
  st.padded_slots += static_cast<int64_t>(B) * forwards;
  st.kv_bytes = std::max(st.kv_bytes, kv.bytes());
  if (filler) return;
  for (int b = 0; b < B; ++b) {
    st.generated_tokens += static_cast<int64_t>(out[b].size());
    result->tokens[chunk_first + b] = std::move(out[b]);
  }
}

}  // namespace

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
  if (opts.lockstep && opts.lockstep->size() > 1)
    batches = static_cast<size_t>(opts.lockstep->allreduce_max({static_cast<double>(batches)})[0]);
  const Prompt filler{{model.config().bos_token_id >= 0 ? model.config().bos_token_id : 0}, 0};
  for (size_t mb = 0; mb < batches; ++mb) {
    const size_t first = mb * step;
    std::vector<const Prompt*> chunk;
    for (size_t i = first; i < std::min(prompts.size(), first + step); ++i) chunk.push_back(&prompts[i]);
    const bool is_filler = chunk.empty();
    if (is_filler) chunk.push_back(&filler);
    run_micro_batch(model, backend, chunk, first, is_filler, opts, &result);
    if (!is_filler) ++st.micro_batches;
  }
  st.weight_bytes = model.weight_bytes();
  st.peak_bytes = backend.arena().high_water_mark();
  return result;
}

}  // namespace zinc::runtime
