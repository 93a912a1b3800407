// The NVMe tier's reader: real io_uring O_DIRECT reads of a real file, compared with
// pread; end of file and truncation; injected short reads and EIO (the completion hook).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "offload/uring_file.hpp"
#include "unit/test_util.hpp"

using zinc::offload::AlignedBuffer;
using zinc::offload::UringFile;
using zinc::offload::UringOptions;

namespace {

// A file of `n` pseudo-random bytes in `dir`; returns its path and fills `bytes`.
std::string make_file(const zinc::test::TempDir& dir, size_t n, std::vector<uint8_t>* bytes) {
  std::mt19937 g(42);
  bytes->resize(n);
  for (auto& b : *bytes) b = static_cast<uint8_t>(g());
  const std::string path = dir.path() + "/data.bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes->data()), n);
  return path;
}

UringOptions small_blocks() {
  UringOptions o;
  o.queue_depth = 4;
  o.block_bytes = 3 * 4096;  // several blocks in flight per read
  return o;
}

}  // namespace

TEST_CASE("io_uring O_DIRECT reads equal the file's bytes, with a zero tail past EOF", "[uring]") {
  zinc::test::TempDir dir;
  std::vector<uint8_t> ref;
  const size_t n = 1000 * 4096 + 1234;  // ends inside a page, as HDF5 files may
  UringFile f(make_file(dir, n, &ref), small_blocks());
  AlignedBuffer buf(64 * 4096);
  std::mt19937 g(7);
  for (int t = 0; t < 40; ++t) {
    const size_t page = g() % 1000, pages = 1 + g() % 64;
    const size_t got = f.read(page * 4096, pages * 4096, buf.data(), page * 4096);
    const size_t real = std::min(pages * 4096, n - page * 4096);
    REQUIRE(got == real);
    CHECK(std::memcmp(buf.data(), ref.data() + page * 4096, real) == 0);
    CHECK(std::all_of(buf.data() + real, buf.data() + pages * 4096, [](uint8_t b) { return b == 0; }));
  }
  CHECK(f.stats().bytes > 0);
}

TEST_CASE("a file shorter than the bytes needed is a truncation error", "[uring]") {
  zinc::test::TempDir dir;
  std::vector<uint8_t> ref;
  UringFile f(make_file(dir, 10 * 4096, &ref), small_blocks());
  AlignedBuffer buf(16 * 4096);
  REQUIRE_THROWS_WITH(f.read(4 * 4096, 12 * 4096, buf.data()), ZINC_CONTAINS("truncated"));
  REQUIRE_THROWS_WITH(f.read(4 * 4096, 12 * 4096, buf.data()), ZINC_CONTAINS("data.bin"));
  CHECK_NOTHROW(f.read(4 * 4096, 12 * 4096, buf.data(), 10 * 4096));
}

TEST_CASE("short reads continue and EIO is retried, up to a limit", "[uring]") {
  zinc::test::TempDir dir;
  std::vector<uint8_t> ref;
  const size_t n = 64 * 4096;
  UringFile f(make_file(dir, n, &ref), small_blocks());
  AlignedBuffer buf(n);
  SECTION("every first completion comes back short (half, unaligned)") {
    std::set<uint64_t> seen;
    f.set_completion_hook([&](uint64_t off, unsigned len, int res) {
      if (res > 0 && seen.insert(off).second) return static_cast<int>(len / 2 + 100);
      return res;
    });
    REQUIRE(f.read(0, n, buf.data()) == n);
    CHECK(std::memcmp(buf.data(), ref.data(), n) == 0);
    CHECK(f.stats().retries > 0);
  }
  SECTION("one EIO per block is retried") {
    std::set<uint64_t> failed;
    f.set_completion_hook([&](uint64_t off, unsigned, int res) {
      return failed.insert(off).second ? -EIO : res;
    });
    REQUIRE(f.read(0, n, buf.data()) == n);
    CHECK(std::memcmp(buf.data(), ref.data(), n) == 0);
  }
  SECTION("a block that always fails is an error naming the file and the range") {
    f.set_completion_hook([&](uint64_t off, unsigned, int res) { return off == 6 * 4096 ? -EIO : res; });
    REQUIRE_THROWS_WITH(f.read(0, n, buf.data()),
                        ZINC_CONTAINS("data.bin") && ZINC_CONTAINS("[24576,") &&
                            ZINC_CONTAINS("Input/output error"));
    f.set_completion_hook(nullptr);
    CHECK(f.read(0, n, buf.data()) == n);  // the ring is still usable
  }
}

TEST_CASE("bad alignment and bad options are refused", "[uring]") {
  zinc::test::TempDir dir;
  std::vector<uint8_t> ref;
  const std::string path = make_file(dir, 8 * 4096, &ref);
  UringFile f(path, UringOptions{});
  AlignedBuffer buf(8 * 4096);
  CHECK_THROWS_WITH(f.read(100, 4096, buf.data()), ZINC_CONTAINS("aligned"));
  UringOptions bad;
  bad.block_bytes = 1000;
  CHECK_THROWS_WITH(UringFile(path, bad), ZINC_CONTAINS("--nvme-block-size"));
  CHECK_THROWS_WITH(UringFile(dir.path() + "/none", UringOptions{}), ZINC_CONTAINS("none"));
}
