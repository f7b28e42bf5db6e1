// Config loading: strict keys and types, ranges, precedence, error messages that name the field.
#include <gtest/gtest.h>

#include <algorithm>

#include "app/config/config.h"
#include "data_pipeline/base/errors.h"
#include "tests/test_utils.h"

using heed::app::Config;
using heed::app::parse_config;
using nlohmann::json;

namespace {
json minimal() { return json{{"data", {{"train", "{data_dir}/train.jsonl"}}}}; }

std::string error_of(const json& doc, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(doc, overrides, "/d", "test.json");
  } catch (const heed::InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, DefaultsAndDataDirExpansion) {
  const Config c = parse_config(minimal(), {}, "/data", "test.json");
  EXPECT_EQ(c.data.train, "/data/train.jsonl");
  EXPECT_EQ(c.task, "classification");
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.training.best_metric, "accuracy");
}

TEST(Config, UnknownKeysAreNamedWithASuggestion) {
  auto doc = minimal();
  doc["model"] = {{"d_modle", 128}};
  const auto e = error_of(doc);
  EXPECT_NE(e.find("model.d_modle"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"d_model\""), std::string::npos) << e;
  doc = minimal();
  doc["trainning"] = json::object();
  EXPECT_NE(error_of(doc).find("trainning"), std::string::npos);
}

TEST(Config, WrongTypesAreNamed) {
  auto doc = minimal();
  doc["training"] = {{"lr", "fast"}};
  EXPECT_NE(error_of(doc).find("training.lr: must be a number"), std::string::npos) << error_of(doc);
  doc["training"] = {{"epochs", 2.5}};
  EXPECT_NE(error_of(doc).find("training.epochs: must be an integer"), std::string::npos);
  doc["training"] = {{"seed", -1}};
  EXPECT_NE(error_of(doc).find("training.seed"), std::string::npos);
  doc = minimal();
  doc["model"] = 3;
  EXPECT_NE(error_of(doc).find("model: must be an object"), std::string::npos) << error_of(doc);
}

TEST(Config, OutOfRangeValuesAreNamed) {
  auto doc = minimal();
  doc["model"] = {{"d_model", 64}, {"heads", 5}};
  EXPECT_NE(error_of(doc).find("model.heads"), std::string::npos);
  doc = minimal();
  doc["training"] = {{"lr", -1.0}};
  EXPECT_NE(error_of(doc).find("training.lr"), std::string::npos);
  doc = minimal();
  doc["data"]["max_length"] = 4096;
  EXPECT_NE(error_of(doc).find("model.max_positions"), std::string::npos) << error_of(doc);
  doc = minimal();
  doc["data"]["validation_fraction"] = 0.0;
  EXPECT_NE(error_of(doc).find("data.validation_fraction"), std::string::npos);
  doc = minimal();
  doc["data"].erase("train");
  EXPECT_NE(error_of(doc).find("data.train"), std::string::npos);
  doc = minimal();
  doc["task"] = "translation";
  EXPECT_NE(error_of(doc).find("task"), std::string::npos);
}

// model.coverage belongs to abstractive summarizers with copy attention; training.coverage_loss to coverage models.
TEST(Config, CoverageNeedsACopyingSummarizer) {
  auto summarizer = [] {
    auto doc = minimal();
    doc["task"] = "summarization";
    doc["data"]["format"] = "jsonl";
    return doc;
  };
  auto doc = summarizer();
  doc["model"] = {{"coverage", true}};
  doc["training"] = {{"coverage_loss", 1.0}};
  EXPECT_EQ(error_of(doc), "");
  doc["model"]["copy_attention"] = false;
  EXPECT_NE(error_of(doc).find("model.coverage: needs copy_attention"), std::string::npos) << error_of(doc);
  doc = summarizer();
  doc["training"] = {{"coverage_loss", 1.0}};
  EXPECT_NE(error_of(doc).find("training.coverage_loss"), std::string::npos) << error_of(doc);
  doc = summarizer();
  doc["model"] = {{"coverage", true}};
  doc["training"] = {{"coverage_loss", -1.0}};
  EXPECT_NE(error_of(doc).find("training.coverage_loss: must be in [0, 100]"), std::string::npos) << error_of(doc);
  doc = minimal();  // a classifier
  doc["model"] = {{"coverage", true}};
  EXPECT_NE(error_of(doc).find("model.coverage: must be false for task \"classification\""), std::string::npos)
      << error_of(doc);
}

// decoding.copy_span_bonus reweights the copy attention: refused before anything trains without it.
TEST(Config, CopySpanBonusNeedsACopyingSummarizer) {
  auto doc = minimal();
  doc["task"] = "summarization";
  doc["data"]["format"] = "jsonl";
  doc["decoding"] = {{"copy_span_bonus", 1.0}};
  EXPECT_EQ(error_of(doc), "");  // copy_attention defaults to true
  doc["model"] = {{"copy_attention", false}};
  EXPECT_NE(error_of(doc).find("config: decoding.copy_span_bonus: must be 0 unless model.copy_attention is true"),
            std::string::npos)
      << error_of(doc);
  doc["decoding"]["copy_span_bonus"] = 0.0;
  EXPECT_EQ(error_of(doc), "");
}

TEST(Config, OverridesBeatTheFileAndAreCheckedToo) {
  auto doc = minimal();
  doc["training"] = {{"lr", 0.01}};
  const Config c = parse_config(doc, {"training.lr=0.5", "model.pooling=first", "data.format=jsonl"}, "/d", "t");
  EXPECT_DOUBLE_EQ(c.training.lr, 0.5);
  EXPECT_EQ(c.model.pooling, "first");
  EXPECT_NE(error_of(doc, {"training.lrr=1"}).find("training.lrr"), std::string::npos);
  EXPECT_NE(error_of(doc, {"nosuch.x=1"}).find("nosuch"), std::string::npos);
  EXPECT_NE(error_of(doc, {"training.lr"}).find("section.key=value"), std::string::npos);
  EXPECT_NE(error_of(doc, {"training.epochs=many"}).find("training.epochs"), std::string::npos);
}

TEST(Config, RoundTripsThroughJson) {
  auto doc = minimal();
  doc["model"] = {{"d_model", 32}, {"heads", 4}, {"positions", "learned"}};
  const Config a = parse_config(doc, {}, "/d", "t");
  const Config b = parse_config(heed::app::to_json(a), {}, "/other", "t");
  EXPECT_EQ(heed::app::to_json(a), heed::app::to_json(b));
}

TEST(Config, FileErrorsNameFileLineAndColumn) {
  heed::test::TempDir dir;
  const auto path = dir.write("bad.json", "{\n  \"data\": {\n    \"train\": \"x\",\n  }\n}\n");
  try {
    heed::app::load_config(path, {}, "/d");
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json:4:"), std::string::npos) << e.what();
  }
  const auto good = dir.write("good.json", R"({"data": {"train": "x"}, "model": {"heads": 0}})");
  try {
    heed::app::load_config(good, {}, "/d");
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("good.json: model.heads"), std::string::npos) << e.what();
  }
  EXPECT_THROW(heed::app::load_config(dir.str() + "/missing.json", {}, "/d"), heed::InputError);
}

TEST(Config, CheckPathsNamesTheField) {
  Config c = parse_config(minimal(), {}, "/definitely/not/here", "t");
  try {
    heed::app::check_paths(c);
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("data.train"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("get_data.sh"), std::string::npos);
  }
}

TEST(Config, ShippedConfigsAreValid) {
  for (const char* name : {"imdb_classifier.json", "tiny_classifier.json"}) {
    EXPECT_NO_THROW(heed::app::load_config(std::string(HEED_SOURCE_DIR) + "/configs/" + name, {}, "/d")) << name;
  }
}

// The choice fields that select code paths are parsed once into enums; every spelling maps to its
// value and anything else is the InputError validation gives, naming the section and field.
TEST(Config, ChoiceFieldsParseToEnumsAndNameTheFieldOtherwise) {
  namespace model = heed::model;
  namespace app = heed::app;
  EXPECT_EQ(model::parse_activation("gelu"), model::Activation::kGelu);
  EXPECT_EQ(model::parse_activation("relu"), model::Activation::kRelu);
  EXPECT_EQ(model::parse_norm("pre"), model::Norm::kPre);
  EXPECT_EQ(model::parse_norm("post"), model::Norm::kPost);
  EXPECT_EQ(model::parse_positions("sinusoidal"), model::Positions::kSinusoidal);
  EXPECT_EQ(model::parse_positions("learned"), model::Positions::kLearned);
  EXPECT_EQ(model::parse_pooling("mean"), model::Pooling::kMean);
  EXPECT_EQ(model::parse_pooling("first"), model::Pooling::kFirst);
  EXPECT_EQ(model::parse_pooling("attention"), model::Pooling::kAttention);
  EXPECT_EQ(model::parse_decoding_method("beam"), model::DecodingMethod::kBeam);
  EXPECT_EQ(model::parse_decoding_method("greedy"), model::DecodingMethod::kGreedy);
  EXPECT_EQ(model::parse_decoding_method("sample"), model::DecodingMethod::kSample);
  EXPECT_EQ(app::parse_schedule("linear"), app::Schedule::kLinear);
  EXPECT_EQ(app::parse_schedule("cosine"), app::Schedule::kCosine);
  EXPECT_EQ(app::parse_schedule("inverse_sqrt"), app::Schedule::kInverseSqrt);
  EXPECT_EQ(app::parse_schedule("constant"), app::Schedule::kConstant);
  EXPECT_EQ(app::parse_precision("fp32"), app::Precision::kFp32);
  EXPECT_EQ(app::parse_precision("bf16"), app::Precision::kBf16);
  EXPECT_EQ(app::parse_precision("auto"), app::Precision::kAuto);

  auto message = [](auto parse) -> std::string {
    try {
      parse();
    } catch (const heed::InputError& e) {
      return e.what();
    }
    return "no InputError";
  };
  EXPECT_EQ(message([] { model::parse_pooling("max"); }),
            "config: model.pooling: must be one of \"mean\", \"first\", \"attention\", got \"max\"");
  EXPECT_EQ(message([] { model::parse_activation("Gelu"); }),
            "config: model.activation: must be one of \"gelu\", \"relu\", got \"Gelu\"");
  EXPECT_EQ(message([] { model::parse_norm(""); }), "config: model.norm: must be one of \"pre\", \"post\", got \"\"");
  EXPECT_EQ(message([] { model::parse_positions("rotary", "teacher"); }),
            "config: teacher.positions: must be one of \"sinusoidal\", \"learned\", got \"rotary\"");
  EXPECT_EQ(message([] { model::parse_decoding_method("nucleus"); }),
            "config: decoding.method: must be one of \"beam\", \"greedy\", \"sample\", got \"nucleus\"");
  EXPECT_EQ(message([] { app::parse_schedule("step"); }),
            "config: training.schedule: must be one of \"linear\", \"cosine\", \"inverse_sqrt\", \"constant\", got "
            "\"step\"");
  EXPECT_EQ(message([] { app::parse_precision("fp16"); }),
            "config: training.precision: must be one of \"fp32\", \"bf16\", \"auto\", got \"fp16\"");

  // A config file with an unknown value gets that very message from validation.
  auto doc = minimal();
  doc["model"] = {{"pooling", "max"}};
  EXPECT_EQ(error_of(doc), message([] { model::parse_pooling("max"); }));
  doc = minimal();
  doc["training"] = {{"precision", "fp16"}};
  EXPECT_EQ(error_of(doc), message([] { app::parse_precision("fp16"); }));
}

TEST(Config, TestFractionIsCheckedAndSelectsTheHeldOutPart) {
  auto doc = minimal();
  doc["data"]["test_fraction"] = 1.5;
  EXPECT_NE(error_of(doc).find("data.test_fraction: must be in [0, 1)"), std::string::npos) << error_of(doc);
  doc["data"]["test_fraction"] = 0.96;  // + the default validation_fraction 0.05 leaves nothing to train on
  EXPECT_NE(error_of(doc).find("data.test_fraction: validation_fraction + test_fraction must be < 1"),
            std::string::npos)
      << error_of(doc);
  doc["data"]["test_fraction"] = 0.1;
  const Config c = parse_config(doc, {}, "/d", "test.json");
  const auto test = heed::app::select_split(200, "test", c.data);
  const auto validation = heed::app::select_split(200, "validation", c.data);
  EXPECT_EQ(test.size(), 20u);
  EXPECT_EQ(validation.size(), 10u);
  for (size_t t : test) EXPECT_EQ(std::count(validation.begin(), validation.end(), t), 0);
  EXPECT_EQ(heed::app::training_splits(200, c.data).test, test);
  // A run that held no test split out says so instead of scoring something else.
  const Config none = parse_config(minimal(), {}, "/d", "test.json");
  try {
    heed::app::select_split(200, "test", none.data);
    ADD_FAILURE() << "--split test accepted without a test split";
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("data.test_fraction is 0"), std::string::npos) << e.what();
  }
}
