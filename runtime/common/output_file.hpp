// The files zinc writes: where one may go.
//
// zinc writes its outputs by name, and some (the zinc store) by write-then-rename, which
// replaces whatever the name held: as root even a device node such as /dev/null. So an
// output path is checked before any work is done, and the check never follows a name to
// replace what it points at.
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

}  // namespace zinc
