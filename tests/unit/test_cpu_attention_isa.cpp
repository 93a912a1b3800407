// The CPU attention's instruction sets (runtime/backend/cpu/cpu_attention.hpp): which loops
// each cap runs for which shapes (the AVX-512 rungs, and the fallbacks for head sizes and
// groups they cannot take), and the AVX-512 / VNNI / BF16 loops against the
// double-precision reference and the scalar loops for every storage, MHA and grouped
// queries (H 8 / KVH 2, H 64 / KVH 8), key counts that are no multiple of the 16-row
// blocks, masked keys (left padding and holes), ALiBi, prefill and key chunks. Where the
// CPU lacks AVX-512 (or VNNI / BF16) the caps fall back and the same checks run on what
// is there (with a warning).
#include <algorithm>
#include <string>
#include <vector>

#include "quant/kv_quant.hpp"
#include "runtime/backend/cpu/cpu_attention.hpp"
#include "unit/cpu_attention_test_util.hpp"
#include "unit/test_util.hpp"

using namespace zinc;
using namespace zinc::test::attn;
using quant::KvStorage;
using runtime::CpuAttentionIsa;

namespace {

std::string isa_of(KvStorage s, int hd, int group, CpuAttentionIsa cap, bool keys) {
  OwnedKv kv(s, 1, 1, 4, hd, group, true);
  return runtime::cpu_attention_isa(kv.view, cap, keys);
}

// What this CPU runs at best, from a shape every rung takes.
std::string best_keys() { return isa_of(KvStorage::Int8, 128, 64, CpuAttentionIsa::Auto, true); }

}  // namespace

TEST_CASE("cpu_attention ISA names parse and print", "[attention]") {
  for (auto isa : kAllIsas)
    CHECK(runtime::parse_cpu_attention_isa(runtime::cpu_attention_isa_name(isa)) == isa);
  REQUIRE_THROWS_WITH(runtime::parse_cpu_attention_isa("avx1024"),
                      ZINC_CONTAINS("auto, avx512-vnni, avx512, avx2, scalar"));
}

TEST_CASE("cpu_attention ISA caps: each rung, and the fallbacks for shapes it cannot take",
          "[attention]") {
  const std::string best = best_keys();
  // A cap never runs more than itself, and the scalar loops take everything.
  for (KvStorage s : kAllStorages) {
    CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Scalar, true) == "scalar");
    CHECK(isa_of(s, 20, 20, CpuAttentionIsa::Auto, true) == "scalar");  // hd % 16 != 0
    const std::string avx2 = isa_of(s, 128, 64, CpuAttentionIsa::Avx2, true);
    CHECK((avx2 == "avx2" || avx2 == "scalar"));
  }
  if (best != "avx512-vnni") {
    WARN("this CPU runs " << best << " at best: the AVX-512 rungs are not checked here");
    return;
  }
  for (KvStorage s : kAllStorages) {
    const bool q = quant::kv_storage_quantized(s);
    // keys: VNNI for int8 / int4, avx512 loops for f32 / f16
    CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Auto, true) == (q ? "avx512-vnni" : "avx512"));
    CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Avx512Vnni, true) == (q ? "avx512-vnni" : "avx512"));
    CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Avx512, true) == "avx512");
    CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Avx2, true) == "avx2");
    // values: never VNNI; int4 values as BF16 dot products where the CPU has them
    const std::string v = isa_of(s, 128, 64, CpuAttentionIsa::Auto, false);
    if (s == KvStorage::Int4) {
      CHECK((v == "avx512-bf16" || v == "avx512"));
      CHECK(isa_of(s, 128, 64, CpuAttentionIsa::Avx512, false) == "avx512");
    } else {
      CHECK(v == "avx512");
    }
    // head_dim 48 or 80 (not a multiple of 32): the AVX2 loops
    CHECK(isa_of(s, 48, 16, CpuAttentionIsa::Auto, true) == "avx2");
    CHECK(isa_of(s, 80, 16, CpuAttentionIsa::Auto, false) == "avx2");
  }
  // quant groups of 16 (not a multiple of 32): AVX2; int4 rows of 96 elements (48 bytes):
  // no VNNI keys, the avx512 loops; groups over 256: no VNNI keys
  CHECK(isa_of(KvStorage::Int8, 128, 16, CpuAttentionIsa::Auto, true) == "avx2");
  CHECK(isa_of(KvStorage::Int4, 96, 32, CpuAttentionIsa::Auto, true) == "avx512");
  CHECK(isa_of(KvStorage::Int8, 96, 32, CpuAttentionIsa::Auto, true) == "avx512-vnni");
  CHECK(isa_of(KvStorage::Int8, 512, 512, CpuAttentionIsa::Auto, true) == "avx512");
  CHECK(isa_of(KvStorage::Int8, 512, 256, CpuAttentionIsa::Auto, true) == "avx512-vnni");
}

TEST_CASE("cpu_attention's AVX-512 loops equal the reference and the scalar loops", "[attention]") {
  if (best_keys() != "avx512-vnni")
    WARN("this CPU lacks AVX-512 VNNI: the caps below fall back to " << best_keys());
  // {name, batch, tq, t0, heads, kv_heads, head_dim, alibi, left padding, holes}
  const std::vector<Case> shapes = {
      {"MHA, 37 keys", 2, 1, 36, 8, 8, 128, false, {0, 5}, 0},
      {"MHA, head_dim 256, 40 keys, holes", 1, 1, 39, 4, 4, 256, false, {2}, 3},
      {"GQA 8/2, 100 keys, holes", 2, 1, 99, 8, 2, 128, false, {3, 0}, 7},
      {"GQA 64/8, 257 keys, ALiBi", 1, 1, 256, 64, 8, 128, true, {0}, 0},
      {"GQA 64/8, holes and padding", 2, 1, 70, 64, 8, 128, false, {0, 11}, 5},
      {"GQA 4/1, hd 64, ALiBi, holes", 2, 1, 40, 4, 1, 64, true, {2, 0}, 3},
      {"GQA 16/2, hd 256", 1, 1, 33, 16, 2, 256, false, {0}, 0},
      {"prefill, GQA 8/2", 2, 3, 20, 8, 2, 128, true, {0, 4}, 6},
      {"long context, key chunks, GQA 8/2", 1, 1, 1200, 8, 2, 128, false, {50}, 9},
      {"odd head_dim 48 (AVX2 fallback)", 2, 1, 30, 6, 3, 48, true, {0, 2}, 4},
      {"odd head_dim 20 (scalar fallback)", 1, 2, 17, 4, 2, 20, false, {1}, 0},
  };
  uint32_t seed = 7000;
  for (const Case& c : shapes) {
    const Problem pr(c, seed += 13);
    for (KvStorage s : kAllStorages) {
      // quant groups of 32, 64 and 128 where they divide head_dim (else one of head_dim)
      std::vector<int> groups;
      for (int g : {32, 64, 128})
        if (c.head_dim % g == 0 && (quant::kv_storage_quantized(s) || groups.empty()))
          groups.push_back(g);
      if (groups.empty()) groups.push_back(c.head_dim);
      for (int group : groups) {
        const bool head_major = (seed + group) % 2 == 0;
        OwnedKv k(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, group, head_major);
        OwnedKv v(s, c.batch, c.kv_heads, pr.t_max, c.head_dim, group, head_major);
        pr.fill(k.view, v.view);
        const std::string what =
            std::string(c.name) + ", " + quant::kv_storage_name(s) + " G " + std::to_string(group);
        const auto scalar = check_isa(pr, k.view, v.view, CpuAttentionIsa::Scalar, what);
        for (auto isa : {CpuAttentionIsa::Avx512Vnni, CpuAttentionIsa::Avx512}) {
          const auto out = check_isa(pr, k.view, v.view, isa, what);
          // f32 / f16 keep fp32 arithmetic throughout: the scalar loops' result to 2e-5
          if (!quant::kv_storage_quantized(s)) {
            size_t at = 0;
            INFO(what << ", cap " << runtime::cpu_attention_isa_name(isa) << " vs scalar");
            CHECK(max_abs_diff(out, scalar, &at) <= 2e-5f);
          }
        }
      }
    }
  }
}
