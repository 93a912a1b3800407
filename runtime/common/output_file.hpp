// The files zinc writes: where one may go, and writing one whole so that no failure is
// silent.
//
// zinc writes its outputs by name, and some (the zinc store) by write-then-rename, which
// replaces whatever the name held: as root even a device node such as /dev/null. So an
// output path is checked before any work is done, and the check never follows a name to
// replace what it points at.
//
// A buffered stream reports a full disk only when it flushes, often at a close whose result
// nobody reads: the metrics file was left empty with exit 0. write_output_file checks every
// write and the close.
#pragma once

#include <string>
#include <vector>

namespace zinc {

// Throws zinc::Error naming `path` unless it may be written and replaced by rename:
// - a new name (nothing there, not even a dangling symbolic link) is always fine;
// - an existing name must lead to a regular file (a symbolic link to one counts: the link
//   is what gets replaced), never a device, FIFO, socket or directory;
// - it must not be one of `inputs`, compared by device and inode (so a hard or symbolic
//   link to an input is found) as well as by name;
// - an existing regular file is replaced only with `replace` (the CLI's --force).
void check_output_path(const std::string& path, const std::vector<std::string>& inputs,
                       bool replace);

// Writes `text` to `path` (created, or truncated), checking every write and the close.
// Throws zinc::Error "cannot write PATH: REASON" (the errno text: "No space left on device");
// a regular file left incomplete is removed (a device such as /dev/full is not).
void write_output_file(const std::string& path, const std::string& text);

}  // namespace zinc
