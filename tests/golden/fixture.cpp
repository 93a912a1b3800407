#include "golden/fixture.hpp"

#include "catch.hpp"

namespace zinc::test {

std::string fixture_dir(const std::string& name) { return std::string(ZINC_FIXTURES_DIR) + "/" + name; }

Fixture load_fixture(const std::string& name) {
  Fixture f;
  f.dir = fixture_dir(name);
  auto ref = partition::SafetensorsFile::open(f.dir + "/reference.safetensors");
  const partition::TensorView* ids = ref->find("input_ids");
  const partition::TensorView* mask = ref->find("attention_mask");
  const partition::TensorView* logits = ref->find("logits");
  const partition::TensorView* gen = ref->find("generated");
  REQUIRE((ids && mask && logits && gen));
  REQUIRE(ids->dtype == quant::DType::I64);
  REQUIRE(logits->dtype == quant::DType::F32);
  f.batch = static_cast<int>(ids->shape[0]);
  f.length = static_cast<int>(ids->shape[1]);
  f.vocab = static_cast<int>(logits->shape[2]);
  f.new_tokens = static_cast<int>(gen->shape[1]);
  const auto* id = static_cast<const int64_t*>(ids->data);
  const auto* m = static_cast<const int64_t*>(mask->data);
  const auto* g = static_cast<const int64_t*>(gen->data);
  for (int b = 0; b < f.batch; ++b) {
    std::vector<int32_t> p, out;
    for (int t = 0; t < f.length; ++t) {
      const size_t cell = static_cast<size_t>(b) * f.length + t;
      f.mask.push_back(static_cast<uint8_t>(m[cell]));
      if (m[cell]) p.push_back(static_cast<int32_t>(id[cell]));
    }
    for (int s = 0; s < f.new_tokens; ++s) out.push_back(static_cast<int32_t>(g[b * f.new_tokens + s]));
    f.prompts.push_back(p);
    f.generated.push_back(out);
  }
  const auto* l = static_cast<const float*>(logits->data);
  f.logits.assign(l, l + logits->numel());
  return f;
}

}  // namespace zinc::test
