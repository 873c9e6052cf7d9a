// Child of checkpoint_crash_test: resumes from the latest checkpoint in
// argv[1] (exit 3 if it cannot be restored) and then saves checkpoints in a
// loop forever, printing "saved <step> us=<microseconds the save took>"
// after each. Every value of checkpoint N is a function of N, so the test
// can check the contents of whatever it finds after a kill -9.
#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "common/checkpoint.h"

namespace {

constexpr int kRows = 256;
constexpr int kCols = 512;  // 512 KiB per matrix

}  // namespace

int main(int argc, char** argv) {
  using namespace estuary;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int64_t step = 0;
  absl::StatusOr<checkpoint::RestoredCheckpoint> r = checkpoint::RestoreLatest(dir);
  if (r.ok()) {
    step = r->step;
  } else if (!absl::IsNotFound(r.status())) {
    std::printf("restore failed: %s\n", r.status().ToString().c_str());
    std::fflush(stdout);
    return 3;
  }
  std::printf("resumed %lld\n", static_cast<long long>(step));
  std::fflush(stdout);
  while (true) {
    ++step;
    checkpoint::Variables v;
    v.floats["a"] = RowMatrixXf::Constant(kRows, kCols, static_cast<float>(step));
    v.floats["b"] = RowMatrixXf::Constant(3, 7, static_cast<float>(-step));
    v.ints["global_step"] = step;
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> p = checkpoint::Save(dir, step, v, {.keep_checkpoint_max = 3});
    if (!p.ok()) {
      std::printf("save failed: %s\n", p.status().ToString().c_str());
      std::fflush(stdout);
      return 4;
    }
    std::printf("saved %lld us=%lld\n", static_cast<long long>(step),
                static_cast<long long>(absl::ToInt64Microseconds(absl::Now() - start)));
    std::fflush(stdout);
  }
}
