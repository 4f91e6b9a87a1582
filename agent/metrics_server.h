// MetricsServer: the /metrics endpoint, a small HTTP/1.x server on one thread.
//
// Why not prometheus-cpp's Exposer: its TextSerializer writes each label value
// a character at a time into an ostream, and cAdvisor's families carry ~250
// bytes of labels per series (the cgroup path, the 64-hex id): at 500
// containers a scrape spent ~450 ms there alone. The container families are
// written as text directly (metrics/text_sink.h); prometheus-cpp still keeps
// berthd's own metrics (a Registry and Collectables, serialized by it: a few
// hundred series).
//
// One connection at a time, each answered and closed: GET (or HEAD) /metrics
// answers 200 with text format 0.0.4, any other path 404, any other method
// 405. A client gets 5 s to send its request. No gzip: Prometheus asks for it
// but takes identity, and on loopback compressing costs more than it saves.
//
//   auto server = MetricsServer::Start("127.0.0.1:9464", [&] { return Page(); });
//   int port = (*server)->port();
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "metrics/text_sink.h"
#include "os/unique_fd.h"

namespace berth {

class MetricsServer {
 public:
  // The page; a std::string converts.
  using Handler = std::function<metrics::TextPage()>;

  // Binds `address` (HOST:PORT, port 0 for any) and starts serving.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& address,
                                                              Handler handler);
  ~MetricsServer();  // stops and joins the thread

  int port() const { return port_; }

 private:
  MetricsServer(UniqueFd listener, UniqueFd stop, int port, Handler handler);
  void Loop();
  void Serve(int fd);

  UniqueFd listener_;
  UniqueFd stop_;  // eventfd: written to end Loop()
  int port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace berth
