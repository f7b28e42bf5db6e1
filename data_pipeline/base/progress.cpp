#include "data_pipeline/base/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "data_pipeline/base/runtime.h"

namespace heed {

Progress::Progress(bool interactive) : interactive_(interactive) {}

bool Progress::stderr_is_terminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
}

void Progress::update(const std::string& label, int64_t done, int64_t total, const std::string& info) {
  if (!interactive_) return;
  const double now = now_seconds();
  if (shown_ && now - last_draw_ < 0.2 && done < total) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '-');
  last_line_ = fmt::format("{} [{}] {:3.0f}% {}/{} {}", label, bar, frac * 100.0, done, total, info);
  std::fprintf(stderr, "\r\033[2K%s", last_line_.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (interactive_ && shown_) {
    std::fprintf(stderr, "\r\033[2K");
    std::fflush(stderr);
    shown_ = false;
  }
}

void Progress::log(const std::string& message) {
  const bool was_shown = shown_;
  clear();
  spdlog::info(message);
  if (interactive_ && was_shown) {
    std::fprintf(stderr, "%s", last_line_.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
}

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace heed
