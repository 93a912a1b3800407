// Left padding, masks and position ids as transformers' generate() builds them.
#include "catch.hpp"
#include "runtime/common/error.hpp"
#include "runtime/generate/batch.hpp"

using namespace zinc::runtime;

TEST_CASE("prompts are left-padded with masks and cumsum positions", "[batch]") {
  const std::vector<int32_t> a = {5, 6, 7}, b = {9};
  const PaddedBatch pb = make_padded_batch({&a, &b}, 0);
  CHECK(pb.batch == 2);
  CHECK(pb.length == 3);
  CHECK(pb.ids == std::vector<int32_t>{5, 6, 7, 0, 0, 9});
  CHECK(pb.mask == std::vector<uint8_t>{1, 1, 1, 0, 0, 1});
  CHECK(pb.positions == std::vector<int32_t>{0, 1, 2, 0, 0, 0});
  CHECK(pb.next_position == std::vector<int32_t>{3, 1});
}

TEST_CASE("an empty prompt is refused", "[batch]") {
  const std::vector<int32_t> a = {1}, e;
  CHECK_THROWS_AS(make_padded_batch({&a, &e}, 0), zinc::Error);
}
