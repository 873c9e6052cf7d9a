#include "serving/model_manager.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/fake_export.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }

  std::string Base(const std::string& model) { return (root_ / model).string(); }

  void AddVersion(const std::string& model, const std::string& v, bool bad = false) {
    std::filesystem::create_directories(root_ / model / v);
    if (bad) {
      ASSERT_TRUE(
          io::WriteFileDurably(io::Env::Default(), (root_ / model / v / "BAD").string(), "x").ok());
    }
  }

  // Loads a FakeExport; DataLoss for a directory holding "BAD".
  ExportLoader Loader() {
    return [this](const std::string& dir) -> absl::StatusOr<std::shared_ptr<const LoadedExport>> {
      ++loads_;
      if (std::filesystem::exists(std::filesystem::path(dir) / "BAD")) {
        return absl::DataLossError(absl::StrCat(dir, "/variables: truncated"));
      }
      return std::make_shared<FakeExport>(std::stoll(std::filesystem::path(dir).filename()));
    };
  }

  std::unique_ptr<ModelManager> Make(std::vector<ModelConfig> models) {
    ModelManagerOptions o;
    o.models = std::move(models);
    o.loader = Loader();
    absl::StatusOr<std::unique_ptr<ModelManager>> m = ModelManager::Create(std::move(o));
    EXPECT_TRUE(m.ok()) << m.status();
    return *std::move(m);
  }

  static VersionState StateOf(const ModelManager& m, const std::string& name, int64_t v) {
    absl::StatusOr<std::vector<VersionStatus>> st = m.GetStatus(name, v);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? (*st)[0].state : VersionState::kStart;
  }

  std::filesystem::path root_;
  int loads_ = 0;
};

TEST_F(ModelManagerTest, LoadsTheLatestVersionAndUnloadsTheOlder) {
  AddVersion("m", "1");
  auto m = Make({{"m", Base("m"), {}, {}}});
  ASSERT_TRUE(m->PollOnce().ok());
  absl::StatusOr<ServableHandle> h = m->Get("m", std::nullopt);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->version, 1);
  EXPECT_EQ(StateOf(*m, "m", 1), VersionState::kAvailable);

  AddVersion("m", "2");
  ASSERT_TRUE(m->PollOnce().ok());
  EXPECT_EQ(m->Get("m", std::nullopt)->version, 2);
  EXPECT_EQ(StateOf(*m, "m", 1), VersionState::kEnd);
  EXPECT_EQ(StateOf(*m, "m", 2), VersionState::kAvailable);
  EXPECT_EQ(m->Get("m", 1).status().message(), "Servable not found for request: Specific(m, 1)");
  // A request that held version 1 keeps its model alive.
  EXPECT_EQ(h->model->version(), 1);

  // Nothing new: no loads.
  const int loads = loads_;
  ASSERT_TRUE(m->PollOnce().ok());
  EXPECT_EQ(loads_, loads);
  absl::StatusOr<std::vector<VersionStatus>> all = m->GetStatus("m", std::nullopt);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].version, 2);  // the highest first
}

TEST_F(ModelManagerTest, SkipsDotNamesAndPartialDirectories) {
  AddVersion("m", "5");
  AddVersion("m", ".7");
  AddVersion("m", "9.tmp-123-abc");
  AddVersion("m", "temp-8");
  AddVersion("m", "-9");
  ASSERT_TRUE(io::WriteFileDurably(io::Env::Default(), Base("m") + "/10", "a file").ok());
  auto m = Make({{"m", Base("m"), {}, {}}});
  ASSERT_TRUE(m->PollOnce().ok());
  EXPECT_EQ(m->Get("m", std::nullopt)->version, 5);
  EXPECT_EQ(m->GetStatus("m", std::nullopt)->size(), 1u);
}

TEST_F(ModelManagerTest, LatestNAllAndSpecificPolicies) {
  for (const char* v : {"1", "2", "3"}) AddVersion("m", v);
  ModelConfig latest2{"a", Base("m"), {VersionPolicy::Kind::kLatest, 2, {}}, {}};
  ModelConfig all{"b", Base("m"), {VersionPolicy::Kind::kAll, 1, {}}, {}};
  ModelConfig specific{"c", Base("m"), {VersionPolicy::Kind::kSpecific, 1, {1, 3, 7}}, {{"stable", 1}}};
  auto m = Make({latest2, all, specific});
  ASSERT_TRUE(m->PollOnce().ok());
  EXPECT_FALSE(m->Get("a", 1).ok());
  EXPECT_TRUE(m->Get("a", 2).ok());
  EXPECT_TRUE(m->Get("b", 1).ok());
  EXPECT_TRUE(m->Get("b", 2).ok());
  EXPECT_TRUE(m->Get("c", 1).ok());
  EXPECT_FALSE(m->Get("c", 2).ok());
  EXPECT_EQ(m->Get("c", std::nullopt)->version, 3);
  EXPECT_EQ(m->Get("c", std::nullopt, "stable")->version, 1);
  EXPECT_TRUE(absl::IsInvalidArgument(m->Get("c", std::nullopt, "canary").status()));
}

TEST_F(ModelManagerTest, FailedLoadIsEndWithErrorAndTheOlderVersionKeepsServing) {
  AddVersion("m", "1");
  auto m = Make({{"m", Base("m"), {}, {}}});
  ASSERT_TRUE(m->PollOnce().ok());
  AddVersion("m", "2", /*bad=*/true);
  absl::Status st = m->PollOnce();
  EXPECT_THAT(st.message(), HasSubstr("truncated"));
  absl::StatusOr<std::vector<VersionStatus>> v2 = m->GetStatus("m", 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v2)[0].state, VersionState::kEnd);
  EXPECT_TRUE(absl::IsDataLoss((*v2)[0].status));
  EXPECT_EQ(m->Get("m", std::nullopt)->version, 1);  // still serving
  EXPECT_EQ(StateOf(*m, "m", 1), VersionState::kAvailable);
  // Retried a bounded number of times, then left alone.
  for (int i = 0; i < 10; ++i) (void)m->PollOnce();
  EXPECT_EQ(loads_, 1 + 5);
}

TEST_F(ModelManagerTest, DeletedVersionDirectoryEndsWithAnErrorAndOthersKeepServing) {
  AddVersion("m", "1");
  AddVersion("other", "4");
  auto m = Make({{"m", Base("m"), {VersionPolicy::Kind::kAll, 1, {}}, {}},
                 {"other", Base("other"), {}, {}}});
  ASSERT_TRUE(m->PollOnce().ok());
  AddVersion("m", "2");
  ASSERT_TRUE(m->PollOnce().ok());
  std::filesystem::remove_all(root_ / "m" / "2");
  ASSERT_TRUE(m->PollOnce().ok());
  absl::StatusOr<std::vector<VersionStatus>> v2 = m->GetStatus("m", 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ((*v2)[0].state, VersionState::kEnd);
  EXPECT_THAT((*v2)[0].status.message(), HasSubstr("removed while serving"));
  EXPECT_EQ(m->Get("m", std::nullopt)->version, 1);

  // The whole base path goes: the model has nothing left, the other serves.
  std::filesystem::remove_all(root_ / "m");
  EXPECT_THAT(m->PollOnce().message(), HasSubstr("cannot list base path"));
  EXPECT_EQ(m->Get("m", std::nullopt).status().message(),
            "Servable not found for request: Latest(m)");
  EXPECT_EQ(StateOf(*m, "m", 1), VersionState::kEnd);
  EXPECT_EQ(m->Get("other", std::nullopt)->version, 4);
}

TEST_F(ModelManagerTest, UnknownModelAndVersionErrors) {
  AddVersion("m", "1");
  auto m = Make({{"m", Base("m"), {}, {}}});
  ASSERT_TRUE(m->PollOnce().ok());
  EXPECT_EQ(m->Get("nope", std::nullopt).status().message(),
            "Servable not found for request: Latest(nope)");
  EXPECT_EQ(m->GetStatus("nope", std::nullopt).status().message(),
            "Could not find any versions of model nope");
  EXPECT_EQ(m->GetStatus("m", 9).status().message(), "Could not find version 9 of model m");
  EXPECT_TRUE(absl::IsNotFound(m->GetStatus("m", 9).status()));
}

TEST_F(ModelManagerTest, CreateRejectsBadConfigs) {
  ModelManagerOptions o;
  o.loader = Loader();
  EXPECT_TRUE(absl::IsInvalidArgument(ModelManager::Create(o).status()));
  o.models = {{"m", Base("m"), {}, {}}, {"m", Base("n"), {}, {}}};
  EXPECT_THAT(ModelManager::Create(o).status().message(), HasSubstr("configured twice"));
  o.models = {{"m", Base("m"), {VersionPolicy::Kind::kSpecific, 1, {}}, {}}};
  EXPECT_TRUE(absl::IsInvalidArgument(ModelManager::Create(o).status()));
}

TEST_F(ModelManagerTest, WatcherPollsWhenTriggered) {
  auto m = Make({{"m", Base("m"), {}, {}}});
  // A long interval: only Trigger() makes it poll again within the test.
  ModelWatcher watcher(m.get(), absl::Hours(1));
  ASSERT_TRUE(watcher.WaitForPolls(1, absl::Seconds(60)));
  EXPECT_FALSE(m->Get("m", std::nullopt).ok());
  AddVersion("m", "3");
  const int64_t before = watcher.polls();
  watcher.Trigger();
  ASSERT_TRUE(watcher.WaitForPolls(before + 1, absl::Seconds(60)));
  EXPECT_EQ(m->Get("m", std::nullopt)->version, 3);
}

}  // namespace
}  // namespace serving
}  // namespace estuary
