// libFuzzer harness: serialized tf.train.Example records
// (estimator/data/example_parser.h), as a TFRecord or a serving request
// brings them. The input is a batch: records separated by "#EX#", parsed
// with a spec holding a fixed-length and a var-length feature of each
// dtype (with and without defaults) whose keys are one letter, so the
// fuzzer finds them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "estimator/data/example_parser.h"
#include "fuzz/fuzz_util.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using estuary::DType;
using estuary::data::FixedLenFeature;
using estuary::data::VarLenFeature;

const estuary::data::ExampleParserSpec& Spec() {
  static const auto* spec = [] {
    std::vector<estuary::data::FeatureSpec> f;
    f.push_back(FixedLenFeature{"a", DType::kFloat, {2}, estuary::data::FloatDefault(-1)});
    f.push_back(FixedLenFeature{"b", DType::kInt64, {}, std::nullopt});
    f.push_back(FixedLenFeature{"c", DType::kString, {}, estuary::data::StringDefault("none")});
    f.push_back(FixedLenFeature{"d", DType::kFloat, {2, 3}, std::nullopt});
    f.push_back(FixedLenFeature{"z", DType::kFloat, {0}, std::nullopt});
    f.push_back(VarLenFeature{"e", DType::kFloat});
    f.push_back(VarLenFeature{"f", DType::kInt64});
    f.push_back(VarLenFeature{"g", DType::kString});
    auto s = estuary::data::ExampleParserSpec::Create(std::move(f));
    if (!s.ok()) __builtin_trap();
    return new estuary::data::ExampleParserSpec(*std::move(s));
  }();
  return *spec;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // "invalid UTF-8" parse errors: not findings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> batch =
      estuary::fuzz::SplitAt(estuary::fuzz::AsView(data, size), "#EX#");
  (void)estuary::data::ParseExamples(Spec(), batch);
  return 0;
}
