#include "common/ps/ps_shard.h"

#include <cstdlib>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

RowMatrixXf Random(int64_t rows, int64_t cols, std::mt19937* rng) {
  std::normal_distribution<float> d(0.f, 1.f);
  RowMatrixXf m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = d(*rng);
  return m;
}

RowMatrixXf Part(const RowMatrixXf& m, int p, int n) {
  const int64_t local = m.rows() > p ? (m.rows() - p + n - 1) / n : 0;
  RowMatrixXf out(local, m.cols());
  for (int64_t r = 0; r < local; ++r) out.row(r) = m.row(r * n + p);
  return out;
}

RowMatrixXf FromTensor(const Tensor& t) {
  return Eigen::Map<const RowMatrixXf>(t.floats.data(), t.shape[0], t.shape[1]);
}

std::vector<OptimizerConfig> AllOptimizers() {
  std::vector<OptimizerConfig> out;
  auto add = [&](const std::string& type, auto&& set) {
    OptimizerConfig c;
    c.type = type;
    c.learning_rate = 0.05;
    set(&c);
    out.push_back(c);
  };
  add("sgd", [](OptimizerConfig*) {});
  add("momentum", [](OptimizerConfig* c) { c->momentum = 0.9; });
  add("momentum", [](OptimizerConfig* c) { c->momentum = 0.9; c->use_nesterov = true; });
  add("adagrad", [](OptimizerConfig*) {});
  add("adam", [](OptimizerConfig*) {});
  add("ftrl", [](OptimizerConfig* c) { c->l1_regularization_strength = 0.01; c->l2_regularization_strength = 0.1; });
  add("rmsprop", [](OptimizerConfig*) {});
  add("rmsprop", [](OptimizerConfig* c) { c->momentum = 0.5; });
  add("rmsprop", [](OptimizerConfig* c) { c->centered = true; });
  return out;
}

constexpr int kTableRows = 11;  // not a multiple of the 3 partitions

// Every optimizer, dense and sparse: a dense variable whole on PS 0 and a
// table partitioned by row over 3 PS shards apply bit-identically to
// common/optimizer on the whole variables (what one process does: step =
// the number of updates before, the global_step there).
TEST(PsShardTest, AppliesLikeOneProcessForEveryOptimizer) {
  for (const OptimizerConfig& config : AllOptimizers()) {
    SCOPED_TRACE(absl::StrCat(config.type, " momentum ", config.momentum, " nesterov ",
                              config.use_nesterov, " centered ", config.centered));
    std::mt19937 rng(7);
    const RowMatrixXf w0 = Random(3, 4, &rng), t0 = Random(kTableRows, 2, &rng);
    std::unique_ptr<Optimizer> opt = *MakeOptimizer(config);
    RowMatrixXf w = w0, t = t0;
    Slots ws = opt->CreateSlots(w), ts = opt->CreateSlots(t);

    constexpr int kPs = 3;
    std::vector<std::unique_ptr<PsShard>> shards;
    for (int p = 0; p < kPs; ++p) {
      shards.push_back(std::make_unique<PsShard>());
      std::vector<PsVariablePart> parts;
      if (p == 0) parts.push_back({"w", w0, {3, 0, 1}, false, true, config, {}, 0});
      parts.push_back({"t", Part(t0, p, kPs), {kTableRows, p, kPs}, true, true, config, {}, 0});
      ASSERT_TRUE(shards[p]->Initialize(1, p, kPs, std::move(parts),
                                        p == 0 ? std::optional<int64_t>(0) : std::nullopt)
                      .ok());
    }
    // Steps with rows on some PS only, and one with no rows at all.
    const std::vector<std::vector<int64_t>> step_rows = {{0, 4, 10}, {1, 2}, {}, {3, 5, 6, 9}};
    for (size_t step = 0; step < step_rows.size(); ++step) {
      const RowMatrixXf gw = Random(3, 4, &rng);
      const std::vector<int64_t>& rows = step_rows[step];
      const RowMatrixXf gt = Random(rows.size(), 2, &rng);
      opt->ApplyDense(&w, &ws, gw, step);
      if (!rows.empty()) opt->ApplySparse(&t, &ts, rows, gt, step);
      for (int p = 0; p < kPs; ++p) {
        std::vector<PsPushItem> items;
        if (p == 0) items.push_back({"w", PsPushItem::kDense, {}, gw, false});
        PsPushItem sparse{"t", PsPushItem::kSparse, {}, RowMatrixXf(0, 2), !rows.empty()};
        std::vector<int64_t> index;
        for (size_t i = 0; i < rows.size(); ++i) {
          if (rows[i] % kPs == p) {
            sparse.rows.push_back(rows[i] / kPs);
            index.push_back(i);
          }
        }
        sparse.values = gt(index, Eigen::all);
        items.push_back(std::move(sparse));
        absl::StatusOr<int64_t> gs =
            shards[p]->Push(1, std::move(items), p == 0, absl::InfiniteFuture());
        ASSERT_TRUE(gs.ok()) << gs.status();
        if (p == 0) {
          EXPECT_EQ(*gs, static_cast<int64_t>(step) + 1);
        }
      }
    }
    absl::StatusOr<std::vector<Tensor>> got = shards[0]->Pull(1, {{"w"}});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(FromTensor((*got)[0]) == w);
    for (int p = 0; p < kPs; ++p) {
      got = shards[p]->Pull(1, {{"t"}});
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(FromTensor((*got)[0]) == Part(t, p, kPs)) << "partition " << p;
    }
    // Rows by local id.
    got = shards[1]->Pull(1, {{"t", true, {0, 2}}});
    ASSERT_TRUE(got.ok());
    EXPECT_TRUE(FromTensor((*got)[0]).row(1) == t.row(7));
  }
}

class PsShardBasics : public ::testing::Test {
 protected:
  void SetUp() override {
    OptimizerConfig c;
    c.type = "adagrad";
    std::vector<PsVariablePart> parts;
    parts.push_back({"w", RowMatrixXf::Ones(2, 3), {2, 0, 1}, false, true, c, {}, 0});
    parts.push_back({"bn", RowMatrixXf::Zero(1, 3), {1, 0, 1}, false, false, c, {}, 0});
    ASSERT_TRUE(shard_.Initialize(5, 0, 1, std::move(parts), 100).ok());
  }
  RowMatrixXf PullW() {
    absl::StatusOr<std::vector<Tensor>> got = shard_.Pull(5, {{"w"}});
    EXPECT_TRUE(got.ok());
    return FromTensor((*got)[0]);
  }
  PsShard shard_;
};

TEST(PsShardTest, FailedPreconditionBeforeInitialize) {
  PsShard shard;
  EXPECT_EQ(shard.Pull(1, {{"w"}}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(shard.Push(1, {}, true, absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(shard.GlobalStep(1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(shard.Describe(1, absl::Now() + absl::Milliseconds(10)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(PsShardBasics, StaleGenerationIsAborted) {
  EXPECT_EQ(shard_.Pull(4, {{"w"}}).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(shard_.Push(6, {}, true, absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(*shard_.GlobalStep(5), 100);
}

TEST_F(PsShardBasics, BadGradientsAreInvalidArgumentAndApplyNothing) {
  const RowMatrixXf before = PullW();
  auto push = [&](std::vector<PsPushItem> items) {
    // A valid gradient for w comes first: it must not be applied either.
    items.insert(items.begin(), {"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false});
    return shard_.Push(5, std::move(items), true, absl::InfiniteFuture()).status();
  };
  absl::Status s = push({{"nope", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'nope'"));
  s = push({{"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(3, 2), false}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("[3, 2]"));
  s = push({{"w", PsPushItem::kSparse, {0, 2}, RowMatrixXf::Ones(2, 3), true}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = push({{"w", PsPushItem::kSparse, {1, 0}, RowMatrixXf::Ones(2, 3), true}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = push({{"bn", PsPushItem::kDense, {}, RowMatrixXf::Ones(1, 3), false}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(PullW() == before);
  EXPECT_EQ(*shard_.GlobalStep(5), 100);
  // Still serving: a good push applies.
  absl::StatusOr<int64_t> gs = shard_.Push(
      5,
      {{"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false},
       {"bn", PsPushItem::kAssign, {}, RowMatrixXf::Constant(1, 3, 2.f), false}},
      true, absl::InfiniteFuture());
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(*gs, 101);
  EXPECT_FALSE(PullW() == before);
  EXPECT_EQ(FromTensor((*shard_.Pull(5, {{"bn"}}))[0])(0, 2), 2.f);
}

TEST_F(PsShardBasics, PauseHoldsPushesUntilSave) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/pause_save");
  ASSERT_EQ(*shard_.Pause(5, 42, absl::Now() + absl::Seconds(60)), 100);
  // A push waits while paused; with a short deadline it gives up.
  absl::StatusOr<int64_t> gs =
      shard_.Push(5, {{"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false}}, true,
                  absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(gs.status().code(), absl::StatusCode::kUnavailable);
  // A push started during the pause proceeds after Save resumes.
  std::thread pusher([&] {
    gs = shard_.Push(5, {{"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false}}, true,
                     absl::Now() + absl::Seconds(60));
  });
  EXPECT_EQ(shard_.Save(5, 41, dir, 100, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<ShardEntry> entry = shard_.Save(5, 42, dir, 100, 1);
  ASSERT_TRUE(entry.ok()) << entry.status();
  pusher.join();
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(*gs, 101);
  ASSERT_TRUE(checkpoint::CommitCheckpoint(dir, 100, {*entry}).ok());
  absl::StatusOr<checkpoint::RestoredCheckpoint> back = checkpoint::RestoreLatest(dir);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->vars.floats.at("w") == RowMatrixXf::Ones(2, 3));  // before the push
  EXPECT_EQ(back->vars.floats.at("w/adagrad/accumulator")(0, 0), 0.1f);
  EXPECT_EQ(back->vars.ints.at("global_step"), 100);
  EXPECT_EQ(back->vars.ints.at("w/adagrad/updates"), 0);
  EXPECT_EQ(back->vars.ints.count("bn/adagrad/updates"), 0u);
}

TEST_F(PsShardBasics, ExpiredPauseLifts) {
  ASSERT_TRUE(shard_.Pause(5, 1, absl::Now() + absl::Milliseconds(20)).ok());
  absl::StatusOr<int64_t> gs =
      shard_.Push(5, {{"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false}}, true,
                  absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(shard_.Save(5, 1, "/nonexistent", 100, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PsShardBasics, ConcurrentPushesToDifferentVariables) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; ++k) {
        std::vector<PsPushItem> items;
        if (i % 2 == 0) {
          items.push_back({"w", PsPushItem::kDense, {}, RowMatrixXf::Ones(2, 3), false});
        } else {
          items.push_back({"bn", PsPushItem::kAssign, {}, RowMatrixXf::Ones(1, 3), false});
        }
        ASSERT_TRUE(shard_.Push(5, std::move(items), true, absl::InfiniteFuture()).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(*shard_.GlobalStep(5), 300);
}

}  // namespace
}  // namespace estuary
