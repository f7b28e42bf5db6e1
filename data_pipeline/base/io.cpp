#include "data_pipeline/base/io.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_pipeline/base/errors.h"

namespace heed {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file (does it exist and is it readable?)");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw InputError(path + ": read error");
  return buffer.str();
}

namespace {

// "<path>.tmp<pid>-<n>": the pattern remove_stale_temp_files recognises.
std::string temp_name(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return path + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000);
}

// "cannot write <path>: <step><OS reason>", with what the usual reasons mean for the user.
Error write_error(const std::string& path, int err, const std::string& step = "") {
  std::string reason = std::generic_category().message(err);
  if (err == ENOSPC) reason += " (the disk is full)";
  if (err == EFBIG) reason += " (the file-size limit, ulimit -f, or the file system's largest file was reached)";
  if (err == EACCES || err == EPERM) reason += " (the folder is not writable for this user)";
  return Error("cannot write " + path + ": " + step + reason);
}

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void create_folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw write_error(path, ec.value(), "cannot create the folder " + parent.string() + ": ");
}

// fsync of a folder, so that a rename inside it survives a power loss. File systems that cannot
// sync folders (EINVAL) are accepted as they are.
void sync_folder(const std::string& path, const std::string& target) {
  const int fd = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw write_error(target, errno, "cannot open its folder to sync it: ");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP) throw write_error(target, err, "cannot sync its folder: ");
}

// A temporary file next to `target`, created exclusively; removed on destruction unless committed.
class TempFile {
 public:
  explicit TempFile(std::string target) : target_(std::move(target)) {
    create_folder_of(target_);
    for (int attempt = 0; fd_ < 0; ++attempt) {
      path_ = temp_name(target_);
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt >= 100)) throw write_error(target_, errno);
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Writes all of `data`; after a failure, remembers errno and drops this and later writes.
  void write(const void* data, size_t size) noexcept {
    const char* p = static_cast<const char*>(data);
    while (size > 0 && error_ == 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 ? errno : EIO;
        break;
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  }

  // fsync, close, rename over the target, fsync the folder; throws (and the destructor removes the
  // temporary file) on the first failure, including an earlier write's.
  void commit() {
    if (error_ != 0) throw write_error(target_, error_);
    if (::fsync(fd_) != 0) throw write_error(target_, errno);
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) throw write_error(target_, errno);
    if (::rename(path_.c_str(), target_.c_str()) != 0) throw write_error(target_, errno, "cannot rename " + path_ + ": ");
    committed_ = true;
    sync_folder(target_, target_);
  }

 private:
  std::string target_, path_;
  int fd_ = -1;
  int error_ = 0;
  bool committed_ = false;
};

// The pid in a name "<name>.tmp<pid>-<n>", or 0 when the name has another form.
pid_t temp_file_pid(const std::string& name) {
  const size_t at = name.rfind(".tmp");
  if (at == std::string::npos || at == 0) return 0;
  const size_t dash = name.find('-', at + 4);
  if (dash == std::string::npos || dash == at + 4 || dash + 1 == name.size()) return 0;
  auto digits = [&](size_t from, size_t to) {
    if (to - from > 9) return false;
    for (size_t i = from; i < to; ++i) {
      if (name[i] < '0' || name[i] > '9') return false;
    }
    return true;
  };
  if (!digits(at + 4, dash) || !digits(dash + 1, name.size())) return 0;
  return static_cast<pid_t>(std::stol(name.substr(at + 4, dash - at - 4)));
}

bool process_alive(pid_t pid) { return pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

void write_atomic_stream(const std::string& path, const std::function<void(const ByteSink& sink)>& writer) {
  TempFile file(path);
  writer([&file](const void* data, size_t size) { file.write(data, size); });
  file.commit();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomic_stream(path, [&](const ByteSink& sink) { sink(content.data(), content.size()); });
}

void append_to_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) throw write_error(path, errno);
  struct stat before {};
  int err = ::fstat(fd, &before) == 0 ? 0 : errno;
  const char* p = text.data();
  size_t left = text.size();
  while (err == 0 && left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      if (::ftruncate(fd, before.st_size) != 0) {
        // the partial record stays; readers skip a last line without its newline
      }
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) throw write_error(path, err);
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const pid_t pid = temp_file_pid(name);
    if (pid <= 0 || process_alive(pid)) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || it->is_symlink(type_ec)) continue;
    if (::unlink(it->path().c_str()) == 0) removed.push_back(it->path().string());
  }
  return removed;
}

uint64_t fnv1a(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::vector<std::string> heed_library_paths(const std::string& file_name, const char* env_var) {
  std::vector<std::string> paths;
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') paths.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((exe.parent_path() / file_name).string());
    paths.push_back((exe.parent_path().parent_path() / "lib" / "heed" / file_name).string());
  }
#ifdef HEED_BUILD_DIR
  paths.push_back(std::string(HEED_BUILD_DIR) + "/" + file_name);
#endif
  return paths;
}

}  // namespace heed
