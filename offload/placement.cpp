#include "offload/placement.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>

#include "offload/memory_arena.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/hash.hpp"

namespace zinc::offload {

namespace {

// Among blobs of equal size and uses (a model's layers), keeps how many `home` gives `tier`
// but spaces them evenly in blob order (the forward's order): a run of resident layers
// would leave the copy stream idle (it only works `slots` blobs ahead) while the compute
// races through them; spread out, every streamed layer's copy overlaps the compute of
// the resident ones around it. Only blobs with `eligible` set take part.
void spread_evenly(std::vector<Tier>& home, Tier tier, Tier other, const std::vector<size_t>& bytes,
                   const std::vector<int>& uses, const std::vector<bool>& eligible) {
  std::map<std::pair<size_t, int>, std::vector<size_t>> groups;  // blob order within a group
  for (size_t b = 0; b < home.size(); ++b)
    if (eligible[b]) groups[{bytes[b], uses[b]}].push_back(b);
  for (const auto& [key, members] : groups) {
    const size_t m = members.size();
    size_t k = 0;
    for (size_t b : members) k += home[b] == tier;
    if (k == 0 || k == m) continue;
    for (size_t b : members) home[b] = other;
    for (size_t j = 0; j < k; ++j) home[members[(2 * j + 1) * m / (2 * k)]] = tier;
  }
}

}  // namespace

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::Device: return "device";
    case Tier::Cpu: return "cpu";
    case Tier::Nvme: return "nvme";
  }
  return "?";
}

Tier parse_offload(const std::string& name) {
  if (name == "none") return Tier::Device;
  if (name == "cpu") return Tier::Cpu;
  if (name == "nvme") return Tier::Nvme;
  ZINC_THROW("--offload '" << name << "' is not a tier (none, cpu, nvme)");
}

uint64_t placement_fingerprint(const Placement& p) {
  uint64_t h = fnv1a(&p.slots, sizeof p.slots);
  for (Tier t : p.home) {
    const uint8_t v = static_cast<uint8_t>(t);
    h = fnv1a(&v, 1, h);
  }
  const uint64_t n = p.home.size();
  return fnv1a(&n, sizeof n, h);
}

int Placement::resident_count() const { return count(Tier::Device); }

int Placement::count(Tier h) const {
  return static_cast<int>(std::count(home.begin(), home.end(), h));
}

std::string Placement::describe() const {
  std::ostringstream os;
  os << resident_count() << " of " << home.size() << " blobs resident ("
     << format_bytes(resident_bytes) << "), " << count(Tier::Cpu) << " in pinned host memory ("
     << format_bytes(host_bytes) << "), " << count(Tier::Nvme) << " on NVMe; " << slots
     << " gather slots of " << format_bytes(slot_bytes) << " + " << held << " dequantized of "
     << format_bytes(held_bytes) << "; device plan "
     << format_bytes(planned_bytes) << " (minimum " << format_bytes(minimum_bytes)
     << "); streamed per pass " << format_bytes(streamed_bytes_per_pass);
  if (nvme_bytes_per_pass) os << ", of it read from NVMe " << format_bytes(nvme_bytes_per_pass) << " (this rank)";
  return os.str();
}

Placement plan_placement(const PlacementRequest& req) {
  const size_t n = req.packed_bytes.size();
  ZINC_CHECK(n > 0 && req.unpacked_bytes.size() == n && req.uses_per_pass.size() == n,
             "placement: per-blob sizes disagree (" << n << ", " << req.unpacked_bytes.size()
                                                    << ", " << req.uses_per_pass.size() << ")");
  ZINC_CHECK(req.slots >= 1, "placement: " << req.slots << " gather slots");
  Placement p;
  p.slots = req.slots;
  p.home.assign(n, Tier::Cpu);  // streamed blobs' tier is settled below
  p.slot_bytes = *std::max_element(req.packed_bytes.begin(), req.packed_bytes.end());
  p.held = held_buffers(req.slots);
  p.held_bytes = *std::max_element(req.unpacked_bytes.begin(), req.unpacked_bytes.end());
  const size_t slots_bytes = static_cast<size_t>(req.slots) * p.slot_bytes + static_cast<size_t>(p.held) * p.held_bytes;
  p.minimum_bytes = slots_bytes + req.kv_bytes + req.activation_bytes;
  if (req.budget != 0 && req.budget < p.minimum_bytes)
    ZINC_THROW("--gpu-memory-budget " << format_bytes(req.budget) << " is too small: the minimum is "
               << format_bytes(p.minimum_bytes) << " (" << req.slots << " gather slots x "
               << format_bytes(p.slot_bytes) << " for the largest packed blob, " << p.held
               << " dequantized x " << format_bytes(p.held_bytes) << " for the largest unpacked one, KV cache "
               << format_bytes(req.kv_bytes) << ", activations " << format_bytes(req.activation_bytes)
               << "); raise the budget, lower --prefetch-depth or --batch-size, or use --kv-offload");

  // Most uses per byte first (of equal uses, the smaller blob); ties in blob order.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ua = static_cast<double>(req.uses_per_pass[a]) / std::max<size_t>(req.packed_bytes[a], 1);
    const double ub = static_cast<double>(req.uses_per_pass[b]) / std::max<size_t>(req.packed_bytes[b], 1);
    return ua > ub;
  });
  size_t free = req.budget == 0 ? SIZE_MAX : req.budget - p.minimum_bytes;
  int kept = 0;
  for (size_t b : order) {
    if (req.policy == PlacementRequest::Policy::None) break;
    if (req.policy == PlacementRequest::Policy::Fill && req.max_resident >= 0 && kept >= req.max_resident)
      break;
    if (req.packed_bytes[b] > free) {
      if (req.policy == PlacementRequest::Policy::All) {
        size_t all = 0;
        for (size_t s : req.packed_bytes) all += s;
        ZINC_THROW("--offload none keeps every blob on the device: " << format_bytes(all)
                   << " of packed weights plus the minimum " << format_bytes(p.minimum_bytes)
                   << " exceed --gpu-memory-budget " << format_bytes(req.budget)
                   << "; use --offload cpu or nvme");
      }
      continue;  // a smaller one may still fit
    }
    p.home[b] = Tier::Device;
    free -= req.budget == 0 ? 0 : req.packed_bytes[b];
    p.resident_bytes += req.packed_bytes[b];
    ++kept;
  }
  spread_evenly(p.home, Tier::Device, Tier::Cpu, req.packed_bytes, req.uses_per_pass, std::vector<bool>(n, true));
  p.planned_bytes = p.minimum_bytes + p.resident_bytes;
  for (size_t b = 0; b < n; ++b)
    if (!p.resident(b)) p.streamed_bytes_per_pass += req.packed_bytes[b] * req.uses_per_pass[b];

  // Host side: the streamed blobs' shards.
  const std::vector<size_t>& shard = req.shard_bytes.size() == n ? req.shard_bytes : req.packed_bytes;
  size_t host_need = 0;
  for (size_t b = 0; b < n; ++b)
    if (!p.resident(b)) host_need += shard[b];
  if (!req.nvme) {
    if (req.host_budget != 0 && host_need > req.host_budget)
      ZINC_THROW("--cpu-memory-budget " << format_bytes(req.host_budget) << " cannot hold this rank's "
                 << format_bytes(host_need) << " of streamed shards in pinned host memory; use "
                    "--offload nvme (shards beyond the budget are read from the store) or more ranks");
    p.host_bytes = host_need;  // every streamed blob stays Host
    return p;
  }
  size_t host_free = req.host_budget > req.staging_bytes ? req.host_budget - req.staging_bytes : 0;
  for (size_t b : order) {
    if (p.resident(b)) continue;
    if (shard[b] <= host_free) {
      p.home[b] = Tier::Cpu;
      host_free -= shard[b];
      p.host_bytes += shard[b];
    } else {
      p.home[b] = Tier::Nvme;
      p.nvme_bytes_per_pass += shard[b] * req.uses_per_pass[b];
    }
  }
  std::vector<bool> streamed(n);
  for (size_t b = 0; b < n; ++b) streamed[b] = !p.resident(b);
  spread_evenly(p.home, Tier::Cpu, Tier::Nvme, shard, req.uses_per_pass, streamed);
  return p;
}

}  // namespace zinc::offload
