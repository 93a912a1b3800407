// partition/dummy_blob: the --dummy weight filler is independent of the cut, deterministic,
// and gives weights of about the requested spread.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>
#include "partition/blob.hpp"
#include "partition/shard.hpp"
#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "runtime/common/error.hpp"
#include "unit/test_util.hpp"
#include "unit/blob_test_util.hpp"

using namespace zinc::partition;
using namespace zinc::test::blob_util;
using nlohmann::json;
using zinc::quant::DType;
using zinc::quant::QuantFormat;

TEST_CASE("fill_dummy_slice is independent of the cut and deterministic", "[blob]") {
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const BlobManifest m = plan_blob("layer.0001", llama_layer(), f, 32);
    std::vector<uint8_t> whole(m.bytes, 0xEE);
    fill_dummy_slice(m, 0, m.bytes, 1234, 0.02f, whole.data());
    require_gaps_zero(m, whole);
    check_every_cut(whole, [&](size_t offset, size_t bytes, uint8_t* dst) {
      fill_dummy_slice(m, offset, bytes, 1234, 0.02f, dst);
    });
    std::vector<uint8_t> again(m.bytes);
    fill_dummy_slice(m, 0, m.bytes, 1234, 0.02f, again.data());
    REQUIRE(again == whole);

    // Another seed, or another blob with the same params, gives other weights.
    std::vector<uint8_t> other(m.bytes);
    fill_dummy_slice(m, 0, m.bytes, 1235, 0.02f, other.data());
    const BlobParam& q = m.params[0];
    REQUIRE(std::memcmp(other.data() + q.offset, whole.data() + q.offset, q.bytes) != 0);
    BlobManifest renamed = m;
    renamed.name = "layer.0002";
    fill_dummy_slice(renamed, 0, m.bytes, 1234, 0.02f, other.data());
    REQUIRE(std::memcmp(other.data() + q.offset, whole.data() + q.offset, q.bytes) != 0);
  }
}

TEST_CASE("fill_dummy_slice weights have about the requested spread", "[blob]") {
  const float stddev = 0.02f;
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const BlobManifest m = plan_blob("layer.0005", llama_layer(), f, 32);
    std::vector<uint8_t> blob(m.bytes);
    fill_dummy_slice(m, 0, m.bytes, 99, stddev, blob.data());
    for (const BlobParam& p : m.params) {
      INFO("tensor " << p.name);
      const std::vector<float> w = unpack(m, p.name, blob);
      double sum = 0, sq = 0;
      for (float x : w) {
        REQUIRE(std::isfinite(x));
        sum += x;
        sq += static_cast<double>(x) * x;
      }
      const double mean = sum / w.size();
      const double sd = std::sqrt(std::max(0.0, sq / w.size() - mean * mean));
      if (p.shape.size() == 1) {  // a norm weight: 1 plus a little noise
        REQUIRE(
            std::all_of(w.begin(), w.end(), [](float x) { return std::fabs(x - 1.0f) < 0.03f; }));
      } else {
        REQUIRE(sd > stddev / 2);
        REQUIRE(sd < stddev * 2);
        REQUIRE(std::fabs(mean) < 0.05 * stddev);  // symmetric formats: a random sign per group
      }
    }
  }
  const BlobManifest m = plan_blob("layer.0005", llama_layer(), QuantFormat::NF4, 32);
  std::vector<uint8_t> blob(m.bytes);
  REQUIRE_THROWS_WITH(fill_dummy_slice(m, 0, m.bytes, 1, 0.0f, blob.data()),
                      ZINC_CONTAINS("stddev"));
  REQUIRE_THROWS_WITH(fill_dummy_slice(m, 0, m.bytes, 1, NAN, blob.data()),
                      ZINC_CONTAINS("stddev"));
}

TEST_CASE("fill_dummy_slice matrices have no all-ones part larger than their random part", "[blob]") {
  // A weight matrix's mean m gives it a rank-one part of norm |m| sqrt(rows x cols) along
  // the all-ones direction; RMSNorm models amplify it layer over layer (dummy LLaMA-2-70B
  // NF4 overflowed fp16 that way). It must stay below the random part's norm, about
  // stddev (sqrt(rows) + sqrt(cols)), at a real model's width.
  const float stddev = 0.02f;
  const int64_t rows = 2048, cols = 8192;
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const BlobManifest m =
        plan_blob("layer.0007", {{kPrefix + "mlp.down_proj.weight", {rows, cols}, DType::F16, true}}, f, 64);
    std::vector<uint8_t> blob(m.bytes);
    fill_dummy_slice(m, 0, m.bytes, 5, stddev, blob.data());
    const std::vector<float> w = unpack(m, m.params[0].name, blob);
    double sum = 0;
    for (float x : w) sum += x;
    const double n = static_cast<double>(w.size());
    const double rank_one = std::fabs(sum / n) * std::sqrt(n);
    const double random_part = stddev * (std::sqrt(double(rows)) + std::sqrt(double(cols)));
    INFO("all-ones part " << rank_one << ", random part " << random_part);
    REQUIRE(rank_one < 0.25 * random_part);
  }
}
