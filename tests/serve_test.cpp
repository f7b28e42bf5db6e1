// heed serve: the HTTP API against tiny models trained once per suite. An in-process server on an
// ephemeral port for the endpoints, errors, batching and streaming; the heed executable as a
// subprocess for the command line and for SIGTERM with requests in flight.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "model/native/gemm.h"
#include "app/inference/attention.h"
#include "app/serving/server.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "tests/classifier_runs.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

namespace {

using heed::test::run_command;
using heed::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;
namespace serving = heed::app::serving;

std::vector<std::string> articles(size_t n, uint32_t seed) {
  std::vector<std::string> out;
  std::istringstream in(heed::test::copy_pairs(n, seed));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line)["article"]);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The tiny models every test uses: a classifier run, a summarizer run and its exported archive.
struct Models {
  TempDir dir;
  std::string classifier, summarizer, summarizer_pt;
};
Models* models = nullptr;

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models = new Models();
    models->classifier = heed::test::train_tiny_classifier(models->dir, 5);
    models->dir.write("pairs.jsonl", heed::test::copy_pairs(160, 3));
    models->summarizer = models->dir.str() + "/summarizer";
    std::string out;
    const int code = run_command(heed::test::heed_binary() + " train --config " + std::string(HEED_SOURCE_DIR) +
                                     "/configs/tiny_summarizer.json --set training.epochs=3 --set training.rouge_samples=4"
                                     " --data-dir " + models->dir.str() + " --output " + models->summarizer,
                                 &out);
    ASSERT_EQ(code, 0) << out;
    models->summarizer_pt = models->dir.str() + "/summarizer.pt";
    ASSERT_EQ(run_command(heed::test::heed_binary() + " export --run " + models->summarizer + " --out " +
                              models->summarizer_pt,
                          &out),
              0)
        << out;
  }
  static void TearDownTestSuite() {
    delete models;
    models = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(models, nullptr);
    ASSERT_FALSE(models->classifier.empty());
  }

  static std::vector<serving::ModelSpec> specs() {
    return {{"clf", models->classifier}, {"sum", models->summarizer}, {"sumpt", models->summarizer_pt}};
  }

  // A loaded server on an ephemeral port.
  static std::unique_ptr<serving::Server> start(serving::ServerOptions options, int& port, bool load = true) {
    options.port = 0;
    auto server = std::make_unique<serving::Server>(specs(), options);
    port = server->bind();
    server->start();
    if (load) server->load();
    return server;
  }
};

httplib::Result post(int port, const std::string& path, const std::string& body) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  return client.Post(path.c_str(), body, "application/json");
}

json post_json(int port, const std::string& path, const json& body, int expected_status = 200) {
  auto res = post(port, path, body.dump());
  EXPECT_TRUE(res) << path << ": " << httplib::to_string(res.error());
  if (!res) return json();
  EXPECT_EQ(res->status, expected_status) << path << " " << body.dump() << " -> " << res->body;
  return json::parse(res->body);
}

// The data lines of a text/event-stream body, parsed.
std::vector<json> events_of(const std::string& body) {
  std::vector<json> out;
  for (const auto& line : lines_of(body)) {
    if (line.rfind("data: ", 0) == 0) out.push_back(json::parse(line.substr(6)));
  }
  return out;
}

TEST_F(Serve, HealthInfoMetricsAndPage) {
  int port = 0;
  auto server = start({}, port);
  httplib::Client client("127.0.0.1", port);
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto info_res = client.Get("/info");
  ASSERT_TRUE(info_res);
  const auto info = json::parse(info_res->body);
  ASSERT_EQ(info["models"].size(), 3u);
  EXPECT_EQ(info["models"][0]["name"], "clf");
  EXPECT_EQ(info["models"][0]["kind"], "classifier");
  EXPECT_EQ(info["models"][0]["labels"], json::array({"neg", "pos"}));
  EXPECT_GT(info["models"][0]["max_input_tokens"].get<int>(), 0);
  EXPECT_EQ(info["models"][1]["kind"], "summarizer");
  EXPECT_EQ(info["models"][1]["decoding"]["method"], "greedy");
  EXPECT_EQ(info["models"][1]["streaming"], true);
  EXPECT_EQ(info["models"][2]["streaming"], false);
  EXPECT_FALSE(info["version"].get<std::string>().empty());

  post_json(port, "/v1/models/clf/classify", {{"inputs", "a great film"}});
  auto missing = client.Get("/no/such/path");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // Requests are counted before their response goes out: the scrape right after them sees both.
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* name : {"heed_requests_total{endpoint=\"classify\",status=\"200\"} 1",
                           "heed_requests_total{endpoint=\"other\",status=\"404\"} 1",
                           "heed_request_duration_seconds_bucket{endpoint=\"classify\",le=\"+Inf\"} 1",
                           "heed_batch_size_count{model=\"clf\"} 1", "heed_queue_depth{model=\"clf\"} 0",
                           "# TYPE heed_generated_tokens_total counter"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  }

  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("<select id=\"model\""), std::string::npos);
  EXPECT_NE(page->body.find("HeedAttention"), std::string::npos) << "the attention views' script is inlined";
  EXPECT_EQ(page->body.find("/*HEED_ATTENTION_JS*/"), std::string::npos);
  EXPECT_EQ(page->body.find("src=\"http"), std::string::npos) << "the page must not load anything from elsewhere";
  EXPECT_EQ(page->body.find("href=\"http"), std::string::npos) << "the page must not load anything from elsewhere";
}

TEST_F(Serve, ClassifyAndSummarizeShapes) {
  int port = 0;
  auto server = start({}, port);
  const auto one = post_json(port, "/v1/models/clf/classify", {{"inputs", "a great film"}});
  ASSERT_TRUE(one.is_array());
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0]["label"] == "pos" || one[0]["label"] == "neg");
  const auto two = post_json(port, "/v1/models/clf/classify",
                             {{"inputs", {"a great film", "an awful film"}}, {"parameters", {{"top_k", 5}}}});
  ASSERT_EQ(two.size(), 2u);
  ASSERT_EQ(two[0].size(), 2u);  // top_k above the label count gives every label
  EXPECT_NEAR(two[0][0]["score"].get<double>() + two[0][1]["score"].get<double>(), 1.0, 1e-5);
  EXPECT_GE(two[0][0]["score"].get<double>(), two[0][1]["score"].get<double>());
  EXPECT_EQ(two[0][0]["label"], one[0]["label"]);  // batched with another text: the same answer up to rounding
  EXPECT_NEAR(two[0][0]["score"].get<double>(), one[0]["score"].get<double>(), 1e-5);

  const auto text = articles(1, 5)[0];
  const auto summary = post_json(port, "/v1/models/sum/summarize", {{"inputs", text}});
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_FALSE(summary[0]["summary_text"].get<std::string>().empty());
  const auto both = post_json(port, "/v1/models/sum/summarize", {{"inputs", {text, "  "}}});
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0], summary[0]);
  EXPECT_EQ(both[1]["summary_text"], "");  // an empty article has an empty summary, as in heed summarize
  // The exported archive decodes the same summary (greedy), inside TorchScript.
  EXPECT_EQ(post_json(port, "/v1/models/sumpt/summarize", {{"inputs", text}}), summary);
  // The copy span bonus is a summarize parameter of a run directory's model.
  const auto spanned =
      post_json(port, "/v1/models/sum/summarize", {{"inputs", text}, {"parameters", {{"copy_span_bonus", 2.0}}}});
  ASSERT_EQ(spanned.size(), 1u);
  EXPECT_FALSE(spanned[0]["summary_text"].get<std::string>().empty());
}

// Every row of an attention matrix [..][i][j] sums to 1 over j.
void expect_rows_sum_to_one(const json& layers, size_t keys, const std::string& what) {
  ASSERT_FALSE(layers.empty()) << what;
  for (const auto& heads : layers) {
    for (const auto& rows : heads) {
      for (const auto& row : rows) {
        ASSERT_EQ(row.size(), keys) << what;
        double sum = 0.0;
        for (const auto& p : row) sum += p.get<double>();
        EXPECT_NEAR(sum, 1.0, 1e-4) << what;
      }
    }
  }
}

TEST_F(Serve, AttentionOfClassifiersAndSummarizers) {
  int port = 0;
  auto server = start({}, port);
  const std::string review = "the acting was wonderful and i loved it";
  const auto clf = post_json(port, "/v1/models/clf/attention", {{"inputs", review}});
  EXPECT_EQ(clf["kind"], "classifier");
  const size_t n = clf["tokens"].size();
  ASSERT_GT(n, 0u);
  expect_rows_sum_to_one(clf["encoder_attention"], n, "classifier encoder");
  EXPECT_EQ(clf["encoder_attention"][0][0].size(), n);
  // The endpoint answers what app/inference computes from the run itself (the module's own weights).
  const auto loaded = heed::app::load_classifier(models->classifier, "best");
  EXPECT_EQ(clf, heed::app::classifier_attention(loaded, review));
  // Its label is the classify endpoint's.
  EXPECT_EQ(clf["label"], post_json(port, "/v1/models/clf/classify", {{"inputs", review}})[0]["label"]);

  const auto text = articles(1, 12)[0];
  for (const char* model : {"sum", "sumpt"}) {
    const auto sum = post_json(port, std::string("/v1/models/") + model + "/attention", {{"inputs", text}});
    EXPECT_EQ(sum["kind"], "summarizer") << model;
    const size_t source = sum["tokens"].size();
    expect_rows_sum_to_one(sum["encoder_attention"], source, std::string(model) + " encoder");
    expect_rows_sum_to_one(sum["cross_attention"], source, std::string(model) + " cross");
    EXPECT_EQ(sum["cross_attention"][0][0].size(), sum["decoder_tokens"].size()) << model;
    EXPECT_EQ(sum["copy_probability"].size(), sum["decoder_tokens"].size()) << model;
  }
  auto res = post(port, "/v1/models/clf/attention", R"({"inputs": ["a", "b"]})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 422);
  EXPECT_NE(res->body.find("inputs: must be a string"), std::string::npos) << res->body;
  res = post(port, "/v1/models/clf/attention", R"({"inputs": "   "})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 422) << res->body;  // nothing to attend over
}

TEST_F(Serve, EveryErrorCode) {
  int port = 0;
  serving::ServerOptions options;
  options.max_body_kb = 4;
  auto server = start(options, port);
  auto expect_error = [&](const std::string& path, const std::string& body, int status, const std::string& words) {
    auto res = post(port, path, body);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, status) << path << " " << body << " -> " << res->body;
    const auto j = json::parse(res->body);
    EXPECT_TRUE(j.contains("error_type")) << res->body;
    EXPECT_NE(j["error"].get<std::string>().find(words), std::string::npos) << res->body;
  };
  expect_error("/v1/models/clf/classify", "{\"inputs\": ", 400, "malformed JSON");
  expect_error("/v1/models/clf/classify", std::string(1500, '[') + std::string(1500, ']'), 400, "deeper than 64");
  expect_error("/v1/models/clf/classify", json{{"inputs", std::string(8000, 'a')}}.dump(), 413, "too large");
  expect_error("/v1/models/nope/classify", R"({"inputs": "x"})", 404, "no model named nope");
  expect_error("/v1/models/clf/translate", R"({"inputs": "x"})", 404, "no such path");
  expect_error("/v1/models/clf/summarize", R"({"inputs": "x"})", 404, "is a classifier");
  expect_error("/v1/elsewhere", R"({"inputs": "x"})", 404, "no such path");
  expect_error("/v1/models/clf/classify", R"({"text": "x"})", 422, "text: unknown field");
  expect_error("/v1/models/clf/classify", R"({"parameters": {}})", 422, "inputs: missing");
  expect_error("/v1/models/clf/classify", R"({"inputs": []})", 422, "inputs: must not be an empty list");
  expect_error("/v1/models/clf/classify", R"({"inputs": ["a", 3]})", 422, "inputs[1]");
  expect_error("/v1/models/clf/classify", R"({"inputs": "a", "parameters": {"top_k": 0}})", 422, "parameters.top_k");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"beam_size": 0}})", 422,
               "parameters.beam_size");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"beam_size": "4"}})", 422,
               "parameters.beam_size: must be an integer");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"method": "magic"}})", 422,
               "parameters.method");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"beams": 2}})", 422,
               "parameters.beams: unknown parameter");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"top_p": 1.5}})", 422,
               "parameters.top_p");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"coverage_penalty": -1}})", 422,
               "parameters.coverage_penalty: must be a finite number >= 0");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"coverage_penalty": 0.5}})", 422,
               "parameters.coverage_penalty: needs a summarizer trained with model.coverage");
  expect_error("/v1/models/sum/summarize", R"({"inputs": "a", "parameters": {"copy_span_bonus": 25}})", 422,
               "parameters.copy_span_bonus: must be in [0, 20]");
  expect_error("/v1/models/sumpt/summarize", R"({"inputs": "a", "parameters": {"copy_span_bonus": 1}})", 422,
               "--copy-span-bonus / --copy-span-limit: an exported archive decodes with the ones it was exported with");
  expect_error("/v1/models/sum/summarize", R"({"inputs": ["a", "b"], "stream": true})", 422, "stream");
  expect_error("/v1/models/sumpt/summarize", R"({"inputs": "a", "stream": true})", 422, "cannot stream");
  expect_error("/v1/models/sumpt/summarize", R"({"inputs": "a", "parameters": {"method": "sample"}})", 422,
               "sample");
}

TEST_F(Serve, AnswersServiceUnavailableWhileLoading) {
  int port = 0;
  auto server = start({}, port, /*load=*/false);
  httplib::Client client("127.0.0.1", port);
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  auto res = post(port, "/v1/models/clf/classify", R"({"inputs": "x"})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("loading"), std::string::npos);
  auto info = client.Get("/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["models"][0]["loaded"], false);
  server->load();
  EXPECT_EQ(client.Get("/health")->status, 200);
  EXPECT_EQ(post(port, "/v1/models/clf/classify", R"({"inputs": "x"})")->status, 200);
}

TEST_F(Serve, QueueFullAnswers429) {
  int port = 0;
  serving::ServerOptions options;
  options.max_batch = 1;
  options.max_queue = 1;
  auto server = start(options, port);
  const json body = {{"inputs", articles(1, 8)[0]},
                     {"parameters", {{"method", "beam"}, {"beam_size", 4}, {"min_length", 20}, {"max_length", 24}}}};
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 12; ++i) {
    answers.push_back(std::async(std::launch::async, [&] {
      auto res = post(port, "/v1/models/sum/summarize", body.dump());
      return res ? res->status : -1;
    }));
  }
  int ok = 0, full = 0;
  for (auto& a : answers) {
    const int status = a.get();
    ok += status == 200;
    full += status == 429;
  }
  EXPECT_EQ(ok + full, 12);
  EXPECT_GE(ok, 1);
  EXPECT_GE(full, 1);
}

// What the command line prints for these texts, one line each: `heed classify` of the reviews with
// the suite's classifier and `heed summarize` of the articles with its summarizer, `flags` added to
// both. Fails the calling test when either exits non-zero or prints another number of lines.
struct CommandLineAnswers {
  std::vector<std::string> classes, summaries;
};
CommandLineAnswers command_line_answers(const std::vector<heed::test::LabelledText>& reviews,
                                        const std::vector<std::string>& news, const std::string& flags) {
  std::string review_lines, news_lines;
  for (const auto& r : reviews) review_lines += r.text + "\n";
  for (const auto& a : news) news_lines += a + "\n";
  TempDir dir;
  dir.write("reviews.txt", review_lines);
  dir.write("news.txt", news_lines);
  std::string classes, summaries;
  const auto heed = heed::test::heed_binary();
  EXPECT_EQ(run_command(heed + " classify" + flags + " --run " + models->classifier + " --input " + dir.str() +
                            "/reviews.txt",
                        &classes, false),
            0);
  EXPECT_EQ(run_command(heed + " summarize" + flags + " --run " + models->summarizer + " --input " + dir.str() +
                            "/news.txt",
                        &summaries, false),
            0);
  CommandLineAnswers out{lines_of(classes), lines_of(summaries)};
  EXPECT_EQ(out.classes.size(), reviews.size());
  EXPECT_EQ(out.summaries.size(), news.size());
  return out;
}

// 64 concurrent requests (classify and summarize, one or several texts each) get what the command line prints.
TEST_F(Serve, ConcurrentRequestsGetTheCommandLineOutputs) {
  int port = 0;
  serving::ServerOptions options;
  options.max_batch = 8;
  options.batch_wait_ms = 20;
  auto server = start(options, port);

  const auto reviews = heed::test::sentiment(64, 21);
  const auto news = articles(32, 17);
  const auto [classes, summaries] = command_line_answers(reviews, news, "");
  ASSERT_FALSE(HasFailure());

  // Requests 0-31 classify two reviews each; 32-63 summarize one article each.
  std::vector<std::future<json>> answers;
  for (int i = 0; i < 64; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      if (i < 32) {
        return post_json(port, "/v1/models/clf/classify",
                         {{"inputs", {reviews[2 * i].text, reviews[2 * i + 1].text}}});
      }
      return post_json(port, "/v1/models/sum/summarize", {{"inputs", news[i - 32]}});
    }));
  }
  for (int i = 0; i < 64; ++i) {
    const auto answer = answers[i].get();
    if (i < 32) {
      ASSERT_EQ(answer.size(), 2u);
      for (int k = 0; k < 2; ++k) {
        const auto expected = json::parse(classes[2 * i + k]);
        EXPECT_EQ(answer[k][0]["label"], expected["label"]) << "review " << 2 * i + k;
        EXPECT_NEAR(answer[k][0]["score"].get<double>(), expected["score"].get<double>(), 1e-4);
      }
    } else {
      ASSERT_EQ(answer.size(), 1u);
      EXPECT_EQ(answer[0]["summary_text"], summaries[i - 32]) << "article " << i - 32;
    }
  }
  // The worker batched: fewer batches than requests.
  httplib::Client client("127.0.0.1", port);
  const auto metrics = client.Get("/metrics")->body;
  const std::string key = "heed_batch_size_count{model=\"clf\"} ";
  const auto at = metrics.find(key);
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(std::stoi(metrics.substr(at + key.size())), 32) << metrics;
}

// --quantize int8: the served classifier and summarizer answer as heed classify / summarize --quantize
// int8 do, /info says how each stores its weights, and what the command line refuses (an archive,
// bf16 for a classifier) fails the load with the same reason.
TEST_F(Serve, QuantizedModelsAnswerAsTheCommandLineDoes) {
  serving::ServerOptions options;
  options.port = 0;
  options.weights = heed::model::WeightFormat::kInt8;
  serving::Server server({{"clf", models->classifier}, {"sum", models->summarizer}}, options);
  const int port = server.bind();
  server.start();
  server.load();

  const auto reviews = heed::test::sentiment(12, 23);
  const auto news = articles(3, 19);
  const auto [classes, summaries] = command_line_answers(reviews, news, " --quantize int8");
  ASSERT_FALSE(HasFailure());
  for (size_t i = 0; i < reviews.size(); ++i) {
    const auto answer = post_json(port, "/v1/models/clf/classify", {{"inputs", {reviews[i].text}}});
    const auto expected = json::parse(classes[i]);
    EXPECT_EQ(answer[0][0]["label"], expected["label"]) << "review " << i;
    EXPECT_NEAR(answer[0][0]["score"].get<double>(), expected["score"].get<double>(), 2e-5) << "review " << i;
  }
  for (size_t i = 0; i < news.size(); ++i) {
    const auto answer = post_json(port, "/v1/models/sum/summarize", {{"inputs", news[i]}});
    EXPECT_EQ(answer[0]["summary_text"], summaries[i]) << "article " << i;
  }
  httplib::Client client("127.0.0.1", port);
  const auto info = json::parse(client.Get("/info")->body);
  ASSERT_EQ(info["models"].size(), 2u) << info.dump();
  for (const auto& m : info["models"]) EXPECT_EQ(m["quantize"], "int8") << m.dump();
  server.stop();

  EXPECT_THROW(serving::load_served_model({"pt", models->summarizer_pt}, "best", heed::model::WeightFormat::kInt8),
               heed::InputError);
  // bf16 classifiers serve where oneDNN multiplies in bf16, and are refused with the reason elsewhere.
  if (heed::model::bf16_supported()) {
    EXPECT_NO_THROW(serving::load_served_model({"clf", models->classifier}, "best", heed::model::WeightFormat::kBFloat16));
  } else {
    EXPECT_THROW(serving::load_served_model({"clf", models->classifier}, "best", heed::model::WeightFormat::kBFloat16),
                 heed::InputError);
  }
  std::string out;
  EXPECT_EQ(run_command(heed::test::heed_binary() + " serve --quantize int4 --model a=" + models->classifier, &out), 2);
}

// Streamed events reassemble to the summary the same request gets without streaming, for greedy,
// beam search and sampling.
TEST_F(Serve, StreamedEventsReassembleToTheSummary) {
  int port = 0;
  auto server = start({}, port);
  const auto texts = articles(3, 31);
  const std::vector<json> decodings = {
      json::object(), {{"method", "beam"}, {"beam_size", 3}}, {{"method", "beam"}, {"beam_size", 4}, {"max_length", 5}},
      {{"method", "sample"}, {"seed", 7}, {"temperature", 1.5}}};
  for (const auto& parameters : decodings) {
    for (const auto& text : texts) {
      const auto plain = post_json(port, "/v1/models/sum/summarize", {{"inputs", text}, {"parameters", parameters}});
      auto res = post(port, "/v1/models/sum/summarize",
                      json{{"inputs", text}, {"parameters", parameters}, {"stream", true}}.dump());
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
      const auto events = events_of(res->body);
      ASSERT_GE(events.size(), 1u) << res->body;
      std::string text_so_far;
      for (size_t k = 0; k < events.size(); ++k) {
        const auto& e = events[k];
        ASSERT_TRUE(e.contains("token")) << e.dump();
        if (!e["token"].is_null()) text_so_far += e["token"]["text"].get<std::string>();
        if (k + 1 < events.size()) {
          EXPECT_TRUE(e["generated_text"].is_null());
          EXPECT_TRUE(e["token"]["logprob"].get<double>() <= 0.0);
        }
      }
      const auto& last = events.back();
      const auto summary = plain[0]["summary_text"].get<std::string>();
      EXPECT_EQ(last["generated_text"], summary) << parameters.dump();
      EXPECT_EQ(text_so_far, summary) << parameters.dump();
      const auto reason = last["details"]["finish_reason"].get<std::string>();
      EXPECT_TRUE(reason == "eos_token" || reason == "length");
      const int generated = last["details"]["generated_tokens"];
      // One event per generated token (the last carries the EOS, or the last token when cut at max_length).
      EXPECT_EQ(static_cast<size_t>(generated), events.size()) << res->body;
      if (parameters.value("max_length", 0) == 5) {
        EXPECT_LE(generated, 5);
      }
    }
  }
}

TEST_F(Serve, CommandLineRefusesBadModelFlags) {
  std::string out;
  const auto heed = heed::test::heed_binary();
  EXPECT_EQ(run_command(heed + " serve --model nonsense", &out), 2);
  EXPECT_NE(out.find("expected NAME=PATH"), std::string::npos) << out;
  EXPECT_EQ(run_command(heed + " serve --model a=/no/such/run", &out), 2);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_EQ(run_command(heed + " serve --model a=" + models->classifier + " --model a=" + models->summarizer, &out), 2);
  EXPECT_NE(out.find("given twice"), std::string::npos) << out;
  EXPECT_EQ(run_command(heed + " serve --model a=" + models->classifier + " --port 70000", &out), 2);
  EXPECT_EQ(run_command(heed + " serve --model a=" + models->classifier + " --max-batch 0", &out), 2);
}

// SIGTERM while requests are in flight: every one is answered, then the server exits 0.
TEST_F(Serve, SigtermAnswersEveryRequestInFlightThenExitsZero) {
  TempDir dir;
  const std::string log = dir.str() + "/serve.log", pidfile = dir.str() + "/pid";
  auto exit_code = std::async(std::launch::async, [&] {
    std::string out;
    return run_command("sh -c 'echo $$ > " + pidfile + "; exec " + heed::test::heed_binary() + " serve --model sum=" +
                           models->summarizer + " --port 0 --max-batch 1 --threads 1' 2> " + log,
                       &out, false);
  });
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string text = fs::exists(log) ? heed::read_file(log) : "";
    const auto at = text.find("listening on http://127.0.0.1:");
    if (at != std::string::npos) port = std::stoi(text.substr(at + 30));
  }
  if (port == 0 && fs::exists(pidfile)) ::kill(std::stoi(heed::read_file(pidfile)), SIGKILL);  // never hang
  ASSERT_GT(port, 0) << "no 'listening on' line in the log";
  httplib::Client client("127.0.0.1", port);
  for (int i = 0; i < 600; ++i) {
    auto health = client.Get("/health");
    if (health && health->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Slow requests (12 articles each, 8 beams, 56 tokens; one request at a time) so that they queue up.
  const json body = {{"inputs", articles(12, 41)},
                     {"parameters", {{"method", "beam"}, {"beam_size", 8}, {"min_length", 55}, {"max_length", 56}}}};
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 16; ++i) {
    answers.push_back(std::async(std::launch::async, [&] {
      auto res = post(port, "/v1/models/sum/summarize", body.dump());
      return res ? res->status : -1;
    }));
  }
  // Wait until every request has reached the server (one runs and 15 wait in the model's queue, or
  // all 16 wait when the worker has not yet taken the first), then stop it: all 16 are in flight.
  const std::string depth_key = "heed_queue_depth{model=\"sum\"} ";
  int depth = 0;
  for (int i = 0; i < 3000 && depth < 15; ++i) {
    auto metrics = client.Get("/metrics");
    const auto at = metrics ? metrics->body.find(depth_key) : std::string::npos;
    if (at != std::string::npos) depth = std::stoi(metrics->body.substr(at + depth_key.size()));
    if (depth < 15) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(depth, 15) << "the requests did not all queue up; the test would not test stopping with requests in flight";
  EXPECT_LE(depth, 16);
  const int pid = std::stoi(heed::read_file(pidfile));
  EXPECT_EQ(::kill(pid, SIGTERM), 0);
  for (auto& a : answers) EXPECT_EQ(a.get(), 200);
  EXPECT_EQ(exit_code.get(), 0) << heed::read_file(log);
  EXPECT_NE(heed::read_file(log).find("stopped"), std::string::npos);
}

}  // namespace
