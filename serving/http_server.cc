#include "serving/http_server.h"

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace serving {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *s->server_;
  const int threads = std::max(1, options.num_threads);
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  srv.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  const int64_t limit = options.max_body_bytes;
  auto serve = [handler = std::move(handler)](const httplib::Request& req,
                                              httplib::Response& res) {
    HttpReply reply = handler(req.method, req.path, req.body);
    res.status = reply.status;
    res.set_content(reply.body, reply.content_type.c_str());
  };
  srv.Get(".*", serve);
  srv.Post(".*", serve);
  // Errors the library answers itself (413 for an oversize body, 400 for a
  // malformed request line, 404 for other methods) get a JSON body too.
  httplib::Server::HandlerWithResponse on_error = [limit](const httplib::Request& req,
                                                         httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg;
    if (res.status == 413) {
      msg = absl::StrCat("Request body exceeds the limit of ", limit, " bytes");
    } else {
      msg = absl::StrCat("Malformed request: ", req.method, " ", req.path);
    }
    res.set_content(nlohmann::json{{"error", msg}}.dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  };
  srv.set_error_handler(on_error);
  if (options.port == 0) {
    s->port_ = srv.bind_to_any_port(options.host);
  } else {
    s->port_ = srv.bind_to_port(options.host, options.port) ? options.port : -1;
  }
  if (s->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind the REST API to ", options.host, ":", options.port));
  }
  s->thread_ = std::thread([srv = s->server_.get()] { srv->listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace serving
}  // namespace estuary
