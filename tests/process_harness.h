// Helpers for multi-process tests: role binaries from the test's runfiles,
// child processes whose output lines can be awaited with a deadline, and
// loopback clusters with reserved ports.
#ifndef ESTUARY_TESTS_PROCESS_HARNESS_H_
#define ESTUARY_TESTS_PROCESS_HARNESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "common/subprocess.h"

namespace estuary::testing {

// Absolute path of a workspace-relative runfile ("server/chief").
std::string Runfile(const std::string& path);

// Writes `contents` to a new file under $TEST_TMPDIR and returns its path.
std::string WriteTempFile(const std::string& name, const std::string& contents);

class Proc {
 public:
  // Starts argv with `env` added; aborts the test on failure.
  static std::unique_ptr<Proc> Start(std::vector<std::string> argv,
                                     std::map<std::string, std::string> env = {},
                                     std::string label = "");
  // Waits until an output line (stdout or stderr) contains `text`.
  bool WaitForLine(const std::string& text, absl::Duration timeout);
  bool HasLine(const std::string& text);
  // Waits until `count` output lines contain `text`.
  bool WaitForLines(const std::string& text, int count, absl::Duration timeout);
  // The first output line containing `text`, or "".
  std::string FindLine(const std::string& text);
  std::string Output();  // everything so far, for failure messages
  std::vector<std::string> StderrLines();
  absl::StatusOr<int> Wait(absl::Duration timeout) { return process_->Wait(timeout); }
  void Signal(int signo) { process_->Signal(signo); }
  pid_t pid() const { return process_->pid(); }

 private:
  Proc() = default;
  std::string label_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> stderr_ ABSL_GUARDED_BY(mu_);
  // Last, so it is destroyed first: ~Subprocess joins the reader threads
  // whose on_line callback appends to lines_ (found by --config=tsan).
  std::unique_ptr<Subprocess> process_;
};

// A cluster spec over reserved loopback ports.
class TestCluster {
 public:
  TestCluster(int chiefs, int workers, int ps);
  const ClusterSpec& spec() const { return spec_; }
  // TF_CONFIG for `task` ("worker:1").
  std::string TfConfig(const std::string& task) const;
  // The binary path for a task type.
  static std::string BinaryFor(const std::string& type);
  // Starts `task` with `job_path` and extra flags.
  std::unique_ptr<Proc> StartTask(const std::string& task, const std::string& job_path,
                                  std::vector<std::string> flags = {}) const;

 private:
  std::vector<PortReservation> ports_;
  ClusterSpec spec_;
};

}  // namespace estuary::testing

#endif  // ESTUARY_TESTS_PROCESS_HARNESS_H_
