// heed attention: one text -> the model's attention over it (app/inference/attention.h) as a
// standalone HTML page (app/views/views.h) or as JSON.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/inputs.h"
#include "app/config/run_dir.h"
#include "app/inference/attention.h"
#include "app/training/torch_runtime.h"
#include "app/views/views.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"

namespace heed::app {
namespace {

// The one text: the argument, or the whole content of --input ("-" = stdin).
std::string the_text(const AttentionJobOptions& o) {
  if (o.texts.empty() == o.input.empty()) {
    throw InputError("attention: give the text as one argument or with --input FILE (not both)");
  }
  if (!o.input.empty()) {
    check_input_file(o.input);
    if (o.input == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return read_file(o.input);
  }
  if (o.texts.size() != 1) {
    throw InputError(fmt::format("attention: give one text (got {} arguments; quote the text)", o.texts.size()));
  }
  return o.texts[0];
}

// heed replaces only what it wrote: an existing --out must be an earlier page of heed's
// (is_heed_page) or, with --json, an earlier attention JSON.
void refuse_foreign_output(const std::string& out, bool json) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(out, ec))) return;
  bool ours = false;
  if (json) {
    try {
      const auto j = parse_json_bounded(read_file(out), out);
      ours = j.is_object() && j.contains("encoder_attention") && j.contains("tokens");
    } catch (const std::exception&) {
      ours = false;
    }
  } else {
    ours = is_heed_page(out);
  }
  if (!ours) {
    throw InputError(fmt::format("--out {}: exists and was not written by heed attention; refusing to overwrite it "
                                 "(remove it or choose another path)",
                                 out));
  }
}

}  // namespace

int attention_job(const AttentionJobOptions& o) {
  if (o.run.empty() == o.model.empty()) throw InputError("attention: give either --run DIR or --model FILE.pt");
  if (o.out.empty() && !o.json) {
    throw InputError("attention: give --out FILE.html (the page) or --json (the numbers, on stdout or in --out)");
  }
  const std::string text = the_text(o);
  if (!o.out.empty()) {  // never over an input, nor inside the run
    std::vector<NamedInput> inputs;
    if (!o.model.empty()) inputs.push_back({"--model", o.model});
    if (!o.input.empty() && o.input != "-") inputs.push_back({"--input", o.input});
    check_output_path("--out", o.out, inputs, o.run, {});
    refuse_foreign_output(o.out, o.json);
  }
  configure_runtime(o.threads);

  nlohmann::json attention;
  std::string source;
  if (!o.run.empty()) {
    source = o.run;
    if (run_task(o.run) == "classification") {
      attention = classifier_attention(load_classifier(o.run, o.checkpoint), text);
    } else {
      attention = summarizer_attention(load_summarizer(o.run, o.checkpoint), text);
    }
  } else {
    source = o.model;
    LoadedExport exported = load_export(o.model);
    attention = exported_attention(exported, text);
  }

  std::string content;
  if (o.json) {
    content = attention.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    auto path = std::filesystem::path(source).lexically_normal();
    if (!path.has_filename()) path = path.parent_path();  // "runs/x/"
    const std::string name = path.filename().string();
    content = views::attention_page(attention, fmt::format("heed attention: {} ({})", name, attention["kind"].get<std::string>()));
  }
  if (o.out.empty()) {
    std::cout << content;
    std::cout.flush();
  } else {
    write_file_atomic(o.out, content);
    spdlog::info("wrote {} ({} tokens, {} layers)", o.out, attention["tokens"].size(), attention["encoder_attention"].size());
  }
  return 0;
}

}  // namespace heed::app
