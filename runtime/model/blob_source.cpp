#include "runtime/model/blob_source.hpp"

namespace zinc::runtime {

std::vector<partition::BlobManifest> plan_manifests(const std::vector<BlobPlan>& plan, quant::QuantFormat quant,
                                                    int group_size) {
  std::vector<partition::BlobManifest> out;
  for (const BlobPlan& b : plan) out.push_back(partition::plan_blob(b.name, b.params, quant, group_size));
  return out;
}

void pack_checkpoint_slice(const partition::Checkpoint& ckpt, const partition::BlobManifest& m, size_t offset,
                           size_t bytes, uint8_t* dst) {
  partition::pack_slice(
      m, offset, bytes,
      [&](const partition::BlobParam& p) {
        const partition::TensorView& t = checkpoint_tensor(ckpt, partition::ParamSpec{p.name, p.shape, p.dtype, false});
        return partition::SourceTensor{t.dtype, t.data};
      },
      dst);
}

void check_store_matches_plan(const std::string& path, const std::vector<BlobPlan>& plan,
                              const std::vector<partition::BlobManifest>& manifests) {
  ZINC_CHECK(plan.size() == manifests.size(),
             path << ": holds " << manifests.size() << " blobs, its config.json implies " << plan.size());
  for (size_t b = 0; b < plan.size(); ++b) {
    const partition::BlobManifest& m = manifests[b];
    ZINC_CHECK(m.name == plan[b].name, path << ": blob " << b << " is '" << m.name << "', expected '"
                                            << plan[b].name << "'");
    ZINC_CHECK(m.params.size() == plan[b].params.size(), path << ": blob " << m.name << " has " << m.params.size()
                                                              << " tensors, expected " << plan[b].params.size());
    for (size_t i = 0; i < m.params.size(); ++i)
      ZINC_CHECK(m.params[i].name == plan[b].params[i].name && m.params[i].shape == plan[b].params[i].shape,
                 path << ": blob " << m.name << " tensor " << m.params[i].name << " "
                      << partition::shape_to_string(m.params[i].shape) << " does not match the expected "
                      << plan[b].params[i].name << " " << partition::shape_to_string(plan[b].params[i].shape));
  }
}

}  // namespace zinc::runtime
