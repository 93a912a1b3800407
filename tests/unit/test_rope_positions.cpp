// runtime/generate: the warning for prompts that run a RoPE model past its
// max_position_embeddings (transformers runs them too, so it is no error). Positions go to
// prompt + new - 2: the last new token is never fed back.
#include "runtime/generate/generator.hpp"
#include "runtime/model/config.hpp"
#include "test_util.hpp"

using zinc::runtime::Family;
using zinc::runtime::ModelConfig;
using zinc::runtime::rope_position_warning;

TEST_CASE("rope_position_warning: only past the trained length, naming the lengths", "[generate]") {
  ModelConfig c;
  c.family = Family::Llama;
  c.model_type = "llama";
  c.max_position_embeddings = 2048;
  CHECK(rope_position_warning(c, 2000, 49).empty());  // up to position 2047
  CHECK(rope_position_warning(c, 2048, 1).empty());   // one new token: no position past the prompt's
  CHECK_THAT(rope_position_warning(c, 2000, 50),
             ZINC_CONTAINS("the longest prompt (2000 tokens) + 50 new tokens reach position 2048, beyond this "
                           "llama model's max_position_embeddings 2048"));
  CHECK_THAT(rope_position_warning(c, 3000, 32), ZINC_CONTAINS("reach position 3030"));
  // No prompts on any rank, OPT (an error instead) and BLOOM (ALiBi: no positions): nothing.
  CHECK(rope_position_warning(c, 0, 5000).empty());
  c.family = Family::Opt;
  CHECK(rope_position_warning(c, 3000, 32).empty());
  c.family = Family::Bloom;
  c.max_position_embeddings = 0;
  CHECK(rope_position_warning(c, 3000, 32).empty());
}
