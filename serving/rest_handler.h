// TF Serving's REST API over a ServingApi, independent of the HTTP server
// (http_server.h feeds it):
//   GET  /v1/models/NAME[/versions/V]            model status
//   GET  /v1/models/NAME[/versions/V]/metadata   signature defs
//   POST /v1/models/NAME[/versions/V]:predict    {"instances": [...]} (row) or
//                                                {"inputs": ...} (columnar)
//   POST /v1/models/NAME[/versions/V]:classify   {"examples": [{feature: value}]}
//   POST /v1/models/NAME[/versions/V]:regress    (as classify)
// with TF Serving's JSON shapes: "predictions" / "outputs", "results",
// {"b64": ...} for DT_STRING values (decoded on input; on output for aliases
// ending in "_bytes"), floats printed as the shortest text that reads back
// (whole numbers with ".0"), JSON feature maps converted to tf.train.Example
// (integers -> int64_list, other numbers -> float_list, strings and b64 ->
// bytes_list, booleans -> int64 0/1), and errors as {"error": "..."} with TF
// Serving's HTTP status for the code (InvalidArgument/FailedPrecondition/
// OutOfRange 400, NotFound 404, Unavailable 503, Unimplemented 501, ...).
//
// Thread-safe.
#ifndef ESTUARY_SERVING_REST_HANDLER_H_
#define ESTUARY_SERVING_REST_HANDLER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "serving/http_server.h"
#include "serving/serving_api.h"

namespace estuary {
namespace serving {

// TF Serving's HTTP status for an error code.
int HttpStatusFor(absl::StatusCode code);
// {"error": "message"}.
std::string JsonError(absl::string_view message);

class RestHandler {
 public:
  explicit RestHandler(const ServingApi* api) : api_(api) {}

  HttpReply Handle(absl::string_view method, absl::string_view path, absl::string_view body) const;

 private:
  absl::Status Dispatch(absl::string_view method, absl::string_view path, absl::string_view body,
                        std::string* out) const;

  const ServingApi* const api_;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_REST_HANDLER_H_
