// Helpers shared by the unit tests: a substring matcher that works with Catch2 2.x and
// 3.x, a scratch directory removed at scope exit, and a file writer.
#pragma once

#include <stdlib.h>
#include <sys/mount.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "catch.hpp"

// REQUIRE_THROWS_WITH(expr, ZINC_CONTAINS("model.safetensors") && ZINC_CONTAINS("truncated"))
#if defined(CATCH_VERSION_MAJOR) && CATCH_VERSION_MAJOR >= 3
#define ZINC_CONTAINS(text) Catch::Matchers::ContainsSubstring(text)
#else
#define ZINC_CONTAINS(text) Catch::Contains(text)
#endif

namespace zinc::test {

// A fresh directory under $TMPDIR, removed with everything in it when this goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "zinc_test_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A small tmpfs mounted at DIR/fs for full-disk tests (needs root: mounted() says whether
// it is), unmounted when this goes away.
class SmallTmpfs {
 public:
  SmallTmpfs(const TempDir& dir, const std::string& size) : path_(dir.file("fs")) {
    std::filesystem::create_directory(path_);
    mounted_ = ::mount("zinc-test-full", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount(path_.c_str());
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace zinc::test
