// Internal to the ferry command: reading a file named on the command line (proxy --config),
// and lines of standard input, with every failure one line that names the file and says why.
#pragma once

#include <cstddef>
#include <string>

namespace ferry::cli {

/// The most a configuration file may hold: far more than any real one, little
/// enough that a wrong path (a disk image, /dev/zero) is refused, not loaded.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;

/// The whole of the file at `path`, named on the command line by `option`
/// (`--config`). Anything that can be opened and read works: a regular file,
/// a pipe (`--config <(...)`, /dev/stdin), a device. Throws Failure, one
/// line, exit 1:
/// - the system's reason: `--config /etc: Is a directory`, `No such file or
///   directory`, `Permission denied`, `Input/output error` (/proc/self/mem);
/// - `--config disk.img: 1073741824 bytes, larger than the 16 MiB allowed`
///   for a regular file over `max_bytes`, refused by its size before a byte
///   is read; a pipe or device is read up to `max_bytes` + 1 bytes.
std::string read_input_file(const std::string& option, const std::string& path,
                            std::size_t max_bytes = kMaxConfigBytes);

/// One line of standard input without its newline, as std::getline; false at
/// end of input. A read error (standard input is a directory, say) is not
/// taken for the end: it throws Failure `read from standard input: Is a
/// directory`.
bool read_input_line(std::string& line);

}  // namespace ferry::cli
