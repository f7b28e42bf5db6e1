// Attention as heed shows it (app/inference/attention.h, `heed attention`): the probabilities are
// the modules' own (MultiHeadAttention with need_weights, no second implementation), each row is a
// distribution over the non-padded keys, asking for them changes no output, and the command writes
// the page and the JSON with the right shapes for a classifier and a summarizer, from a run and from
// an exported archive. The exported archive's `attention` method against the C++ modules over the
// architecture grid: tests/export_twin_test.cpp (ExportTwin.Attention*).
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "app/inference/attention.h"
#include "app/training/classification.h"
#include "app/training/exported.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/classifier.h"
#include "model/masks.h"
#include "model/seq2seq.h"
#include "tests/classifier_runs.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

namespace fs = std::filesystem;
using heed::test::TempDir;
using heed::test::heed_binary;
using heed::test::run_command;

namespace {

constexpr int64_t kVocab = 40;

void perturb(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.add_(torch::randn_like(p) * 0.1);
}

// ids [3, 7] with lengths 7, 4, 2 (padded with 0)
std::pair<torch::Tensor, torch::Tensor> padded_batch() {
  torch::manual_seed(5);
  auto ids = torch::randint(4, kVocab, {3, 7}, torch::kInt64);
  const std::vector<int64_t> lengths = {7, 4, 2};
  for (int64_t r = 0; r < 3; ++r) ids[r].slice(0, lengths[static_cast<size_t>(r)]).fill_(0);
  return {ids, torch::tensor(lengths, torch::kInt64)};
}

// Every row of weights [B, H, Tq, Tk] for a real query (q < query_lengths[b], or every row when
// query_lengths is undefined) sums to 1 over the keys k < key_lengths[b], and the padded keys get
// nothing.
void expect_distributions(const torch::Tensor& weights, const torch::Tensor& key_lengths,
                          const torch::Tensor& query_lengths, const std::string& where) {
  ASSERT_EQ(weights.dim(), 4) << where;
  for (int64_t b = 0; b < weights.size(0); ++b) {
    const int64_t keys = key_lengths[b].item<int64_t>();
    const int64_t queries = query_lengths.defined() ? query_lengths[b].item<int64_t>() : weights.size(2);
    for (int64_t h = 0; h < weights.size(1); ++h) {
      for (int64_t q = 0; q < queries; ++q) {
        const auto row = weights[b][h][q];
        EXPECT_NEAR(row.slice(0, 0, keys).sum().item<double>(), 1.0, 1e-5) << where << " b" << b << " h" << h << " q" << q;
        if (keys < row.size(0)) {
          EXPECT_LT(row.slice(0, keys).abs().max().item<double>(), 1e-6) << where << " padded keys, b" << b;
        }
        EXPECT_GE(row.min().item<double>(), 0.0) << where;
      }
    }
  }
}

}  // namespace

// --- the modules ---------------------------------------------------------------------------------

TEST(AttentionWeights, ClassifierReturnsEachEncoderLayersOwnWeights) {
  for (const std::string norm : {"pre", "post"}) {
    torch::manual_seed(3);
    auto options = heed::test::tiny_model_options(norm);
    heed::model::Classifier model(options, kVocab, 3);
    perturb(*model);
    model->eval();
    torch::InferenceMode inference;
    const auto [ids, lengths] = padded_batch();
    std::vector<torch::Tensor> attention;
    const auto logits = model->forward(ids, lengths, &attention);
    // Asking for the weights changes nothing but rounding (a forward that does not ask runs the fused
    // attention, model/fused_attention.h, whose sums run in another order), and keeps none.
    EXPECT_TRUE(torch::allclose(logits, model->forward(ids, lengths), 1e-5, 1e-6)) << norm;
    ASSERT_EQ(attention.size(), static_cast<size_t>(options.encoder_layers));
    for (size_t l = 0; l < attention.size(); ++l) {
      EXPECT_EQ(attention[l].sizes(), (std::vector<int64_t>{3, options.heads, 7, 7})) << norm << " layer " << l;
      expect_distributions(attention[l], lengths, torch::Tensor(), norm + " layer " + std::to_string(l));
    }
    // Layer 0 equals MultiHeadAttention called directly with need_weights on the same input.
    const auto padding = heed::model::padding_mask(lengths, ids.size(1));
    auto x = model->embeddings(ids);
    auto layer0 = model->encoder->layers[0]->as<heed::model::EncoderLayer>();
    auto input = norm == "pre" ? layer0->norm1(x) : x;
    heed::model::AttentionOptions attend;
    attend.mask.key_padding = padding;
    attend.need_weights = true;
    const auto direct = layer0->self_attention(input, input, attend).weights;
    EXPECT_TRUE(torch::equal(direct, attention[0])) << norm;
    // And the layers differ (each layer's own weights, not one copied).
    EXPECT_FALSE(torch::allclose(attention[0], attention[1])) << norm;
  }
}

TEST(AttentionWeights, SummarizerReturnsCrossAttentionAndCopyProbability) {
  for (const bool copy : {true, false}) {
    torch::manual_seed(4);
    auto options = heed::test::tiny_model_options("pre");
    options.copy_attention = copy;
    heed::model::Seq2Seq model(options, kVocab);
    perturb(*model);
    model->eval();
    torch::InferenceMode inference;
    const auto [ids, lengths] = padded_batch();
    const std::string where = copy ? "copy" : "no copy";
    std::vector<torch::Tensor> encoder;
    const auto encoded = model->encode(ids, lengths, &encoder);
    ASSERT_EQ(encoder.size(), static_cast<size_t>(options.encoder_layers));
    for (const auto& w : encoder) expect_distributions(w, lengths, torch::Tensor(), where + " encoder");
    EXPECT_TRUE(torch::allclose(encoded.memory, model->encode(ids, lengths).memory, 1e-5, 1e-6)) << where;

    torch::manual_seed(6);
    auto target_in = torch::randint(4, kVocab, {3, 5}, torch::kInt64);
    target_in.select(1, 0).fill_(2);
    heed::model::DecoderAttention report;
    const auto log_probs = model->decode(target_in, encoded, nullptr, &report);
    EXPECT_TRUE(torch::allclose(log_probs, model->decode(target_in, encoded, nullptr), 1e-5, 1e-5)) << where;
    ASSERT_EQ(report.cross.size(), static_cast<size_t>(options.decoder_layers));
    for (const auto& w : report.cross) {
      EXPECT_EQ(w.sizes(), (std::vector<int64_t>{3, options.heads, 5, 7})) << where;
      expect_distributions(w, lengths, torch::Tensor(), where + " cross");
    }
    ASSERT_EQ(report.copy_probability.sizes(), (std::vector<int64_t>{3, 5})) << where;
    if (copy) {
      EXPECT_GT(report.copy_probability.min().item<double>(), 0.0);
      EXPECT_LT(report.copy_probability.max().item<double>(), 1.0);
      ASSERT_EQ(report.copy_attention.sizes(), (std::vector<int64_t>{3, 5, 7}));
      expect_distributions(report.copy_attention.unsqueeze(1), lengths, torch::Tensor(), "copy attention");
    } else {
      EXPECT_EQ(report.copy_probability.abs().max().item<double>(), 0.0);
      EXPECT_FALSE(report.copy_attention.defined());
    }

    // Cross-attention of decoder layer 0 equals its MultiHeadAttention called directly.
    auto layer0 = model->decoder->layers[0]->as<heed::model::DecoderLayer>();
    const auto x = model->embeddings(target_in);
    heed::model::AttentionOptions causal;
    causal.mask.causal = true;
    const auto h = layer0->norm1(x);
    const auto y = x + layer0->self_attention(h, h, causal).output;
    heed::model::AttentionOptions to_memory;
    to_memory.kind = heed::model::AttentionKind::kCross;
    to_memory.mask.key_padding = encoded.key_padding();
    to_memory.need_weights = true;
    const auto direct = layer0->cross_attention(layer0->norm2(y), encoded.memory, to_memory).weights;
    EXPECT_TRUE(torch::equal(direct, report.cross[0])) << where;

    // Incremental decoding (the single-query kernel) reports the same weights, step by step.
    heed::model::DecoderState state;
    state.encoder = encoded;
    for (int64_t t = 0; t < 5; ++t) {
      heed::model::DecoderAttention step;
      model->decode(target_in.slice(1, t, t + 1), encoded, &state, &step);
      for (size_t l = 0; l < step.cross.size(); ++l) {
        EXPECT_LT((step.cross[l].select(2, 0) - report.cross[l].select(2, t)).abs().max().item<double>(), 1e-5)
            << where << " step " << t << " layer " << l;
      }
      EXPECT_LT((step.copy_probability.select(1, 0) - report.copy_probability.select(1, t)).abs().max().item<double>(),
                1e-5)
          << where << " step " << t;
    }
  }
}

// --- heed attention, end to end -------------------------------------------------------------------

namespace {

// Checks the JSON's shapes and that every attention row is a distribution over the tokens.
void expect_attention_json(const nlohmann::json& j, const std::string& kind, int64_t layers, int64_t heads,
                           int64_t decoder_layers = 0) {
  ASSERT_EQ(j.at("kind"), kind);
  const auto n = j.at("tokens").size();
  ASSERT_GT(n, 0u);
  ASSERT_EQ(j.at("encoder_attention").size(), static_cast<size_t>(layers));
  for (const auto& layer : j["encoder_attention"]) {
    ASSERT_EQ(layer.size(), static_cast<size_t>(heads));
    for (const auto& head : layer) {
      ASSERT_EQ(head.size(), n);
      for (const auto& row : head) {
        ASSERT_EQ(row.size(), n);
        double sum = 0;
        for (const auto& w : row) sum += w.get<double>();
        EXPECT_NEAR(sum, 1.0, 1e-4);
      }
    }
  }
  if (kind == "classifier") {
    double total = 0;
    for (const auto& [label, p] : j.at("scores").items()) total += p.get<double>();
    EXPECT_NEAR(total, 1.0, 1e-6);
    EXPECT_TRUE(j["scores"].contains(j.at("label").get<std::string>()));
    return;
  }
  const auto steps = j.at("decoder_tokens").size();
  ASSERT_EQ(j.at("copy_probability").size(), steps);
  ASSERT_EQ(j.at("cross_attention").size(), static_cast<size_t>(decoder_layers));
  for (const auto& layer : j["cross_attention"]) {
    ASSERT_EQ(layer.size(), static_cast<size_t>(heads));
    for (const auto& head : layer) {
      ASSERT_EQ(head.size(), steps);
      for (const auto& row : head) {
        ASSERT_EQ(row.size(), n);
        double sum = 0;
        for (const auto& w : row) sum += w.get<double>();
        EXPECT_NEAR(sum, 1.0, 1e-4);
      }
    }
  }
  for (const auto& p : j["copy_probability"]) {
    EXPECT_GE(p.get<double>(), 0.0);
    EXPECT_LE(p.get<double>(), 1.0);
  }
  ASSERT_TRUE(j.contains("copy_attention"));  // the tiny summarizer copies
  ASSERT_EQ(j["copy_attention"].size(), steps);
  EXPECT_TRUE(j.at("summary_text").is_string());
}

// Largest difference between two attention JSONs' numbers (same shapes required).
double max_difference(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number()) return std::abs(a.get<double>() - b.get<double>());
  if (a.is_array()) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, max_difference(a[i], b[i]));
    return worst;
  }
  if (a.is_object()) {
    double worst = 0;
    for (const auto& [key, value] : a.items()) {
      EXPECT_TRUE(b.contains(key)) << key;
      if (b.contains(key)) worst = std::max(worst, max_difference(value, b[key]));
    }
    return worst;
  }
  EXPECT_EQ(a, b);
  return 0;
}

nlohmann::json run_json(const std::string& args) {
  std::string out;
  const int code = run_command(heed_binary() + " attention " + args + " --json", &out, /*merge_stderr=*/false);
  EXPECT_EQ(code, 0) << args << "\n" << out;
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << out.substr(0, 500);
    return {};
  }
}

const char* const kReview = "A wonderful film, the acting was great and I loved the ending.";

}  // namespace

TEST(AttentionCli, ClassifierPageJsonAndArchive) {
  TempDir dir;
  const auto run = heed::test::train_tiny_classifier(dir, 11);
  ASSERT_FALSE(run.empty());
  const auto config = heed::app::load_config(run + "/config.json", {}, "");
  const std::string text = std::string("\"") + kReview + "\"";

  // The page: standalone, the data and the script inside.
  const auto page = dir.str() + "/attention.html";
  std::string out;
  ASSERT_EQ(run_command(heed_binary() + " attention --run " + run + " " + text + " --out " + page, &out), 0) << out;
  const auto html = heed::read_file(page);
  EXPECT_NE(html.find("window.HeedAttention"), std::string::npos);
  EXPECT_NE(html.find("id=\"heed-attention-data\""), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);  // nothing fetched

  // The JSON: on stdout, and the same in a file.
  const auto j = run_json("--run " + run + " " + text);
  expect_attention_json(j, "classifier", config.model.encoder_layers, config.model.heads);
  const auto json_file = dir.str() + "/attention.json";
  ASSERT_EQ(run_command(heed_binary() + " attention --run " + run + " " + text + " --json --out " + json_file, &out), 0)
      << out;
  EXPECT_EQ(nlohmann::json::parse(heed::read_file(json_file)), j);
  // The same prediction as heed classify.
  ASSERT_EQ(run_command(heed_binary() + " classify --engine torch --run " + run + " " + text, &out, false), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["label"], j["label"]);
  // The tokens are the pieces the model reads, for a reader: no U+2581 marker.
  EXPECT_EQ(j.dump().find("\xE2\x96\x81"), std::string::npos);

  // The exported archive gives the same numbers.
  const auto archive = dir.str() + "/clf.pt";
  ASSERT_EQ(run_command(heed_binary() + " export --run " + run + " --out " + archive, &out), 0) << out;
  const auto exported = run_json("--model " + archive + " " + text);
  EXPECT_EQ(exported["tokens"], j["tokens"]);
  EXPECT_EQ(exported["label"], j["label"]);
  EXPECT_LE(max_difference(exported, j), 1e-5);
  ASSERT_EQ(run_command(heed_binary() + " attention --model " + archive + " " + text + " --out " + dir.str() + "/x.html",
                        &out),
            0)
      << out;

  // An archive from an earlier heed (no `attention` method): a clear InputError, exit 2.
  {
    torch::jit::Module old("heed_classifier");
    old.register_parameter("w", torch::ones({1}), false);
    old.register_attribute("training", c10::BoolType::get(), false);
    old.define(  // the methods load_export requires of a classifier archive, and no attention()
        "def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:\n"
        "    return ids.float()[:, 0:2] * self.w\n"
        "def predict(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:\n"
        "    probs = torch.softmax(self.forward(ids, lengths), -1)\n"
        "    return probs.argmax(1), probs\n");
    const auto clf = heed::app::load_classifier(run, "best");
    const auto extra = heed::app::export_extra_files(old, "classifier", heed::read_file(run + "/config.json"),
                                                     clf.tokenizer, clf.labels, "best");
    const auto old_path = dir.str() + "/old.pt";
    old.save(old_path, extra);
    auto loaded = heed::app::load_export(old_path);
    try {
      heed::app::exported_attention(loaded, kReview);
      ADD_FAILURE() << "an archive without an attention method was accepted";
    } catch (const heed::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("re-export"), std::string::npos) << e.what();
    }
    ASSERT_EQ(run_command(heed_binary() + " attention --model " + old_path + " " + text + " --json", &out), 2) << out;
    EXPECT_NE(out.find("re-export"), std::string::npos) << out;
  }

  // The library call the server uses gives the same JSON as the command.
  const auto loaded = heed::app::load_classifier(run, "best");
  EXPECT_LE(max_difference(heed::app::classifier_attention(loaded, kReview), j), 1e-6);
  EXPECT_THROW(heed::app::classifier_attention(loaded, "  \n "), heed::InputError);
}

TEST(AttentionCli, SummarizerPageJsonAndArchive) {
  TempDir dir;
  std::string pairs;
  const auto sentences = heed::test::sentences(240, 8);
  for (size_t i = 0; i + 3 < sentences.size(); i += 4) {
    const std::string article = sentences[i] + " " + sentences[i + 1] + " " + sentences[i + 2] + " " + sentences[i + 3];
    pairs += nlohmann::json{{"article", article}, {"highlights", sentences[i]}, {"id", std::to_string(i)}}.dump() + "\n";
  }
  dir.write("pairs.jsonl", pairs);
  const auto run = dir.str() + "/run";
  std::string out;
  ASSERT_EQ(run_command(heed_binary() + " train --config " + std::string(HEED_SOURCE_DIR) +
                            "/configs/tiny_summarizer.json --set training.epochs=1 --set decoding.min_length=3"
                            " --set decoding.max_length=8 --data-dir " + dir.str() + " --output " + run,
                        &out),
            0)
      << out;
  const auto config = heed::app::load_config(run + "/config.json", {}, "");
  const std::string article = "\"" + sentences[0] + " " + sentences[1] + " " + sentences[2] + "\"";

  const auto j = run_json("--run " + run + " " + article);
  expect_attention_json(j, "summarizer", config.model.encoder_layers, config.model.heads, config.model.decoder_layers);
  EXPECT_GE(j["decoder_tokens"].size(), 3u);  // decoding.min_length
  EXPECT_LE(j["decoder_tokens"].size(), 8u);
  // The summary is the one heed summarize writes.
  ASSERT_EQ(run_command(heed_binary() + " summarize --run " + run + " " + article, &out, false), 0) << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  std::string shown = j["summary_text"].get<std::string>();
  for (char& ch : shown) {
    if (ch == '\n') ch = ' ';
  }
  EXPECT_EQ(out, shown);

  const auto page = dir.str() + "/summary.html";
  ASSERT_EQ(run_command(heed_binary() + " attention --run " + run + " " + article + " --out " + page, &out), 0) << out;
  EXPECT_NE(heed::read_file(page).find("\"cross_attention\""), std::string::npos);

  const auto archive = dir.str() + "/sum.pt";
  ASSERT_EQ(run_command(heed_binary() + " export --run " + run + " --out " + archive, &out), 0) << out;
  const auto exported = run_json("--model " + archive + " " + article);
  EXPECT_EQ(exported["decoder_tokens"], j["decoder_tokens"]);
  EXPECT_LE(max_difference(exported, j), 1e-5);
}

TEST(AttentionCli, BadInputsExitTwoWithAClearMessage) {
  TempDir dir;
  const auto exe = heed_binary() + " attention ";
  std::string out;
  // No text.
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " --json", &out), 2);
  EXPECT_NE(out.find("give the text"), std::string::npos) << out;
  // Both --run and --model.
  EXPECT_EQ(run_command(exe + "--run a --model b.pt hello --json", &out), 2);
  EXPECT_NE(out.find("--model"), std::string::npos) << out;
  // Neither.
  EXPECT_EQ(run_command(exe + "hello --json", &out), 2);
  EXPECT_NE(out.find("--run DIR or --model"), std::string::npos) << out;
  // Missing files.
  EXPECT_EQ(run_command(exe + "--model " + dir.str() + "/missing.pt hello --json", &out), 2);
  EXPECT_NE(out.find("missing.pt"), std::string::npos) << out;
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + "/no_run hello --json", &out), 2);
  EXPECT_NE(out.find("no_run"), std::string::npos) << out;
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " --input " + dir.str() + "/missing.txt --json", &out), 2);
  EXPECT_NE(out.find("missing.txt"), std::string::npos) << out;
  // Neither a page nor JSON asked for; two texts.
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " hello", &out), 2);
  EXPECT_NE(out.find("--out"), std::string::npos) << out;
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " hello world --json", &out), 2);
  EXPECT_NE(out.find("one text"), std::string::npos) << out;
  // A file heed did not write is never replaced (checked before the model loads).
  TempDir elsewhere;
  const auto notes = elsewhere.write("notes.html", "my notes");
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " hello --out " + notes, &out), 2);
  EXPECT_NE(out.find("refusing to overwrite"), std::string::npos) << out;
  EXPECT_EQ(run_command(exe + "--run " + dir.str() + " hello --json --out " + notes, &out), 2);
  EXPECT_EQ(heed::read_file(notes), "my notes");
}
