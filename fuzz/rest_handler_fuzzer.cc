// libFuzzer harness: the serving REST API (serving/rest_handler.h), i.e.
// what `estuary serve`'s HTTP port hands it: the input is "METHOD\nPATH\n"
// then the body (JSON). The model is serving/fake_export.h's (version 3 of
// "m": classify, regress, predict and the raw float/int64 signature), so
// requests reach the conversion into tensors and Examples and back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "serving/fake_export.h"
#include "serving/model_manager.h"
#include "serving/rest_handler.h"
#include "serving/serving_api.h"

namespace {

struct Server {
  std::unique_ptr<estuary::serving::ModelManager> manager;
  std::unique_ptr<estuary::serving::ServingApi> api;
  std::unique_ptr<estuary::serving::RestHandler> handler;
};
Server* server = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // "invalid UTF-8" parse errors: not findings
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string root = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/rest_handler_fuzzer.XXXXXX");
  if (mkdtemp(root.data()) == nullptr) __builtin_trap();
  std::filesystem::create_directories(root + "/3");
  estuary::serving::ModelManagerOptions o;
  o.models = {{"m", root, {}, {}}};
  o.loader = [](const std::string&)
      -> absl::StatusOr<std::shared_ptr<const estuary::LoadedExport>> {
    return std::make_shared<estuary::serving::FakeExport>(3);
  };
  server = new Server;
  server->manager = *estuary::serving::ModelManager::Create(std::move(o));
  if (!server->manager->PollOnce().ok()) __builtin_trap();
  server->api = std::make_unique<estuary::serving::ServingApi>(server->manager.get(), nullptr);
  server->handler = std::make_unique<estuary::serving::RestHandler>(server->api.get());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = estuary::fuzz::AsView(data, size);
  const size_t nl1 = input.find('\n');
  if (nl1 == absl::string_view::npos) return 0;
  const size_t nl2 = input.find('\n', nl1 + 1);
  if (nl2 == absl::string_view::npos) return 0;
  const estuary::serving::HttpReply reply = server->handler->Handle(
      input.substr(0, nl1), input.substr(nl1 + 1, nl2 - nl1 - 1), input.substr(nl2 + 1));
  if (reply.status < 200 || reply.status > 599 || reply.body.empty()) __builtin_trap();
  return 0;
}
