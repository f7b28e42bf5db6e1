// The extractive summarizer: oracle labels, sentence selection, the model's masking, config errors,
// and train -> summarize -> evaluate -> export through the heed executable on a tiny fixture.
#include "app/training/extractive.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "app/evaluation/oracle.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/extractive.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::test::run_command;
using heed::test::TempDir;
namespace fs = std::filesystem;

TEST(ExtractiveOracle, GreedyRougePicksTheReferenceSentences) {
  const heed::app::RougeScorer scorer(true);
  const std::vector<std::string> sentences = {"The cat sat on the mat.", "Stocks fell sharply in London today.",
                                              "The dog barked at the postman.", "Rain is expected later."};
  EXPECT_EQ(heed::app::oracle_labels(sentences, "The cat sat on the mat.\nThe dog barked at the postman.", scorer),
            (std::vector<uint8_t>{1, 0, 1, 0}));
  // A paraphrase: the sentence sharing most words wins; nothing else raises ROUGE-1 + ROUGE-2.
  EXPECT_EQ(heed::app::oracle_labels(sentences, "London stocks fell sharply.", scorer),
            (std::vector<uint8_t>{0, 1, 0, 0}));
  EXPECT_EQ(heed::app::oracle_labels(sentences, "", scorer), (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_TRUE(heed::app::oracle_labels({}, "Anything.", scorer).empty());
}

TEST(ExtractiveSelection, ThresholdOrderBlockingAndLimits) {
  using heed::model::select_sentences;
  using heed::model::SelectionOptions;
  // Sentence 3 repeats the trigram (1, 2, 3) of sentence 0.
  const std::vector<std::vector<int32_t>> ids = {{1, 2, 3, 4}, {5, 6, 7}, {8, 9, 10, 11}, {0, 1, 2, 3}, {12, 13}};
  const std::vector<float> p = {0.9f, 0.2f, 0.8f, 0.7f, 0.6f};
  SelectionOptions o;
  o.threshold = 0.5;
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0, 2, 4}));  // article order, 3 blocked
  o.block_ngrams = 0;
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0, 2, 3, 4}));
  o.threshold = 0.75;
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0, 2}));
  o.max_selected = 1;
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0}));
  o.max_selected = 0;
  o.threshold = 0.95;  // nothing reaches it: min_sentences still takes the best one
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0}));
  o.min_sentences = 0;
  EXPECT_TRUE(select_sentences(p, ids, o).empty());
  o.min_sentences = 2;  // the two best; blocking still applies to the second
  o.block_ngrams = 3;
  EXPECT_EQ(select_sentences({0.9f, 0.1f, 0.1f, 0.8f, 0.1f}, ids, o), (std::vector<int64_t>{0, 1}));
  // Ties go to the earlier sentence; a sentence shorter than n is never blocked.
  o = SelectionOptions{};
  o.max_selected = 2;
  EXPECT_EQ(select_sentences({0.6f, 0.6f, 0.6f, 0.1f, 0.1f}, ids, o), (std::vector<int64_t>{0, 1}));
  EXPECT_THROW(select_sentences({0.5f}, ids, o), c10::Error);
  // By ratio: floor(ratio x 5 + 0.5) sentences whatever their probability; blocking still skips.
  o = SelectionOptions{};
  o.ratio = 0.4;  // 2 of 5
  EXPECT_EQ(select_sentences({0.1f, 0.05f, 0.3f, 0.2f, 0.01f}, ids, o), (std::vector<int64_t>{2, 3}));
  o.ratio = 0.5;  // 2.5 -> 3; sentence 3 is blocked by sentence 0, so the next best (1) comes in
  EXPECT_EQ(select_sentences({0.9f, 0.5f, 0.8f, 0.7f, 0.1f}, ids, o), (std::vector<int64_t>{0, 1, 2}));
  o.ratio = 0.01;  // rounds to 0: min_sentences still gives one
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0}));
  o.ratio = 0.99;
  o.max_selected = 2;
  EXPECT_EQ(select_sentences(p, ids, o), (std::vector<int64_t>{0, 2}));
}

TEST(ExtractiveFeatures, CentralityRankAndPosition) {
  const std::vector<std::string> sentences = {"Oil prices rose again.", "Oil prices rose sharply in Asia.",
                                              "The weather was mild.", "Oil prices and Asia shares rose."};
  const auto f = heed::app::sentence_features(sentences);
  ASSERT_EQ(f.size(), sentences.size() * heed::model::kSentenceFeatures);
  const auto k = static_cast<size_t>(heed::model::kSentenceFeatures);
  double total = 0;
  for (size_t i = 0; i < sentences.size(); ++i) total += f[i * k];
  EXPECT_NEAR(total, 4.0, 1e-4);         // centrality x count: mean 1
  EXPECT_LT(f[2 * k], f[1 * k]);         // the unrelated sentence is the least central
  EXPECT_FLOAT_EQ(f[2 * k + 1], 0.75f);  // ... so its rank is last (3 of 4)
  EXPECT_FLOAT_EQ(f[3 * k + 2], 0.75f);  // position 3 of 4
  EXPECT_TRUE(heed::app::sentence_features({}).empty());
}

TEST(ExtractiveModel, ArticlesInOneBatchDoNotSeeEachOther) {
  torch::manual_seed(3);
  auto options = heed::test::tiny_model_options();
  heed::model::Extractive model(options, 50, 8, 2);
  model->eval();
  torch::NoGradGuard no_grad;
  // Article A: 3 sentences; article B: 2 sentences (lengths differ, so padding is exercised).
  const auto a_ids = torch::tensor({{5, 6, 7, 0}, {8, 9, 0, 0}, {10, 11, 12, 13}}, torch::kInt64);
  const auto a_len = torch::tensor({3, 2, 4}, torch::kInt64);
  const auto b_ids = torch::tensor({{14, 15, 0, 0}, {16, 17, 18, 0}}, torch::kInt64);
  const auto b_len = torch::tensor({2, 3}, torch::kInt64);
  const auto a_feat = torch::rand({3, heed::model::kSentenceFeatures});
  const auto b_feat = torch::rand({2, heed::model::kSentenceFeatures});
  const auto alone = model->forward(a_ids, a_len, torch::tensor({3}, torch::kInt64), a_feat);
  const auto both = model->forward(torch::cat({a_ids, b_ids}, 0), torch::cat({a_len, b_len}, 0),
                                   torch::tensor({3, 2}, torch::kInt64), torch::cat({a_feat, b_feat}, 0));
  ASSERT_EQ(both.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::allclose(both[0], alone[0], 1e-5, 1e-5)) << both << alone;
  EXPECT_EQ(both[1][2].item<float>(), 0.0f);  // the padded slot
  const auto b_alone = model->forward(b_ids, b_len, torch::tensor({2}, torch::kInt64), b_feat);
  EXPECT_TRUE(torch::allclose(both[1].narrow(0, 0, 2), b_alone[0], 1e-5, 1e-5));
  // A different sentence order changes the scores (sentence positions are seen).
  const auto reverse = torch::tensor({2, 1, 0});
  const auto swapped = model->forward(a_ids.index_select(0, reverse), a_len.index_select(0, reverse),
                                      torch::tensor({3}, torch::kInt64), a_feat.index_select(0, reverse));
  EXPECT_FALSE(torch::allclose(swapped[0].flip(0), alone[0], 1e-4, 1e-4));
  // The threshold is a buffer: it travels with the weights.
  model->set_threshold(0.3);
  bool found = false;
  for (const auto& b : model->named_buffers()) found = found || b.key() == "selection_threshold";
  EXPECT_TRUE(found);
  EXPECT_NEAR(model->threshold(), 0.3, 1e-7);
}

TEST(ExtractiveConfig, ErrorsNameTheField) {
  auto parse = [](const std::string& text) {
    return heed::app::parse_config(nlohmann::json::parse(text), {}, "", "test.json");
  };
  const std::string head =
      R"({"task": "extractive", "data": {"train": "x.jsonl"}, "training": {"best_metric": "rougeLsum"}, )";
  auto message = [&](const std::string& section) {
    try {
      parse(head + section + "}");
    } catch (const heed::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"("extractive": {"max_sentences": 0})").find("extractive.max_sentences"), std::string::npos);
  EXPECT_NE(message(R"("extractive": {"threshold": 1.5})").find("extractive.threshold"), std::string::npos);
  EXPECT_NE(message(R"("extractive": {"count": "fixed"})").find("extractive.count"), std::string::npos);
  EXPECT_NE(message(R"("extractive": {"block_ngrams": -1})").find("extractive.block_ngrams"), std::string::npos);
  EXPECT_NE(message(R"("extractive": {"min_sentences": 3, "max_selected": 2})").find("extractive.max_selected"),
            std::string::npos);
  EXPECT_NE(message(R"("extractive": {"max_sentence": 3})").find("did you mean \"max_sentences\""), std::string::npos);
  EXPECT_NE(message(R"("extractive": {"sentence_layers": "two"})").find("extractive.sentence_layers"),
            std::string::npos);
  const auto ok = parse(head + R"("extractive": {"max_sentences": 40}})");
  EXPECT_EQ(ok.extractive.max_sentences, 40);
  EXPECT_EQ(heed::app::to_json(ok)["extractive"]["max_sentences"], 40);
  EXPECT_FALSE(heed::app::to_json(ok).contains("decoding"));
  // Calibration needs validation ROUGE.
  EXPECT_NE(message(R"("extractive": {}, "training": {"rouge_samples": 0})").find("training.rouge_samples"),
            std::string::npos);
}

TEST(ExtractiveCli, TinyRunLearnsLeadSentenceThenSummarizesEvaluatesAndExports) {
  TempDir dir;
  dir.write("pairs.jsonl", heed::test::copy_pairs(300, 3, true));
  dir.write("heldout.jsonl", heed::test::copy_pairs(40, 99, true));
  const auto run = dir.str() + "/run";
  const std::string heed = heed::test::heed_binary();
  std::string out;
  ASSERT_EQ(run_command(heed + " train --config " + std::string(HEED_SOURCE_DIR) + "/configs/tiny_extractive.json" +
                            " --data-dir " + dir.str() + " --output " + run,
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("selected by the oracle"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/best.pt"));

  ASSERT_EQ(run_command(heed + " evaluate --run " + run + " --data " + dir.str() +
                            "/heldout.jsonl --baseline lead-1,lead-3 --report " + dir.str() + "/report.json",
                        &out),
            0)
      << out;
  const auto report = nlohmann::json::parse(heed::read_file(dir.str() + "/report.json"));
  EXPECT_EQ(report["pairs"], 40);
  EXPECT_NEAR(report["lead-1"]["rouge1"]["f1"]["mid"].get<double>(), 1.0, 1e-9);
  // The summary is the first sentence: the model must find it and stop there.
  EXPECT_GT(report["model"]["rouge1"]["f1"]["mid"].get<double>(), 0.9) << out;
  EXPECT_GT(report["model"]["rougeLsum"]["f1"]["mid"].get<double>(), 0.9) << out;
  EXPECT_GT(report["model"]["rouge1"]["f1"]["mid"].get<double>(),
            report["lead-3"]["rouge1"]["f1"]["mid"].get<double>());
  ASSERT_TRUE(report.contains("extractive")) << report.dump();
  const double threshold = report["extractive"]["calibrated_threshold"].get<double>();
  EXPECT_GT(threshold, 0.0);
  EXPECT_LT(threshold, 1.0);

  // summarize: plain text, then JSON lines with every sentence's score and selected flag.
  const std::string article = "The film was great and long. I loved it a lot. The end was sad.";
  ASSERT_EQ(run_command(heed + " summarize --run " + run + " '" + article + "'", &out, false), 0) << out;
  EXPECT_EQ(out, "The film was great and long.\n");
  ASSERT_EQ(
      run_command("echo '" + article + "' | " + heed + " summarize --run " + run + " --input - --jsonl", &out, false),
      0)
      << out;
  const auto line = nlohmann::json::parse(out);
  ASSERT_EQ(line["article_sentences"].size(), 3u) << out;
  EXPECT_TRUE(line["article_sentences"][0]["selected"].get<bool>());
  EXPECT_FALSE(line["article_sentences"][1]["selected"].get<bool>());
  EXPECT_GT(line["article_sentences"][0]["score"].get<double>(), line["article_sentences"][1]["score"].get<double>());
  EXPECT_EQ(line["sentences"], nlohmann::json::array({"The film was great and long."}));
  EXPECT_NEAR(line["threshold"].get<double>(), threshold, 1e-6);
  // Decoding flags mean nothing here.
  EXPECT_EQ(run_command(heed + " summarize --run " + run + " --beam 3 'A text.'", &out), 2) << out;
  EXPECT_NE(out.find("extractive"), std::string::npos) << out;
  // Nor do narrow decoder weights.
  EXPECT_EQ(run_command(heed + " summarize --run " + run + " --quantize int8 'A text.'", &out), 2) << out;
  EXPECT_NE(out.find("--quantize applies to abstractive summarizers"), std::string::npos) << out;

  // export: one TorchScript archive whose `summarize` selects what heed selects.
  ASSERT_EQ(run_command(heed + " export --run " + run + " --out " + dir.str() + "/model.pt", &out), 0) << out;
  EXPECT_TRUE(fs::exists(dir.str() + "/model.pt"));
}
