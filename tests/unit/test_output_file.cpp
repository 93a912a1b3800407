// runtime/common/output_file: write_output_file on real files and devices (/dev/full, a full
// tmpfs where mount is permitted, a missing folder) and check_output_path's rules.
#include "runtime/common/output_file.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "runtime/common/error.hpp"
#include "unit/test_util.hpp"

namespace fs = std::filesystem;
using zinc::check_output_path;
using zinc::write_output_file;
using zinc::test::TempDir;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("write_output_file: writes, replaces, and names the file and reason on failure",
          "[output_file]") {
  TempDir dir;
  const std::string path = dir.file("m.json");
  write_output_file(path, "{\"a\": 1}\n");
  CHECK(read_all(path) == "{\"a\": 1}\n");
  write_output_file(path, "x");
  CHECK(read_all(path) == "x");
  write_output_file(path, "");
  CHECK(fs::file_size(path) == 0);

  CHECK_THROWS_WITH(write_output_file("/dev/full", "{}\n"),
                    ZINC_CONTAINS("cannot write /dev/full: No space left on device"));
  CHECK(fs::is_character_file("/dev/full"));  // a device is never removed
  const std::string missing = dir.file("no/such/m.json");
  CHECK_THROWS_WITH(write_output_file(missing, "{}"),
                    ZINC_CONTAINS("cannot write " + missing + ": No such file or directory"));
}

TEST_CASE("write_output_file: a full file system is an error and leaves no cut-off file",
          "[output_file]") {
  TempDir dir;
  const zinc::test::SmallTmpfs fs64(dir, "64k");
  if (!fs64.mounted()) {
    SUCCEED("SKIP: mount -t tmpfs is not permitted here (needs root)");
    return;
  }
  const std::string path = fs64.path() + "/metrics.json";
  CHECK_THROWS_WITH(write_output_file(path, std::string(256 << 10, 'x')),
                    ZINC_CONTAINS("cannot write " + path + ": No space left on device"));
  CHECK_FALSE(fs::exists(path));
  write_output_file(path, "fits");
  CHECK(read_all(path) == "fits");
}

TEST_CASE("check_output_path: new names, regular files with replace, never inputs or devices",
          "[output_file]") {
  TempDir dir;
  const std::string input = dir.file("model.safetensors");
  zinc::test::write_file(input, "weights");
  CHECK_NOTHROW(check_output_path(dir.file("new.zinc"), {input}, false));
  CHECK_THROWS_WITH(check_output_path(input, {input}, true), ZINC_CONTAINS("is an input"));
  const std::string hard = dir.file("hard");
  REQUIRE(::link(input.c_str(), hard.c_str()) == 0);
  CHECK_THROWS_WITH(check_output_path(hard, {input}, true),
                    ZINC_CONTAINS(hard + ": is an input (" + input + ")"));
  const std::string soft = dir.file("soft");
  fs::create_symlink(input, soft);
  CHECK_THROWS_WITH(check_output_path(soft, {input}, true), ZINC_CONTAINS("is an input"));
  const std::string other = dir.file("notes.txt");
  zinc::test::write_file(other, "notes");
  CHECK_THROWS_WITH(check_output_path(other, {input}, false),
                    ZINC_CONTAINS(other + ": already exists; pass --force"));
  CHECK_NOTHROW(check_output_path(other, {input}, true));
  CHECK_THROWS_WITH(check_output_path("/dev/null", {}, true),
                    ZINC_CONTAINS("/dev/null: not a regular file (a character device)"));
  CHECK_THROWS_WITH(check_output_path(dir.path(), {}, true), ZINC_CONTAINS("a directory"));
  const std::string dangling = dir.file("dangling");
  fs::create_symlink(dir.file("nowhere"), dangling);
  CHECK_THROWS_WITH(check_output_path(dangling, {}, false), ZINC_CONTAINS("already exists"));
}
