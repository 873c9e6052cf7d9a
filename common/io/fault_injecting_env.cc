#include "common/io/fault_injecting_env.h"

#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace estuary {
namespace io {
namespace {

constexpr char kPayloadUrl[] = "estuary.io/injected_fault";

class FaultyInputStream : public InputStream {
 public:
  FaultyInputStream(const FaultInjectingEnv* env, std::unique_ptr<InputStream> in)
      : env_(env), in_(std::move(in)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    RETURN_IF_ERROR(env_->Check(FaultOp::kRead, in_->name()));
    return in_->Read(buf, n);
  }
  const std::string& name() const override { return in_->name(); }

 private:
  const FaultInjectingEnv* const env_;
  std::unique_ptr<InputStream> in_;
};

class FaultyOutputStream : public OutputStream {
 public:
  FaultyOutputStream(const FaultInjectingEnv* env, std::unique_ptr<OutputStream> out, bool sync)
      : env_(env), out_(std::move(out)), sync_(sync) {}
  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(env_->Check(FaultOp::kWrite, out_->name()));
    return out_->Append(data);
  }
  absl::Status Flush() override { return out_->Flush(); }
  absl::Status Close() override {
    if (closed_) return out_->Close();
    closed_ = true;
    absl::Status fault = sync_ ? env_->Check(FaultOp::kSync, out_->name()) : absl::OkStatus();
    absl::Status s = out_->Close();
    return fault.ok() ? s : fault;
  }
  const std::string& name() const override { return out_->name(); }

 private:
  const FaultInjectingEnv* const env_;
  std::unique_ptr<OutputStream> out_;
  const bool sync_;
  bool closed_ = false;
};

}  // namespace

const char* FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kOpenRead: return "open";
    case FaultOp::kRead: return "read";
    case FaultOp::kCreate: return "create";
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "fsync";
    case FaultOp::kMakeDirs: return "mkdir";
    case FaultOp::kList: return "list";
    case FaultOp::kDelete: return "delete";
    case FaultOp::kRename: return "rename";
    case FaultOp::kSyncDir: return "fsync dir";
    case FaultOp::kStat: return "stat";
  }
  return "?";
}

absl::Status InjectedFault(FaultOp op, const std::string& path) {
  absl::Status s = absl::UnavailableError(
      absl::StrCat("injected fault: ", FaultOpName(op), " '", path, "'"));
  s.SetPayload(kPayloadUrl, absl::Cord(FaultOpName(op)));
  return s;
}

bool IsInjectedFault(const absl::Status& status) {
  return status.GetPayload(kPayloadUrl).has_value();
}

void FaultInjectingEnv::FailNth(FaultOp op, int64_t n) {
  absl::MutexLock lock(&mu_);
  nth_rules_.push_back({op, n});
}

void FaultInjectingEnv::FailIf(std::function<bool(const FaultPoint&)> predicate) {
  absl::MutexLock lock(&mu_);
  predicates_.push_back(std::move(predicate));
}

void FaultInjectingEnv::Reset() {
  absl::MutexLock lock(&mu_);
  nth_rules_.clear();
  predicates_.clear();
  counts_.fill(0);
  injected_ = 0;
}

int64_t FaultInjectingEnv::count(FaultOp op) const {
  absl::MutexLock lock(&mu_);
  return counts_[static_cast<int>(op)];
}

int64_t FaultInjectingEnv::injected() const {
  absl::MutexLock lock(&mu_);
  return injected_;
}

absl::Status FaultInjectingEnv::Check(FaultOp op, const std::string& path) const {
  absl::MutexLock lock(&mu_);
  const FaultPoint point{op, path, ++counts_[static_cast<int>(op)]};
  bool fail = false;
  for (const NthRule& r : nth_rules_) fail = fail || (r.op == op && r.n == point.n);
  for (const auto& p : predicates_) fail = fail || p(point);
  if (!fail) return absl::OkStatus();
  ++injected_;
  return InjectedFault(op, path);
}

absl::StatusOr<std::unique_ptr<InputStream>> FaultInjectingEnv::NewSequentialFile(
    const std::string& path) const {
  RETURN_IF_ERROR(Check(FaultOp::kOpenRead, path));
  ASSIGN_OR_RETURN(std::unique_ptr<InputStream> in, base_->NewSequentialFile(path));
  return std::unique_ptr<InputStream>(new FaultyInputStream(this, std::move(in)));
}

absl::StatusOr<std::unique_ptr<OutputStream>> FaultInjectingEnv::NewWritableFile(
    const std::string& path, const WritableFileOptions& options) const {
  RETURN_IF_ERROR(Check(FaultOp::kCreate, path));
  ASSIGN_OR_RETURN(std::unique_ptr<OutputStream> out, base_->NewWritableFile(path, options));
  return std::unique_ptr<OutputStream>(
      new FaultyOutputStream(this, std::move(out), options.sync_on_close));
}

absl::Status FaultInjectingEnv::MakeDirs(const std::string& dir) const {
  RETURN_IF_ERROR(Check(FaultOp::kMakeDirs, dir));
  return base_->MakeDirs(dir);
}

absl::StatusOr<std::vector<std::string>> FaultInjectingEnv::GetChildren(
    const std::string& dir) const {
  RETURN_IF_ERROR(Check(FaultOp::kList, dir));
  return base_->GetChildren(dir);
}

absl::Status FaultInjectingEnv::DeleteFile(const std::string& path) const {
  RETURN_IF_ERROR(Check(FaultOp::kDelete, path));
  return base_->DeleteFile(path);
}

absl::Status FaultInjectingEnv::RenameFile(const std::string& from, const std::string& to) const {
  RETURN_IF_ERROR(Check(FaultOp::kRename, from));
  return base_->RenameFile(from, to);
}

absl::Status FaultInjectingEnv::SyncDir(const std::string& dir) const {
  RETURN_IF_ERROR(Check(FaultOp::kSyncDir, dir));
  return base_->SyncDir(dir);
}

absl::StatusOr<FileInfo> FaultInjectingEnv::Stat(const std::string& path) const {
  RETURN_IF_ERROR(Check(FaultOp::kStat, path));
  return base_->Stat(path);
}

}  // namespace io
}  // namespace estuary
