#include "common/status/live_status.h"

#include "absl/strings/match.h"
#include "common/coordination/types.h"
#include "common/status/live_report.h"
#include "common/status/status_page.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

coordination::TaskInfo Info(const TaskId& t, coordination::TaskState state, uint64_t inc,
                            int restarts = 0) {
  coordination::TaskInfo info;
  *info.mutable_task() = ToProto(t);
  info.set_state(state);
  info.set_incarnation(inc);
  info.set_restarts(restarts);
  info.set_address("localhost:1");
  return info;
}

coordination::TaskReport Training(int64_t step, double steps_per_sec, double loss) {
  coordination::TaskReport r;
  r.set_phase("running");
  r.set_global_step(step);
  r.set_local_steps(step);
  r.set_steps_per_sec(steps_per_sec);
  r.set_examples_per_sec(steps_per_sec * 32);
  r.set_loss(loss);
  r.set_has_loss(true);
  return r;
}

LiveStatusOptions Options(int max_points = 100) {
  LiveStatusOptions o;
  o.start = kStart;
  o.max_points = max_points;
  o.min_point_interval = absl::Milliseconds(500);
  o.coordinator = "chief:0 at localhost:1";
  return o;
}

const TaskId kChief{"chief", 0};
const TaskId kWorker{"worker", 0};
const TaskId kPs{"ps", 0};

TEST(LiveStatusTest, MergesRegistrationWithReportsAndSumsRates) {
  LiveStatus live(Options());
  live.Record(kChief, 11, Training(10, 5, 0.7), kStart + absl::Seconds(1));
  live.Record(kWorker, 22, Training(12, 7, 0.6), kStart + absl::Seconds(1));
  coordination::TaskReport ps;
  ps.set_phase("running");
  ps.mutable_ps_shard()->set_variables(3);
  ps.mutable_ps_shard()->set_rows(100);
  ps.mutable_ps_shard()->set_bytes(4000);
  live.Record(kPs, 33, ps, kStart + absl::Seconds(1));

  coordination::ClusterState state;
  *state.add_tasks() = Info(kChief, coordination::TASK_ALIVE, 11);
  *state.add_tasks() = Info(kWorker, coordination::TASK_ALIVE, 22);
  *state.add_tasks() = Info(kPs, coordination::TASK_ALIVE, 33);
  *state.add_tasks() = Info({"evaluator", 0}, coordination::TASK_UNREGISTERED, 0);
  const coordination::ClusterStatus s = live.Build(state, kStart + absl::Seconds(3));

  EXPECT_EQ(s.tasks_size(), 4);
  EXPECT_EQ(s.global_step(), 12);
  EXPECT_DOUBLE_EQ(s.steps_per_sec(), 12);
  EXPECT_DOUBLE_EQ(s.examples_per_sec(), 12 * 32);
  EXPECT_DOUBLE_EQ(s.uptime_secs(), 3);
  EXPECT_EQ(s.tasks(0).incarnation(), "b");
  EXPECT_DOUBLE_EQ(s.tasks(0).last_report_age_secs(), 2);
  EXPECT_EQ(s.tasks(1).series_size(), 1);
  EXPECT_DOUBLE_EQ(s.tasks(1).series(0).time_secs(), 1);
  EXPECT_EQ(s.tasks(2).report().ps_shard().rows(), 100);
  EXPECT_EQ(s.tasks(2).series_size(), 0);  // a PS does not train
  EXPECT_EQ(s.tasks(3).incarnation(), "");
  EXPECT_DOUBLE_EQ(s.tasks(3).last_report_age_secs(), -1);
  EXPECT_FALSE(s.tasks(3).has_report());
}

TEST(LiveStatusTest, DeadTasksDoNotCountAndStaleIncarnationsAreNotShown) {
  LiveStatus live(Options());
  live.Record(kWorker, 22, Training(12, 7, 0.6), kStart + absl::Seconds(1));
  live.Record(kChief, 11, Training(10, 5, 0.7), kStart + absl::Seconds(1));
  coordination::ClusterState state;
  // worker:0 restarted (incarnation 23) and has not reported yet.
  *state.add_tasks() = Info(kWorker, coordination::TASK_ALIVE, 23, /*restarts=*/1);
  *state.add_tasks() = Info(kChief, coordination::TASK_DEAD, 11);
  state.mutable_tasks(1)->set_reason("no heartbeat for 10.0 s");
  const coordination::ClusterStatus s = live.Build(state, kStart + absl::Seconds(2));
  EXPECT_EQ(s.tasks(0).restarts(), 1);
  EXPECT_FALSE(s.tasks(0).has_report());
  EXPECT_EQ(s.tasks(0).series_size(), 1);  // the series goes on across restarts
  EXPECT_TRUE(s.tasks(1).has_report());
  EXPECT_DOUBLE_EQ(s.steps_per_sec(), 0);  // nobody alive reported
  EXPECT_EQ(s.global_step(), 10);
}

TEST(LiveStatusTest, SeriesIsBoundedAndThinned) {
  LiveStatus live(Options(/*max_points=*/4));
  coordination::ClusterState state;
  *state.add_tasks() = Info(kWorker, coordination::TASK_ALIVE, 22);
  for (int i = 1; i <= 5; ++i) {
    live.Record(kWorker, 22, Training(i, i, 1.0 / i), kStart + absl::Seconds(i));
    // Faster than min_point_interval: no point.
    live.Record(kWorker, 22, Training(i, i, 1.0 / i), kStart + absl::Seconds(i) +
                                                          absl::Milliseconds(100));
  }
  coordination::ClusterStatus s = live.Build(state, kStart + absl::Seconds(6));
  // 4 points (1..4), halved to (2, 4) when the 5th came, then 5.
  ASSERT_EQ(s.tasks(0).series_size(), 3);
  EXPECT_EQ(s.tasks(0).series(0).global_step(), 2);
  EXPECT_EQ(s.tasks(0).series(1).global_step(), 4);
  EXPECT_EQ(s.tasks(0).series(2).global_step(), 5);
  for (int i = 6; i <= 200; ++i) {
    live.Record(kWorker, 22, Training(i, i, 1), kStart + absl::Seconds(i));
  }
  s = live.Build(state, kStart + absl::Seconds(201));
  EXPECT_LE(s.tasks(0).series_size(), 4);
  EXPECT_EQ(s.tasks(0).series(s.tasks(0).series_size() - 1).global_step(), 200);
}

TEST(LiveStatusTest, JsonRoundTripsAndTableListsEveryTask) {
  LiveStatus live(Options());
  live.SetStatusUrl("http://localhost:8080/");
  coordination::TaskReport r = Training(42, 3.5, 0.25);
  r.mutable_phases()->set_input_wait_secs(0.002);
  r.mutable_phases()->set_compute_secs(0.010);
  r.set_last_checkpoint_step(40);
  live.Record(kChief, 11, r, kStart + absl::Seconds(1));
  coordination::TaskReport e;
  e.set_last_eval_step(40);
  (*e.mutable_last_eval_metrics())["accuracy"] = 0.875;
  (*e.mutable_last_eval_metrics())["label/mean"] = 0.5;  // not a headline metric
  live.Record({"evaluator", 0}, 44, e, kStart + absl::Seconds(1));
  coordination::ClusterState state;
  *state.add_tasks() = Info(kChief, coordination::TASK_ALIVE, 11);
  *state.add_tasks() = Info({"evaluator", 0}, coordination::TASK_ALIVE, 44);
  *state.add_tasks() = Info(kPs, coordination::TASK_DEAD, 33);
  const coordination::ClusterStatus s = live.Build(state, kStart + absl::Seconds(2));

  const std::string json = StatusToJson(s);
  EXPECT_TRUE(absl::StrContains(json, "\"global_step\":\"42\"")) << json;
  absl::StatusOr<coordination::ClusterStatus> back = StatusFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*back, s));
  EXPECT_EQ(back->tasks(1).report().last_eval_metrics().at("accuracy"), 0.875);
  EXPECT_FALSE(StatusFromJson("{\"tasks\": 3}").ok());

  const std::string table = FormatStatusTable(s);
  EXPECT_TRUE(absl::StrContains(table, "status page: http://localhost:8080/")) << table;
  EXPECT_TRUE(absl::StrContains(table, "chief:0")) << table;
  EXPECT_TRUE(absl::StrContains(table, "evaluator:0")) << table;
  EXPECT_TRUE(absl::StrContains(table, "ps:0         DEAD")) << table;
  EXPECT_TRUE(absl::StrContains(table, "2/10/0/0")) << table;
  EXPECT_TRUE(absl::StrContains(table, "@40 accuracy=0.875 ")) << table;
  EXPECT_FALSE(absl::StrContains(table, "label/mean")) << table;
}

TEST(LiveReportTest, SnapshotAppliesUpdatesThenSources) {
  LiveReport report;
  report.Update([](coordination::TaskReport* r) { r->set_global_step(5); });
  report.AddSource([](coordination::TaskReport* r) { r->mutable_ps_shard()->set_rows(9); });
  const coordination::TaskReport r = report.Snapshot();
  EXPECT_EQ(r.global_step(), 5);
  EXPECT_EQ(r.ps_shard().rows(), 9);
}

TEST(StatusPageTest, ServesThePageAndTheJson) {
  coordination::ClusterStatus s;
  coordination::TaskLiveStatus* t = s.add_tasks();
  t->mutable_task()->set_type("worker");
  t->set_reason("</script><b>");
  StatusPage page([&s] { return s; });
  serving::HttpReply html = page.Handle("GET", "/?refresh=500");
  EXPECT_EQ(html.status, 200);
  EXPECT_EQ(html.content_type, "text/html; charset=utf-8");
  EXPECT_FALSE(absl::StrContains(html.body, "</script><b>")) << html.body;
  EXPECT_TRUE(absl::StrContains(html.body, "\\u003c/script")) << html.body;
  EXPECT_FALSE(absl::StrContains(html.body, "src=\"http"));  // self-contained
  EXPECT_FALSE(absl::StrContains(html.body, "REFRESH_DEFAULT"));
  serving::HttpReply json = page.Handle("GET", "/status.json");
  EXPECT_EQ(json.status, 200);
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_TRUE(StatusFromJson(json.body).ok());
  EXPECT_EQ(page.Handle("GET", "/nope").status, 404);
  EXPECT_EQ(page.Handle("POST", "/status.json").status, 405);
}

}  // namespace
}  // namespace estuary
