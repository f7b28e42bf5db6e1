// Crash consistency of `heed train`, end to end with the heed executable: SIGKILL at many moments
// (some while a checkpoint or another file is half written), SIGINT and SIGTERM, a full disk
// (RLIMIT_FSIZE) and an unwritable checkpoints/ folder. After each, the run directory loads, and
// `--resume` ends with exactly the weights, training state and metrics.jsonl (less its timing
// fields) of an uninterrupted run, with no temporary file left behind.
//
// HEED_KILL_TESTS sets the number of SIGKILLs (default 20); the test prints how many landed while
// a temporary file was being written, and how long it took.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/cli/classify_native.h"
#include "app/training/checkpoint.h"
#include "app/training/classification.h"
#include "app/training/trainer.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/native/flat_weights.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

namespace heed {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool is_temp_name(const std::string& name) { return name.find(".tmp") != std::string::npos; }

// Temporary files (of atomic writes) in the run directory and its checkpoints/.
std::vector<std::string> temp_files_in(const std::string& run) {
  std::vector<std::string> found;
  for (const auto& dir : {run, run + "/checkpoints"}) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (is_temp_name(it->path().filename().string())) found.push_back(it->path().string());
    }
  }
  return found;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// What a child process gets besides its arguments.
struct ChildSetup {
  rlim_t file_size_limit = RLIM_INFINITY;  // RLIMIT_FSIZE, bytes
  bool drop_root = false;                  // when running as root: run as uid/gid 65534 (nobody)
};

// `heed` started with fork + exec, its stdout and stderr going to `log`.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& log, const ChildSetup& setup = {}) {
    std::vector<std::string> full = {test::heed_binary()};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("cannot open " + log);
    const bool drop = setup.drop_root && ::geteuid() == 0;
    pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls from here to exec
      ::dup2(out, 1);
      ::dup2(out, 2);
      const rlimit limit{setup.file_size_limit, setup.file_size_limit};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(120);
      if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(121);
      ::execv(argv[0], argv.data());
      ::_exit(122);
    }
    ::close(out);
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Whether the process has ended (reaps it); `status()` then holds its exit code or 128 + signal.
  bool done() {
    if (reaped_) return true;
    int s = 0;
    if (::waitpid(pid_, &s, WNOHANG) != pid_) return false;
    record(s);
    return true;
  }
  // Waits for the end; kills the process after `timeout_seconds`.
  int wait(double timeout_seconds = 120.0) {
    const auto start = std::chrono::steady_clock::now();
    while (!done()) {
      if (seconds_since(start) > timeout_seconds) {
        ::kill(pid_, SIGKILL);
        int s = 0;
        ::waitpid(pid_, &s, 0);
        record(s);
        ADD_FAILURE() << "heed (pid " << pid_ << ") did not end within " << timeout_seconds << " s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status_;
  }
  int status() const { return status_; }

 private:
  void record(int s) {
    reaped_ = true;
    status_ = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
  }
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = -1;
};

// Counts the temporary files created in a run directory and its checkpoints/ (inotify), so that a
// test can act the moment the n-th one appears, while it is being written.
class TempFileWatch {
 public:
  // `run` must exist (and be empty) before heed starts.
  explicit TempFileWatch(const std::string& run) : run_(run) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("inotify_init1 failed");
    if (::inotify_add_watch(fd_, run.c_str(), IN_CREATE) < 0) throw std::runtime_error("cannot watch " + run);
  }
  ~TempFileWatch() { ::close(fd_); }
  TempFileWatch(const TempFileWatch&) = delete;
  TempFileWatch& operator=(const TempFileWatch&) = delete;

  // Waits up to `timeout_ms` for events; returns the number of temporary files created so far.
  int poll(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return created_;
    alignas(inotify_event) char buffer[16384];
    for (;;) {
      const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buffer + at);
        const std::string name = e->len > 0 ? e->name : "";
        if ((e->mask & IN_ISDIR) && name == "checkpoints") {
          ::inotify_add_watch(fd_, (run_ + "/checkpoints").c_str(), IN_CREATE);
        } else if (is_temp_name(name)) {
          ++created_;
        }
        at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
    return created_;
  }
  int created() const { return created_; }

 private:
  std::string run_;
  int fd_ = -1;
  int created_ = 0;
};

// The temporary file of the first validation's best.pt: after heed-run.json, config.json,
// tokenizer.model and labels.json, early in training.
constexpr int kFirstBestPt = 5;

// When to kill: after `seconds`, or the moment the `temp_file`-th temporary file appears (0: off).
struct KillAt {
  double seconds = 0.0;
  int temp_file = 0;
};

// The uninterrupted run every interrupted one must end up equal to.
struct Reference {
  std::string run;
  double seconds = 0.0;  // wall time of `heed train`
  int temp_files = 0;    // temporary files it created
};

// Classifier weights of a checkpoint, name -> tensor.
std::map<std::string, torch::Tensor> weights_of(const std::string& run, const std::string& checkpoint) {
  auto clf = app::load_classifier(run, checkpoint);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : clf.model->named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : clf.model->named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

// metrics.jsonl records without their timing fields.
std::vector<nlohmann::json> metrics_without_times(const std::string& run) {
  std::vector<nlohmann::json> records;
  std::ifstream in(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* key : {"seconds", "tokens_per_second", "elapsed_seconds"}) j.erase(key);
    records.push_back(std::move(j));
  }
  return records;
}

class CrashConsistency : public ::testing::Test {
 protected:
  // The tiny classifier: 6 epochs x 6 batches, validation and checkpoint every 2 steps, one
  // metrics record per step, one thread (bit-exact).
  static std::vector<std::string> train_args(const std::string& data_dir, const std::string& run) {
    return {"train", "--config", std::string(HEED_SOURCE_DIR) + "/configs/tiny_classifier.json", "--data-dir", data_dir,
            "--output", run, "--threads", "1", "--set", "training.eval_every=2", "--set", "training.log_every=1"};
  }
  static std::vector<std::string> resume_args(const std::string& run) {
    return {"train", "--output", run, "--resume", "--threads", "1"};
  }

  static void SetUpTestSuite() {
    data_ = new TempDir();
    std::string lines;
    for (const auto& e : test::sentiment(120, 5)) lines += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
    data_->write("train.jsonl", lines);
    reference_ = new Reference();
    reference_->run = data_->str() + "/reference";
    fs::create_directory(reference_->run);
    TempFileWatch watch(reference_->run);
    const auto start = std::chrono::steady_clock::now();
    Child child(train_args(data_->str(), reference_->run), data_->str() + "/reference.log");
    while (!child.done()) watch.poll(5);
    reference_->seconds = seconds_since(start);
    reference_->temp_files = watch.poll(0);
    if (child.status() != 0) {
      reference_->run.clear();
      std::cerr << file_bytes(data_->str() + "/reference.log");
    }
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete data_;
  }
  void SetUp() override { ASSERT_FALSE(reference_->run.empty()) << "the uninterrupted reference run failed"; }

  static std::string log_of(const std::string& run) { return run + ".log"; }

  // Starts a fresh training into `run` (created empty first) and kills it with `sig` at `when`.
  // Returns the temporary files present right after the kill (a kill that landed mid-write), or
  // nullopt when training ended before the kill.
  static std::optional<std::vector<std::string>> train_and_kill(const std::string& run, KillAt when, int sig,
                                                                int* status) {
    fs::create_directory(run);
    TempFileWatch watch(run);
    const auto start = std::chrono::steady_clock::now();
    Child child(train_args(data_->str(), run), log_of(run));
    bool sent = false;
    while (!child.done()) {
      const int created = watch.poll(1);
      if (!sent && ((when.temp_file > 0 && created >= when.temp_file) ||
                    (when.temp_file == 0 && seconds_since(start) >= when.seconds))) {
        child.signal(sig);
        sent = true;
      }
    }
    *status = child.status();
    // Not a kill either: the signal found the process already finished (SIGKILL cannot be caught, so
    // exit 0 means it came too late; the loop polls the child only between 1 ms watches).
    if (!sent || (sig == SIGKILL && *status == 0)) return std::nullopt;
    return temp_files_in(run);
  }

  // Whatever the interruption left must load: the run files that exist are complete.
  static void expect_loadable(const std::string& run) {
    auto exists = [&](const char* f) { return fs::exists(run + "/" + f); };
    if (exists("config.json")) {
      EXPECT_NO_THROW(nlohmann::json::parse(file_bytes(run + "/config.json")));
    }
    if (exists("labels.json")) {
      EXPECT_NO_THROW(nlohmann::json::parse(file_bytes(run + "/labels.json")));
    }
    if (exists("tokenizer.model")) {
      EXPECT_NO_THROW(data::Tokenizer::load(run + "/tokenizer.model"));
    }
    for (const char* name : {"best", "last"}) {
      if (!fs::exists(app::RunDir{run}.checkpoint(name))) continue;
      try {
        weights_of(run, name);
      } catch (const std::exception& e) {
        ADD_FAILURE() << run << ": checkpoint " << name << " does not load: " << e.what();
      }
    }
  }

  // Continues an interrupted run the way a user would: --resume when it has last.pt, else start
  // again (with --overwrite when the folder holds files). Returns heed's exit code.
  static int recover(const std::string& run) {
    std::vector<std::string> args;
    if (fs::exists(app::RunDir{run}.checkpoint("last"))) {
      args = resume_args(run);
    } else {
      args = train_args(data_->str(), run);
      if (!fs::is_empty(run)) args.push_back("--overwrite");
    }
    Child child(args, log_of(run) + ".recover");
    const int code = child.wait();
    if (code != 0) ADD_FAILURE() << run << ": recovery exit " << code << "\n" << file_bytes(log_of(run) + ".recover");
    return code;
  }

  // The run equals the reference: weights of best and last bit for bit, the training state, the
  // flat weights, metrics.jsonl less timing fields, and no temporary file left.
  static void expect_same_as_reference(const std::string& run) {
    EXPECT_EQ(temp_files_in(run), std::vector<std::string>{}) << run;
    for (const char* name : {"best", "last"}) {
      const auto want = weights_of(reference_->run, name);
      const auto got = weights_of(run, name);
      ASSERT_EQ(want.size(), got.size());
      for (const auto& [key, tensor] : want) {
        ASSERT_TRUE(got.count(key)) << key;
        EXPECT_TRUE(torch::equal(tensor, got.at(key))) << run << " " << name << ": " << key << " differs";
      }
      // The torch-free copy is current and holds the same numbers.
      const app::RunDir dir{run};
      EXPECT_TRUE(app::flat_weights_fresh(dir, name)) << run << " " << name;
      const auto flat = model::FlatWeights::read(app::flat_weights_path(dir, name));
      for (const auto& [key, tensor] : want) {
        const auto& t = flat.at(key, tensor.sizes().vec());
        const auto contiguous = tensor.to(torch::kFloat32).contiguous();
        EXPECT_EQ(std::memcmp(t.data, contiguous.data_ptr<float>(), sizeof(float) * t.numel()), 0) << key;
      }
    }
    auto state_of = [](const std::string& r) {
      auto clf = app::load_classifier(r, "last");
      return app::load_checkpoint(app::RunDir{r}.checkpoint("last"), *clf.model, nullptr);
    };
    auto want = app::to_json(state_of(reference_->run)), got = app::to_json(state_of(run));
    want.erase("train_seconds");
    got.erase("train_seconds");
    EXPECT_EQ(want, got) << run;
    const auto want_metrics = metrics_without_times(reference_->run), got_metrics = metrics_without_times(run);
    EXPECT_EQ(want_metrics.size(), got_metrics.size()) << run << "/metrics.jsonl";
    for (size_t i = 0; i < std::min(want_metrics.size(), got_metrics.size()); ++i) {
      if (want_metrics[i] == got_metrics[i]) continue;
      ADD_FAILURE() << run << "/metrics.jsonl record " << i + 1 << ": " << got_metrics[i].dump() << ", expected "
                    << want_metrics[i].dump();
      break;
    }
  }

  static TempDir* data_;
  static Reference* reference_;
};

TempDir* CrashConsistency::data_ = nullptr;
Reference* CrashConsistency::reference_ = nullptr;

TEST_F(CrashConsistency, SigkillAtManyMomentsThenResumeIsExact) {
  const char* env = std::getenv("HEED_KILL_TESTS");
  const int kills_wanted = env != nullptr ? std::max(1, std::atoi(env)) : 20;
  std::mt19937 rng(20261130);
  const auto start = std::chrono::steady_clock::now();
  int kills = 0, mid_write = 0, by_time = 0, tries = 0;
  while (kills < kills_wanted && tries < 3 * kills_wanted) {
    // Alternately a moment anywhere in the run (start-up, tokenizer, training, flat weights) and
    // the appearance of the n-th temporary file (config, tokenizer, labels, each best/last.pt,
    // the .flat files), which kills while that file is being written.
    KillAt when;
    if (tries % 2 == 0) {
      when.seconds = std::uniform_real_distribution<double>(0.0, 0.95)(rng) * reference_->seconds;
    } else {
      when.temp_file = std::uniform_int_distribution<int>(1, reference_->temp_files)(rng);
    }
    const std::string run = data_->str() + "/kill" + std::to_string(tries++);
    int status = 0;
    const auto left = train_and_kill(run, when, SIGKILL, &status);
    if (!left) continue;  // training ended before the moment came: not a kill
    ASSERT_EQ(status, 128 + SIGKILL) << run << "\n" << file_bytes(log_of(run));
    ++kills;
    if (when.temp_file == 0) ++by_time;
    if (!left->empty()) ++mid_write;
    SCOPED_TRACE(run + (when.temp_file ? " killed at temporary file " + std::to_string(when.temp_file)
                                       : " killed after " + std::to_string(when.seconds) + " s"));
    expect_loadable(run);
    ASSERT_EQ(recover(run), 0);
    expect_same_as_reference(run);
    fs::remove_all(run);
  }
  EXPECT_EQ(kills, kills_wanted);
  EXPECT_GT(mid_write, 0) << "no kill landed while a file was being written";
  std::cout << "[ kill test ] " << kills << " SIGKILLs (" << by_time << " at random times, " << kills - by_time
            << " at a temporary file's creation), " << mid_write << " left a half-written temporary file; reference run "
            << reference_->seconds << " s with " << reference_->temp_files << " temporary files; "
            << seconds_since(start) << " s in all\n";
}

TEST_F(CrashConsistency, SigintAndSigtermSaveAndResumeExactly) {
  for (int sig : {SIGINT, SIGTERM}) {
    const std::string run = data_->str() + "/signal" + std::to_string(sig);
    int status = 0;
    ASSERT_TRUE(train_and_kill(run, {0.0, kFirstBestPt}, sig, &status)) << "training ended before the signal";
    EXPECT_EQ(status, 130) << strsignal(sig) << "\n" << file_bytes(log_of(run));
    EXPECT_NE(file_bytes(log_of(run)).find("--resume"), std::string::npos);
    expect_loadable(run);
    ASSERT_TRUE(fs::exists(app::RunDir{run}.checkpoint("last")));
    ASSERT_EQ(recover(run), 0);
    expect_same_as_reference(run);
  }
}

// Lines of heed's log that report an error.
std::vector<std::string> error_lines(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" error]") != std::string::npos) out.push_back(line);
  }
  return out;
}

// Interrupts a run (SIGINT at its first checkpoint) and resumes it under `setup`, which must make
// the next checkpoint write fail: one error line mentioning `reason`, exit 1, the checkpoints as
// they were, no temporary file. Then resumes it normally, to the reference's weights.
void expect_failed_write_keeps_run(const std::string& run, const std::string& log, const ChildSetup& setup, const std::string& reason,
                                   const std::function<void(const std::string& run)>& before,
                                   const std::function<void(const std::string& run)>& after) {
  const app::RunDir dir{run};
  const std::string last = file_bytes(dir.checkpoint("last")), best = file_bytes(dir.checkpoint("best"));
  ASSERT_FALSE(last.empty());
  before(run);
  Child child({"train", "--output", run, "--resume", "--threads", "1"}, log, setup);
  EXPECT_EQ(child.wait(), 1) << file_bytes(log);
  after(run);
  const std::string out = file_bytes(log);
  const auto errors = error_lines(out);
  ASSERT_EQ(errors.size(), 1u) << out;
  EXPECT_NE(errors[0].find("cannot write " + run + "/checkpoints/"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(reason), std::string::npos) << errors[0];
  EXPECT_EQ(temp_files_in(run), std::vector<std::string>{});
  EXPECT_EQ(file_bytes(dir.checkpoint("last")), last) << "last.pt changed";
  EXPECT_EQ(file_bytes(dir.checkpoint("best")), best) << "best.pt changed";
}

TEST_F(CrashConsistency, FullDiskIsOneErrorAndKeepsTheCheckpoints) {
  const std::string run = data_->str() + "/full_disk";
  int status = 0;
  ASSERT_TRUE(train_and_kill(run, {0.0, kFirstBestPt}, SIGINT, &status));
  ASSERT_EQ(status, 130) << file_bytes(log_of(run));
  // A file-size limit below a checkpoint's size and above everything else heed writes: the next
  // checkpoint write fails part way (EFBIG, as on a full disk).
  const auto checkpoint_size = std::min(fs::file_size(app::RunDir{run}.checkpoint("best")),
                                        fs::file_size(app::RunDir{run}.checkpoint("last")));
  const rlim_t limit = checkpoint_size / 2;
  ASSERT_LT(fs::file_size(reference_->run + "/metrics.jsonl"), limit);
  ChildSetup setup;
  setup.file_size_limit = limit;
  const auto nothing = [](const std::string&) {};
  expect_failed_write_keeps_run(run, log_of(run) + ".full", setup, "File too large", nothing, nothing);
  ASSERT_EQ(recover(run), 0);
  expect_same_as_reference(run);
}

TEST_F(CrashConsistency, UnwritableCheckpointsFolderIsOneErrorAndKeepsTheCheckpoints) {
  const std::string run = data_->str() + "/unwritable";
  int status = 0;
  ASSERT_TRUE(train_and_kill(run, {0.0, kFirstBestPt}, SIGINT, &status));
  ASSERT_EQ(status, 130) << file_bytes(log_of(run));
  // chmod alone does not stop root: as root, heed runs as nobody (uid 65534) on a run it owns.
  ChildSetup setup;
  setup.drop_root = true;
  {
    Child probe({"--help"}, run + ".probe", setup);
    if (probe.wait() != 0) GTEST_SKIP() << "heed cannot run as uid 65534 here: " << file_bytes(run + ".probe");
  }
  const std::string checkpoints = run + "/checkpoints";
  auto lock = [&](const std::string& r) {
    if (::geteuid() == 0) {
      for (const auto& e : fs::recursive_directory_iterator(r)) ASSERT_EQ(::chown(e.path().c_str(), 65534, 65534), 0);
      ASSERT_EQ(::chown(r.c_str(), 65534, 65534), 0);
    }
    fs::permissions(checkpoints, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                     fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  };
  auto unlock = [&](const std::string&) { fs::permissions(checkpoints, fs::perms::owner_all, fs::perm_options::add); };
  expect_failed_write_keeps_run(run, log_of(run) + ".unwritable", setup, "Permission denied", lock,
                                unlock);
  ASSERT_EQ(recover(run), 0);
  expect_same_as_reference(run);
}

TEST_F(CrashConsistency, OutputThroughAFileIsOneErrorExitOne) {
  const std::string file = data_->write("not_a_folder", "x\n");
  std::string out;
  const int code = test::run_command(test::heed_binary() + " train --config " + std::string(HEED_SOURCE_DIR) +
                                         "/configs/tiny_classifier.json --threads 1 --data-dir " + data_->str() +
                                         " --output " + file + "/run",
                                     &out);
  EXPECT_EQ(code, 1) << out;
  const auto errors = error_lines(out);
  ASSERT_EQ(errors.size(), 1u) << out;
  EXPECT_NE(errors[0].find(file + "/run"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("Not a directory"), std::string::npos) << errors[0];
  EXPECT_EQ(file_bytes(file), "x\n");
}

TEST_F(CrashConsistency, ExportOnAFullDiskIsOneErrorExitOne) {
  // TorchScript's writer used to abort (an exception from its destructor) when a write failed.
  const std::string out = data_->str() + "/export/model.pt", log = data_->str() + "/export.log";
  fs::create_directories(data_->str() + "/export");
  ChildSetup setup;
  setup.file_size_limit = 16384;
  Child child({"export", "--run", reference_->run, "--out", out}, log, setup);
  EXPECT_EQ(child.wait(), 1) << file_bytes(log);
  const auto errors = error_lines(file_bytes(log));
  ASSERT_EQ(errors.size(), 1u) << file_bytes(log);
  EXPECT_NE(errors[0].find("cannot write " + out + ": File too large"), std::string::npos) << errors[0];
  EXPECT_TRUE(fs::is_empty(data_->str() + "/export")) << "no archive and no temporary file";
}

// --- The fixes on their own. ---

TEST(CrashRecovery, StaleTempFilesOfDeadProcessesAreRemovedOthersKept) {
  TempDir dir;
  // A process that has ended: its pid is not running (the child is reaped).
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string d = std::to_string(dead), me = std::to_string(::getpid());
  const auto stale = dir.write("last.pt.tmp" + d + "-123456", "half");
  const auto stale_config = dir.write("config.json.tmp" + d + "-7", "{");
  const std::vector<std::string> kept = {
      dir.write("last.pt.tmp" + me + "-1", "mine, being written"),  // this process: alive
      dir.write("last.pt.tmp1-1", "pid 1 is alive"),
      dir.write("notes.tmp", "not heed's pattern"),
      dir.write("data.tmp" + d, "no -<n>"),
      dir.write("data.tmp" + d + "-", "no digits after -"),
      dir.write("data.tmpx" + d + "-1", "not digits"),
      dir.write(".tmp" + d + "-1", "no name before .tmp"),
      dir.write("train.jsonl", "data"),
  };
  fs::create_directory(dir.path() / ("folder.tmp" + d + "-1"));  // folders are never touched
  auto removed = remove_stale_temp_files(dir.str());
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> expected = {stale, stale_config};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  for (const auto& f : kept) EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_TRUE(fs::is_directory(dir.path() / ("folder.tmp" + d + "-1")));
  EXPECT_EQ(remove_stale_temp_files(dir.str() + "/missing"), std::vector<std::string>{});
}

TEST(CrashRecovery, MetricsAreCutToTheCheckpointStep) {
  TempDir dir;
  const std::string kept = R"({"type":"train","step":1,"loss":0.5})"
                           "\n"
                           R"({"type":"train","step":2,"loss":0.4})"
                           "\n"
                           R"({"type":"validation","step":2,"accuracy":0.75})"
                           "\n";
  const auto path = dir.write("metrics.jsonl", kept + R"({"type":"train","step":3,"loss":0.3})"
                                                      "\n"
                                                      R"({"type":"train","st)");
  EXPECT_EQ(app::truncate_metrics(path, 2), 2u);  // step 3 and the half line
  EXPECT_EQ(file_bytes(path), kept);
  EXPECT_EQ(app::truncate_metrics(path, 2), 0u);  // nothing to drop: left alone
  EXPECT_EQ(file_bytes(path), kept);
  EXPECT_EQ(app::truncate_metrics(path, 0), 3u);
  EXPECT_EQ(file_bytes(path), "");
  EXPECT_EQ(app::truncate_metrics(dir.str() + "/missing.jsonl", 5), 0u);
  EXPECT_FALSE(fs::exists(dir.str() + "/missing.jsonl"));
}

TEST(CrashRecovery, FailedWritesNameTheFileAndLeaveTheTargetAlone) {
  TempDir dir;
  const auto target = dir.write("sub/file.bin", "old");
  // The writer's bytes cannot all be written: a sink never throws, the write does, naming the file.
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  auto* previous = ::signal(SIGXFSZ, SIG_IGN);
  const rlimit small{4096, saved.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_atomic_stream(target, [](const ByteSink& sink) {
      const std::string chunk(1000, 'x');
      for (int i = 0; i < 10; ++i) sink(chunk.data(), chunk.size());
    });
  } catch (const Error& e) {
    message = e.what();
  }
  std::string append_message;
  const auto log = dir.write("sub/log.jsonl", std::string(4000, 'a'));
  try {
    append_to_file(log, std::string(200, 'b'));
  } catch (const Error& e) {
    append_message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, previous);
  EXPECT_NE(message.find("cannot write " + target + ": File too large"), std::string::npos) << message;
  EXPECT_EQ(file_bytes(target), "old");
  EXPECT_NE(append_message.find("cannot write " + log + ": File too large"), std::string::npos) << append_message;
  EXPECT_EQ(file_bytes(log), std::string(4000, 'a')) << "a failed append is cut back";
  // A folder in the way of the target.
  fs::create_directory(dir.path() / "taken");
  try {
    write_file_atomic(dir.str() + "/taken", "x");
    ADD_FAILURE() << "writing over a folder succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write " + dir.str() + "/taken: cannot rename"), std::string::npos)
        << e.what();
  }
  // A path through a file.
  try {
    write_file_atomic(target + "/inside", "x");
    ADD_FAILURE() << "writing under a file succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write " + target + "/inside"), std::string::npos) << e.what();
  }
  // The failed writes left no temporary file behind.
  std::vector<std::string> leftovers;
  for (const auto& e : fs::directory_iterator(dir.path() / "sub")) {
    if (is_temp_name(e.path().filename().string())) leftovers.push_back(e.path().string());
  }
  EXPECT_EQ(leftovers, std::vector<std::string>{});
}

}  // namespace
}  // namespace heed
