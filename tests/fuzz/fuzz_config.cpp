// fuzz_config: config JSON bytes + --set overrides -> validated options (app/config/config.*).
// Input: the config file's bytes, then up to 8 "--set" assignments, separated by NUL bytes.
// Invariant: a config that validates is saved by `heed train` as to_json(config) (config.json),
// and that saved document must load back to exactly the same config.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "data_pipeline/base/errors.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {

int fuzz_config_one(const uint8_t* data, size_t size) {
  static Scratch scratch("config");
  auto parts = split_parts(as_view(data, size), '\0', 9);
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  scratch.fresh();
  const std::string path = scratch.write("config.json", parts[0]);
  app::Config config;
  try {
    config = app::load_config(path, overrides, "/data");
  } catch (const Error&) {
    return 0;
  }
  const nlohmann::json saved = app::to_json(config);
  std::string text;
  try {
    text = saved.dump(2);
  } catch (const nlohmann::json::exception& e) {
    throw Finding(std::string("a validated config cannot be saved: ") + e.what());
  }
  const std::string saved_path = scratch.write("saved.json", text);
  try {
    const app::Config again = app::load_config(saved_path, {}, "/data");
    check(app::to_json(again) == saved, "the saved config loads back different: " + text);
  } catch (const Error& e) {
    throw Finding(std::string("the saved config does not load back: ") + e.what() + "\n" + text);
  }
  // The held-out split that `heed evaluate --split validation` recomputes from the config.
  if (config.data.validation.empty()) {
    const auto picked = app::select_split(37, "validation", config.data);
    for (size_t i = 0; i < picked.size(); ++i) {
      check(picked[i] < 37 && (i == 0 || picked[i - 1] < picked[i]), "select_split: indices not ascending in range");
    }
  }
  (void)app::truncation_of(config.data);
  return 0;
}

}  // namespace heed::fuzz
