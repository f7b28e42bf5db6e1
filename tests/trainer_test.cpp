// Training loop: a tiny classifier learns, checkpoints round-trip, resume is exact, limits and
// divergence behave.
#include <gtest/gtest.h>

#include <filesystem>

#include <ATen/autocast_mode.h>

#include "app/training/classification.h"
#include "app/training/trainer.h"
#include "app/training/weight_average.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using namespace heed;
using namespace heed::app;

namespace {

struct Fixture {
  data::Tokenizer tokenizer;
  ClassificationData data;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    const auto corpus = test::sentiment(480);
    std::vector<std::string> texts;
    for (const auto& e : corpus) texts.push_back(e.text);
    std::vector<std::string_view> views(texts.begin(), texts.end());
    data::TokenizerTrainOptions o;
    o.vocab_size = 80;
    auto tok = data::Tokenizer::train(views, o);
    ClassificationData d;
    d.pad_id = tok.pad_id();
    for (size_t i = 0; i < corpus.size(); ++i) {
      auto& ids = i < 400 ? d.train_ids : d.validation_ids;
      auto& labels = i < 400 ? d.train_labels : d.validation_labels;
      ids.push_back(tok.encode(texts[i]));
      labels.push_back(corpus[i].label == "pos" ? 1 : 0);
    }
    return Fixture{std::move(tok), std::move(d)};
  }();
  return f;
}

model::ModelOptions tiny_model() {
  model::ModelOptions m;
  m.d_model = 32;
  m.heads = 2;
  m.encoder_layers = 1;
  m.ff_dim = 64;
  m.dropout = 0.1;
  m.max_positions = 64;
  return m;
}

TrainingOptions tiny_training() {
  TrainingOptions t;
  t.epochs = 4;
  t.batch_size = 16;
  t.batch_tokens = 0;
  t.lr = 5e-3;
  t.warmup_steps = 5;
  t.eval_every = 0;
  t.log_every = 10;
  t.seed = 3;
  return t;
}

TrainerFiles files_in(const test::TempDir& dir) {
  std::filesystem::create_directories(dir.path() / "checkpoints");
  return {dir.str() + "/checkpoints/last.pt", dir.str() + "/checkpoints/best.pt", dir.str() + "/metrics.jsonl"};
}

model::Classifier make_model() {
  torch::manual_seed(3);
  return model::Classifier(tiny_model(), fixture().tokenizer.vocab_size(), 2);
}

std::vector<torch::Tensor> snapshot(model::Classifier& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m->parameters()) out.push_back(p.detach().clone());
  return out;
}

// Trains `t` into `files` stopped at step 30 (mid-epoch, between validations, as Ctrl-C would),
// then resumes it to the end from a fresh model; returns both results and the resumed model.
struct StopAndResume {
  TrainResult interrupted, resumed;
  model::Classifier model{nullptr};
};
StopAndResume stop_at_30_and_resume(const TrainingOptions& t, const TrainerFiles& files) {
  StopAndResume out;
  {
    auto model = make_model();
    ClassificationTask task(model, fixture().data, t);
    Progress progress(false);
    out.interrupted = Trainer(task, t, files, progress, [](const TrainState& s) { return s.step >= 30; }).run(false);
  }
  torch::manual_seed(12345);  // the checkpoint must restore the RNG, not rely on this
  out.model = make_model();
  ClassificationTask task(out.model, fixture().data, t);
  Progress progress(false);
  out.resumed = Trainer(task, t, files, progress, nullptr).run(true);
  return out;
}

}  // namespace

TEST(Trainer, TinyClassifierLearnsWellAboveChance) {
  test::TempDir dir;
  torch::set_num_threads(2);
  auto model = make_model();
  ClassificationTask task(model, fixture().data, tiny_training());
  Progress progress(false);
  Trainer trainer(task, tiny_training(), files_in(dir), progress, nullptr);
  const auto result = trainer.run(false);
  EXPECT_EQ(result.reason, StopReason::kCompleted);
  EXPECT_TRUE(result.state.finished);
  EXPECT_GT(result.last_validation.at("accuracy"), 0.9);
  EXPECT_TRUE(std::filesystem::exists(dir.str() + "/checkpoints/best.pt"));
  EXPECT_TRUE(std::filesystem::exists(dir.str() + "/metrics.jsonl"));
}

TEST(Trainer, Bf16PrecisionLearnsAndKeepsFloat32Weights) {
  test::TempDir dir;
  torch::set_num_threads(2);
  auto options = tiny_training();
  options.precision = "bf16";
  auto model = make_model();
  ClassificationTask task(model, fixture().data, options);
  // One step: the loss is float32 and close to the float32 loss; autocast is off again afterwards.
  {
    auto fp32 = make_model();
    ClassificationTask fp32_task(fp32, fixture().data, tiny_training());
    fp32->eval();  // no dropout: the two forward passes differ only in precision
    model->eval();
    double reference = 0.0;
    {
      torch::NoGradGuard no_grad;
      reference = fp32_task.forward_loss({0, 1, 2, 3}).loss.item<double>();
    }
    std::vector<torch::Tensor> parameters;
    for (const auto& p : model->parameters()) parameters.push_back(p);
    auto optimizer = make_optimizer(parameters, options);
    const auto step = optimizer_step(task, *optimizer, parameters, {0, 1, 2, 3}, step_options(options));
    EXPECT_NEAR(step.loss, reference, 0.05 * std::abs(reference));
    EXPECT_NE(step.loss, reference);  // the products really ran in bf16
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
  }
  model->train();
  Progress progress(false);
  Trainer trainer(task, options, files_in(dir), progress, nullptr);
  const auto result = trainer.run(false);
  EXPECT_GE(result.last_validation.at("accuracy"), 0.85);  // chance is 0.5; fp32 reaches ~0.9 here
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

TEST(Trainer, CheckpointSaveLoadGivesIdenticalPredictions) {
  test::TempDir dir;
  auto model = make_model();
  ClassificationTask task(model, fixture().data, tiny_training());
  TrainingOptions t = tiny_training();
  t.epochs = 1;
  Progress progress(false);
  Trainer(task, t, files_in(dir), progress, nullptr).run(false);
  auto before = predict_probabilities(model, fixture().data.validation_ids, fixture().data.pad_id, 512);

  torch::manual_seed(99);  // different initial weights
  model::Classifier fresh(tiny_model(), fixture().tokenizer.vocab_size(), 2);
  const auto state = load_checkpoint(dir.str() + "/checkpoints/last.pt", *fresh, nullptr);
  EXPECT_TRUE(state.finished);
  auto after = predict_probabilities(fresh, fixture().data.validation_ids, fixture().data.pad_id, 512);
  EXPECT_TRUE(torch::equal(before, after));
}

TEST(Trainer, ResumeContinuesIdentically) {
  torch::set_num_threads(1);  // bit-exact comparison
  TrainingOptions t = tiny_training();
  t.epochs = 2;
  t.eval_every = 7;

  test::TempDir straight_dir;
  auto straight = make_model();
  {
    ClassificationTask task(straight, fixture().data, t);
    Progress progress(false);
    Trainer(task, t, files_in(straight_dir), progress, nullptr).run(false);
  }

  test::TempDir resumed_dir;
  const auto run = stop_at_30_and_resume(t, files_in(resumed_dir));
  EXPECT_EQ(run.interrupted.reason, StopReason::kInterrupted);
  EXPECT_EQ(run.interrupted.state.step, 30);
  EXPECT_FALSE(run.interrupted.state.finished);
  EXPECT_EQ(run.resumed.reason, StopReason::kCompleted);
  auto resumed = run.model;
  const auto a = snapshot(straight), b = snapshot(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  torch::set_num_threads(2);
}

TEST(WeightAverage, FollowsTheWarmedUpDecayAndSwapsExactly) {
  auto w = torch::tensor({1.0f, 2.0f}), v = torch::tensor({{3.0f}});
  WeightAverage average({w, v}, 0.5);
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.5, 1), 2.0 / 11.0);  // warm-up: min(0.5, 2/11)
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.5, 100), 0.5);
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.999, 1000), 1001.0 / 1010.0);
  w.copy_(torch::tensor({11.0f, 2.0f}));
  v.fill_(5.0f);
  average.update(1);  // d = 2/11: average = 2/11 * start + 9/11 * weights
  const double d = 2.0 / 11.0;
  EXPECT_NEAR(average.held()[0][0].item<double>(), d * 1.0 + (1 - d) * 11.0, 1e-5);
  EXPECT_NEAR(average.held()[0][1].item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(average.held()[1][0][0].item<double>(), d * 3.0 + (1 - d) * 5.0, 1e-5);
  w.copy_(torch::tensor({1.0f, 0.0f}));
  average.update(100);  // d = 0.5
  const double a0 = 0.5 * (d * 1.0 + (1 - d) * 11.0) + 0.5 * 1.0;
  EXPECT_NEAR(average.held()[0][0].item<double>(), a0, 1e-5);
  EXPECT_NEAR(average.held()[0][1].item<double>(), 1.0, 1e-6);

  // swap() puts the average into the parameters (in place, the optimizer's tensors) and back.
  const auto* storage = w.data_ptr<float>();
  average.swap();
  EXPECT_TRUE(average.swapped());
  EXPECT_EQ(w.data_ptr<float>(), storage);
  EXPECT_NEAR(w[0].item<double>(), a0, 1e-5);
  EXPECT_TRUE(torch::equal(average.held()[0], torch::tensor({1.0f, 0.0f})));
  EXPECT_THROW(average.update(101), c10::Error);  // never fold the average into itself
  average.swap();
  EXPECT_TRUE(torch::equal(w, torch::tensor({1.0f, 0.0f})));
  EXPECT_THROW(average.set_held({torch::zeros({2})}), Error);                          // one tensor for two
  EXPECT_THROW(average.set_held({torch::zeros({3}), torch::zeros({1, 1})}), Error);  // wrong shape
}

// training.ema_decay: validation, best.pt and last.pt's weights are the average; last.pt also keeps
// the training weights, and a run stopped and resumed ends exactly as one that ran straight through.
TEST(Trainer, WeightAverageFillsTheCheckpointsAndResumesExactly) {
  torch::set_num_threads(1);  // bit-exact comparison
  TrainingOptions t = tiny_training();
  t.epochs = 2;
  t.eval_every = 7;
  t.ema_decay = 0.9;

  test::TempDir straight_dir;
  const auto straight_files = files_in(straight_dir);
  auto straight = make_model();
  {
    ClassificationTask task(straight, fixture().data, t);
    Progress progress(false);
    const auto r = Trainer(task, t, straight_files, progress, nullptr).run(false);
    EXPECT_GE(r.last_validation.at("accuracy"), 0.8);  // chance is 0.5
  }
  // The model in memory trains on; last.pt's model part is the average, its training weights the model's.
  auto averaged = make_model();
  std::vector<torch::Tensor> training_weights;
  load_checkpoint(straight_files.last_checkpoint, *averaged, nullptr, &training_weights);
  const auto trained = snapshot(straight), average = snapshot(averaged);
  ASSERT_EQ(training_weights.size(), trained.size());
  bool differs = false;
  for (size_t i = 0; i < trained.size(); ++i) {
    EXPECT_TRUE(torch::equal(training_weights[i], trained[i])) << "parameter " << i;
    differs = differs || !torch::equal(average[i], trained[i]);
  }
  EXPECT_TRUE(differs) << "last.pt's model part should be the average, not the training weights";
  // The last validation measured the average: evaluating last.pt's weights gives its accuracy.
  auto p = predict_probabilities(averaged, fixture().data.validation_ids, fixture().data.pad_id, 512);
  double correct = 0;
  for (size_t i = 0; i < fixture().data.validation_labels.size(); ++i) {
    correct += p[static_cast<int64_t>(i)].argmax().item<int64_t>() == fixture().data.validation_labels[i];
  }
  const auto metrics = [&] {
    std::string text = read_file(straight_files.metrics), last;
    for (size_t b = 0, e; (e = text.find('\n', b)) != std::string::npos; b = e + 1) {
      const auto line = text.substr(b, e - b);
      if (line.find("\"validation\"") != std::string::npos) last = line;
    }
    return nlohmann::json::parse(last);
  }();
  EXPECT_DOUBLE_EQ(metrics.at("accuracy").get<double>(),
                   correct / static_cast<double>(fixture().data.validation_labels.size()));

  test::TempDir resumed_dir;
  const auto files = files_in(resumed_dir);
  auto run = stop_at_30_and_resume(t, files);
  EXPECT_EQ(run.interrupted.reason, StopReason::kInterrupted);
  EXPECT_EQ(run.resumed.reason, StopReason::kCompleted);
  const auto b = snapshot(run.model);
  for (size_t i = 0; i < trained.size(); ++i) EXPECT_TRUE(torch::equal(trained[i], b[i])) << "parameter " << i;
  auto resumed_average = make_model();
  load_checkpoint(files.last_checkpoint, *resumed_average, nullptr);
  const auto c = snapshot(resumed_average);
  for (size_t i = 0; i < average.size(); ++i) EXPECT_TRUE(torch::equal(average[i], c[i])) << "average " << i;
  torch::set_num_threads(2);
}

namespace {
// Wraps the classification task and turns the loss into NaN from a given step on.
class PoisonedTask : public TrainingTask {
 public:
  PoisonedTask(ClassificationTask& inner, int64_t poison_from) : inner_(inner), poison_from_(poison_from) {}
  torch::nn::Module& model() override { return inner_.model(); }
  std::vector<std::vector<size_t>> plan_epoch(uint64_t e) override { return inner_.plan_epoch(e); }
  StepOutput forward_loss(const std::vector<size_t>& b) override {
    auto out = inner_.forward_loss(b);
    if (++steps_ >= poison_from_) out.loss = out.loss * std::numeric_limits<float>::quiet_NaN();
    return out;
  }
  std::map<std::string, double> validate() override { return inner_.validate(); }

 private:
  ClassificationTask& inner_;
  int64_t poison_from_, steps_ = 0;
};
}  // namespace

TEST(Trainer, NonFiniteLossStopsWithAClearMessageAndKeepsTheLastGoodCheckpoint) {
  test::TempDir dir;
  auto model = make_model();
  TrainingOptions t = tiny_training();
  t.eval_every = 4;
  ClassificationTask inner(model, fixture().data, t);
  PoisonedTask task(inner, 10);
  Progress progress(false);
  const auto files = files_in(dir);
  try {
    Trainer(task, t, files, progress, nullptr).run(false);
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("step 10"), std::string::npos) << e.what();
  }
  model::Classifier fresh(tiny_model(), fixture().tokenizer.vocab_size(), 2);
  const auto state = load_checkpoint(files.last_checkpoint, *fresh, nullptr);
  EXPECT_EQ(state.step, 8);
  for (const auto& p : fresh->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(Trainer, EarlyStoppingAndStepLimit) {
  test::TempDir dir;
  auto model = make_model();
  TrainingOptions t = tiny_training();
  t.epochs = 50;
  t.eval_every = 2;
  t.patience = 1;
  t.lr = 1e-9;  // predictions cannot change, so accuracy never improves
  t.warmup_steps = 0;
  t.best_metric = "accuracy";
  ClassificationTask task(model, fixture().data, t);
  Progress progress(false);
  auto r = Trainer(task, t, files_in(dir), progress, nullptr).run(false);
  EXPECT_EQ(r.reason, StopReason::kEarlyStopped);
  EXPECT_LT(r.state.step, 20);

  test::TempDir dir2;
  t.patience = 0;
  t.max_steps = 5;
  auto model2 = make_model();
  ClassificationTask task2(model2, fixture().data, t);
  r = Trainer(task2, t, files_in(dir2), progress, nullptr).run(false);
  EXPECT_EQ(r.reason, StopReason::kMaxSteps);
  EXPECT_EQ(r.state.step, 5);
  EXPECT_TRUE(r.state.finished);
}

TEST(Schedule, WarmupThenDecay) {
  TrainingOptions o;
  o.lr = 1.0;
  o.warmup_steps = 10;
  o.schedule = "linear";
  const LearningRateSchedule linear(o, 110);
  EXPECT_DOUBLE_EQ(linear.at(5), 0.5);
  EXPECT_DOUBLE_EQ(linear.at(10), 1.0);
  EXPECT_NEAR(linear.at(60), 0.5, 1e-12);
  EXPECT_NEAR(linear.at(110), 0.0, 1e-12);
  o.schedule = "cosine";
  EXPECT_NEAR(LearningRateSchedule(o, 110).at(60), 0.5, 1e-12);
  o.schedule = "inverse_sqrt";
  EXPECT_NEAR(LearningRateSchedule(o, 110).at(40), 0.5, 1e-12);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(LearningRateSchedule(o, 110).at(100), 1.0);
}

TEST(Checkpoint, CorruptOrNewerFilesGiveClearErrors) {
  test::TempDir dir;
  auto model = make_model();
  const auto bad = dir.write("bad.pt", "not a checkpoint");
  try {
    load_checkpoint(bad, *model, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.pt"), std::string::npos);
  }
  EXPECT_THROW(load_checkpoint(dir.str() + "/missing.pt", *model, nullptr), Error);
  // A checkpoint of a different architecture does not load silently.
  model::ModelOptions other = tiny_model();
  other.d_model = 16;
  model::Classifier small(other, fixture().tokenizer.vocab_size(), 2);
  save_checkpoint(dir.str() + "/small.pt", *small, nullptr, {});
  EXPECT_THROW(load_checkpoint(dir.str() + "/small.pt", *model, nullptr), Error);
}
