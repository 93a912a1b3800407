// WeightProvider: how a model gets the weights of one blob (embedding, a layer, the head)
// just before it computes with them. The family code (llama.cpp, opt.cpp, bloom.cpp) says which
// blobs exist and what each holds (a BlobPlan); a provider decides where they live:
//   ResidentWeights  every blob dequantized once onto the backend (one rank, --quant none)
//   ZeroWeights      ZeRO-3: each rank holds its shard of every blob (quantized, on its
//                    tier); the weight stream all-gathers the blob into a reusable slot and
//                    acquire() dequantizes it there (runtime/model/zero_weights.hpp)
// Blob order is fixed: 0 = "embed", 1 + l = layer l, num_layers + 1 = "head".
//
// Contract: a table returned by acquire(b) stays valid until release(b); at most two
// blobs are held at once (the head holds "head" and, with tied embeddings, "embed"; the
// order is the decoder skeleton's, runtime/model/decoder.hpp). Every rank must acquire the
// same blobs in the same order (a ZeRO acquire is a collective). The tensors are ready on
// the backend's compute stream: ops queued there after acquire() may read them.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "partition/blob.hpp"
#include "partition/safetensors.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/model/config.hpp"

namespace zinc::runtime {

// Parameters of one blob by checkpoint tensor name, as compute-dtype backend tensors.
class ParamTable {
 public:
  void set(const std::string& name, const Tensor& t) { map_[name] = t; }
  // The tensor; throws naming the blob and tensor if the blob lacks it.
  const Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return map_.count(name) != 0; }
  std::string blob;

 private:
  std::unordered_map<std::string, Tensor> map_;
};

struct BlobPlan {
  std::string name;
  std::vector<partition::ParamSpec> params;
};

// Blob index helpers for the fixed order above.
inline int embed_blob() { return 0; }
inline int layer_blob(int layer) { return 1 + layer; }
inline int head_blob(const ModelConfig& c) { return c.num_layers + 1; }

class WeightProvider {
 public:
  virtual ~WeightProvider() = default;
  virtual const ParamTable& acquire(int blob) = 0;
  virtual void release(int blob) = 0;
  // Weight bytes this rank keeps on the backend (slots, resident blobs), for the metrics;
  // host tiers are reported by the provider itself (ZeroWeights::pinned()).
  virtual size_t resident_bytes() const = 0;
  // How many blobs may be held at once (>= 2 lets the decoder's lanes hold layer l + 1
  // while a later lane still computes layer l: decoder_lanes.cpp).
  virtual int max_held() const = 0;
};

// The family's blob plan: names, shapes and which tensors are quantizable matrices
// (dtype F16 placeholders; loaders fill in the checkpoint's dtypes).
std::vector<BlobPlan> blob_plan(const ModelConfig& config);

// The checkpoint tensor of a planned param, checked for shape and float dtype. Tries the
// Hugging Face name, then the original releases' ("decoder.*" for OPT's "model.decoder.*",
// "h.*" for BLOOM's "transformer.h.*").
const partition::TensorView& checkpoint_tensor(const partition::Checkpoint& ckpt,
                                               const partition::ParamSpec& p);

// Fills each ParamSpec's dtype from the checkpoint and checks presence and shape, before
// any weight is read (errors name the directory and tensor).
void bind_plan_to_checkpoint(std::vector<BlobPlan>& plan, const partition::Checkpoint& ckpt);

// Loads every planned tensor once, converted to the compute dtype.
std::unique_ptr<WeightProvider> make_resident_weights(const std::vector<BlobPlan>& plan,
                                                      const partition::Checkpoint& ckpt,
                                                      Backend& backend);

}  // namespace zinc::runtime
