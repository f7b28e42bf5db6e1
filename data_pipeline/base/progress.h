// Progress output for long work. On a terminal: one live line (bar, rate, ETA) redrawn at most
// a few times a second; otherwise plain log lines. Messages always go to stderr; stdout stays free
// for results.
#pragma once
#include <cstdint>
#include <string>

namespace heed {

class Progress {
 public:
  // interactive: draw a live bar (default: stderr is a terminal and TERM is not "dumb").
  explicit Progress(bool interactive);
  static bool stderr_is_terminal();

  // Redraws the live line (interactive only): `label` left of the bar, `done`/`total` units, `info` right of it.
  void update(const std::string& label, int64_t done, int64_t total, const std::string& info);
  // Prints a whole log line (clearing the live line first, then redrawing it).
  void log(const std::string& message);
  // Removes the live line.
  void clear();
  bool interactive() const { return interactive_; }

 private:
  bool interactive_;
  bool shown_ = false;
  double last_draw_ = 0.0;
  std::string last_line_;
};

// "1h02m", "4m05s", "12s"
std::string format_duration(double seconds);

}  // namespace heed
