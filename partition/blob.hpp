// Layer blobs: every parameter of one layer (or of the embedding / the head) packed into
// one contiguous byte range, so one all-gather moves a whole layer (docs/DESIGN.md).
//
// A BlobManifest lists the blob's parameters in order, each at an offset aligned to
// kParamAlign. A quantized matrix stores its codes, zero-padded to a multiple of
// quant::kCodesAlign bytes, then its fp16 scales, then its fp16 mins (quant/quantize.hpp
// gives the layout, QuantLayout the sizes), so scales and mins are 2-byte aligned in any
// blob; any other parameter (1-D norms and biases, and everything when the format is none)
// stores its elements raw in `dtype` (the checkpoint's F32/F16/BF16). param_view() turns a
// param of a gathered blob into a quant::QuantView.
// The manifest is partition-agnostic: the same blob is cut into shards for any world size
// (partition/shard.hpp). Manifests round-trip through JSON (the zinc store keeps them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"

namespace zinc::partition {

constexpr size_t kParamAlign = 256;  // bytes; keeps every code/scale array vector-aligned

// What the model family says a blob holds (runtime/model/<family>.cpp).
struct ParamSpec {
  std::string name;             // checkpoint tensor name
  std::vector<int64_t> shape;
  quant::DType dtype = quant::DType::F16;  // storage dtype when not quantized
  bool quantize = false;        // a matrix that is quantized when the format is not none
};

struct BlobParam {
  std::string name;
  std::vector<int64_t> shape;
  quant::QuantFormat format = quant::QuantFormat::None;  // None: raw elements in dtype
  quant::DType dtype = quant::DType::F16;
  size_t offset = 0;            // of the param's first byte in the blob
  quant::QuantLayout layout;    // quantized: codes at offset (padded), scales, mins after
  size_t bytes = 0;             // everything this param occupies (without alignment padding)
  int64_t numel() const;
};

struct BlobManifest {
  std::string name;             // "embed", "layer.0003", "head"
  quant::QuantFormat format = quant::QuantFormat::None;
  int group_size = 64;
  std::vector<BlobParam> params;
  size_t bytes = 0;             // the blob's size, unpadded (end of the last param)

  const BlobParam* find(const std::string& name) const;  // nullptr if absent
  nlohmann::json to_json() const;
  // Validates (offsets in order and in range, sizes consistent with shape and format);
  // `source` names the file in errors.
  static BlobManifest from_json(const nlohmann::json& j, const std::string& source);
};

// Lays out a blob. Params with quantize=true get `format` (cols % group checked: the error
// names the tensor); the others are stored raw in their dtype.
BlobManifest plan_blob(const std::string& name, const std::vector<ParamSpec>& params,
                       quant::QuantFormat format, int group_size);

// Writes param p's bytes into blob[p.offset, p.offset + p.bytes): quantizes (from an fp32
// copy of src) or converts src (F32/F16/BF16, p.numel() elements) to p.dtype.
void pack_param(const BlobParam& p, int group_size, quant::DType src_dtype, const void* src,
                uint8_t* blob);

// Produces bytes [offset, offset + bytes) of the blob into dst, packing only the params
// that overlap that range (each rank quantizes only its own slice); bytes past the end of
// the blob and alignment gaps are zero. `fetch` returns a param's source tensor
// (F32/F16/BF16, p.numel() elements).
struct SourceTensor {
  quant::DType dtype = quant::DType::F32;
  const void* data = nullptr;
};
using FetchTensor = std::function<SourceTensor(const BlobParam&)>;
void pack_slice(const BlobManifest& m, size_t offset, size_t bytes, const FetchTensor& fetch,
                uint8_t* dst);

// Param p of a whole (gathered) blob starting at `blob`, as a typed view: a quantized
// matrix [rows, cols] = shape with p.format, group_size and its codes, scales and mins at
// the layout's offsets; a raw param with format None, dtype p.dtype, cols = its last dim
// (rows = numel / cols; a 1-D param is one row) and its elements at codes. Only computes
// addresses, never reads through blob (which may be device memory); checks p against
// group_size first (a group size other than the one p was planned with throws, naming p).
// quant::dequantize(param_view(p, group, blob), dst) reads it back as fp32 on the host.
quant::QuantView param_view(const BlobParam& p, int group_size, const uint8_t* blob);

// Fills bytes [offset, offset + bytes) of a blob with deterministic random weights
// (the --dummy shapes): codes uniform, scales giving weights of about `stddev`,
// norm-like 1-D params near 1. Depends only on (seed, blob name, byte position), so
// every world size produces the same blob.
void fill_dummy_slice(const BlobManifest& m, size_t offset, size_t bytes, uint64_t seed,
                      float stddev, uint8_t* dst);

}  // namespace zinc::partition
