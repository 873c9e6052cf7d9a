#include "serving/http_server.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace serving {
namespace {

// Debian's libcpp-httplib is compiled with a listen backlog of 5
// (CPPHTTPLIB_LISTEN_BACKLOG): a burst of clients connecting at once
// overflows the accept queue, the kernel drops their handshakes and some
// clients see read errors (bench/serving_bench.py at 64 clients). httplib
// does not expose its socket, so this finds the process's listening socket on
// `port` and calls listen() on it again, which on Linux only raises the
// backlog (to SOMAXCONN). Best effort: on failure the backlog stays as it was.
void WidenListenBacklog(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr;
    socklen_t addr_len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
    int bound = 0;
    if (addr.ss_family == AF_INET) {
      bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    }
    if (bound == port) listen(fd, SOMAXCONN);
  }
  closedir(dir);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *s->server_;
  const int threads = std::max(1, options.num_threads);
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  srv.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  // httplib writes a reply's headers and body separately: with Nagle's
  // algorithm on, the body waits for the client's delayed ACK of the headers
  // (40 ms on Linux), so every keep-alive request took ~88 ms
  // (bench/serving_bench.py). TF Serving's REST server sets TCP_NODELAY too.
  srv.set_tcp_nodelay(true);
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
  WidenListenBacklog(s->port_);
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
