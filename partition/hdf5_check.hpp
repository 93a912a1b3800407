// HDF5 adapter: the check macro and RAII handles for hid_t.
//
//   ZINC_H5_CHECK(H5Dread(...))
//     -> "HDF5 call H5Dread(...) failed (HDF5: ...)"
//   ZINC_H5_CHECK_CTX(path << ": blob " << name, H5Dread(...))
//     -> "model.zinc: blob embed: H5Dread(...) failed (HDF5: ...)"
// A negative return (hid_t, herr_t, htri_t, ssize_t) is a failure: the macro throws
// zinc::Error carrying the statement text, the caller's file:line and HDF5's own description
// taken from its error stack (innermost cause first); otherwise it yields the value. The
// context expression is streamed only on failure.
//
// HDF5 prints its error stack to stderr on every failure unless told not to;
// h5::silence_error_printing() turns that off (the text goes into zinc::Error instead). The
// library here is built thread-safe, where the setting is per thread: call it before the
// HDF5 calls of every thread (it is cheap after the first time on a thread).
//
// Handles (h5::File, h5::Dataset, ...) own one id each, are move-only, and close it with the
// matching H5*close on destruction; a failed close is logged (zinc::log_error), never thrown.
#pragma once

#include <hdf5.h>

#include <sstream>
#include <string>
#include <utility>

#include "runtime/common/error.hpp"

namespace zinc::h5 {

// Turns off HDF5's automatic error printing for the calling thread (once per thread).
inline void silence_error_printing() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

// The calling thread's HDF5 error stack as text, innermost cause first
// ("truncated file: eof = 4096, ...; unable to read superblock; unable to open file"),
// or "" when the stack is empty. Clears the stack.
inline std::string error_stack_text() {
  struct Walk {
    std::string text, last;
    int count = 0;
  } walk;
  hid_t stack = H5Eget_current_stack();  // copies and clears the thread's stack
  if (stack < 0) return "";
  auto visit = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* w = static_cast<Walk*>(data);
    if (w->count >= 4) return 0;  // the outer frames only repeat "unable to ..."
    std::string desc = e->desc ? e->desc : "";
    if (desc.empty()) {
      char minor[256] = {0};
      if (H5Eget_msg(e->min_num, nullptr, minor, sizeof minor) > 0) desc = minor;
    }
    for (char& c : desc) {
      if (c == '\n' || c == '\r') c = ' ';  // some descriptions embed a ctime() string
    }
    while (!desc.empty() && desc.back() == ' ') desc.pop_back();
    if (desc.empty() || desc == w->last) return 0;
    if (!w->text.empty()) w->text += "; ";
    w->text += desc;
    w->last = desc;
    ++w->count;
    return 0;
  };
  H5Ewalk2(stack, H5E_WALK_UPWARD, visit, &walk);
  H5Eclose_stack(stack);
  return walk.text;
}

// The failure path of ZINC_H5_CHECK: out of line of the callers' hot paths.
template <class Context>
[[noreturn]] void throw_failure(const char* call, const Context& context, const char* file,
                                int line) {
  std::ostringstream os;
  context(os);
  const bool has_context = os.tellp() > 0;
  os << (has_context ? ": " : "HDF5 call ") << call << " failed";
  const std::string stack = error_stack_text();
  if (!stack.empty()) os << " (HDF5: " << stack << ")";
  throw ::zinc::Error(os.str(), file, line);
}

template <class T, class Context>
inline T check(T result, const char* call, const Context& context, const char* file, int line) {
  if (result < 0) throw_failure(call, context, file, line);
  return result;
}

}  // namespace zinc::h5

// Checks an HDF5 call (negative = failure) and yields its result.
#define ZINC_H5_CHECK(call) \
  ::zinc::h5::check((call), #call, [](std::ostream&) {}, __FILE__, __LINE__)

// As ZINC_H5_CHECK, with a streamed context (usually the file's path) in front of the message.
#define ZINC_H5_CHECK_CTX(context_expr, call)                                                  \
  ::zinc::h5::check((call), #call,                                                             \
                    [&](std::ostream& zinc_h5_os_) { zinc_h5_os_ << context_expr; }, __FILE__, \
                    __LINE__)

namespace zinc::h5 {

// One owned hid_t, closed by Closer::close. Move-only.
template <class Closer>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.release();
    }
    return *this;
  }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Gives up ownership (the caller closes the id).
  hid_t release() noexcept {
    hid_t id = id_;
    id_ = -1;
    return id;
  }
  // Closes the id now, logging (not throwing) a failure.
  void reset() noexcept {
    if (id_ >= 0) {
      if (Closer::close(id_) < 0) {
        log_error(std::string(Closer::name) + " failed: " + error_stack_text());
      }
      id_ = -1;
    }
  }
  // Closes the id now and throws if that fails (H5Fclose flushes: its failure matters).
  void close_checked(const std::string& context) {
    if (id_ < 0) return;
    hid_t id = release();
    ::zinc::h5::check(
        Closer::close(id), Closer::name, [&](std::ostream& os) { os << context; }, __FILE__,
        __LINE__);
  }

 private:
  hid_t id_ = -1;
};

#define ZINC_H5_CLOSER(Type, fn)                              \
  struct Type {                                               \
    static herr_t close(hid_t id) noexcept { return fn(id); } \
    static constexpr const char* name = #fn;                  \
  }
ZINC_H5_CLOSER(FileCloser, H5Fclose);
ZINC_H5_CLOSER(GroupCloser, H5Gclose);
ZINC_H5_CLOSER(DatasetCloser, H5Dclose);
ZINC_H5_CLOSER(DataspaceCloser, H5Sclose);
ZINC_H5_CLOSER(AttributeCloser, H5Aclose);
ZINC_H5_CLOSER(PropListCloser, H5Pclose);
ZINC_H5_CLOSER(DatatypeCloser, H5Tclose);
#undef ZINC_H5_CLOSER

using File = Handle<FileCloser>;
using Group = Handle<GroupCloser>;
using Dataset = Handle<DatasetCloser>;
using Dataspace = Handle<DataspaceCloser>;
using Attribute = Handle<AttributeCloser>;
using PropList = Handle<PropListCloser>;
using Datatype = Handle<DatatypeCloser>;

}  // namespace zinc::h5
