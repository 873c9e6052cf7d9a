#include "common/io/env.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/io/fault_injecting_env.h"
#include "common/io/gzip_stream.h"
#include "gtest/gtest.h"

namespace estuary {
namespace io {
namespace {

std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return JoinPath(tmp != nullptr ? tmp : "/tmp", name);
}

absl::Status WriteFile(const Env& env, const std::string& path, const std::string& contents) {
  absl::StatusOr<std::unique_ptr<OutputStream>> out = env.NewWritableFile(path);
  if (!out.ok()) return out.status();
  if (absl::Status s = (*out)->Append(contents); !s.ok()) return s;
  return (*out)->Close();
}

TEST(PathTest, JoinDirBase) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(BaseName("a/b/c"), "c");
  EXPECT_EQ(BaseName("c"), "c");
}

TEST(PosixEnvTest, MakeDirsIsRecursiveAndIdempotent) {
  const Env& env = Env::Default();
  const std::string dir = TestDir("mk/a/b/c");
  ASSERT_TRUE(env.MakeDirs(dir).ok());
  ASSERT_TRUE(env.MakeDirs(dir).ok());
  EXPECT_TRUE(env.Stat(dir)->is_directory);
  ASSERT_TRUE(WriteFile(env, JoinPath(dir, "f"), "x").ok());
  const absl::Status s = env.MakeDirs(JoinPath(dir, "f/g"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find(JoinPath(dir, "f")), std::string::npos) << s;
}

TEST(PosixEnvTest, FileOperations) {
  const Env& env = Env::Default();
  const std::string dir = TestDir("ops");
  ASSERT_TRUE(env.MakeDirs(dir).ok());
  const std::string a = JoinPath(dir, "a");
  const std::string b = JoinPath(dir, "b");
  ASSERT_TRUE(WriteFile(env, a, "hello").ok());
  EXPECT_TRUE(env.FileExists(a));
  EXPECT_EQ(*env.GetFileSize(a), 5u);
  EXPECT_EQ(*ReadWholeFile(env, a), "hello");
  ASSERT_TRUE(env.RenameFile(a, b).ok());
  EXPECT_FALSE(env.FileExists(a));
  ASSERT_TRUE(env.SyncDir(dir).ok());
  std::vector<std::string> children = *env.GetChildren(dir);
  EXPECT_EQ(children, std::vector<std::string>{"b"});
  ASSERT_TRUE(env.DeleteFile(b).ok());
  EXPECT_TRUE(env.GetChildren(dir)->empty());

  // Errors name the path and carry errno's code.
  const absl::Status missing = env.DeleteFile(b);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find(b), std::string::npos) << missing;
  EXPECT_EQ(ReadWholeFile(env, b).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env.GetChildren(JoinPath(dir, "nodir")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env.RenameFile(a, b).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env.NewWritableFile(JoinPath(dir, "nodir/f")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PosixEnvTest, WriteFileDurablyReplacesAndLeavesNoTemporaries) {
  const Env& env = Env::Default();
  const std::string dir = TestDir("durable");
  ASSERT_TRUE(env.MakeDirs(dir).ok());
  const std::string path = JoinPath(dir, "state");
  ASSERT_TRUE(WriteFileDurably(env, path, "one").ok());
  ASSERT_TRUE(WriteFileDurably(env, path, "two").ok());
  EXPECT_EQ(*ReadWholeFile(env, path), "two");
  EXPECT_EQ(*env.GetChildren(dir), std::vector<std::string>{"state"});
  EXPECT_NE(TempFileName(path), TempFileName(path));
}

TEST(FaultInjectingEnvTest, FailsTheNthOperationOfAKind) {
  const std::string dir = TestDir("fault_nth");
  ASSERT_TRUE(Env::Default().MakeDirs(dir).ok());
  FaultInjectingEnv env;
  env.FailNth(FaultOp::kRename, 2);
  const std::string path = JoinPath(dir, "f");
  ASSERT_TRUE(WriteFileDurably(env, path, "one").ok());
  const absl::Status s = WriteFileDurably(env, path, "two");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(IsInjectedFault(s)) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("injected fault: rename '" + path + ".tmp-"), std::string::npos)
      << s;
  EXPECT_EQ(env.count(FaultOp::kRename), 2);
  EXPECT_EQ(env.injected(), 1);
  // The old contents survive and the temporary file is gone.
  EXPECT_EQ(*ReadWholeFile(env, path), "one");
  EXPECT_EQ(*env.GetChildren(dir), std::vector<std::string>{"f"});
  EXPECT_FALSE(IsInjectedFault(absl::UnavailableError("real")));
}

TEST(FaultInjectingEnvTest, WriteSyncAndPredicateFaults) {
  const std::string dir = TestDir("fault_kinds");
  ASSERT_TRUE(Env::Default().MakeDirs(dir).ok());
  const std::string path = JoinPath(dir, "f");
  {
    FaultInjectingEnv env;
    env.FailNth(FaultOp::kWrite, 1);
    EXPECT_TRUE(IsInjectedFault(WriteFileDurably(env, path, "x")));
    EXPECT_FALSE(env.FileExists(path));
  }
  {
    FaultInjectingEnv env;
    env.FailNth(FaultOp::kSync, 1);
    const absl::Status s = WriteFileDurably(env, path, "x");
    EXPECT_NE(s.message().find("injected fault: fsync"), std::string::npos) << s;
    EXPECT_EQ(env.count(FaultOp::kRename), 0);
  }
  {
    FaultInjectingEnv env;
    env.FailIf([](const FaultPoint& p) { return p.op == FaultOp::kSyncDir; });
    const absl::Status s = WriteFileDurably(env, path, "x");
    EXPECT_NE(s.message().find("injected fault: fsync dir '" + dir + "'"), std::string::npos)
        << s;
    // After the rename: the new file is in place.
    EXPECT_EQ(*ReadWholeFile(env, path), "x");
    env.Reset();
    EXPECT_TRUE(WriteFileDurably(env, path, "y").ok());
    EXPECT_EQ(env.injected(), 0);
  }
  {
    FaultInjectingEnv env;
    env.FailIf([&](const FaultPoint& p) { return p.op == FaultOp::kRead && p.path == path; });
    EXPECT_TRUE(IsInjectedFault(ReadWholeFile(env, path).status()));
  }
}

TEST(MaybeDecompressGzipTest, ReadsPlainAndGzipFiles) {
  const Env& env = Env::Default();
  const std::string dir = TestDir("maybe_gzip");
  ASSERT_TRUE(env.MakeDirs(dir).ok());
  const std::string text = "a,b\n1,2\n";
  std::string gz(128, '\0');
  {
    z_stream zs{};
    ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs.avail_in = text.size();
    zs.next_out = reinterpret_cast<Bytef*>(&gz[0]);
    zs.avail_out = gz.size();
    ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    gz.resize(zs.total_out);
    deflateEnd(&zs);
  }
  for (const std::string& contents : {text, gz, std::string("x"), std::string()}) {
    const std::string path = JoinPath(dir, "f");
    ASSERT_TRUE(WriteFile(env, path, contents).ok());
    auto in = MaybeDecompressGzip(*env.NewSequentialFile(path));
    ASSERT_TRUE(in.ok()) << in.status();
    std::string got;
    char buf[3];
    while (true) {
      absl::StatusOr<size_t> n = (*in)->Read(buf, sizeof(buf));
      ASSERT_TRUE(n.ok()) << n.status();
      if (*n == 0) break;
      got.append(buf, *n);
    }
    EXPECT_EQ(got, contents == gz ? text : contents);
  }
}

}  // namespace
}  // namespace io
}  // namespace estuary
