// heed's side of bench/run.py: the same measurements as bench/reference.py, through heed's own
// code paths (ClassificationTask / SummarizationTask and the trainer's optimizer step, the torch-free
// classifier engine that heed evaluate / classify / serve run, app::generate, Tokenizer::encode_all),
// on the batches bench/run.py prepared.
// Google Benchmark runs each case once per process (bench/run.py measures peak RSS per process):
//
//   heed_bench WORK --threads N [--steps S] [--batch B] [--new-tokens K] [--precision auto|fp32|bf16]
//              [--data FILE] [--quantize none|bf16|int8] [--profile FILE] [--copy-attention]
//              --benchmark_filter=<case>
//
// Cases: train_classifier, infer_classifier, train_seq2seq, generate_greedy, generate_beam4,
// generate_greedy_nocache, tokenize. Counters: tokens_per_second (or mb_per_second), ms_per_step.
// --data names the training cases' batches file in WORK (default classifier.json / seq2seq.json; the
// 1,024-token cases use classifier_long.json / seq2seq_long.json). --quantize: the generate cases'
// weights (model/quantize.h, heed summarize --quantize) and infer_classifier's (the torch-free
// engine's, heed classify --quantize bf16|int8). --profile (training and generate cases): libtorch's
// profiler over the measured steps or runs, every op's start and end with input shapes into FILE
// (tab-separated), for bench/profile_ops.py to sum into self time per op; the profiler slows the
// steps it records. --copy-attention (train_seq2seq and the generate cases): the encoder-decoder with
// copy attention and coverage, as the shipped summarizer configs have it (the reference has no such
// model: heed-only measurements, not run by bench/run.py).
#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "app/training/checkpoint.h"
#include "app/training/classification.h"
#include "app/training/summarization.h"
#include "app/training/torch_runtime.h"
#include "app/training/trainer.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/tokenizer.h"
#include "model/native/native_classifier.h"
#include "model/quantize.h"

namespace {

using namespace heed;

struct Args {
  std::string work;
  int threads = 0;
  int steps = 10;
  int batch = 1;
  int new_tokens = 64;
  std::string precision = "auto";  // training cases: training.precision (heed's default)
  std::string data;                 // training cases: batches file in WORK ("" = the case's default)
  std::string quantize = "none";    // generate cases and infer_classifier: weight storage
  std::string profile;              // training and generate cases: op events into this file ("" = none)
  bool copy_attention = false;      // train_seq2seq and generate cases: copy attention with coverage
};
Args g_args;

namespace profiler = torch::autograd::profiler;

nlohmann::json load(const std::string& name) { return nlohmann::json::parse(read_file(g_args.work + "/" + name)); }

// The reference's architecture in heed's options (bench/reference.py): pre-norm, GELU, sinusoidal.
model::ModelOptions model_options(int64_t layers, int64_t max_positions, bool seq2seq) {
  model::ModelOptions o;
  o.d_model = 256;
  o.heads = 4;
  o.encoder_layers = layers;
  o.decoder_layers = seq2seq ? layers : 0;
  o.ff_dim = 1024;
  o.dropout = 0.1;
  o.max_positions = max_positions;
  o.copy_attention = seq2seq && g_args.copy_attention;  // --copy-attention: as configs/bbc_summarizer.json
  o.coverage = o.copy_attention;
  return o;
}

app::TrainingOptions training_options(double label_smoothing) {
  app::TrainingOptions t;
  t.lr = 1e-3;
  t.weight_decay = 0.01;
  t.clip_norm = 1.0;
  t.label_smoothing = label_smoothing;
  t.precision = g_args.precision;
  return t;
}

// With --profile: libtorch's profiler records every op while it lives; the destructor writes them,
// one event a line: kind (push / pop / mark), op, thread, time in microseconds, input shapes.
class OpProfile {
 public:
  OpProfile() {
    if (g_args.profile.empty()) return;
    profiler::enableProfilerLegacy(profiler::ProfilerConfig(profiler::ProfilerState::CPU, /*report_input_shapes=*/true));
  }
  ~OpProfile() {
    if (g_args.profile.empty()) return;
    std::ofstream out(g_args.profile);
    for (const auto& events : profiler::disableProfilerLegacy()) {
      for (const auto& e : events) {
        std::string shapes;
        for (const auto& shape : e.shapes()) {
          shapes += "[";
          for (const auto n : shape) shapes += std::to_string(n) + ",";
          shapes += "]";
        }
        out << e.kindStr() << "\t" << e.name() << "\t" << e.threadId() << "\t" << std::fixed << e.cpuUs() << "\t"
            << shapes << "\n";
      }
    }
  }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;
};

// Runs `steps` optimizer steps over `batches` (cycling) after two warm-up steps.
void run_training(benchmark::State& state, app::TrainingTask& task, const std::vector<std::vector<size_t>>& batches,
                  const app::TrainingOptions& options) {
  std::vector<torch::Tensor> parameters;
  for (auto& p : task.model().parameters()) parameters.push_back(p);
  auto optimizer = app::make_optimizer(parameters, options);
  const app::StepOptions step = app::step_options(options);
  task.model().train();
  for (size_t i = 0; i < 2 && i < batches.size(); ++i) app::optimizer_step(task, *optimizer, parameters, batches[i], step);
  double tokens = 0;
  size_t i = 0;
  const OpProfile profile;
  for (auto _ : state) {
    for (int s = 0; s < g_args.steps; ++s) {
      tokens += static_cast<double>(
          app::optimizer_step(task, *optimizer, parameters, batches[i++ % batches.size()], step).tokens);
    }
  }
  state.counters["tokens_per_second"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["steps"] = g_args.steps;
  state.counters["bf16"] = step.bf16 ? 1 : 0;  // what the precision setting resolved to
}

void train_classifier(benchmark::State& state) {
  const auto data = load(g_args.data.empty() ? "classifier.json" : g_args.data);
  app::ClassificationData d;
  std::vector<std::vector<size_t>> batches;
  for (const auto& b : data.at("batches")) {
    std::vector<size_t> index;
    for (size_t r = 0; r < b.at("ids").size(); ++r) {
      index.push_back(d.train_ids.size());
      d.train_ids.push_back(b.at("ids")[r].get<data::TokenIds>());
      d.train_labels.push_back(b.at("labels")[r].get<int64_t>());
    }
    batches.push_back(index);
  }
  torch::manual_seed(1);
  model::Classifier model(model_options(4, data.at("max_length").get<int64_t>(), false),
                          data.at("vocab_size").get<int64_t>(), 2);
  const auto options = training_options(0.0);
  app::ClassificationTask task(model, std::move(d), options);
  run_training(state, task, batches, options);
}

void infer_classifier(benchmark::State& state) {
  const auto data = load("classifier.json");
  std::vector<std::vector<std::vector<int32_t>>> batches;
  for (const auto& b : data.at("batches")) batches.push_back(b.at("ids").get<std::vector<std::vector<int32_t>>>());
  torch::manual_seed(1);
  const auto options = model_options(4, data.at("max_length").get<int64_t>(), false);
  const auto vocab = data.at("vocab_size").get<int64_t>();
  model::Classifier model(options, vocab, 2);
  model->eval();
  // heed evaluate's path (and heed classify's and heed serve's): the torch-free engine over the
  // model's flat weights, each sequence unpadded, one per thread.
  const std::string pt = g_args.work + "/infer_classifier.pt", flat = g_args.work + "/infer_classifier.flat";
  app::save_checkpoint(pt, *model, nullptr, {});
  app::save_flat_weights(flat, *model, pt);
  const model::NativeClassifier engine(options, vocab, 2, model::FlatWeights::read(flat),
                                       model::parse_weight_format(g_args.quantize));  // --quantize bf16|int8
  engine.probabilities(batches[0], g_args.threads);  // warm-up
  double tokens = 0;
  for (auto _ : state) {
    for (const auto& b : batches) {
      benchmark::DoNotOptimize(engine.probabilities(b, g_args.threads));
      for (const auto& s : b) tokens += static_cast<double>(s.size());
    }
  }
  state.counters["tokens_per_second"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["steps"] = static_cast<double>(batches.size());
}

void train_seq2seq(benchmark::State& state) {
  const auto data = load(g_args.data.empty() ? "seq2seq.json" : g_args.data);
  const auto tokenizer = data::Tokenizer::load(g_args.work + "/spm.model");
  app::SummarizationData d;
  d.ids = app::special_ids(tokenizer);
  std::vector<std::vector<size_t>> batches;
  for (const auto& b : data.at("batches")) {
    std::vector<size_t> index;
    for (size_t r = 0; r < b.at("source").size(); ++r) {
      index.push_back(d.train_source.size());
      d.train_source.push_back(b.at("source")[r].get<data::TokenIds>());
      d.train_target.push_back(b.at("target")[r].get<data::TokenIds>());
    }
    batches.push_back(index);
  }
  torch::manual_seed(1);
  model::Seq2Seq model(model_options(3, data.at("max_positions").get<int64_t>(), true), tokenizer.vocab_size());
  const auto options = training_options(0.1);
  app::SummarizationTask task(model, std::move(d), options, model::DecodingOptions{}, tokenizer);
  run_training(state, task, batches, options);
}

void generate(benchmark::State& state, const std::string& method, int64_t beams, bool use_cache) {
  const auto data = load("articles.json");
  const auto tokenizer = data::Tokenizer::load(g_args.work + "/spm.model");
  auto sources = data.at("sources").get<std::vector<data::TokenIds>>();
  sources.resize(std::min(sources.size(), static_cast<size_t>(g_args.batch)));
  torch::manual_seed(1);
  model::Seq2Seq model(model_options(3, data.at("max_positions").get<int64_t>(), true), tokenizer.vocab_size());
  model->eval();
  model::quantize_for_inference(*model, model::parse_weight_format(g_args.quantize));
  model::DecodingOptions decoding;
  decoding.method = method;
  decoding.beam_size = beams;
  decoding.max_length = decoding.min_length = g_args.new_tokens;  // exactly K new tokens, as the reference
  const auto ids = app::special_ids(tokenizer);
  app::generate(model, sources, ids, decoding, g_args.batch, use_cache);  // warm-up
  // Median of three timed runs (as the reference): one short run is at the mercy of the scheduler.
  std::vector<double> seconds;
  const OpProfile profile;
  for (auto _ : state) {
    for (int run = 0; run < 3; ++run) {
      const double start = heed::now_seconds();
      app::generate(model, sources, ids, decoding, g_args.batch, use_cache);
      seconds.push_back(heed::now_seconds() - start);
    }
  }
  std::sort(seconds.begin(), seconds.end());
  const double tokens = static_cast<double>(g_args.new_tokens) * static_cast<double>(sources.size());
  state.counters["tokens_per_second"] = tokens / seconds[seconds.size() / 2];
}

void tokenize(benchmark::State& state) {
  const auto tokenizer = data::Tokenizer::load(g_args.work + "/spm.model");
  const auto texts = load("texts.json").at("texts").get<std::vector<std::string>>();
  std::vector<std::string_view> views(texts.begin(), texts.end());
  double bytes = 0;
  for (const auto& t : texts) bytes += static_cast<double>(t.size());
  double total = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tokenizer.encode_all(views, g_args.threads));
    total += bytes;
  }
  state.counters["mb_per_second"] = benchmark::Counter(total / 1e6, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags first; the rest goes to Google Benchmark.
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--threads") g_args.threads = value();
    else if (a == "--steps") g_args.steps = value();
    else if (a == "--batch") g_args.batch = value();
    else if (a == "--new-tokens") g_args.new_tokens = value();
    else if (a == "--precision" && i + 1 < argc) g_args.precision = argv[++i];
    else if (a == "--data" && i + 1 < argc) g_args.data = argv[++i];
    else if (a == "--quantize" && i + 1 < argc) g_args.quantize = argv[++i];
    else if (a == "--profile" && i + 1 < argc) g_args.profile = argv[++i];
    else if (a == "--copy-attention") g_args.copy_attention = true;
    else if (a.rfind("--", 0) != 0 && g_args.work.empty()) g_args.work = a;
    else rest.push_back(argv[i]);
  }
  if (g_args.work.empty()) {
    std::fprintf(stderr, "usage: heed_bench WORK --threads N [--steps S] [--batch B] [--new-tokens K] [benchmark flags]\n");
    return 2;
  }
  g_args.threads = heed::app::configure_runtime(g_args.threads);  // heed's thread and allocator settings
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  auto once = [](benchmark::internal::Benchmark* b) { b->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond); };
  once(benchmark::RegisterBenchmark("train_classifier", train_classifier));
  once(benchmark::RegisterBenchmark("infer_classifier", infer_classifier));
  once(benchmark::RegisterBenchmark("train_seq2seq", train_seq2seq));
  once(benchmark::RegisterBenchmark("generate_greedy", [](benchmark::State& s) { generate(s, "greedy", 1, true); }));
  once(benchmark::RegisterBenchmark("generate_beam4", [](benchmark::State& s) { generate(s, "beam", 4, true); }));
  once(benchmark::RegisterBenchmark("generate_greedy_nocache", [](benchmark::State& s) { generate(s, "greedy", 1, false); }));
  once(benchmark::RegisterBenchmark("tokenize", tokenize));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
