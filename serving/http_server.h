// An HTTP/1.1 server that hands every request to a handler function: the
// REST endpoint (a RestHandler) and the chief's status page
// (common/status/status_page.h).
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
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace estuary {
namespace serving {

// A handler's answer.
struct HttpReply {
  int status = 200;
  std::string body;  // JSON (REST API)
  std::string content_type = "application/json";
};

// Called on the server's worker threads (concurrently): must be
// thread-safe.
using HttpHandler = std::function<HttpReply(const std::string& method, const std::string& path,
                                            const std::string& body)>;

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
                                                           HttpHandler handler);
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
