// Checksummed weight files (issue 11, items 4 and 9): a damaged checkpoint, flat-weights file or
// exported archive is an exit-2 error naming the file; a damaged or truncated best.flat is rebuilt
// from a verified best.pt by `--engine auto`; files of earlier heed versions still load, with a
// warning that they are not verified.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <caffe2/serialize/inline_container.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "app/training/checkpoint.h"
#include "app/training/classification.h"
#include "app/training/exported.h"
#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/export.h"
#include "model/native/flat_weights.h"
#include "tests/classifier_runs.h"
#include "tests/test_utils.h"

namespace fs = std::filesystem;
using heed::test::run_command;
using heed::test::TempDir;

namespace {

std::string heed_exe() { return heed::test::heed_binary(); }

// Inverts `count` bytes of `path` from `offset` on, in place.
void flip_bytes(const std::string& path, uint64_t offset, size_t count = 16) {
  std::string bytes = heed::read_file(path);
  ASSERT_LE(offset + count, bytes.size()) << path;
  for (size_t i = 0; i < count; ++i) bytes[offset + i] = static_cast<char>(~bytes[offset + i]);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Offset of the middle of the largest record of a torch zip archive whose name contains `part`
// (tensor data: "data/" records).
uint64_t middle_of_largest_record(const std::string& path, const std::string& part = "data/") {
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::string largest;
  size_t largest_size = 0;
  for (const auto& name : reader.getAllRecords()) {
    if (name.find(part) == std::string::npos) continue;  // names without the archive's folder: "data/0"
    const size_t size = std::get<1>(reader.getRecord(name));
    if (size > largest_size) {
      largest = name;
      largest_size = size;
    }
  }
  EXPECT_GT(largest_size, 64u) << path;
  return reader.getRecordOffset(largest) + largest_size / 2;
}

// Offset of the middle of a flat-weights file's data section (model/native/flat_weights.h, format 2).
uint64_t middle_of_flat_data(const std::string& path) {
  const std::string bytes = heed::read_file(path);
  uint64_t length = 0;
  std::memcpy(&length, bytes.data() + 8, 8);
  const uint64_t data_start = 16 + length + 8;
  return data_start + (bytes.size() - data_start) / 2;
}

// Copies a run, keeping each checkpoint's modification time so its flat weights stay current.
void copy_run(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(fs::path(from) / "checkpoints")) {
    fs::last_write_time(fs::path(to) / "checkpoints" / entry.path().filename(), fs::last_write_time(entry.path()));
  }
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class Integrity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    run_ = heed::test::train_tiny_classifier(*dir_, 11);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_FALSE(run_.empty()) << "the tiny run did not train"; }

  // A fresh copy of the suite's run for one test to damage.
  std::string copy_of_run() {
    const auto copy = work_.str() + "/run";
    copy_run(run_, copy);
    return copy;
  }
  std::string classify(const std::string& args, int* code, bool merge_stderr = true) {
    std::string out;
    *code = run_command(heed_exe() + " classify " + args, &out, merge_stderr);
    return out;
  }

  static TempDir* dir_;
  static std::string run_;
  TempDir work_;
};
TempDir* Integrity::dir_ = nullptr;
std::string Integrity::run_;

TEST_F(Integrity, FlippedBytesInBestPtAreAnErrorNamingTheFileAndDoNotSpread) {
  const auto run = copy_of_run();
  const auto pt = run + "/checkpoints/best.pt", flat = run + "/checkpoints/best.flat";
  const std::string flat_before = heed::read_file(flat);
  flip_bytes(pt, middle_of_largest_record(pt));
  int code = 0;
  for (const char* engine : {"torch", "auto"}) {
    const auto out = classify("--engine " + std::string(engine) + " --run " + run + " hello", &code);
    EXPECT_EQ(code, 2) << engine << ": " << out;
    EXPECT_NE(out.find("best.pt"), std::string::npos) << out;
    EXPECT_NE(out.find("damaged"), std::string::npos) << out;
  }
  EXPECT_EQ(heed::read_file(flat), flat_before) << "the damaged weights reached best.flat";
  std::string out;
  const auto data = work_.write("d.jsonl", "{\"text\": \"a fine film\", \"label\": \"pos\"}\n");
  EXPECT_EQ(run_command(heed_exe() + " evaluate --run " + run + " --data " + data, &out), 2) << out;
  EXPECT_NE(out.find("best.pt"), std::string::npos) << out;
  const auto archive = work_.str() + "/out.pt";
  EXPECT_EQ(run_command(heed_exe() + " export --run " + run + " --out " + archive, &out), 2) << out;
  EXPECT_NE(out.find("best.pt"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(archive));
}

TEST_F(Integrity, FlippedBytesInLastPtStopResume) {
  const auto run = copy_of_run();
  const auto last = run + "/checkpoints/last.pt";
  flip_bytes(last, middle_of_largest_record(last));
  std::string out;
  EXPECT_EQ(run_command(heed_exe() + " train --output " + run + " --resume --data-dir " + dir_->str(), &out), 2) << out;
  EXPECT_NE(out.find("last.pt"), std::string::npos) << out;
  EXPECT_NE(out.find("damaged"), std::string::npos) << out;
}

TEST_F(Integrity, UnreadableCheckpointIsAnErrorNotACrash) {
  const auto run = copy_of_run();
  const auto pt = run + "/checkpoints/best.pt";
  const std::string bytes = heed::read_file(pt);
  int code = 0;
  for (const auto& broken : {bytes.substr(0, bytes.size() / 2), bytes.substr(0, 100), std::string(4096, 'x')}) {
    heed::write_file_atomic(pt, broken);
    const auto out = classify("--engine torch --run " + run + " hello", &code);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("best.pt"), std::string::npos) << out;
  }
}

TEST_F(Integrity, CheckpointOfAnEarlierHeedLoadsWithOneWarning) {
  const auto run = copy_of_run();
  {
    // What save_checkpoint wrote before checksums: format, state and model, nothing else.
    auto clf = heed::app::load_classifier(run, "best");
    torch::serialize::OutputArchive archive, model_archive;
    archive.write("format", torch::tensor(int64_t{1}));
    archive.write("state", c10::IValue(heed::app::to_json(heed::app::TrainState{}).dump()));
    clf.model->save(model_archive);
    archive.write("model", model_archive);
    archive.save_to(run + "/checkpoints/best.pt");
  }
  int code = 0;
  const auto out = classify("--engine torch --run " + run + " hello", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(count(out, "not verified"), 1u) << out;
  EXPECT_NE(out.find("best.pt"), std::string::npos) << out;
}

TEST_F(Integrity, FlippedBytesInBestFlatAreRebuiltByAutoAndRefusedByNative) {
  const auto run = copy_of_run();
  const auto flat = run + "/checkpoints/best.flat";
  const auto input = work_.write("texts.txt", "a great film\nterrible, boring and slow\nok\n");
  int code = 0;
  const auto reference = classify("--engine torch --run " + run + " --input " + input, &code, false);
  ASSERT_EQ(code, 0) << reference;
  flip_bytes(flat, middle_of_flat_data(flat));
  auto out = classify("--engine native --run " + run + " --input " + input, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("best.flat"), std::string::npos) << out;
  EXPECT_NE(out.find("damaged"), std::string::npos) << out;
  EXPECT_NE(out.find("--engine auto"), std::string::npos) << out;
  // auto: rebuilt from the verified best.pt, same answers as libtorch; native works again after.
  out = classify("--run " + run + " --input " + input, &code, false);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(heed::test::expect_same_classifications(out, reference, 1e-5), 3);
  out = classify("--engine native --run " + run + " --input " + input, &code, false);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(heed::test::expect_same_classifications(out, reference, 1e-5), 3);
}

TEST_F(Integrity, TruncatedBestFlatIsRebuiltByAuto) {
  const auto run = copy_of_run();
  const auto flat = run + "/checkpoints/best.flat";
  const auto input = work_.write("texts.txt", "a great film\nterrible, boring and slow\n");
  int code = 0;
  const auto reference = classify("--engine torch --run " + run + " --input " + input, &code, false);
  ASSERT_EQ(code, 0) << reference;
  const std::string bytes = heed::read_file(flat);
  fs::resize_file(flat, bytes.size() - 100);
  fs::last_write_time(flat, fs::last_write_time(run_ + "/checkpoints/best.flat"));
  auto out = classify("--engine native --run " + run + " hello", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("best.flat"), std::string::npos) << out;
  out = classify("--run " + run + " --input " + input, &code, false);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(heed::test::expect_same_classifications(out, reference, 1e-5), 2);
  EXPECT_EQ(heed::read_file(flat).size(), bytes.size()) << "best.flat was not rebuilt";
  out = classify("--engine native --run " + run + " --input " + input, &code, false);
  EXPECT_EQ(code, 0) << out;
}

TEST_F(Integrity, FlippedBytesInAnExportAreAnErrorNamingTheArchive) {
  const auto archive = work_.str() + "/model.pt";
  std::string out;
  ASSERT_EQ(run_command(heed_exe() + " export --run " + run_ + " --out " + archive, &out), 0) << out;
  const std::string good = heed::read_file(archive);
  int code = 0;
  out = classify("--model " + archive + " hello", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("not verified"), std::string::npos) << out;
  // The weights, then the tokenizer carried as an extra file.
  for (const char* part : {"data/", "extra/heed/tokenizer.model"}) {
    heed::write_file_atomic(archive, good);
    flip_bytes(archive, middle_of_largest_record(archive, part), 8);
    out = classify("--model " + archive + " hello", &code);
    EXPECT_EQ(code, 2) << part << ": " << out;
    EXPECT_NE(out.find(archive), std::string::npos) << out;
    EXPECT_NE(out.find("damaged"), std::string::npos) << out;
  }
}

TEST_F(Integrity, ExportOfAnEarlierHeedLoadsWithOneWarning) {
  const auto archive = work_.str() + "/old.pt";
  {
    // An archive as heed export wrote it before checksums: no "checksums" in heed/format.json.
    auto clf = heed::app::load_classifier(run_, "best");
    auto module = heed::model::export_classifier(*clf.model);
    torch::jit::ExtraFilesMap extra;
    extra[heed::app::kConfigFile] = heed::read_file(run_ + "/config.json");
    extra[heed::app::kTokenizerFile] = clf.tokenizer.bytes();
    extra[heed::app::kLabelsFile] = nlohmann::json(clf.labels).dump();
    extra[heed::app::kFormatFile] = nlohmann::json{{"format", heed::model::kExportFormat}, {"kind", "classifier"}}.dump();
    module.save(archive, extra);
  }
  int code = 0;
  const auto out = classify("--model " + archive + " hello", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(count(out, "not verified"), 1u) << out;
}

// --- The same checks in-process, on hand-made files. ---

TEST(FlatWeightsIntegrity, EveryDamagedByteIsCaughtAndOldFormatsAreRefused) {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8};
  const auto path = dir.str() + "/w.flat";
  heed::model::write_flat_weights(path, {{"a", {2, 3}, a.data()}, {"b", {2}, b.data()}}, {{"file", "x.pt"}});
  const std::string good = heed::read_file(path);
  const auto w = heed::model::FlatWeights::read(path);
  EXPECT_EQ(w.at("b", {2}).data[1], 8.0f);
  // A flipped byte anywhere (magic, length, header, header checksum, data) is an InputError
  // naming the file, from the full read; from the cheap header read too unless it is in the data.
  uint64_t length = 0;
  std::memcpy(&length, good.data() + 8, 8);
  const uint64_t data_start = 16 + length + 8;
  for (size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    heed::write_file_atomic(path, bad);
    try {
      heed::model::FlatWeights::read(path);
      ADD_FAILURE() << "byte " << at << " flipped, read succeeded";
    } catch (const heed::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    if (at < data_start) {
      EXPECT_THROW(heed::model::read_flat_weights_source(path), heed::InputError) << at;
    }
  }
  // Truncated anywhere, or with bytes appended.
  for (size_t keep : {size_t{0}, size_t{7}, size_t{20}, static_cast<size_t>(data_start), good.size() - 1}) {
    heed::write_file_atomic(path, good.substr(0, keep));
    EXPECT_THROW(heed::model::read_flat_weights_source(path), heed::InputError) << keep;
  }
  heed::write_file_atomic(path, good + "xxxx");
  EXPECT_THROW(heed::model::read_flat_weights_source(path), heed::InputError);
  // Format 1 (no checksums): refused with the format named, so classify rebuilds it.
  const std::string header = R"({"format": 1, "source": {}, "tensors": []})";
  std::string v1 = "HEEDFLAT";
  const uint64_t n = header.size();
  v1.append(reinterpret_cast<const char*>(&n), 8);
  v1 += header;
  heed::write_file_atomic(path, v1);
  try {
    heed::model::read_flat_weights_source(path);
    ADD_FAILURE() << "format 1 accepted";
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("format 1"), std::string::npos) << e.what();
  }
}

TEST(CheckpointIntegrity, EveryPartIsVerifiedOnLoad) {
  TempDir dir;
  torch::manual_seed(3);
  heed::model::Classifier model(heed::test::tiny_model_options(), 40, 2);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  // One step so the optimizer has moment tensors.
  auto loss = model->forward(torch::randint(0, 40, {2, 5}, torch::kInt64), torch::tensor({5, 3}, torch::kInt64)).sum();
  loss.backward();
  optimizer.step();
  // As the trainer does every step; a loaded optimizer keeps its own options, so they are no part of the checksum.
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(0.5);
  const auto path = dir.str() + "/c.pt";
  heed::app::TrainState state;
  state.step = 7;
  heed::app::save_checkpoint(path, *model, &optimizer, state);
  heed::model::Classifier fresh(heed::test::tiny_model_options(), 40, 2);
  torch::optim::AdamW fresh_optimizer(fresh->parameters(), torch::optim::AdamWOptions(1e-3));
  EXPECT_EQ(heed::app::load_checkpoint(path, *fresh, &fresh_optimizer).step, 7);
  // Every tensor record (model weights, optimizer moments, RNG state, format): a flip is caught
  // whichever tensor it hits; in a weights-only checkpoint too.
  const auto weights_only = dir.str() + "/w.pt";
  heed::app::save_checkpoint(weights_only, *model, nullptr, state);
  int checked = 0;
  for (const auto& file : {path, weights_only}) {
    const bool full = file == path;
    const std::string good = heed::read_file(file);
    std::vector<std::pair<uint64_t, size_t>> records;  // offset, size
    {
      caffe2::serialize::PyTorchStreamReader reader(file);
      for (const auto& name : reader.getAllRecords()) {
        if (name.rfind("data/", 0) != 0 && name.find("/data/") == std::string::npos) continue;
        records.emplace_back(reader.getRecordOffset(name), std::get<1>(reader.getRecord(name)));
      }
    }
    ASSERT_GT(records.size(), full ? 30u : 10u) << file;
    for (const auto& [offset, size] : records) {
      heed::write_file_atomic(file, good);
      flip_bytes(file, offset + size / 2, 1);
      EXPECT_THROW(heed::app::load_checkpoint(file, *fresh, full ? &fresh_optimizer : nullptr), heed::InputError)
          << file << " at " << offset;
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

}  // namespace
