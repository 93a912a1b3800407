// zinc vs Hugging Face transformers, on the fixtures of tests/reference/make_fixtures.py:
// fp32 logits of a left-padded mixed-length batch within rtol 1e-4 (+ atol 1e-4) at every
// real token, and the greedy 16-token continuation identical (EOS stop, pad after it).
#include <algorithm>
#include <cmath>

#include "catch.hpp"
#include "golden/fixture.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/generate/batch.hpp"
#include "runtime/generate/generator.hpp"

using namespace zinc;

namespace {

const char* kFixtures[] = {"llama_mha", "llama_gqa",       "llama_tied",
                           "opt_preln", "opt_postln_proj", "bloom_alibi"};

std::vector<runtime::Prompt> to_prompts(const test::Fixture& f) {
  std::vector<runtime::Prompt> p;
  for (size_t i = 0; i < f.prompts.size(); ++i) p.push_back({f.prompts[i], i});
  return p;
}

// HF's layout: after EOS a row holds the pad token up to max_new_tokens.
std::vector<int32_t> padded(const std::vector<int32_t>& toks, size_t n, int32_t pad) {
  std::vector<int32_t> out(toks);
  out.resize(n, pad);
  return out;
}

}  // namespace

TEST_CASE("logits match transformers on every fixture", "[golden]") {
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) {
      const test::Fixture f = test::load_fixture(name);
      runtime::CpuBackend backend;
      auto model = runtime::load_model(f.dir, backend);
      std::vector<const std::vector<int32_t>*> ptrs;
      for (const auto& p : f.prompts) ptrs.push_back(&p);
      const runtime::PaddedBatch pb = runtime::make_padded_batch(ptrs, runtime::pad_token(model->config()));
      REQUIRE(pb.length == f.length);
      REQUIRE(pb.mask == f.mask);
      runtime::KvCache kv(backend, runtime::kv_shape(model->config()), pb.batch, pb.length);
      model->reserve(pb.batch, pb.length);
      kv.set_mask(0, pb.length, pb.mask.data());
      auto buf = backend.alloc(f.logits.size() * sizeof(float), "test logits");
      const runtime::Tensor logits = runtime::view_of(buf, quant::DType::F32, {pb.batch * pb.length, f.vocab});
      model->forward({pb.batch, pb.length, 0, pb.ids.data(), pb.positions.data()}, kv, logits, true);
      const float* got = logits.ptr<float>();
      double worst = 0;
      size_t worst_i = 0, checked = 0, bad = 0;
      for (size_t i = 0; i < f.logits.size(); ++i) {
        if (!f.mask[i / f.vocab]) continue;  // pad rows are not meaningful
        const double err = std::fabs(got[i] - f.logits[i]);
        const double tol = 1e-4 * std::fabs(f.logits[i]) + 1e-4;
        if (err > tol) ++bad;
        if (err / tol > worst) {
          worst = err / tol;
          worst_i = i;
        }
        ++checked;
      }
      INFO(name << ": " << checked << " logits checked, worst at flat index " << worst_i << ": zinc "
                << got[worst_i] << " vs transformers " << f.logits[worst_i] << " (err/tol "
                << worst << ")");
      CHECK(checked > 0);
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("greedy continuation equals transformers' generate()", "[golden]") {
  for (const char* name : kFixtures) {
    DYNAMIC_SECTION(name) {
      const test::Fixture f = test::load_fixture(name);
      runtime::CpuBackend backend;
      auto model = runtime::load_model(f.dir, backend);
      const int32_t pad = runtime::pad_token(model->config());
      runtime::GenerationOptions opts;
      opts.max_new_tokens = f.new_tokens;
      const auto result = runtime::generate(*model, backend, to_prompts(f), opts);
      for (int b = 0; b < f.batch; ++b) {
        INFO(name << " sequence " << b);
        CHECK(padded(result.tokens[b], f.new_tokens, pad) == f.generated[b]);
      }
      // Each sequence alone (batch size 1) gives the same tokens: padding and other
      // sequences finishing early change nothing.
      opts.batch_size = 1;
      const auto alone = runtime::generate(*model, backend, to_prompts(f), opts);
      CHECK(alone.tokens == result.tokens);
      // Every layer run in micro-batches of 1 and 2 sequences (the weights loaded once per
      // layer for all of them), with the KV cache on the device and on the host; host KV
      // decode steps also with their micro-batches as lanes (decoder_lanes.cpp; 0 = auto:
      // two lanes).
      opts.batch_size = 0;
      for (int mb : {0, 1, 2})
        for (bool host_kv : {false, true})
          for (runtime::KvOverlap overlap : {runtime::KvOverlap::Off, runtime::KvOverlap::On}) {
            if (!host_kv && overlap == runtime::KvOverlap::On) continue;  // lanes are a host-KV path
            INFO(name << ": micro-batches of " << mb << (host_kv ? ", host KV" : ", device KV")
                      << (overlap == runtime::KvOverlap::On ? ", lanes" : ""));
            opts.micro_batch = mb;
            opts.kv.on_host = host_kv;
            opts.kv_overlap = overlap;
            CHECK(runtime::generate(*model, backend, to_prompts(f), opts).tokens == result.tokens);
          }
      CHECK(result.stats.generated_tokens > 0);
      CHECK(result.stats.peak_bytes >= result.stats.weight_bytes);
    }
  }
}

TEST_CASE("a fixture with an early EOS stops that sequence only", "[golden]") {
  const test::Fixture f = test::load_fixture("llama_mha");
  runtime::CpuBackend backend;
  auto model = runtime::load_model(f.dir, backend);
  runtime::GenerationOptions opts;
  opts.max_new_tokens = f.new_tokens;
  const auto r = runtime::generate(*model, backend, to_prompts(f), opts);
  REQUIRE(r.tokens[0].size() == 6);  // manifest: sequence 0 emits EOS (152) at step 5
  CHECK(model->config().is_eos(r.tokens[0].back()));
  CHECK(r.tokens[1].size() == 16);
  CHECK(r.tokens[2].size() == 16);
}

TEST_CASE("ignore_eos makes exactly max_new_tokens per sequence, with progress per forward", "[golden]") {
  const test::Fixture f = test::load_fixture("llama_mha");
  runtime::CpuBackend backend;
  auto model = runtime::load_model(f.dir, backend);
  runtime::GenerationOptions opts;
  opts.max_new_tokens = f.new_tokens;
  const auto stopped = runtime::generate(*model, backend, to_prompts(f), opts);
  opts.ignore_eos = true;
  int calls = 0, last = 0;
  opts.progress = [&](int step, int steps) {
    ++calls;
    last = step;
    CHECK(steps == f.new_tokens);
  };
  const auto r = runtime::generate(*model, backend, to_prompts(f), opts);
  CHECK(calls == f.new_tokens);
  CHECK(last == f.new_tokens);
  for (const auto& t : r.tokens) CHECK(static_cast<int>(t.size()) == f.new_tokens);
  CHECK(r.stats.generated_tokens == static_cast<int64_t>(r.tokens.size()) * f.new_tokens);
  // Up to the EOS the tokens are those of the run that stopped there.
  REQUIRE(r.tokens[0].size() >= stopped.tokens[0].size());
  CHECK(std::equal(stopped.tokens[0].begin(), stopped.tokens[0].end(), r.tokens[0].begin()));
}
