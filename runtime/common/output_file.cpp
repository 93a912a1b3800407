#include "runtime/common/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

void write_output_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) ZINC_THROW("cannot write " << path << ": " << std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  int err = 0;
  for (size_t done = 0; done < text.size() && err == 0;) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      err = EIO;  // write(2) of a non-zero count does not return 0 on a working file
    } else if (errno != EINTR) {
      err = errno;
    }
  }
  // close(2) reports what the file system deferred (NFS writes back there); local file
  // systems reserve space at write(2), which is where a full disk shows. No fsync: these
  // are small files, some of them temporaries. A close interrupted by a signal has still
  // closed the descriptor.
  if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  if (err != 0) {
    if (regular) ::unlink(path.c_str());  // not an empty or cut-off file that looks written
    ZINC_THROW("cannot write " << path << ": " << std::strerror(err));
  }
}

}  // namespace zinc
