// Helpers shared by the blob tests (test_blob.cpp, test_dummy_blob.cpp): a LLaMA-shaped
// layer plan, fp32/fp16/bf16 source tensors, whole-blob packing, every-cut comparison,
// zero gaps, reading a param back through its view, and manifest equality.
#pragma once

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

namespace zinc::test::blob_util {

using namespace zinc::partition;
using nlohmann::json;
using zinc::quant::DType;
using zinc::quant::QuantFormat;

inline const QuantFormat kAllFormats[] = {QuantFormat::None, QuantFormat::Int8,    QuantFormat::Int8Asym,
                                   QuantFormat::Int4, QuantFormat::Int4Sym, QuantFormat::NF4};
inline const std::string kPrefix = "model.layers.0.";

// A LLaMA decoder layer: seven projections (quantizable) and two RMSNorm weights.
inline std::vector<ParamSpec> llama_layer(int64_t hidden = 64, int64_t inter = 160) {
  return {{kPrefix + "self_attn.q_proj.weight", {hidden, hidden}, DType::F16, true},
          {kPrefix + "self_attn.k_proj.weight", {hidden, hidden}, DType::F16, true},
          {kPrefix + "self_attn.v_proj.weight", {hidden, hidden}, DType::F16, true},
          {kPrefix + "self_attn.o_proj.weight", {hidden, hidden}, DType::F16, true},
          {kPrefix + "mlp.gate_proj.weight", {inter, hidden}, DType::F16, true},
          {kPrefix + "mlp.up_proj.weight", {inter, hidden}, DType::F16, true},
          {kPrefix + "mlp.down_proj.weight", {hidden, inter}, DType::F16, true},
          {kPrefix + "input_layernorm.weight", {hidden}, DType::F32, false},
          {kPrefix + "post_attention_layernorm.weight", {hidden}, DType::BF16, false}};
}

// Source tensors for a manifest, in a mix of dtypes (F32, F16, BF16 by turns) so packing
// converts; counts how often each is fetched.
struct Sources {
  std::map<std::string, std::vector<uint8_t>> data;
  std::map<std::string, DType> dtype;
  std::map<std::string, int> fetched;

  Sources(const BlobManifest& m, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    const DType kinds[] = {DType::F32, DType::F16, DType::BF16};
    size_t turn = 0;
    for (const BlobParam& p : m.params) {
      const DType t = kinds[turn++ % 3];
      std::vector<uint8_t> bytes(p.numel() * zinc::quant::dtype_size(t));
      for (int64_t i = 0; i < p.numel(); ++i) {
        const float x = p.shape.size() == 1 ? 1.0f + normal(rng) : normal(rng);
        if (t == DType::F32) {
          std::memcpy(&bytes[i * 4], &x, 4);
        } else {
          const uint16_t h =
              t == DType::F16 ? zinc::quant::f32_to_f16(x) : zinc::quant::f32_to_bf16(x);
          std::memcpy(&bytes[i * 2], &h, 2);
        }
      }
      data[p.name] = std::move(bytes);
      dtype[p.name] = t;
    }
  }
  FetchTensor fetch() {
    return [this](const BlobParam& p) {
      ++fetched[p.name];
      return SourceTensor{dtype.at(p.name), data.at(p.name).data()};
    };
  }
};

inline std::vector<uint8_t> pack_whole(const BlobManifest& m, Sources& src) {
  std::vector<uint8_t> blob(m.bytes, 0xEE);
  pack_slice(m, 0, m.bytes, src.fetch(), blob.data());
  return blob;
}

// Every shard of every cut (N = 1..5, several alignments), concatenated, equals `whole`
// followed by zero padding. `make` produces one slice.
inline void check_every_cut(const std::vector<uint8_t>& whole,
                     const std::function<void(size_t, size_t, uint8_t*)>& make) {
  for (size_t align : {size_t{1}, size_t{100}, kPageBytes}) {
    for (int world = 1; world <= 5; ++world) {
      INFO("world " << world << ", align " << align);
      const size_t s = shard_bytes(whole.size(), world, align);
      std::vector<uint8_t> all(world * s, 0xEE);
      for (int r = 0; r < world; ++r) {
        const ShardRange range = shard_range(whole.size(), world, r, align);
        make(range.offset, range.shard_bytes, all.data() + range.offset);
      }
      REQUIRE(std::memcmp(all.data(), whole.data(), whole.size()) == 0);
      REQUIRE(std::all_of(all.begin() + whole.size(), all.end(), [](uint8_t b) { return b == 0; }));
    }
  }
}

// Bytes of the blob outside every param are zero.
inline void require_gaps_zero(const BlobManifest& m, const std::vector<uint8_t>& blob) {
  size_t end = 0;
  for (const BlobParam& p : m.params) {
    for (size_t i = end; i < p.offset; ++i) REQUIRE(blob[i] == 0);
    end = p.offset + p.bytes;
  }
}

// Param `name` of a whole blob as fp32, through its view.
inline std::vector<float> unpack(const BlobManifest& m, const std::string& name,
                          const std::vector<uint8_t>& blob) {
  const BlobParam* p = m.find(name);
  REQUIRE(p != nullptr);
  std::vector<float> out(p->numel());
  zinc::quant::dequantize(param_view(*p, m.group_size, blob.data()), out.data());
  return out;
}

inline void require_same_manifest(const BlobManifest& a, const BlobManifest& b) {
  REQUIRE(a.name == b.name);
  REQUIRE(a.format == b.format);
  REQUIRE(a.group_size == b.group_size);
  REQUIRE(a.bytes == b.bytes);
  REQUIRE(a.params.size() == b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    const BlobParam &x = a.params[i], &y = b.params[i];
    REQUIRE(x.name == y.name);
    REQUIRE(x.shape == y.shape);
    REQUIRE(x.format == y.format);
    REQUIRE(x.dtype == y.dtype);
    REQUIRE(x.offset == y.offset);
    REQUIRE(x.bytes == y.bytes);
    REQUIRE(x.layout.codes_used_bytes == y.layout.codes_used_bytes);
    REQUIRE(x.layout.codes_bytes == y.layout.codes_bytes);
    REQUIRE(x.layout.scales_bytes == y.layout.scales_bytes);
    REQUIRE(x.layout.mins_bytes == y.layout.mins_bytes);
  }
}

}  // namespace zinc::test::blob_util
