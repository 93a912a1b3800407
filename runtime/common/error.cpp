#include "runtime/common/error.hpp"

#include <cstdio>
#include <cstring>

namespace zinc {

std::string Error::with_location() const {
  const char* base = std::strstr(file_, "/runtime/");
  for (const char* dir : {"/partition/", "/collectives/", "/quant/", "/offload/", "/launch/"}) {
    if (base) break;
    base = std::strstr(file_, dir);
  }
  std::ostringstream os;
  os << what() << " (at " << (base ? base + 1 : file_) << ":" << line_ << ")";
  return os.str();
}

void log_error(const std::string& message) noexcept {
  std::fprintf(stderr, "zinc: error: %s\n", message.c_str());
}

}  // namespace zinc
