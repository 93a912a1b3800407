// libFuzzer target: a model's config.json and generation_config.json, as the loader reads
// them (runtime::parse_config_text, apply_generation_config_text) and then uses them before
// any weight is read: the family's blob plan, its manifests in two formats, the pipeline's
// schedule. Input: config.json's text, optionally a NUL and generation_config.json's text.
// An accepted config must be self-consistent (heads, head_dim, special ids inside the
// vocabulary); refusals are zinc::Errors; anything else, or a slow input, is a finding.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "runtime/common/error.hpp"
#include "runtime/model/blob_source.hpp"
#include "runtime/model/config.hpp"
#include "runtime/model/decoder.hpp"

namespace {

using zinc::runtime::ModelConfig;

void check_consistent(const ModelConfig& c) {
  const bool ok = c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 &&
                  c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0 && c.head_dim > 0 &&
                  c.bos_token_id < c.vocab_size && c.pad_token_id < c.vocab_size;
  if (!ok) std::abort();
  for (int id : c.eos_token_ids)
    if (id < 0 || id >= c.vocab_size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zinc::runtime;
  const std::vector<std::string> f = zinc::fuzz::split_fields(data, size, 2);
  try {
    ModelConfig c = parse_config_text(f[0], "fuzz/config.json");
    if (f.size() > 1 && !f[1].empty()) apply_generation_config_text(f[1], "fuzz/generation_config.json", &c);
    check_consistent(c);
    const std::vector<BlobPlan> plan = blob_plan(c);
    (void)forward_schedule(c);
    (void)plan_manifests(plan, zinc::quant::QuantFormat::None, 64);
    (void)plan_manifests(plan, zinc::quant::QuantFormat::NF4, 8);
    (void)plan_manifests(plan, zinc::quant::QuantFormat::Int8, 64);
  } catch (const zinc::Error& e) {
    zinc::fuzz::refused(e);
  }
  return 0;
}
