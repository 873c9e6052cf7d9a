// The chief's status page over HTTP (`--status_port`):
//   GET /             a self-contained HTML page (no external assets): the
//                     cluster summary, a chart of steps/s and of loss over
//                     time per task (inline SVG, redrawn as the page polls
//                     /status.json), and a table of the tasks (state,
//                     incarnation, restarts, step, steps/s, loss, phase
//                     split, PS shard size, last checkpoint and eval)
//   GET /status.json  StatusToJson(status()) (live_status.h)
// The page carries the status as of its load inline, so it shows
// everything without JavaScript's first fetch; it then polls every
// `?refresh=MS` milliseconds (default 2000; 0 = never).
//
// StatusPage is the handler (no sockets); StatusHttpServer serves it with
// serving/http_server.h (Debian's cpp-httplib). Both thread-safe.
#ifndef ESTUARY_COMMON_STATUS_STATUS_PAGE_H_
#define ESTUARY_COMMON_STATUS_STATUS_PAGE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/coordination.pb.h"
#include "serving/http_server.h"

namespace estuary {

// Returns the status as of now (LiveStatus::Build over the coordination
// service's state); called on the HTTP server's threads.
using StatusProvider = std::function<coordination::ClusterStatus()>;

class StatusPage {
 public:
  explicit StatusPage(StatusProvider provider) : provider_(std::move(provider)) {}
  // GET only: 200 with the page or the JSON; 404 other paths, 405 other
  // methods ({"error": ...}). `path` may carry a query ("/?refresh=500").
  serving::HttpReply Handle(const std::string& method, const std::string& path) const;

 private:
  StatusProvider provider_;
};

// The page's HTML with `status` inline, polling every `refresh_ms`.
std::string StatusPageHtml(const coordination::ClusterStatus& status, int refresh_ms);

struct StatusHttpServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;  // 0: a free port
  int num_threads = 2;
};

class StatusHttpServer {
 public:
  // Errors: Unavailable (the port cannot be bound).
  static absl::StatusOr<std::unique_ptr<StatusHttpServer>> Start(
      const StatusHttpServerOptions& options, StatusProvider provider);
  int port() const { return http_->port(); }
  // Stops serving; idempotent (also the destructor).
  void Stop() { http_->Stop(); }

 private:
  explicit StatusHttpServer(StatusProvider provider) : page_(std::move(provider)) {}
  StatusPage page_;
  std::unique_ptr<serving::HttpServer> http_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_STATUS_STATUS_PAGE_H_
