// zinc::Error and the check macros every folder uses.
//
// A failed check throws zinc::Error carrying the message, the failing statement (for
// library calls) and file:line. Only the CLI's main() catches it: it prints the message
// once, with the rank, and MPI_Abort()s so no rank is left waiting in a collective.
// Destructors never throw; they log instead (see log_error).
//
// Library-specific checks (MPI, HDF5, CUDA, NCCL, io_uring) live in one adapter header
// per dependency next to the code that uses it, and are built on ZINC_THROW.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace zinc {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file, int line)
      : std::runtime_error(message), file_(file), line_(line) {}
  const char* file() const { return file_; }
  int line() const { return line_; }
  // "message (at partition/safetensors.cpp:120)"
  std::string with_location() const;

 private:
  const char* file_;
  int line_;
};

// Prints "zinc: error: ..." to stderr without throwing; for destructors and cleanup paths.
void log_error(const std::string& message) noexcept;

}  // namespace zinc

// ZINC_THROW("tensor " << name << " has shape " << shape) — a streamed message.
#define ZINC_THROW(msg_expr)                                      \
  do {                                                            \
    std::ostringstream zinc_msg_;                                 \
    zinc_msg_ << msg_expr;                                        \
    throw ::zinc::Error(zinc_msg_.str(), __FILE__, __LINE__);     \
  } while (0)

// ZINC_CHECK(cond, "what is wrong and what to do") — throws when cond is false.
#define ZINC_CHECK(cond, msg_expr)  \
  do {                              \
    if (!(cond)) ZINC_THROW(msg_expr); \
  } while (0)
