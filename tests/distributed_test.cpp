// Data-parallel training end to end: the heed binary under torchrun (2 processes, 1 thread each,
// localhost), compared with one process on the same global batch; faults (a killed rank, a torchrun
// restart, --resume). app/training/distributed.* and docs/DISTRIBUTED.md.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/training/classification.h"
#include "app/training/distributed.h"
#include "app/training/summarization.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::test::run_command;
using heed::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string config(const std::string& name) { return std::string(HEED_SOURCE_DIR) + "/configs/" + name; }

std::string sentiment_jsonl(size_t n, uint32_t seed) {
  std::string out;
  for (const auto& e : heed::test::sentiment(n, seed)) out += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  return out;
}

// `heed train` under torchrun with two processes on this machine (--standalone picks a free port).
std::string torchrun(const std::string& args, const std::string& extra_flags = "") {
  // --redirects 1 --tee 1: Debian 12's torchrun (torch 1.13 on Python 3.11) fails with the default "0"
  // (docs/DISTRIBUTED.md).
  return "OMP_NUM_THREADS=1 /usr/bin/torchrun --no_python --standalone --nproc_per_node 2 --redirects 1 --tee 1 " +
         extra_flags + " " +
         heed::test::heed_binary() + " train --threads 1 " + args;
}

std::string single(const std::string& args) { return heed::test::heed_binary() + " train --threads 1 " + args; }

// The per-step training losses of a run (metrics.jsonl with training.log_every=1).
std::vector<double> step_losses(const std::string& run) {
  std::vector<double> out;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.at("type") == "train") out.push_back(record.at("loss").get<double>());
  }
  return out;
}

// Largest relative difference (L2 norm of the difference over that of `b`) between same-named
// tensors; `where` gets that tensor's name.
//
// Attention's key bias (the middle third of in_proj_bias) is left out: it adds q.b_k to every score
// of a row, which softmax ignores, so its true gradient is exactly zero and what it gets is float
// rounding noise - which AdamW, dividing by the noise's own scale, turns into full-size steps that
// differ between any two runs that round differently. It has no effect on any output.
double max_relative_difference(torch::nn::Module& a, torch::nn::Module& b, std::string* where) {
  const auto pb = b.named_parameters();
  double worst = 0.0;
  for (const auto& item : a.named_parameters()) {
    torch::Tensor mine = item.value(), other = pb[item.key()];
    const std::string suffix = "in_proj_bias";
    const std::string& name = item.key();
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const int64_t d = other.numel() / 3;
      auto keep = torch::ones_like(other);
      keep.slice(0, d, 2 * d).zero_();
      mine = mine * keep;
      other = other * keep;
    }
    const double norm = other.norm().item<double>();
    const double d = (mine - other).norm().item<double>() / std::max(norm, 1e-12);
    if (d >= worst) {
      worst = d;
      *where = item.key() + " (max abs diff " + std::to_string((mine - other).abs().max().item<double>()) + ")";
    }
  }
  return worst;
}

std::vector<std::string> final_checksums(const std::string& output) {
  static const std::regex line("rank (\\d) of 2: final parameters xxh3 ([0-9a-f]{16})");
  std::vector<std::string> out(2);
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
    out[static_cast<size_t>(std::stoi((*it)[1]))] = (*it)[2];
  }
  return out;
}

void expect_same_losses(const std::vector<double>& one, const std::vector<double>& two) {
  ASSERT_EQ(one.size(), two.size());
  ASSERT_GT(one.size(), 5u);
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_NEAR(two[i], one[i], 1e-5 * std::abs(one[i])) << "step " << i + 1;
  }
}

const char* kStepFlags = " --set training.log_every=1";

}  // namespace

TEST(DistributedEnvironment, ReadsTorchrunVariablesAndRejectsBadOnes) {
  using heed::app::process_environment;
  auto from = [](std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  EXPECT_FALSE(process_environment(from({})).distributed());
  EXPECT_FALSE(process_environment(from({{"WORLD_SIZE", "1"}, {"RANK", "0"}})).distributed());
  const auto env = process_environment(from({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"},
                                             {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"},
                                             {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                             {"TORCHELASTIC_RESTART_COUNT", "2"}, {"GLOO_SOCKET_IFNAME", "eth1"}}));
  EXPECT_TRUE(env.distributed());
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.use_agent_store);
  EXPECT_EQ(env.restart_count, 2);
  EXPECT_EQ(env.socket_ifname, "eth1");
  const std::map<std::string, std::string> base = {{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"},
                                                    {"MASTER_PORT", "1"}};
  for (const auto& [name, value, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"RANK", "2", "RANK"}, {"RANK", "x", "RANK"}, {"MASTER_PORT", "70000", "MASTER_PORT"},
           {"MASTER_ADDR", "", "MASTER_ADDR"}, {"WORLD_SIZE", "-1", "WORLD_SIZE"}}) {
    auto vars = base;
    vars[name] = value;
    try {
      process_environment(from(vars));
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const heed::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(DistributedEnvironment, ShardsAreDisjointAndCoverTheBatch) {
  const std::vector<size_t> batch = {9, 4, 7, 1, 3};
  EXPECT_EQ(heed::app::shard_of_batch(batch, 0, 2), (std::vector<size_t>{9, 7, 3}));
  EXPECT_EQ(heed::app::shard_of_batch(batch, 1, 2), (std::vector<size_t>{4, 1}));
  EXPECT_TRUE(heed::app::shard_of_batch({5}, 1, 2).empty());
}

TEST(DistributedConfig, NcclIsRefusedWithExitTwo) {
  TempDir dir;
  dir.write("train.jsonl", sentiment_jsonl(40, 1));
  std::string out;
  const int code = run_command(single("--config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                                      " --output " + dir.str() + "/run --set distributed.backend=nccl"),
                               &out);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("distributed.backend"), std::string::npos) << out;
  EXPECT_NE(out.find("gloo"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir.str() + "/run"));
}

// 2 processes x half the batch == 1 process x the whole batch: per-step losses and final weights.
TEST(Distributed, ClassifierTwoRanksMatchOneProcessWithTheGlobalBatch) {
  TempDir dir;
  dir.write("train.jsonl", sentiment_jsonl(200, 5));
  const std::string common = "--config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                             " --set training.epochs=2 --set training.batch_size=16" + kStepFlags;
  std::string out1, out2;
  ASSERT_EQ(run_command(single(common + " --output " + dir.str() + "/one"), &out1), 0) << out1;
  ASSERT_EQ(run_command(torchrun(common + " --output " + dir.str() + "/two"), &out2), 0) << out2;
  expect_same_losses(step_losses(dir.str() + "/one"), step_losses(dir.str() + "/two"));

  const auto sums = final_checksums(out2);
  EXPECT_FALSE(sums[0].empty()) << out2;
  EXPECT_EQ(sums[0], sums[1]) << out2;

  auto one = heed::app::load_classifier(dir.str() + "/one", "last");
  auto two = heed::app::load_classifier(dir.str() + "/two", "last");
  std::string where;
  EXPECT_LT(max_relative_difference(*one.model, *two.model, &where), 1e-5) << where;
  // A normal run: the torch-free classify reads it.
  std::string classify;
  ASSERT_EQ(run_command(heed::test::heed_binary() + " classify --run " + dir.str() + "/two \"great wonderful film\"",
                        &classify, false),
            0);
  EXPECT_NE(classify.find("\"label\""), std::string::npos) << classify;
  // Validation is sharded and summed: the same figures as one process.
  std::ifstream m1(dir.str() + "/one/metrics.jsonl"), m2(dir.str() + "/two/metrics.jsonl");
  std::vector<double> acc1, acc2;
  for (std::string line; std::getline(m1, line);) {
    const auto r = nlohmann::json::parse(line);
    if (r["type"] == "validation") acc1.push_back(r["loss"].get<double>());
  }
  for (std::string line; std::getline(m2, line);) {
    const auto r = nlohmann::json::parse(line);
    if (r["type"] == "validation") acc2.push_back(r["loss"].get<double>());
  }
  ASSERT_EQ(acc1.size(), acc2.size());
  for (size_t i = 0; i < acc1.size(); ++i) EXPECT_NEAR(acc2[i], acc1[i], 1e-4 * acc1[i]);
}

TEST(Distributed, SummarizerTwoRanksMatchOneProcessWithTheGlobalBatch) {
  TempDir dir;
  dir.write("pairs.jsonl", heed::test::copy_pairs(120, 3));
  const std::string common = "--config " + config("tiny_summarizer.json") + " --data-dir " + dir.str() +
                             " --set training.epochs=2 --set training.batch_size=12 --set training.rouge_samples=6" +
                             kStepFlags;
  std::string out1, out2;
  ASSERT_EQ(run_command(single(common + " --output " + dir.str() + "/one"), &out1), 0) << out1;
  ASSERT_EQ(run_command(torchrun(common + " --output " + dir.str() + "/two"), &out2), 0) << out2;
  expect_same_losses(step_losses(dir.str() + "/one"), step_losses(dir.str() + "/two"));
  const auto sums = final_checksums(out2);
  EXPECT_FALSE(sums[0].empty()) << out2;
  EXPECT_EQ(sums[0], sums[1]) << out2;
  auto one = heed::app::load_summarizer(dir.str() + "/one", "last");
  auto two = heed::app::load_summarizer(dir.str() + "/two", "last");
  std::string where;
  EXPECT_LT(max_relative_difference(*one.model, *two.model, &where), 1e-5) << where;
}

namespace {

// A port nothing listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t length = sizeof(a);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length), 0);
  close(fd);
  return ntohs(a.sin_port);
}

// Starts `command` in the background: its pid goes to <tag>.pid, its exit code to <tag>.rc, its
// output to <tag>.log.
void start(const std::string& command, const std::string& tag) {
  const std::string shell = "( " + command + " > " + tag + ".log 2>&1 & echo $! > " + tag + ".pid; wait $!; echo $? > " +
                            tag + ".rc.tmp; mv " + tag + ".rc.tmp " + tag + ".rc ) > /dev/null 2>&1 &";
  ASSERT_EQ(std::system(shell.c_str()), 0);
}

bool wait_for(const std::string& path, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fs::exists(path);
}

int exit_code(const std::string& tag) { return std::stoi(heed::read_file(tag + ".rc")); }
pid_t pid_of(const std::string& tag) { return static_cast<pid_t>(std::stol(heed::read_file(tag + ".pid"))); }

// The heed worker of rank `rank` started with HEED_TEST_TAG=`tag` in its environment (torchrun's child).
pid_t find_worker(const std::string& tag, int rank) {
  const std::string want_tag = "HEED_TEST_TAG=" + tag, want_rank = "RANK=" + std::to_string(rank);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "environ", std::ios::binary);
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream cmd(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (cmdline.rfind(heed::test::heed_binary(), 0) != 0) continue;
    bool tag_found = false, rank_found = false;
    for (size_t b = 0; b < env.size();) {
      const size_t e = env.find('\0', b);
      const std::string var = env.substr(b, e == std::string::npos ? std::string::npos : e - b);
      tag_found |= var == want_tag;
      rank_found |= var == want_rank;
      if (e == std::string::npos) break;
      b = e + 1;
    }
    if (tag_found && rank_found) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// A classifier run long enough (40 steps per epoch, 160 in all) to be killed in the middle, after
// its first checkpoint (step 10).
std::string long_classifier(const TempDir& dir) {
  dir.write("train.jsonl", sentiment_jsonl(400, 9));
  return "--config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
         " --set training.epochs=4 --set training.batch_size=8 --set training.eval_every=10 --set training.log_every=1";
}

}  // namespace

// Faults, against one uninterrupted torchrun run:
// - launched by hand (rank 0 hosts the store), killing rank 1 ends rank 0 with exit 1 within
//   distributed.timeout_s, naming the rank that is gone; `--resume` under torchrun then ends
//   exactly where the uninterrupted run ends;
// - under torchrun --max_restarts 1, a killed worker is restarted, the run resumes from last.pt by
//   itself and ends exactly there too.
TEST(Distributed, KilledRankResumeAndRestartAreExact) {
  TempDir dir;
  const std::string args = long_classifier(dir);
  std::string reference;
  ASSERT_EQ(run_command(torchrun(args + " --output " + dir.str() + "/reference"), &reference), 0) << reference;
  const auto expected = final_checksums(reference);
  ASSERT_FALSE(expected[0].empty()) << reference;
  ASSERT_EQ(expected[0], expected[1]) << reference;

  {  // killed by hand, then --resume
    const std::string run = dir.str() + "/killed";
    const std::string env = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                            std::to_string(free_port());
    const std::string flags = args + " --set distributed.timeout_s=8 --output " + run;
    start(env + " RANK=0 LOCAL_RANK=0 " + single(flags), dir.str() + "/r0");
    start(env + " RANK=1 LOCAL_RANK=1 " + single(flags), dir.str() + "/r1");
    ASSERT_TRUE(wait_for(run + "/checkpoints/last.pt", 90)) << heed::read_file(dir.str() + "/r0.log");
    ASSERT_TRUE(wait_for(dir.str() + "/r1.pid", 5));
    ASSERT_EQ(kill(pid_of(dir.str() + "/r1"), SIGKILL), 0);
    const auto killed = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_for(dir.str() + "/r0.rc", 30)) << "rank 0 still runs after rank 1 died";
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    const std::string log = heed::read_file(dir.str() + "/r0.log");
    EXPECT_EQ(exit_code(dir.str() + "/r0"), 1) << log;
    EXPECT_LT(seconds, 8.0) << log;
    EXPECT_NE(log.find("rank 1 did not answer"), std::string::npos) << log;
    EXPECT_EQ(log.find("final parameters"), std::string::npos) << "the run finished before the kill:\n" << log;

    std::string resumed;
    ASSERT_EQ(run_command(torchrun("--output " + run + " --resume"), &resumed), 0) << resumed;
    EXPECT_NE(resumed.find("resuming from"), std::string::npos) << resumed;
    EXPECT_EQ(final_checksums(resumed), expected) << resumed;
  }
  {  // torchrun restarts the workers
    const std::string run = dir.str() + "/restarted";
    start("HEED_TEST_TAG=" + run + " " + torchrun(args + " --output " + run, "--max_restarts 1"), run);
    ASSERT_TRUE(wait_for(run + "/checkpoints/last.pt", 90)) << heed::read_file(run + ".log");
    pid_t worker = -1;
    for (int i = 0; i < 100 && worker < 0; ++i) {
      worker = find_worker(run, 1);
      if (worker < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(worker, 0);
    ASSERT_EQ(kill(worker, SIGKILL), 0);
    ASSERT_TRUE(wait_for(run + ".rc", 120)) << "torchrun did not end";
    const std::string log = heed::read_file(run + ".log");
    ASSERT_EQ(exit_code(run), 0) << log;
    const auto resumed_at = log.find("torchrun restart 1: resuming from");
    ASSERT_NE(resumed_at, std::string::npos) << log;
    EXPECT_EQ(final_checksums(log.substr(resumed_at)), expected) << log;
  }
}
