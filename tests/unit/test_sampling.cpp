// Token choice: greedy ties, temperature/top-k/top-p filtering, reproducible seeds.
#include <map>

#include "unit/test_util.hpp"
#include "runtime/backend/sampling.hpp"

using namespace zinc::runtime;

TEST_CASE("argmax takes the first of equal maxima, as torch.argmax", "[sampler]") {
  const float l[] = {0.f, 3.f, 1.f, 3.f};
  CHECK(argmax(l, 4) == 1);
}

TEST_CASE("top-k 1 and tiny top-p are greedy; the seed makes draws reproducible", "[sampler]") {
  const float l[] = {0.1f, 2.0f, 1.9f, -1.f, 0.5f};
  SampleWork work;
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 1;
  for (int i = 0; i < 20; ++i) {
    SequenceRng rng(i, 0);
    CHECK(sample_token(l, 5, o, rng, work) == 1);
  }
  o.top_k = 0;
  o.top_p = 0.01f;
  SequenceRng rng(3, 3);
  CHECK(sample_token(l, 5, o, rng, work) == 1);

  o.top_p = 1.0f;
  std::vector<int> a, b, c;
  SequenceRng r1(42, 7), r2(42, 7), r3(43, 7);
  for (int i = 0; i < 64; ++i) {
    a.push_back(sample_token(l, 5, o, r1, work));
    b.push_back(sample_token(l, 5, o, r2, work));
    c.push_back(sample_token(l, 5, o, r3, work));
  }
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("sampling frequencies follow softmax(logits / T) within the top-k set", "[sampler]") {
  const float l[] = {1.0f, 0.0f, 2.0f, -5.0f};
  SamplingOptions o;
  o.temperature = 2.0f;
  o.top_k = 3;  // drops token 3
  SampleWork work;
  SequenceRng rng(1, 1);
  std::map<int, int> counts;
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[sample_token(l, 4, o, rng, work)];
  CHECK(counts[3] == 0);
  const double e0 = std::exp(0.5), e1 = 1.0, e2 = std::exp(1.0), z = e0 + e1 + e2;
  CHECK(counts[0] / double(n) == Approx(e0 / z).margin(0.01));
  CHECK(counts[1] / double(n) == Approx(e1 / z).margin(0.01));
  CHECK(counts[2] / double(n) == Approx(e2 / z).margin(0.01));
}

TEST_CASE("top-p keeps the smallest set whose mass reaches p", "[sampler]") {
  // probabilities 0.5, 0.3, 0.15, 0.05 -> top_p 0.7 keeps tokens 0 and 1
  const float l[] = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.7f;
  SampleWork work;
  SequenceRng rng(9, 9);
  std::map<int, int> counts;
  for (int i = 0; i < 20000; ++i) ++counts[sample_token(l, 4, o, rng, work)];
  CHECK(counts[2] == 0);
  CHECK(counts[3] == 0);
  CHECK(counts[0] / 20000.0 == Approx(0.5 / 0.8).margin(0.015));
}

TEST_CASE("bad sampling options are refused with the flag's name", "[sampler]") {
  SamplingOptions o;
  o.top_p = 1.5f;
  CHECK_THROWS_WITH(validate(o), ZINC_CONTAINS("--top-p"));
  o.top_p = 1.0f;
  o.temperature = -1.f;
  CHECK_THROWS_WITH(validate(o), ZINC_CONTAINS("--temperature"));
}
