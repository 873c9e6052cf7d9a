#include "distribute/evaluator.h"

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/coordination/in_memory_store.h"
#include "distribute/checkpoint_lease.h"
#include "distribute/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::ElementsAre;

// Fake time: WaitUntil jumps to `until` and lets the test's "trainer" act.
class FakeClock : public EvaluatorClock {
 public:
  absl::Time Now() override { return now_; }
  absl::Status WaitUntil(absl::Time until) override {
    if (until > now_) now_ = until;
    ++waits;
    if (waits > 10000) return absl::InternalError("the evaluator never ends");
    return on_wait ? on_wait() : absl::OkStatus();
  }
  double Secs() const { return absl::ToDoubleSeconds(now_ - absl::UnixEpoch()); }

  std::function<absl::Status()> on_wait;
  int waits = 0;

 private:
  absl::Time now_ = absl::UnixEpoch();
};

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
}

Variables SmallVars(int64_t step) {
  Variables v;
  v.floats["w"] = RowMatrixXf::Constant(2, 2, static_cast<float>(step));
  v.ints["global_step"] = step;
  return v;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(30); }

class EvaluatorTest : public ::testing::Test {
 protected:
  EvaluatorTest() : coordination_({{"chief", 0}, {"evaluator", 0}}) {
    chief_ = *coordination_.Connect({"chief", 0});
    evaluator_ = *coordination_.Connect({"evaluator", 0});
  }

  // The chief's side: commits checkpoint `step` (keep_checkpoint_max 1,
  // consulting leases).
  void Commit(const std::string& dir, int64_t step) {
    CheckpointLeases leases(chief_.get());
    checkpoint::SaveOptions options;
    options.keep_checkpoint_max = 1;
    options.may_delete = [&](int64_t s) { return leases.MayDelete(s, Deadline()); };
    ASSERT_TRUE(checkpoint::Save(dir, step, SmallVars(step), options).ok());
  }
  void Finish(int64_t step) {
    ASSERT_TRUE(chief_->Set(kFinalStepKey, absl::StrCat(step), Deadline()).ok());
  }

  EvaluatorOptions Options(const std::string& dir, double delay, double throttle) {
    EvaluatorOptions o;
    o.model_dir = dir;
    o.eval_spec.start_delay_secs = delay;
    o.eval_spec.throttle_secs = throttle;
    o.store = evaluator_.get();
    o.clock = &clock_;
    o.poll_interval = absl::Seconds(10);
    return o;
  }

  // Reads the checkpoint like Estimator::Evaluate; records when.
  EvaluateCheckpointFn Reader() {
    return [this](const std::string& prefix) -> absl::StatusOr<std::map<std::string, double>> {
      starts.push_back(clock_.Secs());
      if (during_evaluation) during_evaluation();
      absl::StatusOr<Variables> vars = checkpoint::Restore(prefix);
      if (!vars.ok()) return vars.status();
      return std::map<std::string, double>{
          {"global_step", static_cast<double>(vars->ints.at("global_step"))},
          {"loss", 1.0 / (1 + vars->ints.at("global_step"))}};
    };
  }

  InMemoryCoordination coordination_;
  std::unique_ptr<InMemoryStore> chief_, evaluator_;
  FakeClock clock_;
  std::vector<double> starts;
  std::function<void()> during_evaluation;
};

TEST_F(EvaluatorTest, ThrottlesSkipsSupersededAndEndsAfterTheFinalCheckpoint) {
  const std::string dir = NewDir("throttle");
  // The trainer saves steps 10, 20, ... every 100 s; training ends at 400.
  int64_t step = 0;
  clock_.on_wait = [&]() -> absl::Status {
    while (step < 400 && clock_.Secs() >= (step / 10 + 1) * 100.0) {
      step += 10;
      Commit(dir, step);
      if (step == 400) Finish(step);
    }
    return absl::OkStatus();
  };
  Evaluator evaluator(Options(dir, /*delay=*/120, /*throttle=*/600), Reader());
  absl::StatusOr<std::map<std::string, double>> m = evaluator.Run();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("global_step"), 400);
  // Start delay 120 s: step 10 (saved at 100 s) first; then at most every
  // 600 s the newest (skipping the ones between); the final one at once.
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(10, 70, 130, 190, 250, 310, 370, 400));
  EXPECT_THAT(starts, ElementsAre(120, 720, 1320, 1920, 2520, 3120, 3720, 4000));
  absl::StatusOr<std::string> done = chief_->Get(kEvaluatorDoneKey, Deadline());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, "400");
}

TEST_F(EvaluatorTest, AfterTrainingEndedEvaluatesTheFinalCheckpointAtOnce) {
  const std::string dir = NewDir("late");
  Commit(dir, 5);
  Commit(dir, 9);
  Finish(9);
  Evaluator evaluator(Options(dir, 120, 600), Reader());
  ASSERT_TRUE(evaluator.Run().ok());
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(9));
  EXPECT_THAT(starts, ElementsAre(0));
  EXPECT_EQ(clock_.waits, 0);
}

// The race seen in a cluster: the last checkpoint is evaluated (as a
// regular one) before the chief announces it as the final step; the
// evaluator must then end, not wait for a newer checkpoint.
TEST_F(EvaluatorTest, EndsWhenTheFinalStepIsAnnouncedAfterItsEvaluation) {
  const std::string dir = NewDir("announced_late");
  Commit(dir, 7);
  during_evaluation = [&] { Finish(7); };
  Evaluator evaluator(Options(dir, 0, 0), Reader());
  absl::StatusOr<std::map<std::string, double>> m = evaluator.Run();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(7));
  absl::StatusOr<std::string> done = chief_->Get(kEvaluatorDoneKey, Deadline());
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, "7");
}

// The exporters' hook: after every evaluation, with the checkpoint leased
// and on disk; is_final for the final one, also when the final step is
// announced after that checkpoint's evaluation (then called again).
TEST_F(EvaluatorTest, AfterEvaluationRunsWhileLeasedAndKnowsTheFinalOne) {
  const std::string dir = NewDir("after_evaluation");
  Commit(dir, 3);
  int64_t step = 3;
  clock_.on_wait = [&]() -> absl::Status {
    if (step == 3) Commit(dir, step = 6);
    return absl::OkStatus();
  };
  during_evaluation = [&] {
    if (step == 6) Finish(6);
  };
  std::vector<std::pair<std::string, bool>> calls;
  EvaluatorOptions options = Options(dir, 0, 0);
  options.after_evaluation = [&](const std::string& prefix,
                                 const std::map<std::string, double>& metrics, bool is_final) {
    EXPECT_TRUE(checkpoint::Restore(prefix).ok()) << prefix;
    EXPECT_EQ(metrics.count("loss"), 1u);
    calls.emplace_back(io::BaseName(prefix), is_final);
    return absl::OkStatus();
  };
  Evaluator evaluator(std::move(options), Reader());
  ASSERT_TRUE(evaluator.Run().ok());
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(3, 6));
  using Call = std::pair<std::string, bool>;
  EXPECT_THAT(calls, ElementsAre(Call("model.ckpt-3", false), Call("model.ckpt-6", false),
                                 Call("model.ckpt-6", true)));
}

TEST_F(EvaluatorTest, WaitsForTheFirstCheckpoint) {
  const std::string dir = NewDir("first");
  clock_.on_wait = [&]() -> absl::Status {
    if (clock_.Secs() >= 50 && !checkpoint::LatestStep(dir).ok()) {
      Commit(dir, 3);
      Finish(3);
    }
    return absl::OkStatus();
  };
  Evaluator evaluator(Options(dir, 0, 600), Reader());
  ASSERT_TRUE(evaluator.Run().ok());
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(3));
  EXPECT_THAT(starts, ElementsAre(50));  // polls every 10 s
}

TEST_F(EvaluatorTest, TheCheckpointBeingEvaluatedIsLeased) {
  const std::string dir = NewDir("leased");
  Commit(dir, 1);
  int64_t next = 2;
  // While step N is evaluated, the chief commits two newer ones with
  // keep_checkpoint_max 1: N must survive until the evaluation read it.
  during_evaluation = [&] {
    if (next > 7) return;
    Commit(dir, next++);
    Commit(dir, next++);
    if (next > 6) Finish(next - 1);
  };
  Evaluator evaluator(Options(dir, 0, 0), Reader());
  absl::StatusOr<std::map<std::string, double>> m = evaluator.Run();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(evaluator.evaluated(), ElementsAre(1, 3, 5, 7));
  // Released: the next commit deletes every older one.
  Commit(dir, 8);
  EXPECT_EQ(checkpoint::ListCheckpoints(dir)->size(), 1u);
}

TEST_F(EvaluatorTest, ErrorsEndTheEvaluator) {
  const std::string dir = NewDir("errors");
  Commit(dir, 1);
  clock_.on_wait = [] { return absl::CancelledError("shutdown"); };
  Evaluator cancelled(Options(dir, 0, 600), Reader());
  EXPECT_TRUE(absl::IsCancelled(cancelled.Run().status()));
  // An evaluation error that is not a missing checkpoint is returned.
  Evaluator failing(Options(dir, 0, 600), [](const std::string&) {
    return absl::StatusOr<std::map<std::string, double>>(
        absl::NotFoundError("eval.csv: no such file"));
  });
  absl::Status st = failing.Run().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("eval.csv"));
}

TEST(LocalEvaluationListenerTest, EvaluatesAtMostEveryThrottleSecsAndTheFinalCheckpoint) {
  absl::Time now = absl::UnixEpoch();
  std::vector<std::string> prefixes;
  LocalEvaluationListener listener(
      10,
      [&](const std::string& prefix) -> absl::StatusOr<std::map<std::string, double>> {
        prefixes.push_back(prefix);
        return std::map<std::string, double>{{"loss", 1}};
      },
      [&] { return now; });
  const auto at = [&](double secs) { now = absl::UnixEpoch() + absl::Seconds(secs); };
  ASSERT_TRUE(listener.Begin(0).ok());
  at(5);
  ASSERT_TRUE(listener.AfterSave(100, "ckpt-100").ok());  // the first one
  at(12);
  ASSERT_TRUE(listener.AfterSave(200, "ckpt-200").ok());  // throttled
  at(16);
  ASSERT_TRUE(listener.AfterSave(300, "ckpt-300").ok());
  at(20);
  ASSERT_TRUE(listener.AfterSave(400, "ckpt-400").ok());  // throttled
  ASSERT_TRUE(listener.End(400).ok());                    // the final one, always
  EXPECT_THAT(prefixes, ElementsAre("ckpt-100", "ckpt-300", "ckpt-400"));
  EXPECT_THAT(listener.evaluated(), ElementsAre(100, 300, 400));
  // Just evaluated at the end: not twice.
  at(40);
  ASSERT_TRUE(listener.AfterSave(500, "ckpt-500").ok());
  ASSERT_TRUE(listener.End(500).ok());
  EXPECT_THAT(listener.evaluated(), ElementsAre(100, 300, 400, 500));
}

}  // namespace
}  // namespace estuary
