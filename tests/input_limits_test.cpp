// Inputs at and past heed's limits: JSON nesting depth and numbers out of range, text far longer
// than a model reads and runs of characters the tokenizer does not know, command-line numbers,
// --input that is a folder, unknown commands, labels.json and label sets.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "app/config/run_dir.h"
#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/news_readers.h"
#include "data_pipeline/readers.h"
#include "data_pipeline/text.h"
#include "data_pipeline/tokenizer.h"
#include "model/native/flat_weights.h"
#include "tests/classifier_runs.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::JsonError;
using heed::parse_json_bounded;
using heed::data::Tokenizer;
using heed::test::run_command;
using heed::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string heed_exe() { return heed::test::heed_binary(); }
std::string config(const std::string& name) { return std::string(HEED_SOURCE_DIR) + "/configs/" + name; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A unigram model trained on synthetic reviews: lower-case letters and punctuation; no 'x', 'q'
// or '€' (test_corpus.h draws from a small word list).
const Tokenizer& tokenizer() {
  static const Tokenizer tok = [] {
    static const auto texts = heed::test::sentences(400);
    std::vector<std::string_view> views(texts.begin(), texts.end());
    heed::data::TokenizerTrainOptions o;
    o.vocab_size = 64;
    return Tokenizer::train(views, o);
  }();
  return tok;
}

std::string repeat(const std::string& unit, size_t bytes) {
  std::string out;
  out.reserve(bytes + unit.size());
  while (out.size() < bytes) out += unit;
  return out;
}

}  // namespace

// --- JSON: one bounded parser for every JSON heed reads (item 5, item 8). ---

TEST(InputLimits, JsonDepthIsBoundedWithoutBuildingTheDeepValue) {
  EXPECT_NO_THROW(parse_json_bounded(nested(heed::kMaxJsonDepth), "t.json"));
  try {
    parse_json_bounded(nested(heed::kMaxJsonDepth + 1), "t.json");
    FAIL() << "no error";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.line(), 1u);
    EXPECT_EQ(e.column(), static_cast<size_t>(heed::kMaxJsonDepth + 1));
    EXPECT_EQ(e.kind(), JsonError::Kind::kTooDeep);  // the bracket that opens level 65
    EXPECT_TRUE(contains(e.what(), "t.json:1:65: invalid JSON: nested deeper than 64 levels")) << e.what();
  }
  // Deep enough to overflow the stack in nlohmann's recursive copy/destroy if it were built.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(parse_json_bounded(nested(2000000), "deep.json"), JsonError);
  EXPECT_THROW(parse_json_bounded(std::string(2000000, '['), "open.json"), JsonError);
  EXPECT_THROW(parse_json_bounded(repeat("{\"a\":", 5000000) + "1", "objects.json"), JsonError);
  EXPECT_LT(seconds_since(start), 5.0);
  // Brackets inside strings are text, not nesting.
  const auto doc = parse_json_bounded("{\"s\": \"" + std::string(1000, '[') + "\\\"]\"}", "s.json");
  EXPECT_EQ(doc["s"].get<std::string>().size(), 1002u);
}

TEST(InputLimits, JsonErrorsNameLineColumnAndField) {
  try {
    parse_json_bounded("{\n  \"training\": {\n    \"lr\": 1e400\n  }\n}\n", "c.json");
    FAIL() << "no error";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.column(), 11u);  // where 1e400 starts
    EXPECT_EQ(e.kind(), JsonError::Kind::kNumberOutOfRange);
    EXPECT_EQ(e.field(), "training.lr");
    EXPECT_TRUE(contains(e.what(), "c.json:3:")) << e.what();
    EXPECT_TRUE(contains(e.what(), "training.lr: number overflow parsing '1e400'")) << e.what();
  }
  try {
    parse_json_bounded("{\"a\": [1, 2, {\"b\": tru}]}", "x.json");
    FAIL() << "no error";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.field(), "a[2].b");
    EXPECT_EQ(e.kind(), JsonError::Kind::kSyntax);
    EXPECT_TRUE(contains(e.what(), "x.json:1:")) << e.what();
  }
  try {
    parse_json_bounded("[1, 2, -1e999]", "y.json");
    FAIL() << "no error";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.field(), "[2]");
  }
  EXPECT_THROW(parse_json_bounded("{} x", "z.json"), JsonError);  // trailing text
  EXPECT_THROW(parse_json_bounded("", "e.json"), JsonError);
}

TEST(InputLimits, ConfigFilesAndSetValuesAreBounded) {
  TempDir dir;
  const auto deep = dir.write("deep.json", "{\"data\": " + nested(300000) + "}");
  try {
    heed::app::load_config(deep, {}, "/d");
    FAIL() << "no error";
  } catch (const heed::InputError& e) {
    EXPECT_TRUE(contains(e.what(), deep + ":1:")) << e.what();
    EXPECT_TRUE(contains(e.what(), "nested deeper than 64 levels")) << e.what();
  }
  const auto big = dir.write("big.json", "{\n  \"data\": {\"train\": \"t.jsonl\"},\n  \"training\": {\"lr\": 1e400}\n}\n");
  try {
    heed::app::load_config(big, {}, "/d");
    FAIL() << "no error";
  } catch (const heed::InputError& e) {
    EXPECT_TRUE(contains(e.what(), big + ":3:")) << e.what();
    EXPECT_TRUE(contains(e.what(), "training.lr")) << e.what();
  }
  const nlohmann::json doc = {{"data", {{"train", "t.jsonl"}}}};
  for (const std::string& set : {"model.d_model=" + nested(300000), std::string("training.lr=1e400")}) {
    try {
      heed::app::parse_config(doc, {set}, "/d", "cfg.json");
      FAIL() << "no error";
    } catch (const heed::InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--set " + set.substr(0, set.find('=') + 1), 0), 0u)
          << std::string(e.what()).substr(0, 200);
    }
  }
}

TEST(InputLimits, SetErrorsNameTheAssignmentNotTheConfigFile) {
  TempDir dir;
  const auto cfg = dir.write("c.json", R"({"data": {"train": "t.jsonl"}, "training": {"lr": 0.5}})");
  struct Case {
    std::string set, expected_start;
  };
  const std::vector<Case> cases = {
      {"training.lr=100", "--set training.lr=100: training.lr: must be in (0, 10), got 100"},
      {"training.lrr=0.1", "--set training.lrr=0.1: unknown key \"training.lrr\""},
      {"model.d_model=big", "--set model.d_model=big: model.d_model: must be an integer"},
      {"task=translation", "--set task=translation: "},
  };
  for (const auto& c : cases) {
    try {
      heed::app::load_config(cfg, {c.set}, "/d");
      FAIL() << c.set;
    } catch (const heed::InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(c.expected_start, 0), 0u) << e.what();
      EXPECT_FALSE(contains(e.what(), cfg)) << e.what();
    }
  }
  // An error in the file itself still names the file.
  const auto bad = dir.write("bad.json", R"({"data": {"train": "t.jsonl"}, "training": {"lr": 100}})");
  try {
    heed::app::load_config(bad, {"training.epochs=2"}, "/d");
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad + ": training.lr", 0), 0u) << e.what();
  }
}

TEST(InputLimits, JsonlRecordsAndLabelsFilesAreBounded) {
  TempDir dir;
  const auto path = dir.write("d.jsonl", "{\"text\": \"fine\", \"label\": \"a\"}\n{\"text\": " + nested(500000) +
                                             "}\n{\"text\": \"ok\", \"label\": \"b\"}\n");
  heed::data::ReadReport report;
  const auto examples = heed::data::read_classification(path, "jsonl", "text", "label", heed::data::OnError::kSkip, &report);
  EXPECT_EQ(examples.size(), 2u);
  ASSERT_EQ(report.messages.size(), 1u);
  EXPECT_TRUE(contains(report.messages[0], path + ":2: not valid JSON (nested deeper than 64 levels")) << report.messages[0];

  // The summarization readers share the JSON Lines reader (CNN/DailyMail JSONL here).
  const auto news = dir.write("cnndm.jsonl", "{\"article\": \"A b.\", \"highlights\": \"A.\"}\n{\"article\": " +
                                                 nested(500000, "\"x\"") + "}\n");
  heed::data::SummaryReadOptions options;
  options.format = "cnndm_jsonl";
  options.on_error = heed::data::OnError::kSkip;
  heed::data::ReadReport news_report;
  EXPECT_EQ(heed::data::read_summarization(news, options, &news_report).size(), 1u);
  ASSERT_EQ(news_report.messages.size(), 1u);
  EXPECT_TRUE(contains(news_report.messages[0], news + ":2: not valid JSON (nested deeper than 64 levels"))
      << news_report.messages[0];

  // labels.json: bounded, a list of distinct strings (item 12).
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"(["neg", "pos", "neg"])", "label \"neg\" is listed twice"},
      {nested(300000, "\"a\""), "nested deeper than 64 levels"},
      {R"(["only"])", "at least two"},
      {R"({"a": 1})", "must be a JSON list"},
      {R"(["a", 3])", "is not a string"},
  };
  for (const auto& [text, needle] : bad) {
    try {
      heed::app::parse_labels(text, "run/labels.json");
      FAIL() << text.substr(0, 50);
    } catch (const heed::InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("run/labels.json", 0), 0u) << e.what();
      EXPECT_TRUE(contains(e.what(), needle)) << e.what();
    }
  }
  EXPECT_EQ(heed::app::parse_labels(R"(["neg", "pos"])", "l.json"), (std::vector<std::string>{"neg", "pos"}));
}

TEST(InputLimits, FlatWeightsHeaderIsBounded) {
  TempDir dir;
  const std::string header = "{\"format\": " + nested(500000) + "}";
  const uint64_t length = header.size();
  std::string bytes = "HEEDFLAT";
  bytes.append(reinterpret_cast<const char*>(&length), sizeof(length));
  bytes += header;
  heed::Xxh3 digest;  // an intact header checksum (format 2), so the parser is what refuses it
  digest.update(bytes.data(), bytes.size());
  const uint64_t stored = digest.digest();
  bytes.append(reinterpret_cast<const char*>(&stored), sizeof(stored));
  const auto path = dir.write("deep.flat", bytes);
  try {
    heed::model::FlatWeights::read(path);
    FAIL() << "no error";
  } catch (const heed::InputError& e) {
    EXPECT_TRUE(contains(e.what(), path)) << e.what();
    EXPECT_TRUE(contains(e.what(), "nested deeper than 64 levels")) << e.what();
  }
}

// --- Text: long runs of unknown characters and texts far longer than a model reads (item 7). ---

TEST(InputLimits, UnknownRunsAreCompactedWithoutChangingIds) {
  const auto& tok = tokenizer();
  ASSERT_EQ(tok.encode_raw("q").back(), tok.unk_id());  // 'q' is not in the vocabulary
  for (const std::string unknown : {"x", "q", "\xE2\x82\xAC" /* € */, "x\xE2\x82\xACq"}) {
    // Runs shorter than SentencePiece's quadratic regime, so the raw encoding is cheap to compare with.
    const std::string run = repeat(unknown, 30000);
    for (const std::string& text : {run, "the film " + run + " was good", "great" + run + "fun and " + run}) {
      const auto compacted = tok.compact_unknown_runs(text);
      EXPECT_LT(compacted.size(), 300u);
      EXPECT_EQ(tok.encode(text), tok.encode_raw(text)) << unknown;
      EXPECT_EQ(tok.encode_raw(compacted), tok.encode_raw(text)) << unknown;
    }
  }
  // Known characters are never dropped, however long the whitespace-free span.
  const std::string known = repeat("great", 50000);
  EXPECT_EQ(tok.compact_unknown_runs(known), known);
  EXPECT_EQ(tok.encode(known), tok.encode_raw(known));
}

TEST(InputLimits, FiveMegabytesOfUnknownCharactersEncodeInUnderTwoSeconds) {
  const auto& tok = tokenizer();
  heed::data::Truncation t;
  t.max_length = 256;
  for (const std::string unknown : {"x", "\xE2\x82\xAC"}) {
    const std::string text = repeat(unknown, 5 << 20);
    auto start = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text);  // no truncation at all (heed tokenizer encode)
    EXPECT_LT(seconds_since(start), 2.0) << unknown;
    // The untruncated raw encoding of any such run is [▁, unk] (or [unk]): measure it on 20 KB.
    EXPECT_EQ(ids, tok.encode_raw(repeat(unknown, 20000)));
    start = std::chrono::steady_clock::now();
    const auto inference = heed::data::encode_for_inference(tok, t, {text, "good " + text + " bad"}, 2);
    EXPECT_LT(seconds_since(start), 2.0) << unknown;
    EXPECT_EQ(inference[0], heed::data::truncate(tok.encode_raw(repeat(unknown, 20000)), t));
    EXPECT_EQ(inference[1], heed::data::truncate(tok.encode_raw("good " + repeat(unknown, 20000) + " bad"), t));
  }
}

TEST(InputLimits, ByteBudgetKeepsHeadAndTailIds) {
  const auto& tok = tokenizer();
  // 3 MB of ordinary words with long unknown runs and a whitespace-free stretch in the middle.
  std::string text;
  const auto sentences = heed::test::sentences(200, 7);
  for (size_t i = 0; text.size() < (3u << 20); ++i) {
    text += sentences[i % sentences.size()] + (i % 50 == 7 ? " " + repeat("\xE2\x82\xAC", 9000) + " " : " ");
    if (i == 3000) text += repeat("greatfun", 20000) + " ";
  }
  const auto full = tok.encode_raw(text);
  for (const char* mode : {"head", "head_tail"}) {
    for (int64_t max_length : {16, 64, 256, 2048}) {
      heed::data::Truncation t;
      t.mode = heed::data::parse_truncation_mode(mode);
      t.max_length = max_length;
      t.head_tokens = max_length / 4;
      const auto cut = heed::data::cut_to_budget(tok, text, t);
      EXPECT_LE(cut.size(), 2 * heed::data::text_byte_budget(t) + 1) << mode << " " << max_length;
      EXPECT_EQ(heed::data::truncate(tok.encode(cut), t), heed::data::truncate(full, t)) << mode << " " << max_length;
    }
  }
  // Cuts fall on character boundaries: a text of 3-byte characters stays valid UTF-8.
  heed::data::Truncation t;
  t.mode = heed::data::TruncationMode::kHeadTail;
  t.max_length = 8;
  t.head_tokens = 2;
  const auto cut = heed::data::cut_to_budget(tok, repeat("\xE6\x97\xA5", 100000), t);  // 日 (unknown) ...
  EXPECT_TRUE(heed::data::is_valid_utf8(cut));
  const auto cut2 = heed::data::cut_to_budget(tok, repeat("g\xE6\x97\xA5", 100000), t);  // ... and mixed
  EXPECT_TRUE(heed::data::is_valid_utf8(cut2));
  EXPECT_LE(cut2.size(), 2 * heed::data::text_byte_budget(t) + 1);
}

// --- The heed executable: exit codes and messages. ---

TEST(InputLimits, CliNumbersAreRangeChecked) {
  struct Case {
    std::string args, flag;
  };
  const std::vector<Case> cases = {
      {"classify --run r --threads 100000 hi", "--threads"},
      {"classify --run r --threads -1 hi", "--threads"},
      {"classify --run r --batch-size 0 hi", "--batch-size"},
      {"summarize --run r --threads 5000 hi", "--threads"},
      {"summarize --run r --batch-size -3 hi", "--batch-size"},
      {"evaluate --run r --data d --threads 100000", "--threads"},
      {"evaluate --run r --data d --limit -1", "--limit"},
      {"evaluate --run r --data d --batch-size 0", "--batch-size"},
      {"train --config c.json --threads 100000", "--threads"},
      {"train --config c.json --threads -2", "--threads"},
      {"tokenizer train --input i --out o --vocab-size 0", "--vocab-size"},
      {"tokenizer train --input i --out o --vocab-size 8", "--vocab-size"},
      {"tokenizer train --input i --out o --threads 2000", "--threads"},
      {"tokenizer train --input i --out o --input-sentence-size -1", "--input-sentence-size"},
      {"tokenizer train --input i --out o --character-coverage 0", "--character-coverage"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(run_command(heed_exe() + " " + c.args, &out), 2) << c.args << "\n" << out;
    EXPECT_TRUE(contains(out, c.flag)) << c.args << "\n" << out;
  }
}

TEST(InputLimits, TokenizerTrainVocabSizeZeroIsAClearError) {
  TempDir dir;
  std::string text;
  for (const auto& s : heed::test::sentences(100)) text += s + "\n";
  const auto input = dir.write("corpus.txt", text);
  std::string out;
  EXPECT_EQ(run_command(heed_exe() + " tokenizer train --input " + input + " --out " + dir.str() + "/m.model --vocab-size 0",
                        &out),
            2);
  EXPECT_TRUE(contains(out, "--vocab-size")) << out;
  EXPECT_FALSE(contains(out, "Internal")) << out;
  EXPECT_FALSE(fs::exists(dir.str() + "/m.model"));
}

TEST(InputLimits, UnknownCommandIsNamed) {
  std::string out;
  EXPECT_EQ(run_command(heed_exe() + " trian --config x.json", &out), 2);
  EXPECT_TRUE(contains(out, "unknown command 'trian'")) << out;
  EXPECT_TRUE(contains(out, "train, classify, summarize, evaluate, export, attention, report, serve, tokenizer")) << out;
  EXPECT_EQ(run_command(heed_exe() + " tokenizer encdoe --model m", &out), 2);
  EXPECT_TRUE(contains(out, "unknown command 'encdoe'")) << out;
  EXPECT_TRUE(contains(out, "train, encode")) << out;
}

TEST(InputLimits, InputThatIsAFolderOrMissingIsAnError) {
  TempDir dir;
  fs::create_directories(dir.str() + "/texts");
  for (const std::string& input : {dir.str() + "/texts", dir.str() + "/missing.txt"}) {
    std::string out;
    for (const std::string& command : {" classify --run " + dir.str() + "/run --input ",
                                       " summarize --run " + dir.str() + "/run --input ",
                                       " tokenizer encode --model " + dir.str() + "/m.model --input "}) {
      EXPECT_EQ(run_command(heed_exe() + command + input, &out), 2) << command << "\n" << out;
      EXPECT_TRUE(contains(out, "--input " + input)) << out;
      EXPECT_EQ(count_lines(out), 1) << out;
    }
  }
}

TEST(InputLimits, DeepOrOutOfRangeConfigsExitTwoNamingTheFile) {
  TempDir dir;
  dir.write("train.jsonl", R"({"text": "good", "label": "pos"})" "\n");
  struct Case {
    std::string file, needle;
  };
  const std::vector<Case> cases = {
      {"{\"data\": " + nested(400000) + "}", "bad.json:1:"},
      {"{\"data\": {\"train\": \"{data_dir}/train.jsonl\"},\n \"training\": {\"lr\": 1e400}}", "bad.json:2:"},
  };
  for (const auto& c : cases) {
    const auto cfg = dir.write("bad.json", c.file);
    std::string out;
    EXPECT_EQ(run_command(heed_exe() + " train --config " + cfg + " --data-dir " + dir.str() + " --output " + dir.str() + "/run",
                          &out),
              2)
        << out.substr(0, 300);
    EXPECT_TRUE(contains(out, c.needle)) << out.substr(0, 300);
    EXPECT_EQ(count_lines(out), 1) << out.substr(0, 300);
    EXPECT_FALSE(fs::exists(dir.str() + "/run"));
  }
  std::string out;
  EXPECT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                            " --output " + dir.str() + "/run --set training.lr=100",
                        &out),
            2);
  EXPECT_TRUE(contains(out, "--set training.lr=100: training.lr")) << out;
  EXPECT_FALSE(contains(out, "tiny_classifier.json")) << out;
}

// --- Trained runs: labels, vocabularies (items 10, 11, 12). ---

TEST(InputLimits, LabelSetComesFromAllTheDataWhateverTheSplitSeed) {
  TempDir dir;
  std::string data;
  for (const auto& e : heed::test::sentiment(60, 5)) data += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  data += nlohmann::json{{"text", "an odd one, neither here nor there"}, {"label", "mixed"}}.dump() + "\n";
  dir.write("train.jsonl", data);
  std::set<std::vector<std::string>> label_sets;
  for (int seed : {1, 2, 3, 4, 5}) {
    const auto run = dir.str() + "/run" + std::to_string(seed);
    std::string out;
    ASSERT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                              " --output " + run + " --set data.split_seed=" + std::to_string(seed) +
                              " --set training.max_steps=1 --set data.on_error=skip",
                          &out),
              0)
        << out;
    label_sets.insert(heed::app::read_labels(heed::app::RunDir{run}));
  }
  ASSERT_EQ(label_sets.size(), 1u);
  EXPECT_EQ(*label_sets.begin(), (std::vector<std::string>{"mixed", "neg", "pos"}));

  // A separate validation file's labels count too.
  dir.write("val.jsonl", nlohmann::json{{"text", "so so"}, {"label", "meh"}}.dump() + "\n" +
                             data.substr(0, data.find('\n') + 1));
  std::string out;
  ASSERT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                            " --output " + dir.str() + "/runv --set data.validation={data_dir}/val.jsonl" +
                            " --set training.max_steps=1",
                        &out),
            0)
      << out;
  EXPECT_EQ(heed::app::read_labels(heed::app::RunDir{dir.str() + "/runv"}),
            (std::vector<std::string>{"meh", "mixed", "neg", "pos"}));
  EXPECT_TRUE(contains(out, "label \"meh\" has no training example")) << out;
}

TEST(InputLimits, TrainedRunMismatchesAndBadInputsExitTwo) {
  TempDir dir;
  const auto run = heed::test::train_tiny_classifier(dir, 11);
  ASSERT_FALSE(run.empty());
  std::string out;

  // A 20 MB review (one JSON line, one unknown character over and over) does not hang training.
  {
    std::string data;
    for (const auto& e : heed::test::sentiment(60, 2)) data += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
    data += nlohmann::json{{"text", "great " + repeat("x", 20 << 20) + " fun"}, {"label", "pos"}}.dump() + "\n";
    TempDir big;
    big.write("train.jsonl", data);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + big.str() +
                              " --output " + big.str() + "/run --set training.max_steps=2",
                          &out),
              0)
        << out;
    EXPECT_LT(seconds_since(start), 60.0);
    // classify reads 5 MB of it from stdin quickly too.
    big.write("long.txt", repeat("x", 5 << 20) + "\n");
    EXPECT_EQ(run_command(heed_exe() + " classify --run " + run + " --input " + big.str() + "/long.txt", &out, false), 0);
    EXPECT_EQ(count_lines(out), 1) << out.substr(0, 300);
  }

  // More threads than cores: libtorch is given the cores (1024 threads on 2 cores took 89 s for two texts).
  if (std::thread::hardware_concurrency() < 1024) {
    EXPECT_EQ(run_command(heed_exe() + " classify --run " + run + " --engine torch --threads 1024 'good'", &out), 0) << out;
    EXPECT_TRUE(contains(out, "1024 threads asked for, this machine has")) << out;
  }

  // Duplicate labels.json names: both engines refuse, naming the file and the label.
  const std::string labels = heed::read_file(run + "/labels.json");
  heed::write_file_atomic(run + "/labels.json", R"(["neg", "neg"])");
  for (const char* engine : {"native", "torch"}) {
    EXPECT_EQ(run_command(heed_exe() + " classify --run " + run + " --engine " + engine + " 'good'", &out), 2) << out;
    EXPECT_TRUE(contains(out, run + "/labels.json: label \"neg\" is listed twice")) << out;
  }
  heed::write_file_atomic(run + "/labels.json", labels);

  // A tokenizer that does not belong to the weights: the same message and exit code on both engines.
  std::string text;
  for (const auto& s : heed::test::sentences(300, 4)) text += s + "\n";
  const auto corpus = dir.write("corpus.txt", text);
  ASSERT_EQ(run_command(heed_exe() + " tokenizer train --input " + corpus + " --out " + dir.str() + "/other.model --vocab-size 50",
                        &out),
            0)
      << out;
  fs::copy_file(dir.str() + "/other.model", run + "/tokenizer.model", fs::copy_options::overwrite_existing);
  std::string messages[2];
  int i = 0;
  for (const char* engine : {"native", "torch"}) {
    EXPECT_EQ(run_command(heed_exe() + " classify --run " + run + " --engine " + engine + " 'good'", &out), 2) << out;
    EXPECT_TRUE(contains(out, "tokenizer.model has 50 pieces")) << out;
    messages[i++] = out.substr(out.find("--run"));
  }
  EXPECT_EQ(messages[0], messages[1]);
}
