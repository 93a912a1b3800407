// partition/safetensors: files written by the test itself, read back, and every way a
// header can be wrong (each error must name the file).
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "partition/safetensors.hpp"
#include "quant/dtype.hpp"
#include "test_util.hpp"

using nlohmann::json;
using zinc::partition::Checkpoint;
using zinc::partition::SafetensorsFile;
using zinc::quant::DType;
using zinc::test::TempDir;
using zinc::test::write_file;

namespace {

struct Spec {
  std::string name;
  std::string dtype;  // safetensors spelling
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data
};

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string u64_le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header text (padded with spaces to 8 bytes, as the Python writer
// does) followed by `data`.
std::string raw_file(std::string header, const std::string& data) {
  while (header.size() % 8) header += ' ';
  return u64_le(header.size()) + header + data;
}

// A valid file: tensors laid out back to back in the order given.
std::string make_file(const std::vector<Spec>& specs, const json& metadata = nullptr) {
  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string data;
  for (const Spec& s : specs) {
    header[s.name] = {{"dtype", s.dtype},
                      {"shape", s.shape},
                      {"data_offsets", {data.size(), data.size() + s.bytes.size()}}};
    data += s.bytes;
  }
  return raw_file(header.dump(), data);
}

// One F32 tensor entry with explicit offsets, for the malformed cases.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t b, uint64_t e) {
  return "\"" + name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape +
         ", \"data_offsets\": [" + std::to_string(b) + ", " + std::to_string(e) + "]}";
}

}  // namespace

TEST_CASE("safetensors: F32, F16, BF16 and I64 tensors and metadata round trip", "[safetensors]") {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
  const std::vector<uint16_t> f16 = {zinc::quant::f32_to_f16(0.5f), zinc::quant::f32_to_f16(-3.0f)};
  const std::vector<uint16_t> bf16 = {zinc::quant::f32_to_bf16(100.0f)};
  const std::vector<int64_t> i64 = {-1, 1LL << 40, 7};
  const std::string path = dir.file("model.safetensors");
  write_file(path, make_file({{"a.weight", "F32", {2, 3}, raw_bytes(f32)},
                              {"b.half", "F16", {2}, raw_bytes(f16)},
                              {"c.bf", "BF16", {1, 1}, raw_bytes(bf16)},
                              {"d.ids", "I64", {3}, raw_bytes(i64)},
                              {"e.scalar", "F32", {}, raw_bytes(std::vector<float>{42.0f})},
                              {"f.empty", "F32", {0, 4}, ""}},
                             {{"format", "pt"}, {"note", "zinc test"}}));

  auto f = SafetensorsFile::open(path);
  REQUIRE(f->path() == path);
  REQUIRE(f->tensors().size() == 6);
  REQUIRE(f->metadata().at("format") == "pt");
  REQUIRE(f->metadata().at("note") == "zinc test");
  REQUIRE(f->find("missing") == nullptr);

  const auto* a = f->find("a.weight");
  REQUIRE(a);
  CHECK(a->name == "a.weight");
  CHECK(a->dtype == DType::F32);
  CHECK(a->shape == std::vector<int64_t>{2, 3});
  CHECK(a->numel() == 6);
  CHECK(a->bytes == 24);
  CHECK(*a->file == path);
  CHECK(std::memcmp(a->data, f32.data(), 24) == 0);

  const auto* b = f->find("b.half");
  REQUIRE(b);
  CHECK(b->dtype == DType::F16);
  float out[2];
  zinc::quant::convert_to_f32(b->dtype, b->data, out, 2);
  CHECK(out[0] == 0.5f);
  CHECK(out[1] == -3.0f);

  const auto* c = f->find("c.bf");
  REQUIRE(c);
  CHECK(c->dtype == DType::BF16);
  zinc::quant::convert_to_f32(c->dtype, c->data, out, 1);
  CHECK(out[0] == 100.0f);

  const auto* d = f->find("d.ids");
  REQUIRE(d);
  CHECK(d->dtype == DType::I64);
  CHECK(d->bytes == 24);
  CHECK(std::memcmp(d->data, i64.data(), 24) == 0);

  const auto* e = f->find("e.scalar");
  REQUIRE(e);
  CHECK(e->shape.empty());
  CHECK(e->numel() == 1);
  CHECK(e->bytes == 4);

  const auto* z = f->find("f.empty");
  REQUIRE(z);
  CHECK(z->numel() == 0);
  CHECK(z->bytes == 0);
  CHECK(zinc::partition::shape_to_string(z->shape) == "[0, 4]");
  CHECK(zinc::partition::shape_to_string({}) == "[]");
}

TEST_CASE("safetensors: malformed files are rejected with the path and the reason",
          "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  auto open = [&] { return SafetensorsFile::open(path); };

  SECTION("missing file") {
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("cannot open"));
  }
  SECTION("a directory") {
    REQUIRE_THROWS_WITH(SafetensorsFile::open(dir.path()),
                        ZINC_CONTAINS(dir.path()) && ZINC_CONTAINS("directory"));
  }
  SECTION("smaller than 8 bytes") {
    write_file(path, "abc");
    REQUIRE_THROWS_WITH(
        open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("3 bytes") && ZINC_CONTAINS("too small"));
  }
  SECTION("empty file") {
    write_file(path, "");
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("too small"));
  }
  SECTION("header length beyond the end of the file") {
    write_file(path, u64_le(9999999) + "{}" + std::string(30, ' '));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path + ": header length 9999999 exceeds the "
                                                     "file size 40 (truncated file?)"));
  }
  SECTION("header length over the 100 MB limit") {
    write_file(path, u64_le(1ULL << 40) + "{}");
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("exceeds the limit"));
  }
  SECTION("header is not JSON") {
    write_file(path, raw_file("{\"a\": [1, 2", ""));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("not valid JSON"));
  }
  SECTION("header is JSON but not an object") {
    write_file(path, raw_file("[1, 2, 3]", ""));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("not a JSON object"));
  }
  SECTION("unknown dtype") {
    write_file(path, raw_file("{" + entry("w", "Q4", "[2]", 0, 2) + "}", "xx"));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("tensor w") &&
                                    ZINC_CONTAINS("unknown dtype \"Q4\""));
  }
  SECTION("missing data_offsets") {
    write_file(path, raw_file("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", "xxxx"));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("data_offsets"));
  }
  SECTION("negative dimension") {
    write_file(path, raw_file("{" + entry("w", "F32", "[-1, 2]", 0, 8) + "}", std::string(8, 'x')));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("invalid shape [-1,2]"));
  }
  SECTION("data_offsets span does not match shape and dtype") {
    write_file(path,
               raw_file("{" + entry("w", "F32", "[2, 3]", 0, 20) + "}", std::string(24, 'x')));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("tensor w") &&
                                    ZINC_CONTAINS("spanning 20 bytes") &&
                                    ZINC_CONTAINS("F32 [2, 3] needs 24 bytes"));
  }
  SECTION("begin after end") {
    write_file(path, raw_file("{" + entry("w", "F32", "[0]", 8, 4) + "}", std::string(8, 'x')));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("invalid data_offsets"));
  }
  SECTION("offsets outside the data region") {
    write_file(path, raw_file("{" + entry("w", "F32", "[4]", 8, 24) + "}", std::string(16, 'x')));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("tensor w") &&
                                    ZINC_CONTAINS("outside the data region of 16 bytes"));
  }
  SECTION("overlapping tensors") {
    write_file(path, raw_file("{" + entry("a", "F32", "[2]", 0, 8) + ", " +
                                  entry("b", "F32", "[2]", 4, 12) + "}",
                              std::string(12, 'x')));
    REQUIRE_THROWS_WITH(open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("tensors a and b overlap"));
  }
  SECTION("metadata value that is not a string") {
    write_file(path, raw_file("{\"__metadata__\": {\"step\": 5}}", ""));
    REQUIRE_THROWS_WITH(
        open(), ZINC_CONTAINS(path) && ZINC_CONTAINS("__metadata__") && ZINC_CONTAINS("step"));
  }
}

TEST_CASE("safetensors: adjacent and zero-size tensors are not overlaps", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  write_file(path,
             raw_file("{" + entry("a", "F32", "[2]", 0, 8) + ", " + entry("e", "F32", "[0]", 4, 4) +
                          ", " + entry("b", "F16", "[2]", 8, 12) + "}",
                      std::string(12, 'x')));
  auto f = SafetensorsFile::open(path);
  CHECK(f->tensors().size() == 3);
  CHECK(f->metadata().empty());
}

TEST_CASE("Checkpoint: a single model.safetensors", "[safetensors]") {
  TempDir dir;
  const std::vector<float> w(12, 1.0f);
  write_file(dir.file("model.safetensors"),
             make_file({{"model.embed_tokens.weight", "F32", {4, 3}, raw_bytes(w)},
                        {"model.norm.weight", "F16", {3}, std::string(6, '\0')},
                        {"model.ids", "I64", {1}, std::string(8, '\0')}}));
  const Checkpoint ck = Checkpoint::open_dir(dir.path());
  CHECK(ck.dir() == dir.path());
  CHECK(ck.names() ==
        std::vector<std::string>{"model.embed_tokens.weight", "model.ids", "model.norm.weight"});
  CHECK(ck.total_bytes() == 48 + 6 + 8);
  CHECK(ck.has("model.norm.weight"));
  CHECK_FALSE(ck.has("lm_head.weight"));

  const auto& t = ck.get("model.embed_tokens.weight", {4, 3});
  CHECK(t.bytes == 48);
  CHECK(ck.get("model.norm.weight", {3}).dtype == DType::F16);

  REQUIRE_THROWS_WITH(ck.get("model.embed_tokens.weight", {3, 4}),
                      ZINC_CONTAINS(dir.path()) &&
                          ZINC_CONTAINS("tensor model.embed_tokens.weight has shape [4, 3], "
                                        "expected [3, 4]"));
  REQUIRE_THROWS_WITH(ck.get("model.embed_token.weight", {4, 3}),
                      ZINC_CONTAINS(dir.path() + ": tensor model.embed_token.weight is missing") &&
                          ZINC_CONTAINS("similar names: model.embed_tokens.weight"));
  REQUIRE_THROWS_WITH(ck.get("model.ids", {1}), ZINC_CONTAINS(dir.path()) &&
                                                    ZINC_CONTAINS("dtype I64") &&
                                                    ZINC_CONTAINS("F32, F16 or BF16"));
}

TEST_CASE("Checkpoint: directory without weights", "[safetensors]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(
      Checkpoint::open_dir(dir.path()),
      ZINC_CONTAINS(dir.path() + ": no model.safetensors or model.safetensors.index.json found"));
  REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.file("nope")),
                      ZINC_CONTAINS(dir.file("nope")) && ZINC_CONTAINS("does not exist"));
}

TEST_CASE("Checkpoint: sharded index", "[safetensors]") {
  TempDir dir;
  const std::string s1 = "model-00001-of-00002.safetensors";
  const std::string s2 = "model-00002-of-00002.safetensors";
  const std::vector<float> w(4, 2.0f);
  write_file(dir.file(s1),
             make_file({{"layers.0.w", "F32", {2, 2}, raw_bytes(w)},
                        {"layers.0.b", "F32", {2}, raw_bytes(std::vector<float>{1, 2})}}));
  write_file(dir.file(s2), make_file({{"layers.1.w", "BF16", {2, 2}, std::string(8, '\0')}}));
  json index = {{"metadata", {{"total_size", 32}}},
                {"weight_map", {{"layers.0.w", s1}, {"layers.0.b", s1}, {"layers.1.w", s2}}}};

  SECTION("every tensor is found in its shard") {
    write_file(dir.file("model.safetensors.index.json"), index.dump());
    const Checkpoint ck = Checkpoint::open_dir(dir.path() + "/");
    CHECK(ck.names().size() == 3);
    CHECK(ck.total_bytes() == 16 + 8 + 8);
    CHECK(*ck.get("layers.0.w", {2, 2}).file == dir.file(s1));
    CHECK(*ck.get("layers.1.w", {2, 2}).file == dir.file(s2));
    CHECK(ck.get("layers.1.w", {2, 2}).dtype == DType::BF16);
  }
  SECTION("a shard file is missing") {
    index["weight_map"]["layers.2.w"] = "model-00003-of-00003.safetensors";
    write_file(dir.file("model.safetensors.index.json"), index.dump());
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS("model.safetensors.index.json") &&
                            ZINC_CONTAINS("shard model-00003-of-00003.safetensors") &&
                            ZINC_CONTAINS("layers.2.w") && ZINC_CONTAINS("is missing"));
  }
  SECTION("a tensor is missing from its shard") {
    index["weight_map"]["layers.1.b"] = s2;
    write_file(dir.file("model.safetensors.index.json"), index.dump());
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS("tensor layers.1.b is listed in shard " + s2) &&
                            ZINC_CONTAINS(dir.file(s2) + " does not contain it"));
  }
  SECTION("the index is not valid JSON") {
    write_file(dir.file("model.safetensors.index.json"), "{\"weight_map\": ");
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS(dir.path()) && ZINC_CONTAINS("index.json: not valid JSON"));
  }
  SECTION("the index has no weight_map") {
    write_file(dir.file("model.safetensors.index.json"), "{\"metadata\": {}}");
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()), ZINC_CONTAINS("no \"weight_map\""));
  }
  SECTION("shard names that leave the model directory are refused, naming the index and the entry") {
    // A valid shard outside the directory, so that following the name would succeed.
    TempDir outside;
    write_file(outside.file("evil.safetensors"), make_file({{"layers.1.w", "BF16", {2, 2}, std::string(8, '\0')}}));
    const std::string up = "../" + std::filesystem::path(outside.path()).filename().string() + "/evil.safetensors";
    for (const std::string& name : {up, outside.file("evil.safetensors"), "sub/../" + up, std::string(".."),
                                    std::string("")}) {
      json bad = index;
      bad["weight_map"]["layers.1.w"] = name;
      write_file(dir.file("model.safetensors.index.json"), bad.dump());
      INFO(name);
      REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                          ZINC_CONTAINS(dir.file("model.safetensors.index.json") + ": weight_map entry for layers.1.w") &&
                              ZINC_CONTAINS("names shard \"" + name + "\", which is not inside the model directory"));
    }
  }
  SECTION("a shard in a subdirectory of the model directory is found") {
    std::filesystem::create_directory(dir.file("sub"));
    std::filesystem::rename(dir.file(s2), dir.file("sub/" + s2));
    index["weight_map"]["layers.1.w"] = "sub/" + s2;
    write_file(dir.file("model.safetensors.index.json"), index.dump());
    CHECK(*Checkpoint::open_dir(dir.path()).get("layers.1.w", {2, 2}).file == dir.file("sub/" + s2));
  }
  SECTION("a corrupt shard names the shard") {
    write_file(dir.file("model.safetensors.index.json"), index.dump());
    write_file(dir.file(s2), "short");
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS(dir.file(s2)) && ZINC_CONTAINS("too small"));
  }
}
