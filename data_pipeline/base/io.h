// Small file helpers used everywhere: whole-file reads and atomic writes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace heed {

// Reads a whole file; throws InputError naming the path when it cannot.
std::string read_file(const std::string& path);

// Atomic writes. The bytes go to a temporary file in the target's folder, named
// "<name>.tmp<pid>-<n>" (<pid>: the writing process), which is fsynced, closed and renamed over the
// target; the folder is then fsynced so that the rename itself is durable. Readers therefore see the
// old file or the new one, never a mix, even after SIGKILL or a power loss. Every failing step
// (create, write, fsync, close, rename: a full disk, the file-size limit, a read-only or unwritable
// folder) throws Error "cannot write <path>: <OS reason>", removes the temporary file and leaves
// the target as it was.

// Receives the bytes of a file being written by write_atomic_stream.
using ByteSink = std::function<void(const void* data, size_t size)>;

// `writer` passes the file's bytes to the sink it is given, in order. The sink never throws, so
// that a foreign writer (torch's archive writer) is never unwound mid-write: after a failed write it
// drops the remaining bytes, and write_atomic_stream throws once `writer` has returned.
void write_atomic_stream(const std::string& path, const std::function<void(const ByteSink& sink)>& writer);

// A std::ostream over a ByteSink, for writers that want a stream (TorchScript's Module::save). Like
// the sink, it never fails.
class SinkStream : public std::ostream {
 public:
  explicit SinkStream(const ByteSink& sink) : std::ostream(&buffer_), buffer_(sink) {}

 private:
  class Buffer : public std::streambuf {
   public:
    explicit Buffer(const ByteSink& sink) : sink_(sink) {}

   protected:
    std::streamsize xsputn(const char* data, std::streamsize n) override {
      sink_(data, static_cast<size_t>(n));
      return n;
    }
    int_type overflow(int_type c) override {
      if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
      const char ch = traits_type::to_char_type(c);
      sink_(&ch, 1);
      return c;
    }

   private:
    const ByteSink& sink_;
  };
  Buffer buffer_;
};

// Writes `content` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& content);

// Appends `text` to `path` (created when missing). On failure the file is cut back to its previous
// length (no half record) and Error "cannot write <path>: <OS reason>" is thrown.
void append_to_file(const std::string& path, const std::string& text);

// Removes, from `dir` (not its subfolders), the temporary files of atomic writes whose process no
// longer runs: what a SIGKILL or a power loss between creating and renaming one leaves behind.
// Only names of the form "<name>.tmp<pid>-<n>" with <pid> not a live process (and not this one)
// are touched. Returns the paths removed; a missing folder is not an error.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

// Where to look for one of heed's own shared libraries (libheed_spm.so, libheed_torch.so), in
// order: $<env_var>, next to the running executable, <exe>/../lib/heed/, the build folder.
std::vector<std::string> heed_library_paths(const std::string& file_name, const char* env_var);

// 64-bit FNV-1a, for cache keys.
uint64_t fnv1a(const void* data, size_t n, uint64_t seed = 1469598103934665603ULL);
inline uint64_t fnv1a(const std::string& s, uint64_t seed = 1469598103934665603ULL) {
  return fnv1a(s.data(), s.size(), seed);
}

}  // namespace heed
