// partition/store's writer against the file system: what it may replace (a new name, or a
// regular file when asked; never a FIFO, device or directory, never a name that appeared
// while it wrote) and a disk that fills up (a real tmpfs, mounted where permitted): the
// error names the blob, every HDF5 id is closed and nothing is left behind.
#include <hdf5.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "partition/blob.hpp"
#include "partition/store.hpp"
#include "runtime/common/error.hpp"
#include "unit/test_util.hpp"

namespace fs = std::filesystem;
using zinc::partition::BlobManifest;
using zinc::partition::StoreInfo;
using zinc::partition::StoreReader;
using zinc::partition::StoreWriter;
using zinc::quant::DType;
using zinc::quant::QuantFormat;
using zinc::test::TempDir;
using zinc::test::write_file;

namespace {

struct Blob {
  BlobManifest manifest;
  std::vector<uint8_t> data;
};

// `count` fp16 blobs of `elems` elements each, random bytes.
std::vector<Blob> blobs(int count, int64_t elems) {
  std::vector<Blob> out;
  std::mt19937 rng(7);
  for (int i = 0; i < count; ++i) {
    Blob b{zinc::partition::plan_blob("layer." + std::to_string(i),
                                      {{"w", {elems}, DType::F16, false}}, QuantFormat::None, 64),
           {}};
    b.data.resize(b.manifest.bytes);
    for (auto& v : b.data) v = static_cast<uint8_t>(rng());
    out.push_back(std::move(b));
  }
  return out;
}

StoreInfo info_for(const std::vector<Blob>& bs) {
  StoreInfo info;
  info.quant = QuantFormat::None;
  info.group_size = 64;
  info.created_by = "zinc test_store_writer";
  info.config_json = R"({"model_type": "llama"})";
  for (const Blob& b : bs) info.blob_order.push_back(b.manifest.name);
  return info;
}

void write_store(const std::string& path, const std::vector<Blob>& bs, bool replace = false) {
  StoreWriter w(path, info_for(bs), replace);
  for (const Blob& b : bs) w.write_blob(b.manifest, b.data.data());
  w.finish();
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

ssize_t open_hdf5_files() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE); }

}  // namespace

TEST_CASE("store writer: an existing file is replaced only when asked", "[store][writer]") {
  TempDir dir;
  const std::vector<Blob> bs = blobs(2, 3000);
  const std::string path = dir.file("m.zinc");
  write_file(path, "my notes");
  CHECK_THROWS_WITH(write_store(path, bs), ZINC_CONTAINS(path) && ZINC_CONTAINS("already exists"));
  CHECK(read_all(path) == "my notes");
  CHECK_FALSE(fs::exists(path + ".tmp"));
  write_store(path, bs, /*replace=*/true);
  CHECK_NOTHROW(StoreReader(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("store writer: a name that appears while it writes is not replaced", "[store][writer]") {
  TempDir dir;
  const std::vector<Blob> bs = blobs(2, 3000);
  const std::string path = dir.file("m.zinc");
  {
    StoreWriter w(path, info_for(bs));
    for (const Blob& b : bs) w.write_blob(b.manifest, b.data.data());
    write_file(path, "written meanwhile");
    CHECK_THROWS_WITH(w.finish(), ZINC_CONTAINS(path) && ZINC_CONTAINS("appeared"));
  }
  CHECK(read_all(path) == "written meanwhile");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("store writer: never replaces a FIFO, a directory or a device", "[store][writer]") {
  TempDir dir;
  const std::vector<Blob> bs = blobs(1, 100);
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(write_store(fifo, bs, true), ZINC_CONTAINS(fifo) && ZINC_CONTAINS("a FIFO"));
  CHECK(fs::is_fifo(fifo));
  const std::string sub = dir.file("sub");
  fs::create_directory(sub);
  CHECK_THROWS_WITH(write_store(sub, bs, true), ZINC_CONTAINS(sub) && ZINC_CONTAINS("a directory"));
  CHECK(fs::is_directory(sub));
  // The temporary's name too: PATH.tmp as a FIFO is not opened (that would block) or replaced.
  const std::string path = dir.file("m.zinc");
  REQUIRE(::mkfifo((path + ".tmp").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(write_store(path, bs), ZINC_CONTAINS(path + ".tmp") && ZINC_CONTAINS("a FIFO"));
  CHECK(fs::is_fifo(path + ".tmp"));
  CHECK_FALSE(fs::exists(path));
  const std::string dev = dir.file("null");
  if (::mknod(dev.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) {
    CHECK_THROWS_WITH(write_store(dev, bs, true),
                      ZINC_CONTAINS(dev) && ZINC_CONTAINS("a character device"));
    CHECK(fs::is_character_file(dev));
  }
}

TEST_CASE("store writer: a full disk fails at the blob that did not fit, closing everything",
          "[store][writer]") {
  TempDir dir;
  const zinc::test::SmallTmpfs fs1m(dir, "1m");
  if (!fs1m.mounted()) {
    SUCCEED("SKIP: mount -t tmpfs is not permitted here (needs root)");
    return;
  }
  const std::string mnt = fs1m.path();
  const std::vector<Blob> bs = blobs(6, 120000);  // 240 KB each: the fifth does not fit
  const std::string path = mnt + "/m.zinc";
  const ssize_t files_before = open_hdf5_files();
  size_t written = 0;
  try {
    StoreWriter w(path, info_for(bs));
    for (const Blob& b : bs) {
      w.write_blob(b.manifest, b.data.data());
      ++written;
    }
    w.finish();
    FAIL("the store fitted in 1 MiB");
  } catch (const zinc::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path + ".tmp") != std::string::npos);
    CHECK(msg.find("blob layer." + std::to_string(written)) != std::string::npos);
    CHECK(msg.find("No space left on device") != std::string::npos);
  }
  CHECK(written >= 2);
  CHECK(written < bs.size());
  CHECK(open_hdf5_files() == files_before);  // no id left for HDF5's exit handler
  CHECK(fs::is_empty(mnt));
  // The disk is usable again: a store that fits is written there.
  write_store(path, blobs(2, 1000));
  CHECK_NOTHROW(StoreReader(path));
}
