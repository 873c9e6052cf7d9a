#include "estimator/synthetic/click_log.h"

#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/io/env.h"
#include "common/io/tfrecord.h"
#include "common/status_macros.h"
#include "estimator/data/example_builder.h"
#include "estimator/synthetic/zipf.h"

namespace estuary {
namespace {

// Criteo-like cardinalities (capped at 10^6).
constexpr std::array<int64_t, kClickCatFeatures> kVocab = {
    1460,  583,  1000000, 200000, 305,   24,     12517, 633,    3,    93145,
    5683,  800000, 3194, 27,      14992, 500000, 10,    5652,   2173, 4,
    700000, 18,  15,      286181, 105,   142572};
constexpr std::array<double, kClickCatFeatures> kCatMissing = {
    0,    0,    0.03, 0.03, 0,    0.12, 0,    0,    0,    0,    0,    0.03, 0,
    0,    0,    0.03, 0,    0,    0.44, 0.44, 0.03, 0,    0.76, 0.03, 0.44, 0.03};
constexpr std::array<double, kClickIntFeatures> kIntMissing = {
    0.45, 0, 0, 0.22, 0.03, 0.22, 0.04, 0, 0.04, 0.45, 0.04, 0.77, 0.22};
constexpr std::array<double, kClickIntFeatures> kIntLogMean = {
    0.8, 2.0, 2.2, 1.6, 7.5, 3.5, 1.5, 2.3, 3.8, 0.3, 1.0, 0.5, 1.6};
constexpr double kZipfExponent = 1.1;
constexpr double kBias = -1.3;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Mix(uint64_t a, uint64_t b, uint64_t c = 0) {
  return SplitMix64(SplitMix64(SplitMix64(a) ^ b) ^ c);
}

// A standard normal drawn deterministically from a 64-bit hash.
double HashNormal(uint64_t h) {
  const double u1 = (static_cast<double>(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  const double u2 = (static_cast<double>(SplitMix64(h) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// How strongly each categorical feature drives clicks (some barely do).
double CatScale(int f) { return (f % 3 == 0) ? 0.8 : (f % 3 == 1 ? 0.35 : 0.1); }

constexpr int64_t kProgressEvery = 65536;

void Progress(int64_t i, int64_t begin, std::atomic<int64_t>& done,
              const std::function<void(int64_t)>& progress) {
  if ((i - begin) % kProgressEvery == kProgressEvery - 1) {
    const int64_t d = done.fetch_add(kProgressEvery) + kProgressEvery;
    if (progress) progress(d);
  }
}

absl::Status WriteCsvShard(const io::Env& env, const ClickLogGenerator& gen,
                           const std::string& path, int64_t begin, int64_t end,
                           std::atomic<int64_t>& done,
                           const std::function<void(int64_t)>& progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::OutputStream> out, env.NewWritableFile(path));
  ClickRow row;
  std::string buf = absl::StrCat(absl::StrJoin(ClickLogColumns(), ","), "\n");
  for (int64_t i = begin; i < end; ++i) {
    gen.Row(i, &row);
    AppendClickCsv(row, &buf);
    buf.push_back('\n');
    if (buf.size() > (1 << 20)) {
      RETURN_IF_ERROR(out->Append(buf));
      buf.clear();
    }
    Progress(i, begin, done, progress);
  }
  RETURN_IF_ERROR(out->Append(buf));
  done.fetch_add((end - begin) % kProgressEvery);
  return out->Close();
}

absl::Status WriteTFRecordShard(const io::Env& env, const ClickLogGenerator& gen,
                                const std::string& path, int64_t begin, int64_t end,
                                std::atomic<int64_t>& done,
                                const std::function<void(int64_t)>& progress) {
  io::TFRecordOptions options;
  options.env = &env;
  absl::StatusOr<std::unique_ptr<io::TFRecordWriter>> writer =
      io::TFRecordWriter::Create(path, options);
  if (!writer.ok()) return writer.status();
  ClickRow row;
  for (int64_t i = begin; i < end; ++i) {
    gen.Row(i, &row);
    absl::Status st = (*writer)->Write(ClickExample(row));
    if (!st.ok()) return st;
    Progress(i, begin, done, progress);
  }
  done.fetch_add((end - begin) % kProgressEvery);
  return (*writer)->Close();
}

}  // namespace

std::string ClickExample(const ClickRow& row) {
  const std::vector<std::string> cols = ClickLogColumns();
  data::ExampleBuilder b;
  b.Int64s("label", {row.label});
  for (int i = 0; i < kClickIntFeatures; ++i) {
    if (row.ints[i].has_value()) b.Int64s(cols[1 + i], {*row.ints[i]});
  }
  for (int f = 0; f < kClickCatFeatures; ++f) {
    if (!row.cats[f].empty()) b.Bytes(cols[1 + kClickIntFeatures + f], {row.cats[f]});
  }
  return b.Serialize();
}

std::vector<std::string> ClickLogColumns() {
  std::vector<std::string> cols = {"label"};
  for (int i = 1; i <= kClickIntFeatures; ++i) cols.push_back(absl::StrCat("I", i));
  for (int i = 1; i <= kClickCatFeatures; ++i) cols.push_back(absl::StrCat("C", i));
  return cols;
}

int64_t ClickLogGenerator::VocabularySize(int f) { return kVocab[f]; }

ClickLogGenerator::ClickLogGenerator(uint64_t seed, uint64_t model_seed)
    : seed_(seed), model_seed_(model_seed) {
  for (int i = 0; i < kClickIntFeatures; ++i) {
    int_weights_[i] = 0.25 * HashNormal(Mix(model_seed_, 1000 + i));
  }
}

void ClickLogGenerator::Row(int64_t index, ClickRow* row) const {
  std::mt19937_64 rng(Mix(seed_, static_cast<uint64_t>(index), 0x5eed));
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double z = kBias;
  for (int i = 0; i < kClickIntFeatures; ++i) {
    if (uniform(rng) < kIntMissing[i]) {
      row->ints[i].reset();
      continue;
    }
    std::normal_distribution<double> log_normal(kIntLogMean[i], 1.2);
    const int64_t v = std::max<int64_t>(0, static_cast<int64_t>(std::exp(log_normal(rng))) - 1);
    row->ints[i] = v;
    z += int_weights_[i] * (std::log1p(static_cast<double>(v)) - kIntLogMean[i]);
  }
  for (int f = 0; f < kClickCatFeatures; ++f) {
    if (uniform(rng) < kCatMissing[f]) {
      row->cats[f].clear();
      continue;
    }
    ZipfDistribution zipf(kVocab[f], kZipfExponent);
    const int64_t rank = zipf(rng);
    const uint64_t token = Mix(model_seed_, static_cast<uint64_t>(f), static_cast<uint64_t>(rank));
    row->cats[f] = absl::StrFormat("%08x", static_cast<uint32_t>(token));
    z += CatScale(f) * HashNormal(token);
  }
  row->probability = 1.0 / (1.0 + std::exp(-z));
  row->label = uniform(rng) < row->probability ? 1 : 0;
}

void AppendClickCsv(const ClickRow& row, std::string* out) {
  absl::StrAppend(out, row.label);
  for (const auto& v : row.ints) {
    out->push_back(',');
    if (v.has_value()) absl::StrAppend(out, *v);
  }
  for (const auto& c : row.cats) {
    out->push_back(',');
    out->append(c);
  }
}

absl::Status WriteClickLog(const ClickLogOptions& options,
                           const std::function<void(int64_t)>& progress) {
  if (options.rows <= 0) return absl::InvalidArgumentError("--rows must be > 0");
  if (options.num_files <= 0) return absl::InvalidArgumentError("--files must be > 0");
  if (options.format != "csv" && options.format != "tfrecord") {
    return absl::InvalidArgumentError(absl::StrCat("--format '", options.format,
                                                   "' is not supported: expected csv or tfrecord"));
  }
  const bool tfrecord = options.format == "tfrecord";
  if (options.out_dir.empty()) return absl::InvalidArgumentError("--out is required");
  const io::Env& env = *options.env;
  RETURN_IF_ERROR(env.MakeDirs(options.out_dir));
  const ClickLogGenerator gen(options.seed, options.model_seed);
  std::atomic<int64_t> done{0};
  std::atomic<int> next_file{0};
  std::vector<absl::Status> errors(options.num_files);
  auto work = [&] {
    for (int f; (f = next_file.fetch_add(1)) < options.num_files;) {
      const int64_t begin = options.rows * f / options.num_files;
      const int64_t end = options.rows * (f + 1) / options.num_files;
      const std::string path = absl::StrFormat("%s/clicks-%05d-of-%05d.%s", options.out_dir, f,
                                               options.num_files, tfrecord ? "tfrecord" : "csv");
      absl::Status st = tfrecord ? WriteTFRecordShard(env, gen, path, begin, end, done, progress)
                                 : WriteCsvShard(env, gen, path, begin, end, done, progress);
      if (!st.ok()) errors[f] = st;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, options.threads); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  for (const absl::Status& st : errors) {
    if (!st.ok()) return st;
  }
  if (progress) progress(done.load());
  return absl::OkStatus();
}

}  // namespace estuary
