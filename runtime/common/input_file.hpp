// Opening the files a model is read from (checkpoints, indexes, configs, tokenizer files),
// which must be regular files. open(2) of a FIFO blocks until a writer comes (forever, for
// a stray FIFO named model.safetensors), and a directory or device is never such a file:
// so the type is checked with stat(2) before anything opens the path, and again on the
// descriptor, which is opened O_NONBLOCK so that not even a FIFO swapped in between can
// block it. Symlinks are followed (the Hugging Face cache is made of them).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/common/error.hpp"

namespace zinc {

// "a directory", "a FIFO", ... for messages.
inline const char* file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "not a file";
  }
}

// Throws "PATH: is a FIFO, not a regular file (expected WHAT)" unless `mode` is a regular file's.
inline void check_regular_file(const std::string& path, mode_t mode, const char* what) {
  ZINC_CHECK(S_ISREG(mode), path << ": is " << file_type_name(mode) << ", not a regular file (expected " << what
                                 << ")");
}

// A descriptor open for reading on the regular file `path`, which the caller closes. Every
// failure (missing, unreadable, not a regular file) throws zinc::Error naming the path;
// `what` names the file's role: "a .safetensors file", "a JSON file".
inline int open_regular_file(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    ZINC_THROW(path << ": cannot open: " << std::strerror(err));
  }
  check_regular_file(path, st.st_mode, what);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    ZINC_THROW(path << ": cannot open: " << std::strerror(err));
  }
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int err = errno;
  if (stat_ok && S_ISREG(st.st_mode)) return fd;
  ::close(fd);
  ZINC_CHECK(stat_ok, path << ": fstat() failed: " << std::strerror(err));
  check_regular_file(path, st.st_mode, what);  // replaced between the two checks
  return -1;
}

// The whole of the regular file `path` (errors as open_regular_file, and read errors).
inline std::string read_regular_file(const std::string& path, const char* what) {
  const int fd = open_regular_file(path, what);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      ZINC_THROW(path << ": read error: " << std::strerror(err));
    }
  }
  ::close(fd);
  return text;
}

}  // namespace zinc
