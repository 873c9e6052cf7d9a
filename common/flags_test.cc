#include "common/flags.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

absl::Status ParseArgs(FlagSet& f, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return f.Parse(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagSetTest, ParsesEveryForm) {
  std::string job;
  int workers = 2;
  double timeout = 1.5;
  bool evaluator = false, chief = true;
  FlagSet f("prog", "desc");
  f.String("job", &job, "");
  f.Int("workers", &workers, "");
  f.Double("timeout", &timeout, "");
  f.Bool("evaluator", &evaluator, "");
  f.Bool("chief", &chief, "");
  ASSERT_TRUE(ParseArgs(f, {"prog", "--job=a.json", "--workers", "3", "-timeout=2.5",
                            "--evaluator", "--nochief", "pos"})
                  .ok());
  EXPECT_EQ(job, "a.json");
  EXPECT_EQ(workers, 3);
  EXPECT_EQ(timeout, 2.5);
  EXPECT_TRUE(evaluator);
  EXPECT_FALSE(chief);
  EXPECT_EQ(f.positional(), std::vector<std::string>{"pos"});
}

TEST(FlagSetTest, ErrorsAreSpecific) {
  int workers = 0;
  FlagSet f("prog", "desc");
  f.Int("workers", &workers, "how many");
  absl::Status st = ParseArgs(f, {"prog", "--worker=3"});
  EXPECT_NE(st.message().find("unknown flag --worker; did you mean 'workers'?"),
            absl::string_view::npos)
      << st;
  st = ParseArgs(f, {"prog", "--workers=x"});
  EXPECT_NE(st.message().find("--workers=x: expected an integer"), absl::string_view::npos) << st;
  st = ParseArgs(f, {"prog", "--workers"});
  EXPECT_NE(st.message().find("needs a value"), absl::string_view::npos) << st;
}

TEST(FlagSetTest, HelpListsFlagsWithDefaults) {
  int workers = 2;
  FlagSet f("prog [flags]", "Does things.");
  f.Int("workers", &workers, "How many workers.");
  ASSERT_TRUE(ParseArgs(f, {"prog", "--help"}).ok());
  EXPECT_TRUE(f.help_requested());
  EXPECT_NE(f.Usage().find("--workers\n      How many workers. (default: 2)"), std::string::npos)
      << f.Usage();
}

}  // namespace
}  // namespace estuary
