#include "common/summary_writer.h"

#include <dirent.h>

#include <cfloat>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/histogram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "'").c_str()), 0);
  return dir;
}

std::vector<tensorflow::Event> ReadEvents(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> records = io::ReadTFRecordFile(path);
  EXPECT_TRUE(records.ok()) << records.status();
  std::vector<tensorflow::Event> events;
  for (const std::string& r : *records) {
    tensorflow::Event e;
    EXPECT_TRUE(e.ParseFromString(r));
    events.push_back(e);
  }
  return events;
}

TEST(HistogramTest, DefaultBucketLimits) {
  const std::vector<double>& l = DefaultHistogramBucketLimits();
  ASSERT_EQ(l.size(), 1551u);
  EXPECT_EQ(l.front(), -DBL_MAX);
  EXPECT_EQ(l.back(), DBL_MAX);
  EXPECT_EQ(l[775], 0.0);
  EXPECT_EQ(l[776], 1e-12);
  EXPECT_DOUBLE_EQ(l[777], 1.1e-12);
  EXPECT_EQ(l[774], -1e-12);
  EXPECT_TRUE(std::is_sorted(l.begin(), l.end()));
}

TEST(HistogramTest, EncodesLikeTensorFlow) {
  Histogram h;
  for (double v : {1.0, 1.0, 2.0, -0.5}) h.Add(v);
  tensorflow::HistogramProto p = h.ToProto();
  EXPECT_EQ(p.min(), -0.5);
  EXPECT_EQ(p.max(), 2.0);
  EXPECT_EQ(p.num(), 4);
  EXPECT_EQ(p.sum(), 3.5);
  EXPECT_EQ(p.sum_squares(), 6.25);
  ASSERT_EQ(p.bucket_size(), p.bucket_limit_size());
  double total = 0;
  int nonempty = 0;
  for (int i = 0; i < p.bucket_size(); ++i) {
    total += p.bucket(i);
    if (p.bucket(i) > 0) ++nonempty;
    if (i > 0) {
      EXPECT_LT(p.bucket_limit(i - 1), p.bucket_limit(i));
    }
  }
  EXPECT_EQ(total, 4);
  EXPECT_EQ(nonempty, 3);
  // Empty runs merge: the last limit is DBL_MAX with count 0.
  EXPECT_EQ(p.bucket_limit(p.bucket_size() - 1), DBL_MAX);

  tensorflow::HistogramProto empty = Histogram().ToProto();
  ASSERT_EQ(empty.bucket_size(), 1);
  EXPECT_EQ(empty.bucket_limit(0), DBL_MAX);
  EXPECT_EQ(empty.min(), DBL_MAX);
  EXPECT_EQ(empty.max(), -DBL_MAX);
}

TEST(EventFileWriterTest, WritesScalarsAndHistograms) {
  const std::string dir = NewDir("events");
  absl::StatusOr<std::unique_ptr<EventFileWriter>> w = EventFileWriter::Create(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string path = (*w)->path();
  EXPECT_THAT(path, StartsWith(dir + "/events.out.tfevents."));
  ASSERT_TRUE((*w)->AddScalar("loss", 0.25, 10).ok());
  ASSERT_TRUE((*w)->AddScalar("loss", 0.125, 20).ok());
  const std::vector<double> values = {1, 2, 3};
  ASSERT_TRUE((*w)->AddHistogram("weights", absl::MakeConstSpan(values), 20).ok());
  const double bad[] = {1.0, std::nan("")};
  absl::Status s = (*w)->AddHistogram("w2", absl::MakeConstSpan(bad), 20);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("w2"));
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*w)->AddScalar("x", 1, 1)));

  std::vector<tensorflow::Event> events = ReadEvents(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);
  EXPECT_EQ(events[1].step(), 10);
  EXPECT_EQ(events[1].summary().value(0).tag(), "loss");
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 0.25f);
  EXPECT_EQ(events[2].summary().value(0).simple_value(), 0.125f);
  const tensorflow::HistogramProto& h = events[3].summary().value(0).histo();
  EXPECT_EQ(events[3].summary().value(0).tag(), "weights");
  EXPECT_EQ(h.num(), 3);
  EXPECT_EQ(h.sum(), 6);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 3);
}

TEST(EventFileWriterTest, FlushMakesEventsVisibleAndQueueFlushes) {
  const std::string dir = NewDir("flush");
  EventFileWriterOptions o;
  o.max_queue = 3;
  absl::StatusOr<std::unique_ptr<EventFileWriter>> w = EventFileWriter::Create(dir, o);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(ReadEvents((*w)->path()).size(), 1u);  // file_version flushed by Create
  ASSERT_TRUE((*w)->AddScalar("a", 1, 1).ok());
  ASSERT_TRUE((*w)->AddScalar("a", 2, 2).ok());
  EXPECT_EQ(ReadEvents((*w)->path()).size(), 1u);  // pending
  ASSERT_TRUE((*w)->AddScalar("a", 3, 3).ok());     // queue full: flushed
  EXPECT_EQ(ReadEvents((*w)->path()).size(), 4u);
  ASSERT_TRUE((*w)->AddScalar("a", 4, 4).ok());
  ASSERT_TRUE((*w)->Flush().ok());
  EXPECT_EQ(ReadEvents((*w)->path()).size(), 5u);
}

TEST(EventFileWriterTest, DistinctFilesInTheSameSecond) {
  const std::string dir = NewDir("two");
  auto a = EventFileWriter::Create(dir);
  auto b = EventFileWriter::Create(dir);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
}

TEST(EventFileWriterTest, ConcurrentWriters) {
  const std::string dir = NewDir("concurrent");
  std::string path;
  {
    absl::StatusOr<std::unique_ptr<EventFileWriter>> w = EventFileWriter::Create(dir);
    ASSERT_TRUE(w.ok());
    path = (*w)->path();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) {
          EXPECT_TRUE((*w)->AddScalar(absl::StrCat("t", t), i, i).ok());
          if (i % 50 == 0) {
            EXPECT_TRUE((*w)->Flush().ok());
          }
        }
      });
    }
    for (auto& th : threads) th.join();
  }  // destructor closes
  EXPECT_EQ(ReadEvents(path).size(), 1001u);
}

}  // namespace
}  // namespace estuary
