// Closed-loop load generator for a TF-Serving-compatible model server
// (issue 11's serving benchmark): C concurrent clients, each its own gRPC
// channel (its own TCP connection) or its own keep-alive HTTP connection,
// send one Predict request after the other for --seconds (after --warmup_secs
// unmeasured) and record each request's latency.
//
// A request carries --rows serialized tf.train.Examples (input "examples" of
// the parsing receiver) built from Fashion-MNIST test images: feature
// --feature = 784 floats, pixel / 255. Every client cycles through the
// examples from its own offset.
//
// Prints one figure per line:
//   serving_load protocol=grpc clients=8 requests=… errors=… rps=… p50_us=… p99_us=…
// Errors (a non-OK status, a non-200 reply) are counted, not timed; a run
// with errors exits 1 after printing.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "estimator/data/idx_reader.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "proto/example.pb.h"
#include "proto/serving/prediction_service.grpc.pb.h"

namespace estuary {
namespace {

struct Options {
  std::string protocol = "grpc";  // grpc | rest
  std::string target;             // host:port
  std::string model_name = "model";
  std::string signature = "predict";
  std::string idx_images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  std::string feature = "pixels";
  int clients = 1;
  int rows = 1;
  int num_examples = 1000;
  double seconds = 5;
  double warmup_secs = 1;
  double deadline_secs = 30;
};

// Serialized Examples, one per test image.
absl::StatusOr<std::vector<std::string>> BuildExamples(const Options& o) {
  absl::StatusOr<IdxFile> idx = ReadIdxFile(o.idx_images);
  if (!idx.ok()) return idx.status();
  int64_t n = std::min<int64_t>(idx->dims[0], o.num_examples);
  int64_t size = idx->example_size();
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    tensorflow::Example ex;
    tensorflow::FloatList* fl = (*ex.mutable_features()->mutable_feature())[o.feature].mutable_float_list();
    for (int64_t j = 0; j < size; ++j) {
      fl->add_value(static_cast<uint8_t>(idx->data[i * size + j]) / 255.0f);
    }
    out.push_back(ex.SerializeAsString());
  }
  return out;
}

// One client's requests, prebuilt (building them is not part of serving).
struct ClientWork {
  std::vector<tensorflow::serving::PredictRequest> grpc_requests;
  std::vector<std::string> rest_bodies;
};

ClientWork PrepareClient(const Options& o, const std::vector<std::string>& examples, int client) {
  ClientWork w;
  constexpr int kDistinct = 16;  // requests per client, cycled
  for (int r = 0; r < kDistinct; ++r) {
    std::vector<const std::string*> rows;
    for (int i = 0; i < o.rows; ++i) {
      rows.push_back(&examples[(client * 97 + r * o.rows + i) % examples.size()]);
    }
    if (o.protocol == "grpc") {
      tensorflow::serving::PredictRequest req;
      req.mutable_model_spec()->set_name(o.model_name);
      req.mutable_model_spec()->set_signature_name(o.signature);
      tensorflow::TensorProto& t = (*req.mutable_inputs())["examples"];
      t.set_dtype(tensorflow::DT_STRING);
      t.mutable_tensor_shape()->add_dim()->set_size(o.rows);
      for (const std::string* s : rows) t.add_string_val(*s);
      w.grpc_requests.push_back(std::move(req));
    } else {
      std::string body = absl::StrCat("{\"signature_name\":\"", o.signature, "\",\"instances\":[");
      for (size_t i = 0; i < rows.size(); ++i) {
        absl::StrAppend(&body, i ? "," : "", "{\"b64\":\"", absl::Base64Escape(*rows[i]), "\"}");
      }
      absl::StrAppend(&body, "]}");
      w.rest_bodies.push_back(std::move(body));
    }
  }
  return w;
}

struct ClientResult {
  std::vector<double> latencies_us;  // measured requests only
  int64_t errors = 0;
  std::string first_error;
};

void RunClient(const Options& o, const ClientWork& work, int client, absl::Time measure_from,
               absl::Time end, ClientResult* result) {
  auto record = [&](absl::Time start, bool ok, const std::string& error) {
    absl::Time now = absl::Now();
    if (!ok) {
      ++result->errors;
      if (result->first_error.empty()) result->first_error = error;
    } else if (start >= measure_from) {
      result->latencies_us.push_back(absl::ToDoubleMicroseconds(now - start));
    }
    return now;
  };
  if (o.protocol == "grpc") {
    grpc::ChannelArguments args;
    args.SetInt("estuary.load_client", client);  // a distinct connection per client
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
    auto stub = tensorflow::serving::PredictionService::NewStub(channel);
    for (size_t i = 0;; ++i) {
      absl::Time start = absl::Now();
      if (start >= end) break;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(start + absl::Seconds(o.deadline_secs)));
      tensorflow::serving::PredictResponse resp;
      grpc::Status st = stub->Predict(&ctx, work.grpc_requests[i % work.grpc_requests.size()], &resp);
      record(start, st.ok(), st.error_message());
    }
  } else {
    std::vector<std::string> hp = absl::StrSplit(o.target, absl::MaxSplits(':', 1));
    httplib::Client cli(hp[0], hp.size() > 1 ? std::atoi(hp[1].c_str()) : 80);
    cli.set_keep_alive(true);
    cli.set_tcp_nodelay(true);  // as curl and the usual clients do
    int secs = static_cast<int>(o.deadline_secs);
    cli.set_read_timeout(secs, 0);
    cli.set_write_timeout(secs, 0);
    cli.set_connection_timeout(secs, 0);
    std::string path = absl::StrCat("/v1/models/", o.model_name, ":predict");
    for (size_t i = 0;; ++i) {
      absl::Time start = absl::Now();
      if (start >= end) break;
      auto res = cli.Post(path, work.rest_bodies[i % work.rest_bodies.size()], "application/json");
      bool ok = res && res->status == 200;
      record(start, ok,
             res ? absl::StrCat("HTTP ", res->status, ": ", res->body.substr(0, 200))
                 : absl::StrCat("HTTP error ", static_cast<int>(res.error())));
    }
  }
}

double Percentile(std::vector<double>* v, double p) {
  if (v->empty()) return 0;
  size_t k = std::min(v->size() - 1, static_cast<size_t>(p * v->size()));
  std::nth_element(v->begin(), v->begin() + k, v->end());
  return (*v)[k];
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags("serving_load --target HOST:PORT [--protocol grpc|rest] [--clients N] [flags]",
                "Closed-loop Predict load on a TF-Serving-compatible server; prints rps and "
                "latency percentiles.");
  flags.String("protocol", &o.protocol, "grpc (PredictionService.Predict) or rest (:predict).");
  flags.String("target", &o.target, "host:port of the gRPC or REST endpoint.");
  flags.String("model_name", &o.model_name, "Model name in the request.");
  flags.String("signature", &o.signature, "Signature name.");
  flags.String("idx_images", &o.idx_images, "IDX images the examples are built from.");
  flags.String("feature", &o.feature, "Feature name of the 784 pixel floats.");
  flags.Int("clients", &o.clients, "Concurrent clients (threads, one connection each).");
  flags.Int("rows", &o.rows, "Examples per request.");
  flags.Int("num_examples", &o.num_examples, "Distinct examples to cycle through.");
  flags.Double("seconds", &o.seconds, "Measured seconds.");
  flags.Double("warmup_secs", &o.warmup_secs, "Unmeasured seconds before.");
  flags.Double("deadline_secs", &o.deadline_secs, "Deadline of every request.");
  absl::Status st = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  if (st.ok() && o.target.empty()) st = absl::InvalidArgumentError("--target is required");
  if (st.ok() && o.protocol != "grpc" && o.protocol != "rest") {
    st = absl::InvalidArgumentError("--protocol must be grpc or rest");
  }
  if (st.ok() && (o.clients < 1 || o.rows < 1)) {
    st = absl::InvalidArgumentError("--clients and --rows must be >= 1");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "serving_load: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  absl::StatusOr<std::vector<std::string>> examples = BuildExamples(o);
  if (!examples.ok() || examples->empty()) {
    std::fprintf(stderr, "serving_load: %s\n",
                 examples.ok() ? "no examples" : std::string(examples.status().message()).c_str());
    return 2;
  }
  std::vector<ClientWork> work;
  for (int c = 0; c < o.clients; ++c) work.push_back(PrepareClient(o, *examples, c));
  std::vector<ClientResult> results(o.clients);
  absl::Time start = absl::Now();
  absl::Time measure_from = start + absl::Seconds(o.warmup_secs);
  absl::Time end = measure_from + absl::Seconds(o.seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back(RunClient, std::cref(o), std::cref(work[c]), c, measure_from, end,
                         &results[c]);
  }
  for (std::thread& t : threads) t.join();
  std::vector<double> all;
  int64_t errors = 0;
  std::string first_error;
  for (ClientResult& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
  }
  double p50 = Percentile(&all, 0.50);
  double p99 = Percentile(&all, 0.99);
  std::printf("serving_load protocol=%s clients=%d rows=%d requests=%zu errors=%lld rps=%.1f "
              "p50_us=%.1f p99_us=%.1f\n",
              o.protocol.c_str(), o.clients, o.rows, all.size(), static_cast<long long>(errors),
              all.size() / o.seconds, p50, p99);
  if (errors > 0) {
    std::fprintf(stderr, "serving_load: %lld errors; first: %s\n", static_cast<long long>(errors),
                 first_error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Main(argc, argv); }
