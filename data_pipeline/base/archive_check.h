// Damage check for the zip archives libtorch reads (checkpoints, exported TorchScript archives).
#pragma once
#include <string>

namespace heed {

// Checks every record of the zip archive at `path` against the CRC-32 its central directory stores,
// before libtorch parses any of it. libtorch's reader skips this check (its bundled miniz is built
// without CRC checks), so a damaged record would reach its parsers, and damage inside the
// TorchScript source makes its compiler crash (found by tests/fuzz/fuzz_checkpoint.cpp). Throws
// InputError "<path>: damaged archive (...)" on a mismatch or an unreadable zip structure.
void check_archive_crcs(const std::string& path);

}  // namespace heed
