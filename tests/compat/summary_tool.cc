// Estuary's side of summary_compat_test.py: writes an event file and a
// checkpoint for TensorBoard / TensorFlow 2.15 to read.
// Usage: summary_tool EVENTS_DIR MODEL_DIR; prints the event file's path.
// Values: scalar "loss" = 1/(step+1) at steps 0, 10, ..., 40; histogram
// "weights" at step 40 of the doubles in HistogramValues(); checkpoints of
// steps 100, 200, 300 with keep_checkpoint_max 2.
#include <cmath>
#include <cstdio>

#include "common/checkpoint.h"
#include "common/summary_writer.h"

int main(int argc, char** argv) {
  using namespace estuary;
  if (argc != 3) return 2;
  auto w = EventFileWriter::Create(argv[1]);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
    return 1;
  }
  for (int step = 0; step <= 40; step += 10) {
    if (!(*w)->AddScalar("loss", 1.0 / (step + 1), step).ok()) return 1;
  }
  std::vector<double> values;
  for (int i = 0; i < 1000; ++i) values.push_back(std::sin(i * 0.37) * std::exp(0.01 * i) - 0.2);
  values.push_back(0.0);
  values.push_back(1e-13);
  values.push_back(-1e25);
  if (!(*w)->AddHistogram("weights", absl::MakeConstSpan(values), 40).ok()) return 1;
  if (!(*w)->Close().ok()) return 1;
  for (int64_t step : {100, 200, 300}) {
    checkpoint::Variables v;
    v.floats["w"] = RowMatrixXf::Constant(2, 2, step);
    v.ints["global_step"] = step;
    auto s = checkpoint::Save(argv[2], step, v, {.keep_checkpoint_max = 2});
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      return 1;
    }
  }
  std::printf("%s\n", (*w)->path().c_str());
  return 0;
}
