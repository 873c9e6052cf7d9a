// The REST endpoint: an HTTP/1.1 server that hands every request to a
// RestHandler.
//
// HTTP library: Debian's cpp-httplib (libcpp-httplib-dev 0.11, MIT). Chosen
// over libmicrohttpd because it is a small, maintained C++ server (Debian
// ships security fixes for it in bookworm) with what the REST API needs
// built in: a thread pool, keep-alive, a request-body limit (answered 413
// before the body is read) and a clean stop that lets requests in flight
// finish; libmicrohttpd would need the same written by hand over its C
// callbacks, and TF Serving's own libevent wrapper is not packaged.
//
// Thread-safe. Owns the accept thread and the worker pool.
#ifndef ESTUARY_SERVING_HTTP_SERVER_H_
#define ESTUARY_SERVING_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "serving/rest_handler.h"

namespace httplib {
class Server;
}

namespace estuary {
namespace serving {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;  // 0: a free port
  int num_threads = 8;
  int64_t max_body_bytes = 64 << 20;  // larger bodies get 413 + {"error": ...}
};

class HttpServer {
 public:
  // Binds and starts serving. Errors: Unavailable (the port cannot be bound).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           const RestHandler* handler);
  ~HttpServer();  // Stop()

  int port() const { return port_; }
  // Stops accepting, lets the requests in flight finish, joins. Idempotent.
  void Stop();

 private:
  HttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_HTTP_SERVER_H_
