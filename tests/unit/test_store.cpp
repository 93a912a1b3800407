// partition/store (the zinc store, HDF5) and partition/crc32c: stores written by the test,
// read back shard by shard for every world size, and the ways a file can be damaged or
// wrong (every error must name the file).
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "partition/blob.hpp"
#include "partition/store.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "unit/test_util.hpp"

// The two implementations behind crc32c(), defined in partition/crc32c.cpp (not part of the
// public store header): declared here so the test can compare them.
namespace zinc::partition::detail {
uint32_t crc32c_portable(const void* data, size_t bytes, uint32_t crc);
uint32_t crc32c_sse42(const void* data, size_t bytes, uint32_t crc);
bool crc32c_has_sse42();
}  // namespace zinc::partition::detail

namespace fs = std::filesystem;
using zinc::partition::BlobManifest;
using zinc::partition::crc32c;
using zinc::partition::ParamSpec;
using zinc::partition::StoreInfo;
using zinc::partition::StoreReader;
using zinc::partition::StoreWriter;
using zinc::quant::DType;
using zinc::quant::QuantFormat;
using zinc::test::TempDir;
using zinc::test::write_file;

namespace {

constexpr size_t kPage = 4096;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

struct Blob {
  BlobManifest manifest;
  std::vector<uint8_t> data;
};

// Three blobs of odd sizes: 9546 bytes (3 pages, the last partial), about 545 KB (with an
// NF4 matrix in the middle), and 2000 bytes (less than one page).
std::vector<Blob> make_blobs() {
  using zinc::partition::plan_blob;
  std::vector<Blob> blobs;
  blobs.push_back(
      {plan_blob("embed", {{"tok", {37, 129}, DType::F16, false}}, QuantFormat::NF4, 64), {}});
  blobs.push_back({plan_blob("layer.0000",
                             {{"a", {3, 1001}, DType::F32, false},
                              {"b", {77}, DType::F16, false},
                              {"w", {64, 192}, DType::F16, true},
                              {"big", {513, 517}, DType::F16, false}},
                             QuantFormat::NF4, 64),
                   {}});
  blobs.push_back(
      {plan_blob("head", {{"h", {1000}, DType::BF16, false}}, QuantFormat::NF4, 64), {}});
  uint32_t seed = 1;
  for (Blob& b : blobs) b.data = random_bytes(b.manifest.bytes, seed++);
  return blobs;
}

StoreInfo make_info(const std::vector<Blob>& blobs) {
  StoreInfo info;
  info.quant = QuantFormat::NF4;
  info.group_size = 64;
  info.created_by = "zinc test_store";
  info.config_json = R"({"model_type": "llama", "hidden_size": 64, "note": "ünïcode"})";
  info.generation_config_json = "";  // absent
  // Several MB, to exercise the big-text path.
  std::string tok = R"({"model": {"vocab": {)";
  for (int i = 0; tok.size() < 3'000'000; ++i)
    tok += "\"tok" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  tok += "\"end\": 0}}}";
  info.tokenizer_json = tok;
  for (const Blob& b : blobs) info.blob_order.push_back(b.manifest.name);
  return info;
}

void write_store(const std::string& path, const std::vector<Blob>& blobs, const StoreInfo& info) {
  StoreWriter w(path, info);
  for (const Blob& b : blobs) w.write_blob(b.manifest, b.data.data());
  w.finish();
}

// S = round_up(ceil(B / N), 4096): rank r owns [r*S, (r+1)*S) of the padded blob.
size_t shard_size(size_t blob_bytes, int world) {
  const size_t per_rank = (blob_bytes + world - 1) / world;
  return (per_rank + kPage - 1) / kPage * kPage;
}

void patch_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
  REQUIRE(f);
}

// Gives blob `blob` the manifest text `text` and, with `fix_crc`, its matching checksum (a
// store written so, rather than one changed afterwards).
void replace_manifest(const std::string& path, const std::string& blob, const std::string& text,
                      bool fix_crc) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t ds = H5Dopen2(f, ("blobs/" + blob).c_str(), H5P_DEFAULT);
  REQUIRE(H5Adelete(ds, "manifest") >= 0);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, text.size());
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(ds, "manifest", type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, type, text.c_str());
  H5Aclose(a);
  if (fix_crc) {
    const uint32_t crc = crc32c(text.data(), text.size());
    hid_t c = H5Aopen(ds, "manifest_crc32c", H5P_DEFAULT);
    REQUIRE(H5Awrite(c, H5T_NATIVE_UINT32, &crc) >= 0);
    H5Aclose(c);
  }
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(ds);
  H5Fclose(f);
}

// Overwrites the text dataset `name` in place with `text` of the same length (its crc32c
// attribute is left as it was: a store changed after it was written).
void overwrite_text(const std::string& path, const char* name, const std::string& text) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  REQUIRE(ds >= 0);
  hid_t type = H5Dget_type(ds);
  REQUIRE(H5Tget_size(type) == text.size());
  REQUIRE(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) >= 0);
  H5Tclose(type);
  H5Dclose(ds);
  H5Fclose(f);
}

// Opens the store and reads every blob whole (so a failure either at open or at read shows).
void open_and_read_all(const std::string& path) {
  StoreReader r(path);
  for (size_t i = 0; i < r.manifests().size(); ++i) {
    std::vector<uint8_t> buf(r.manifests()[i].bytes);
    r.read_slice(i, 0, buf.size(), buf.data());
  }
}

}  // namespace

TEST_CASE("crc32c: known vectors", "[store][crc32c]") {
  const std::string digits = "123456789";
  CHECK(crc32c(digits.data(), digits.size()) == 0xE3069283u);
  CHECK(crc32c(nullptr, 0) == 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  std::vector<uint8_t> buf(32, 0x00);
  CHECK(crc32c(buf.data(), buf.size()) == 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), 0xFF);
  CHECK(crc32c(buf.data(), buf.size()) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  CHECK(crc32c(buf.data(), buf.size()) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  CHECK(crc32c(buf.data(), buf.size()) == 0x113FDB5Cu);
  for (const auto& impl :
       {&zinc::partition::detail::crc32c_portable, &zinc::partition::detail::crc32c_sse42}) {
    if (impl == &zinc::partition::detail::crc32c_sse42 &&
        !zinc::partition::detail::crc32c_has_sse42()) {
      continue;
    }
    CHECK(impl(digits.data(), digits.size(), 0) == 0xE3069283u);
  }
}

TEST_CASE("crc32c: chaining equals one pass over the concatenation", "[store][crc32c]") {
  const std::vector<uint8_t> data = random_bytes(100'003, 7);
  const uint32_t whole = crc32c(data.data(), data.size());
  std::mt19937 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t cut = rng() % (data.size() + 1);
    const uint32_t first = crc32c(data.data(), cut);
    CHECK(crc32c(data.data() + cut, data.size() - cut, first) == whole);
  }
  // Three pieces, one of them empty.
  uint32_t c = crc32c(data.data(), 4096);
  c = crc32c(data.data() + 4096, 0, c);
  c = crc32c(data.data() + 4096, data.size() - 4096, c);
  CHECK(c == whole);
}

TEST_CASE("crc32c: the SSE4.2 path equals the slicing-by-8 table path", "[store][crc32c]") {
  using zinc::partition::detail::crc32c_portable;
  using zinc::partition::detail::crc32c_sse42;
  const std::vector<uint8_t> data = random_bytes(3 * 8192 * 3 + 4099, 3);
  // The public entry agrees with the table path whatever it dispatched to.
  CHECK(crc32c(data.data(), data.size()) == crc32c_portable(data.data(), data.size(), 0));
  if (!zinc::partition::detail::crc32c_has_sse42()) {
    WARN("no SSE4.2 on this CPU: only the table path is tested");
    return;
  }
  std::mt19937 rng(5);
  // Odd lengths around every block boundary of the 3-stream loops, at odd start addresses.
  std::vector<size_t> lengths = {1,   3,    7,    9,     255,   767,
                                 769, 4095, 4097, 24575, 24577, 3 * 8192 * 3 + 1};
  for (int i = 0; i < 200; ++i) lengths.push_back((rng() % (data.size() - 8)) | 1u);
  for (size_t len : lengths) {
    for (size_t start : {size_t{0}, size_t{1}, size_t{3}, size_t{7}}) {
      if (start + len > data.size()) continue;
      const uint32_t seed = rng();
      INFO("length " << len << ", start " << start << ", seed crc " << seed);
      REQUIRE(crc32c_sse42(data.data() + start, len, seed) ==
              crc32c_portable(data.data() + start, len, seed));
    }
  }
}

TEST_CASE("store: blobs, infos and every shard for N = 1..4 round-trip", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  const StoreInfo info = make_info(blobs);
  write_store(path, blobs, info);
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));

  StoreReader r(path);
  CHECK(r.path() == path);
  CHECK(r.info().version == 2);
  CHECK(r.info().quant == QuantFormat::NF4);
  CHECK(r.info().group_size == 64);
  CHECK(r.info().created_by == info.created_by);
  CHECK(r.info().config_json == info.config_json);
  CHECK(r.info().generation_config_json.empty());
  CHECK(r.info().tokenizer_json == info.tokenizer_json);
  CHECK(r.info().blob_order == info.blob_order);
  REQUIRE(r.manifests().size() == blobs.size());

  std::ifstream raw(path, std::ios::binary);
  for (size_t i = 0; i < blobs.size(); ++i) {
    const Blob& b = blobs[i];
    const size_t bytes = b.manifest.bytes;
    INFO("blob " << b.manifest.name << " (" << bytes << " bytes)");
    CHECK(r.manifests()[i].to_json() == b.manifest.to_json());

    // 4 KiB aligned, and the bytes really are there (what the O_DIRECT tier relies on).
    const uint64_t off = r.file_offset(i);
    CHECK(off % kPage == 0);
    std::vector<uint8_t> direct(bytes);
    raw.seekg(static_cast<std::streamoff>(off));
    raw.read(reinterpret_cast<char*>(direct.data()), static_cast<std::streamsize>(bytes));
    CHECK(direct == b.data);

    for (int world = 1; world <= 4; ++world) {
      const size_t s = shard_size(bytes, world);
      for (int rank = 0; rank < world; ++rank) {
        INFO("world " << world << ", rank " << rank << ", shard " << s << " bytes");
        const size_t begin = rank * s;
        std::vector<uint8_t> got(s, 0xEE);
        r.read_slice(i, begin, s, got.data());
        const size_t valid = begin < bytes ? std::min(s, bytes - begin) : 0;
        std::vector<uint8_t> want(s, 0);
        std::copy_n(b.data.begin() + std::min(begin, bytes), valid, want.begin());
        REQUIRE(got == want);
      }
    }
    // A slice ending inside a page (not at the blob's end) and one starting past the end.
    if (bytes > kPage + 100) {
      std::vector<uint8_t> got(kPage + 100);
      r.read_slice(i, kPage, got.size(), got.data());
      const size_t valid = std::min(got.size(), bytes - kPage);
      CHECK(std::equal(got.begin(), got.begin() + valid, b.data.begin() + kPage));
    }
    std::vector<uint8_t> past(kPage, 0xEE);
    r.read_slice(i, (bytes / kPage + 1) * kPage, past.size(), past.data());
    CHECK(std::all_of(past.begin(), past.end(), [](uint8_t v) { return v == 0; }));
  }
  std::vector<uint8_t> buf(kPage);
  CHECK_THROWS_WITH(r.read_slice(0, 100, 10, buf.data()),
                    ZINC_CONTAINS(path) && ZINC_CONTAINS("4096"));
  CHECK_THROWS_WITH(r.read_slice(3, 0, 10, buf.data()), ZINC_CONTAINS("out of range"));
}

TEST_CASE("store: the blob order defaults to the writing order", "[store]") {
  TempDir dir;
  const std::string path = dir.file("m.zinc");
  std::vector<Blob> blobs = make_blobs();
  StoreInfo info = make_info(blobs);
  info.blob_order.clear();
  info.tokenizer_json.clear();
  write_store(path, blobs, info);
  StoreReader r(path);
  CHECK(r.info().blob_order == std::vector<std::string>{"embed", "layer.0000", "head"});
  CHECK(r.info().tokenizer_json.empty());
}

TEST_CASE("store: PATH.tmp is removed and PATH never created without finish()", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  const StoreInfo info = make_info(blobs);
  {
    StoreWriter w(path, info);
    w.write_blob(blobs[0].manifest, blobs[0].data.data());
    CHECK(fs::exists(path + ".tmp"));
  }
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_FALSE(fs::exists(path));

  // A stale PATH.tmp from a crashed run is replaced.
  write_file(path + ".tmp", "stale");
  write_store(path, blobs, info);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_NOTHROW(StoreReader(path));

  // finish() refuses a blob_order naming a blob that was never written; nothing is left.
  const std::string other = dir.file("other.zinc");
  {
    StoreWriter w(other, info);
    w.write_blob(blobs[0].manifest, blobs[0].data.data());
    CHECK_THROWS_WITH(w.finish(), ZINC_CONTAINS("layer.0000") && ZINC_CONTAINS("never written"));
    CHECK_THROWS_WITH(w.write_blob(blobs[0].manifest, blobs[0].data.data()),
                      ZINC_CONTAINS("written twice"));
  }
  CHECK_FALSE(fs::exists(other + ".tmp"));
  CHECK_FALSE(fs::exists(other));
}

TEST_CASE("store: a corrupted byte fails the CRC-32C check of its page", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  write_store(path, blobs, make_info(blobs));
  uint64_t off = 0;
  {
    StoreReader r(path);
    off = r.file_offset(1);
  }
  patch_byte(path, off + 17 * kPage + 123);  // page 17 of layer.0000

  StoreReader r(path);  // opening does not read the blobs
  const size_t bytes = r.manifests()[1].bytes;
  std::vector<uint8_t> buf(bytes);
  CHECK_THROWS_WITH(r.read_slice(1, 0, bytes, buf.data()),
                    ZINC_CONTAINS(path) &&
                        ZINC_CONTAINS("blob layer.0000 page 17 fails its CRC-32C") &&
                        ZINC_CONTAINS("corrupted"));
  // A shard that does not include page 17 reads fine; one whose end cuts page 17 does not.
  CHECK_NOTHROW(r.read_slice(1, 0, 17 * kPage, buf.data()));
  CHECK_NOTHROW(r.read_slice(1, 18 * kPage, 5 * kPage, buf.data()));
  CHECK_THROWS_WITH(r.read_slice(1, 16 * kPage, kPage + 10, buf.data()), ZINC_CONTAINS("page 17"));
  // The other blobs are untouched.
  std::vector<uint8_t> head(r.manifests()[2].bytes);
  CHECK_NOTHROW(r.read_slice(2, 0, head.size(), head.data()));
  CHECK(head == blobs[2].data);
}

TEST_CASE("store: check_pages reads every page and lists the bad ones", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  write_store(path, blobs, make_info(blobs));
  uint64_t off = 0;
  size_t pages = 0;
  {
    StoreReader r(path);
    off = r.file_offset(1);
    pages = r.check_pages(1, 10).pages;
    CHECK(pages == (blobs[1].manifest.bytes + kPage - 1) / kPage);
    for (size_t i = 0; i < blobs.size(); ++i) CHECK(r.check_pages(i, 10).failed == 0);
  }
  // Pages 3, 17 and the last (partial) one of layer.0000.
  for (size_t p : {size_t{17}, size_t{3}, pages - 1}) patch_byte(path, off + p * kPage + 5);
  StoreReader r(path);
  const StoreReader::PageCheck all = r.check_pages(1, 10);
  CHECK(all.pages == pages);
  CHECK(all.failed == 3);
  CHECK(all.first_failed == std::vector<size_t>{3, 17, pages - 1});
  const StoreReader::PageCheck two = r.check_pages(1, 2);
  CHECK(two.failed == 3);
  CHECK(two.first_failed == std::vector<size_t>{3, 17});
  CHECK(r.check_pages(0, 10).failed == 0);
  CHECK(r.check_pages(2, 10).failed == 0);
}

TEST_CASE("store: a truncated file is an error naming the file", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  write_store(path, blobs, make_info(blobs));
  fs::resize_file(path, fs::file_size(path) / 2);
  CHECK_THROWS_WITH(open_and_read_all(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("truncated"));
}

TEST_CASE("store: files that are not zinc stores", "[store]") {
  TempDir dir;
  SECTION("not HDF5 at all") {
    const std::string path = dir.file("config.json");
    write_file(path, R"({"model_type": "llama"})");
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("not an HDF5 file"));
  }
  SECTION("missing") {
    const std::string path = dir.file("nothing.zinc");
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("No such file"));
  }
  SECTION("HDF5 without the version attribute") {
    const std::string path = dir.file("plain.h5");
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    hid_t g = H5Gcreate2(f, "blobs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(g >= 0);
    H5Gclose(g);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("not a zinc store") &&
                                             ZINC_CONTAINS("zinc_store_version"));
  }
}

TEST_CASE("store: structural damage is found when the store is opened", "[store]") {
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  write_store(path, blobs, make_info(blobs));
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  SECTION("a blob listed in blob_order is missing") {
    REQUIRE(H5Ldelete(f, "blobs/head", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("blob head") &&
                                             ZINC_CONTAINS("missing"));
  }
  SECTION("a checksum list of the wrong length") {
    REQUIRE(H5Ldelete(f, "checksums/embed", H5P_DEFAULT) >= 0);
    const hsize_t n = 2;  // embed has 3 pages
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t ds = H5Dcreate2(f, "checksums/embed", H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    REQUIRE(ds >= 0);
    const uint32_t zeros[2] = {0, 0};
    H5Dwrite(ds, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("2 checksums") &&
                                             ZINC_CONTAINS("3 pages"));
  }
  SECTION("an unsupported version") {
    hid_t a = H5Aopen(f, "zinc_store_version", H5P_DEFAULT);
    const int v = 99;
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("version 99"));
  }
  SECTION("a manifest that is not JSON (with a matching checksum)") {
    H5Fclose(f);
    replace_manifest(path, "embed", "{oops", true);
    CHECK_THROWS_WITH(StoreReader(path),
                      ZINC_CONTAINS(path) && ZINC_CONTAINS("blob embed") && ZINC_CONTAINS("JSON"));
  }
  SECTION("a version 1 store (no checksums of its texts) is refused") {
    hid_t a = H5Aopen(f, "zinc_store_version", H5P_DEFAULT);
    const int v = 1;
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("version 1") &&
                                             ZINC_CONTAINS("checksums") &&
                                             ZINC_CONTAINS("convert the model again"));
  }
}

TEST_CASE("store: odd-shaped quantized matrices keep their padded layout", "[store]") {
  // int8 [3, 5] group 5: 15 code bytes padded to 16, so the scales are 2-byte aligned in
  // the blob read back, and a view of it dequantizes to the blob that was written.
  using zinc::partition::param_view;
  TempDir dir;
  const std::string path = dir.file("odd.zinc");
  Blob b{zinc::partition::plan_blob("layer.0000",
                                    {{"b", {3}, DType::F16, false},
                                     {"w", {3, 5}, DType::F16, true},
                                     {"w2", {3, 5}, DType::F16, true}},
                                    QuantFormat::Int8Asym, 5),
         {}};
  b.data.assign(b.manifest.bytes, 0);
  std::vector<float> x(15);
  for (int i = 0; i < 15; ++i) x[i] = 0.1f * static_cast<float>(i) - 0.7f;
  for (const auto& p : b.manifest.params) {
    std::vector<float> src(p.numel());
    std::copy_n(x.begin(), src.size(), src.begin());
    zinc::partition::pack_param(p, 5, DType::F32, src.data(), b.data.data());
  }
  const auto& w = b.manifest.params[1];
  REQUIRE(w.layout.codes_used_bytes == 15);
  REQUIRE(w.layout.codes_bytes == 16);
  StoreInfo info;
  info.quant = QuantFormat::Int8Asym;
  info.group_size = 5;
  info.created_by = "zinc test_store";
  info.config_json = "{}";
  info.blob_order = {"layer.0000"};
  {
    StoreWriter sw(path, info);
    sw.write_blob(b.manifest, b.data.data());
    sw.finish();
  }
  {  // read back (the reader closes the file before the sections modify it)
    StoreReader r(path);
    CHECK(r.manifests()[0].to_json() == b.manifest.to_json());
    std::vector<uint8_t> got(b.manifest.bytes);
    r.read_slice(0, 0, got.size(), got.data());
    REQUIRE(got == b.data);
    for (const auto* p : {&r.manifests()[0].params[1], &r.manifests()[0].params[2]}) {
      const zinc::quant::QuantView v = param_view(*p, 5, got.data());
      CHECK(reinterpret_cast<uintptr_t>(v.scales) % 2 == 0);
      CHECK(reinterpret_cast<uintptr_t>(v.mins) % 2 == 0);
      std::vector<float> from_store(15), from_blob(15);
      zinc::quant::dequantize(v, from_store.data());
      zinc::quant::dequantize(param_view(*p, 5, b.data.data()), from_blob.data());
      CHECK(from_store == from_blob);
      for (int i = 0; i < 15; ++i) CHECK(std::fabs(from_store[i] - x[i]) < 0.01f);
    }
  }

  SECTION("write_blob refuses a manifest with the old, unpadded layout") {
    BlobManifest old = b.manifest;
    old.params[1].layout.codes_bytes = 15;
    old.params[1].bytes -= 1;
    const std::string other = dir.file("other.zinc");
    StoreWriter sw(other, info);
    CHECK_THROWS_WITH(sw.write_blob(old, b.data.data()),
                      ZINC_CONTAINS("layer.0000") && ZINC_CONTAINS("tensor w"));
  }
  SECTION("a store written with the old, unpadded layout is refused when opened") {
    nlohmann::json j = b.manifest.to_json();
    j["params"][1]["codes"] = 15;
    j["params"][1]["bytes"] = j["params"][1]["bytes"].get<size_t>() - 1;
    replace_manifest(path, "layer.0000", j.dump(), true);
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path) && ZINC_CONTAINS("tensor w") &&
                                             ZINC_CONTAINS("not padded") &&
                                             ZINC_CONTAINS("convert the model again"));
  }
}

TEST_CASE("store: a text changed after writing fails its checksum when opened", "[store]") {
  // config.json, tokenizer.json, blob_order and a manifest, each changed in place by one
  // byte that keeps it valid JSON (as a hand edit or a bit flip would): the store is
  // refused, naming the file and the item, before anything uses the text.
  TempDir dir;
  const std::string path = dir.file("model.zinc");
  const std::vector<Blob> blobs = make_blobs();
  const StoreInfo info = make_info(blobs);
  write_store(path, blobs, info);
  const auto changed = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    REQUIRE(from.size() == to.size());
    return text.replace(at, from.size(), to);
  };
  SECTION("config.json") {
    overwrite_text(path, "config.json", changed(info.config_json, "64", "65"));
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path + ": /config.json fails its CRC-32C") &&
                                             ZINC_CONTAINS("convert the model again"));
  }
  SECTION("tokenizer.json") {
    overwrite_text(path, "tokenizer.json", changed(info.tokenizer_json, "\"tok7\": 7", "\"tok7\": 8"));
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path + ": /tokenizer.json fails its CRC-32C"));
  }
  SECTION("blob_order") {
    overwrite_text(path, "blob_order", R"(["layer.0000","embed","head"])");
    CHECK_THROWS_WITH(StoreReader(path), ZINC_CONTAINS(path + ": /blob_order fails its CRC-32C"));
  }
  SECTION("a manifest") {
    std::string text;
    {
      StoreReader r(path);
      text = r.manifests()[0].to_json().dump();
    }
    const size_t digit = text.find_first_of("123456789");
    REQUIRE(digit != std::string::npos);
    text[digit] = text[digit] == '9' ? '8' : static_cast<char>(text[digit] + 1);
    replace_manifest(path, "embed", text, false);
    CHECK_THROWS_WITH(StoreReader(path),
                      ZINC_CONTAINS(path + ": the manifest of blob embed fails its CRC-32C"));
  }
  SECTION("a missing checksum") {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "config.json", H5P_DEFAULT);
    REQUIRE(H5Adelete(ds, "crc32c") >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    CHECK_THROWS_WITH(StoreReader(path),
                      ZINC_CONTAINS(path + ": /config.json has no CRC-32C") && ZINC_CONTAINS("damaged"));
  }
}
