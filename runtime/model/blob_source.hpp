// Blobs from a model's plan: the manifests a plan lays out, the bytes of a blob packed
// from a Hugging Face checkpoint, and the check that a zinc store holds what the plan
// expects. Used by the loader (runtime/model/loader.hpp) and by `zinc convert`.
#pragma once

#include <string>
#include <vector>

#include "partition/blob.hpp"
#include "partition/safetensors.hpp"
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

// Manifests of every blob of the plan (HF: dtypes from the checkpoint already bound).
std::vector<partition::BlobManifest> plan_manifests(const std::vector<BlobPlan>& plan, quant::QuantFormat quant,
                                                    int group_size);

// Bytes [offset, offset + bytes) of blob `m` made from an HF checkpoint (each rank
// quantizes only its own slice).
void pack_checkpoint_slice(const partition::Checkpoint& ckpt, const partition::BlobManifest& m, size_t offset,
                           size_t bytes, uint8_t* dst);

// A store's blobs must be exactly what this build's family code expects of its config;
// throws naming `path`, the blob and the tensor otherwise.
void check_store_matches_plan(const std::string& path, const std::vector<BlobPlan>& plan,
                              const std::vector<partition::BlobManifest>& manifests);

}  // namespace zinc::runtime
