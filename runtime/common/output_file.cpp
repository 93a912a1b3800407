#include "runtime/common/output_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "runtime/common/error.hpp"

namespace zinc {
namespace {

const char* file_kind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a file";
  }
}

}  // namespace

void check_output_path(const std::string& path, const std::vector<std::string>& inputs,
                       bool replace) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) {
    if (errno == ENOENT) return;  // a new name (a missing folder fails when it is created)
    ZINC_THROW("cannot write " << path << ": " << std::strerror(errno));
  }
  struct stat target {};
  const bool has_target = ::stat(path.c_str(), &target) == 0;  // follows a symbolic link
  if (has_target) {
    ZINC_CHECK(S_ISREG(target.st_mode),
               path << ": not a regular file (" << file_kind(target.st_mode)
                    << "); zinc writes its output only to a new path or over a regular file");
    for (const std::string& input : inputs) {
      struct stat in {};
      const bool same = input == path || (::stat(input.c_str(), &in) == 0 &&
                                          in.st_dev == target.st_dev && in.st_ino == target.st_ino);
      ZINC_CHECK(!same, path << ": is an input (" << input
                             << "); zinc never writes over what it reads: choose another path");
    }
  }
  ZINC_CHECK(replace, path << ": already exists; pass --force to replace it");
}

}  // namespace zinc
