// partition/blob: layer blob layout, manifests and their JSON, packing a blob (whole or one
// shard's slice, which must agree for every cut), param views read back with
// quant::dequantize, and odd shapes (the codes' padding). The --dummy filler is in
// test_dummy_blob.cpp; shared helpers in blob_test_util.hpp.
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
#include "unit/quant_test_data.hpp"

using namespace zinc::partition;
using namespace zinc::test::blob_util;
using nlohmann::json;
using zinc::quant::DType;
using zinc::quant::QuantFormat;


TEST_CASE("plan_blob aligns every param and sizes it for its format", "[blob]") {
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const auto specs = llama_layer();
    const BlobManifest m = plan_blob("layer.0000", specs, f, 32);
    REQUIRE(m.name == "layer.0000");
    REQUIRE(m.format == f);
    REQUIRE(m.group_size == 32);
    REQUIRE(m.params.size() == specs.size());
    size_t end = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      const BlobParam& p = m.params[i];
      INFO("tensor " << p.name);
      REQUIRE(p.name == specs[i].name);
      REQUIRE(p.shape == specs[i].shape);
      REQUIRE(p.dtype == specs[i].dtype);
      REQUIRE(p.offset % kParamAlign == 0);
      REQUIRE(p.offset == round_up(end, kParamAlign));  // packed tightly, in the given order
      const size_t n = static_cast<size_t>(p.numel());
      if (specs[i].quantize && f != QuantFormat::None) {
        REQUIRE(p.format == f);
        REQUIRE(p.layout.codes_used_bytes == n * zinc::quant::quant_bits(f) / 8);
        REQUIRE(p.layout.codes_bytes == p.layout.codes_used_bytes);  // cols % 32 == 0: no padding
        REQUIRE(p.layout.scales_bytes == n / 32 * 2);
        REQUIRE(p.layout.mins_bytes == (zinc::quant::quant_has_mins(f) ? n / 32 * 2 : 0));
        REQUIRE(p.bytes == p.layout.total());
      } else {
        REQUIRE(p.format == QuantFormat::None);
        REQUIRE(p.layout.total() == 0);
        REQUIRE(p.bytes == n * zinc::quant::dtype_size(p.dtype));
      }
      end = p.offset + p.bytes;
    }
    REQUIRE(m.bytes == end);
    REQUIRE(m.find(kPrefix + "mlp.up_proj.weight") == &m.params[5]);
    REQUIRE(m.find("lm_head.weight") == nullptr);
  }
  // By hand for nf4: a 64x64 matrix is 2048 code bytes + 128 fp16 scales = 2304 bytes.
  const BlobManifest m = plan_blob("layer.0000", llama_layer(), QuantFormat::NF4, 32);
  REQUIRE(m.params[1].offset == 2304);
  REQUIRE(m.params[4].offset == 9216);
  REQUIRE(m.params[5].offset == 15104);  // 9216 + 5760 rounded up to 256
  REQUIRE(m.params[7].offset == 26880);
  REQUIRE(m.bytes == 27264);  // + 256 (F32 norm) + 128 (BF16 norm)
}

TEST_CASE("plan_blob errors name the tensor", "[blob]") {
  // cols 64 with group 48: the first projection fails.
  REQUIRE_THROWS_WITH(
      plan_blob("layer.0002", llama_layer(), QuantFormat::NF4, 48),
      ZINC_CONTAINS("layer.0002") && ZINC_CONTAINS("q_proj") && ZINC_CONTAINS("group size 48"));
  // cols 160 with group 64: only down_proj fails.
  REQUIRE_THROWS_WITH(plan_blob("layer.0002", llama_layer(), QuantFormat::Int4, 64),
                      ZINC_CONTAINS(kPrefix + "mlp.down_proj.weight"));
  REQUIRE_NOTHROW(plan_blob("layer.0002", llama_layer(), QuantFormat::None, 48));

  std::vector<ParamSpec> bias = {{"fc1.bias", {64}, DType::F16, true}};
  REQUIRE_THROWS_WITH(plan_blob("layer.0000", bias, QuantFormat::NF4, 32),
                      ZINC_CONTAINS("fc1.bias") && ZINC_CONTAINS("2-D"));
  REQUIRE_THROWS_WITH(plan_blob("layer.0000", bias, QuantFormat::None, 32),
                      ZINC_CONTAINS("fc1.bias"));
  std::vector<ParamSpec> ints = {{"position_ids", {64}, DType::I64, false}};
  REQUIRE_THROWS_WITH(plan_blob("embed", ints, QuantFormat::None, 32),
                      ZINC_CONTAINS("position_ids") && ZINC_CONTAINS("I64"));
  std::vector<ParamSpec> twice = {{"w", {4, 4}, DType::F16, false}, {"w", {4}, DType::F16, false}};
  REQUIRE_THROWS_WITH(plan_blob("embed", twice, QuantFormat::None, 32), ZINC_CONTAINS("twice"));
  std::vector<ParamSpec> empty_dim = {{"w", {0, 4}, DType::F16, false}};
  REQUIRE_THROWS_WITH(plan_blob("embed", empty_dim, QuantFormat::None, 32),
                      ZINC_CONTAINS("w has shape [0, 4]"));
  REQUIRE_THROWS_WITH(plan_blob("layer.0000", llama_layer(), QuantFormat::NF4, 0),
                      ZINC_CONTAINS("group size must be > 0"));
  REQUIRE(plan_blob("empty", {}, QuantFormat::NF4, 64).bytes == 0);
}

TEST_CASE("manifest JSON round trip", "[blob]") {
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const BlobManifest m = plan_blob("layer.0007", llama_layer(), f, 32);
    const std::string text = m.to_json().dump();
    REQUIRE_THAT(text, ZINC_CONTAINS(std::string("\"") + zinc::quant::quant_format_name(f) + "\""));
    require_same_manifest(BlobManifest::from_json(json::parse(text), "store.h5"), m);
  }
  const BlobManifest empty = plan_blob("empty", {}, QuantFormat::Int8, 64);
  require_same_manifest(BlobManifest::from_json(empty.to_json(), "x"), empty);
}

TEST_CASE("from_json rejects corrupted manifests, naming the source and the tensor", "[blob]") {
  const BlobManifest m = plan_blob("layer.0003", llama_layer(), QuantFormat::Int4, 32);
  const json good = m.to_json();
  const std::string src = "zinc.h5:/blobs/layer.0003";
  auto corrupt = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j;
  };
  auto rejects = [&](const json& j, const std::string& a, const std::string& b) {
    REQUIRE_THROWS_WITH(BlobManifest::from_json(j, src),
                        ZINC_CONTAINS(src) && ZINC_CONTAINS(a) && ZINC_CONTAINS(b));
  };
  const std::string k = m.params[1].name, v = m.params[2].name, last = m.params.back().name;

  rejects(corrupt([](json& j) { j["params"][1]["offset"] = j["params"][0]["offset"]; }), k,
          "overlaps");
  rejects(corrupt([](json& j) { j["bytes"] = j["bytes"].get<size_t>() - 1; }), last,
          "past the blob's end");
  rejects(corrupt([](json& j) { j["bytes"] = j["bytes"].get<size_t>() + 4096; }), "layer.0003",
          "last tensor ends at");
  rejects(
      corrupt([](json& j) { j["params"][2]["bytes"] = j["params"][2]["bytes"].get<size_t>() + 2; }),
      v, "do not match");
  rejects(corrupt([](json& j) { j["params"][2]["mins"] = 0; }), v, "do not match");
  rejects(corrupt([](json& j) { j["params"][2]["shape"] = {64, 32}; }), v, "do not match");
  rejects(corrupt([](json& j) {
            j["params"][1]["offset"] = j["params"][1]["offset"].get<size_t>() + 8;
          }),
          k, "not a multiple of 256");
  rejects(corrupt([](json& j) { j["params"][1]["offset"] = -2304; }), k, "non-negative");
  rejects(corrupt([](json& j) { j["params"][1]["format"] = "int8"; }), k, "differs");
  rejects(corrupt([](json& j) { j["params"][1]["format"] = "int5"; }), k, "unknown quantization");
  rejects(corrupt([&](json& j) { j["params"][8]["dtype"] = "I32"; }), last, "I32");
  rejects(corrupt([](json& j) { j["params"][1].erase("shape"); }), k, "missing field \"shape\"");
  rejects(corrupt([](json& j) { j["params"][1]["name"] = j["params"][0]["name"]; }),
          m.params[0].name, "twice");
  rejects(corrupt([](json& j) { j["group_size"] = 48; }), m.params[0].name, "group size 48");
  rejects(corrupt([](json& j) { j["group_size"] = 0; }), "layer.0003", "group_size");
  rejects(corrupt([](json& j) { j["format"] = "nf5"; }), "layer.0003", "nf5");
  rejects(corrupt([](json& j) { j["bytes"] = "27392"; }), "layer.0003", "\"bytes\"");
  rejects(corrupt([](json& j) { j["params"] = json::object(); }), "layer.0003", "array");
  REQUIRE_THROWS_WITH(BlobManifest::from_json(json::array(), src), ZINC_CONTAINS(src));
}

TEST_CASE("pack_slice of every cut equals the whole blob", "[blob]") {
  for (QuantFormat f : kAllFormats) {
    INFO("format " << zinc::quant::quant_format_name(f));
    const BlobManifest m = plan_blob("layer.0001", llama_layer(), f, 32);
    Sources src(m, 7);
    const std::vector<uint8_t> whole = pack_whole(m, src);
    require_gaps_zero(m, whole);

    std::vector<uint8_t> by_param(m.bytes, 0);  // pack_param, one tensor at a time
    for (const BlobParam& p : m.params) {
      pack_param(p, m.group_size, src.dtype.at(p.name), src.data.at(p.name).data(),
                 by_param.data());
    }
    REQUIRE(by_param == whole);

    check_every_cut(whole, [&](size_t offset, size_t bytes, uint8_t* dst) {
      pack_slice(m, offset, bytes, src.fetch(), dst);
    });
  }
}

TEST_CASE("pack_slice fetches only the tensors its slice touches", "[blob]") {
  const BlobManifest m = plan_blob("layer.0001", llama_layer(), QuantFormat::NF4, 32);
  Sources src(m, 3);
  std::vector<uint8_t> out(m.bytes + 8192);
  const BlobParam& q = m.params[0];
  const BlobParam& k = m.params[1];
  const BlobParam& v = m.params[2];

  pack_slice(m, q.offset + 10, 100, src.fetch(), out.data());
  REQUIRE(src.fetched == std::map<std::string, int>{{q.name, 1}});
  src.fetched.clear();
  pack_slice(m, k.offset + k.bytes - 1, 2, src.fetch(), out.data());
  REQUIRE(src.fetched == std::map<std::string, int>{{k.name, 1}, {v.name, 1}});
  src.fetched.clear();
  pack_slice(m, m.bytes, 8192, src.fetch(), out.data());  // all padding
  REQUIRE(src.fetched.empty());
  REQUIRE(std::all_of(out.begin(), out.begin() + 8192, [](uint8_t b) { return b == 0; }));
  pack_slice(m, 0, 0, src.fetch(), nullptr);
  REQUIRE(src.fetched.empty());

  auto no_data = [](const BlobParam&) { return SourceTensor{DType::F32, nullptr}; };
  REQUIRE_THROWS_WITH(pack_slice(m, 0, 16, no_data, out.data()), ZINC_CONTAINS(q.name));
  auto ints = [&](const BlobParam& p) {
    return SourceTensor{DType::I32, src.data.at(p.name).data()};
  };
  REQUIRE_THROWS_WITH(pack_slice(m, 0, 16, ints, out.data()), ZINC_CONTAINS("I32"));
}

TEST_CASE("a large matrix is quantized in row blocks that agree with one quantize call", "[blob]") {
  // 1030 x 2048 = 2.1M elements: more than one row block, the last one short.
  const int64_t rows = 1030, cols = 2048;
  const BlobManifest m = plan_blob(
      "embed", {{"embed_tokens.weight", {rows, cols}, DType::F16, true}}, QuantFormat::NF4, 64);
  const BlobParam& p = m.params[0];
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> w16(rows * cols);
  std::vector<float> w32(rows * cols);
  for (size_t i = 0; i < w16.size(); ++i) {
    w16[i] = zinc::quant::f32_to_f16(normal(rng));
    w32[i] = zinc::quant::f16_to_f32(w16[i]);
  }
  std::vector<uint8_t> blob(m.bytes, 0);
  pack_param(p, 64, DType::F16, w16.data(), blob.data());

  std::vector<uint8_t> codes(p.layout.codes_used_bytes);
  std::vector<uint16_t> scales(p.layout.scales_bytes / 2);
  zinc::quant::quantize(QuantFormat::NF4, 64, w32.data(), rows, cols, codes.data(), scales.data(),
                        nullptr);
  REQUIRE(std::memcmp(blob.data(), codes.data(), codes.size()) == 0);
  REQUIRE(std::memcmp(blob.data() + p.layout.scales_offset(), scales.data(),
                      p.layout.scales_bytes) == 0);

  auto fetch = [&](const BlobParam&) { return SourceTensor{DType::F16, w16.data()}; };
  for (int world : {3, 7}) {
    for (size_t align : {size_t{1}, kPageBytes}) {
      INFO("world " << world << ", align " << align);
      const size_t s = shard_bytes(m.bytes, world, align);
      std::vector<uint8_t> all(world * s);
      for (int r = 0; r < world; ++r) pack_slice(m, r * s, s, fetch, all.data() + r * s);
      REQUIRE(std::memcmp(all.data(), blob.data(), m.bytes) == 0);
    }
  }
}

TEST_CASE("param_view dequantizes to what pack_param stored", "[blob]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  const int64_t rows = 24, cols = 96;
  std::vector<float> w(rows * cols);
  for (float& x : w) x = normal(rng);

  SECTION("raw F32 is exact") {
    const BlobManifest m =
        plan_blob("b", {{"w", {rows, cols}, DType::F32, true}}, QuantFormat::None, 32);
    std::vector<uint8_t> blob(m.bytes);
    pack_param(m.params[0], 32, DType::F32, w.data(), blob.data());
    REQUIRE(unpack(m, "w", blob) == w);
  }
  SECTION("raw F16 and BF16 round like the scalar conversions") {
    for (DType t : {DType::F16, DType::BF16}) {
      const BlobManifest m = plan_blob("b", {{"w", {rows, cols}, t, false}}, QuantFormat::NF4, 32);
      std::vector<uint8_t> blob(m.bytes);
      pack_param(m.params[0], 32, DType::F32, w.data(), blob.data());
      const std::vector<float> got = unpack(m, "w", blob);
      for (size_t i = 0; i < w.size(); ++i) {
        const float expect = t == DType::F16
                                 ? zinc::quant::f16_to_f32(zinc::quant::f32_to_f16(w[i]))
                                 : zinc::quant::bf16_to_f32(zinc::quant::f32_to_bf16(w[i]));
        REQUIRE(got[i] == expect);
      }
      // The same dtype in and out is a plain copy.
      std::vector<uint8_t> again(m.bytes);
      pack_param(m.params[0], 32, t, blob.data(), again.data());
      REQUIRE(again == blob);
    }
  }
  SECTION("quantized equals dequantize(quantize(x))") {
    for (QuantFormat f : kAllFormats) {
      if (f == QuantFormat::None) continue;
      INFO("format " << zinc::quant::quant_format_name(f));
      const BlobManifest m = plan_blob("b", {{"w", {rows, cols}, DType::F16, true}}, f, 32);
      const BlobParam& p = m.params[0];
      std::vector<uint8_t> blob(m.bytes);
      pack_param(p, 32, DType::F32, w.data(), blob.data());

      std::vector<uint8_t> codes(p.layout.codes_used_bytes);
      std::vector<uint16_t> scales(p.layout.scales_bytes / 2), mins(p.layout.mins_bytes / 2);
      uint16_t* mins_ptr = mins.empty() ? nullptr : mins.data();
      zinc::quant::quantize(f, 32, w.data(), rows, cols, codes.data(), scales.data(), mins_ptr);
      REQUIRE(std::memcmp(blob.data(), codes.data(), codes.size()) == 0);
      std::vector<float> expect(w.size());
      zinc::quant::dequantize(f, 32, codes.data(), scales.data(), mins_ptr, rows, cols,
                              expect.data());
      REQUIRE(unpack(m, "w", blob) == expect);
      // A group size other than the manifest's is refused, not read out of bounds.
      REQUIRE_THROWS_WITH(param_view(p, 16, blob.data()),
                          ZINC_CONTAINS("param_view") && ZINC_CONTAINS("tensor w"));
      REQUIRE_THROWS_WITH(param_view(p, 32, nullptr), ZINC_CONTAINS("tensor w"));
    }
  }
}

TEST_CASE("param_view only computes addresses", "[blob]") {
  // A pointer that must never be read through (as a device pointer would be on the host).
  const auto* base = reinterpret_cast<const uint8_t*>(uintptr_t{1} << 40);
  const BlobManifest m = plan_blob("layer.0000", llama_layer(), QuantFormat::Int4, 32);
  const BlobParam& q = m.params[0];
  const zinc::quant::QuantView v = param_view(q, 32, base);
  CHECK(v.format == QuantFormat::Int4);
  CHECK(v.group == 32);
  CHECK(v.rows == 64);
  CHECK(v.cols == 64);
  CHECK(v.codes == base + q.offset);
  CHECK(reinterpret_cast<const uint8_t*>(v.scales) == v.codes + q.layout.codes_bytes);
  CHECK(reinterpret_cast<const uint8_t*>(v.mins) ==
        v.codes + q.layout.codes_bytes + q.layout.scales_bytes);
  CHECK(v.numel() == q.numel());

  const BlobParam& norm = m.params[7];  // input_layernorm.weight [64] F32
  const zinc::quant::QuantView n = param_view(norm, 32, base);
  CHECK(n.format == QuantFormat::None);
  CHECK(n.dtype == DType::F32);
  CHECK(n.rows == 1);
  CHECK(n.cols == 64);
  CHECK(n.codes == base + norm.offset);
  CHECK(n.scales == nullptr);
  CHECK(n.mins == nullptr);

  // Raw params of any rank: cols is the last dim, rows the rest; a scalar is [1, 1].
  const BlobManifest raw = plan_blob("embed",
                                     {{"wte", {5, 3, 4}, DType::BF16, false},
                                      {"scalar", {}, DType::F16, false}},
                                     QuantFormat::None, 64);
  const zinc::quant::QuantView r = param_view(raw.params[0], 64, base);
  CHECK(r.format == QuantFormat::None);
  CHECK(r.dtype == DType::BF16);
  CHECK(r.rows == 15);
  CHECK(r.cols == 4);
  const zinc::quant::QuantView one = param_view(raw.params[1], 64, base);
  CHECK(one.rows == 1);
  CHECK(one.cols == 1);
  CHECK(one.codes == base + raw.params[1].offset);
}

TEST_CASE("odd shapes: padded codes, aligned scales, every cut and the dummy filler agree",
          "[blob]") {
  for (const auto& c : zinc::test::quant_data::kOddShapes) {
    INFO("format " << zinc::quant::quant_format_name(c.f) << " [" << c.rows << ", " << c.cols
                   << "] group " << c.group);
    const BlobManifest m = plan_blob("layer.0000",
                                     {{"bias", {3}, DType::F16, false},
                                      {"w", {c.rows, c.cols}, DType::F16, true},
                                      {"w2", {c.rows, c.cols}, DType::F32, true},
                                      {"ln.weight", {c.cols}, DType::BF16, false}},
                                     c.f, c.group);
    const size_t n = static_cast<size_t>(c.rows * c.cols);
    const size_t used = n * zinc::quant::quant_bits(c.f) / 8;
    for (const BlobParam* p : {&m.params[1], &m.params[2]}) {
      REQUIRE(p->layout.codes_used_bytes == used);
      REQUIRE(p->layout.codes_bytes == round_up(used, zinc::quant::kCodesAlign));
      REQUIRE(p->layout.codes_bytes > used);  // these shapes are really padded
      REQUIRE(p->bytes == p->layout.total());
    }
    Sources src(m, 21);
    const std::vector<uint8_t> whole = pack_whole(m, src);
    require_gaps_zero(m, whole);

    // pack_param writes the padding as zeros (into a buffer that is not zero).
    std::vector<uint8_t> by_param(m.bytes, 0xEE);
    for (const BlobParam& p : m.params) {
      std::fill(by_param.begin() + p.offset, by_param.begin() + p.offset + p.bytes, 0xEE);
      pack_param(p, m.group_size, src.dtype.at(p.name), src.data.at(p.name).data(),
                 by_param.data());
      REQUIRE(std::equal(by_param.begin() + p.offset, by_param.begin() + p.offset + p.bytes,
                         whole.begin() + p.offset));
    }
    for (const BlobParam* p : {&m.params[1], &m.params[2]}) {
      for (size_t i = p->layout.codes_used_bytes; i < p->layout.codes_bytes; ++i) {
        REQUIRE(whole[p->offset + i] == 0);
      }
    }
    check_every_cut(whole, [&](size_t offset, size_t bytes, uint8_t* dst) {
      pack_slice(m, offset, bytes, src.fetch(), dst);
    });

    // The view's arrays are aligned in place, and it dequantizes to what quantize made.
    for (const BlobParam* p : {&m.params[1], &m.params[2]}) {
      INFO("tensor " << p->name);
      const zinc::quant::QuantView v = param_view(*p, m.group_size, whole.data());
      REQUIRE(reinterpret_cast<uintptr_t>(v.scales) % 2 == 0);
      REQUIRE(reinterpret_cast<uintptr_t>(v.mins) % 2 == 0);
      REQUIRE((v.mins != nullptr) == zinc::quant::quant_has_mins(c.f));
      std::vector<float> x(n);
      zinc::quant::convert(src.dtype.at(p->name), src.data.at(p->name).data(), DType::F32,
                           x.data(), n);
      std::vector<uint8_t> codes(p->layout.codes_used_bytes);
      std::vector<uint16_t> scales(p->layout.scales_bytes / 2), mins(p->layout.mins_bytes / 2);
      uint16_t* mins_ptr = mins.empty() ? nullptr : mins.data();
      zinc::quant::quantize(c.f, c.group, x.data(), c.rows, c.cols, codes.data(), scales.data(),
                            mins_ptr);
      std::vector<float> expect(n), got(n, -1.0f);
      zinc::quant::dequantize_reference(c.f, c.group, codes.data(), scales.data(), mins_ptr,
                                        c.rows, c.cols, expect.data());
      zinc::quant::dequantize(v, got.data());
      REQUIRE(got == expect);
    }
    REQUIRE(unpack(m, "ln.weight", whole).size() == static_cast<size_t>(c.cols));

    // The manifest round-trips; one with the old, unpadded codes is refused with a hint.
    require_same_manifest(BlobManifest::from_json(m.to_json(), "x"), m);
    json old = m.to_json();
    const BlobParam& w = m.params[1];
    old["params"][1]["codes"] = w.layout.codes_used_bytes;
    old["params"][1]["bytes"] = w.layout.codes_used_bytes + w.layout.scales_bytes + w.layout.mins_bytes;
    REQUIRE_THROWS_WITH(BlobManifest::from_json(old, "old.zinc"),
                        ZINC_CONTAINS("old.zinc") && ZINC_CONTAINS("tensor w") &&
                            ZINC_CONTAINS("not padded to a multiple of 16") &&
                            ZINC_CONTAINS("convert the model again"));

    // The dummy filler keeps the padding zero too, whatever the cut.
    std::vector<uint8_t> dummy(m.bytes, 0xEE);
    fill_dummy_slice(m, 0, m.bytes, 77, 0.02f, dummy.data());
    for (const BlobParam* p : {&m.params[1], &m.params[2]}) {
      for (size_t i = p->layout.codes_used_bytes; i < p->layout.codes_bytes; ++i) {
        REQUIRE(dummy[p->offset + i] == 0);
      }
      for (float x : unpack(m, p->name, dummy)) REQUIRE(std::isfinite(x));
    }
    check_every_cut(dummy, [&](size_t offset, size_t bytes, uint8_t* dst) {
      fill_dummy_slice(m, offset, bytes, 77, 0.02f, dst);
    });
  }
}
