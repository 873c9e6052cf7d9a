#include "tests/process_harness.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace estuary::testing {

std::string Runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(dir ? dir : ".", "/estuary/", path);
}

std::string WriteTempFile(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir ? dir : "/tmp", "/", name);
  std::ofstream(path) << contents;
  return path;
}

std::unique_ptr<Proc> Proc::Start(std::vector<std::string> argv,
                                  std::map<std::string, std::string> env, std::string label) {
  std::unique_ptr<Proc> p(new Proc());
  p->label_ = label.empty() ? argv[0].substr(argv[0].rfind('/') + 1) : label;
  SubprocessOptions o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  Proc* raw = p.get();
  o.on_line = [raw](const std::string& line, bool is_stderr) {
    absl::MutexLock l(&raw->mu_);
    raw->lines_.push_back(line);
    if (is_stderr) raw->stderr_.push_back(line);
  };
  absl::StatusOr<std::unique_ptr<Subprocess>> sp = Subprocess::Start(std::move(o));
  EXPECT_TRUE(sp.ok()) << sp.status();
  if (!sp.ok()) std::abort();
  p->process_ = *std::move(sp);
  return p;
}

bool Proc::WaitForLine(const std::string& text, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  size_t checked = 0;
  auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; checked < lines_.size(); ++checked) {
      if (absl::StrContains(lines_[checked], text)) return true;
    }
    return false;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
}

bool Proc::HasLine(const std::string& text) { return WaitForLine(text, absl::ZeroDuration()); }

bool Proc::WaitForLines(const std::string& text, int count, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  size_t checked = 0;
  int seen = 0;
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; checked < lines_.size(); ++checked) seen += absl::StrContains(lines_[checked], text);
    return seen >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::string Proc::FindLine(const std::string& text) {
  absl::MutexLock l(&mu_);
  for (const std::string& line : lines_) {
    if (absl::StrContains(line, text)) return line;
  }
  return "";
}

std::string Proc::Output() {
  absl::MutexLock l(&mu_);
  return absl::StrCat("---- ", label_, " ----\n", absl::StrJoin(lines_, "\n"), "\n");
}

std::vector<std::string> Proc::StderrLines() {
  absl::MutexLock l(&mu_);
  return stderr_;
}

TestCluster::TestCluster(int chiefs, int workers, int ps) {
  ClusterSpec::Jobs jobs;
  auto add = [&](const char* type, int n) {
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<PortReservation> r = PortReservation::Reserve();
      EXPECT_TRUE(r.ok()) << r.status();
      jobs[type][i] = absl::StrCat("127.0.0.1:", r->port());
      ports_.push_back(*std::move(r));
    }
  };
  add("chief", chiefs);
  add("worker", workers);
  add("ps", ps);
  for (auto it = jobs.begin(); it != jobs.end();) {
    it = it->second.empty() ? jobs.erase(it) : std::next(it);
  }
  spec_ = ClusterSpec(jobs);
}

std::string TestCluster::TfConfig(const std::string& task) const {
  estuary::TfConfig tf;
  tf.cluster = spec_;
  tf.task = *ParseTaskId(task);
  return tf.ToJson();
}

std::string TestCluster::BinaryFor(const std::string& type) {
  if (type == "chief" || type == "master") return Runfile("server/chief");
  if (type == "evaluator") return Runfile("server/evaluator");
  if (type == "ps") return Runfile("ps/ps");
  return Runfile("worker/worker");
}

std::unique_ptr<Proc> TestCluster::StartTask(const std::string& task, const std::string& job_path,
                                             std::vector<std::string> flags) const {
  const TaskId id = *ParseTaskId(task);
  std::vector<std::string> argv = {BinaryFor(id.type), absl::StrCat("--job=", job_path)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return Proc::Start(argv, {{"TF_CONFIG", TfConfig(task)}}, task);
}

}  // namespace estuary::testing
