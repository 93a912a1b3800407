// Small file-system predicates shared by the loaders and the CLI (stat(2), no throw).
#pragma once

#include <sys/stat.h>

#include <string>

namespace zinc {

inline bool path_is(const std::string& path, mode_t type) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (type == 0 || (st.st_mode & S_IFMT) == type);
}
inline bool path_exists(const std::string& path) { return path_is(path, 0); }
inline bool is_directory(const std::string& path) { return path_is(path, S_IFDIR); }
inline bool is_regular_file(const std::string& path) { return path_is(path, S_IFREG); }

}  // namespace zinc
