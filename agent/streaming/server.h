// The CRI streaming server: where the URLs that Exec and PortForward answer
// with lead (research/cri-v1.md §5). kubelet proxies a client's connection
// there (crictl connects itself); the server upgrades it to SPDY/3.1 and runs
// the session:
//
//   GET|POST /exec/<token>         remotecommand v2..v5.channel.k8s.io
//   GET|POST /attach/<token>       the same protocols, to the container's process
//   GET|POST /portforward/<token>  portforward.k8s.io
//
// A token is made by the RPC and taken by the first connection that presents
// it: single use, valid one minute, at most 1000 waiting (as kubelet's
// reference server).
// WebSocket clients get 400 naming SPDY: Kubernetes' API server translates
// WebSocket to SPDY towards the node, and crictl speaks SPDY by default.
//
//   StreamingServer::Start({.address = "127.0.0.1:0"}, &runtime)
//   server->ExecUrl({container, {"sh"}, .tty = true, .in = true, .out = true})
//     -> "http://127.0.0.1:40123/exec/Xr3…"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "os/unique_fd.h"

namespace berth::streaming {

struct ExecTarget {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false, in = false, out = false, err = false;
  // An attach to the container's own process instead (cmd unused): its
  // output from now on; the session ends when it exits.
  bool attach = false;
};

struct PortForwardTarget {
  std::string sandbox_id;
};

// What sessions ask of the agent.
class StreamRuntime {
 public:
  virtual ~StreamRuntime() = default;
  // Starts the exec with `stdio` (stdin, stdout, stderr; on a terminal the
  // slave three times). The answer is the shim connection, which answers
  // with the exit status when the process is reaped (shim::ReceiveShimResponse).
  virtual absl::StatusOr<UniqueFd> StartExec(const ExecTarget& target, const int stdio[3]) = 0;
  // Attach: the container's output copied to stdio[1] and stdio[2] from now
  // on; the shim connection answers when the container exits.
  virtual absl::StatusOr<UniqueFd> StartAttach(const ExecTarget& target, const int stdio[3]) {
    return absl::UnimplementedError("attach");
  }
  // A TCP connection to localhost:port inside the pod's network namespace.
  virtual absl::StatusOr<UniqueFd> DialPod(const std::string& sandbox_id, uint16_t port) = 0;
  // For an exec on a terminal: a pty master of the container's own devpts
  // (its /dev/pts/ptmx), so that the slave has a name inside the container
  // (`tty`, ttyname(3), sudo). On error the session uses the host's /dev/ptmx.
  virtual absl::StatusOr<UniqueFd> OpenTerminal(const ExecTarget& target) {
    return absl::UnimplementedError("no terminal of the container's own");
  }
};

struct StreamingOptions {
  std::string address = "127.0.0.1:0";  // HOST:PORT; 0 picks a free port
  absl::Duration token_ttl = absl::Minutes(1);
  size_t max_tokens = 1000;
  absl::Duration stream_timeout = absl::Seconds(30);  // the client opening its streams
  absl::Duration idle_timeout = absl::Hours(4);       // a port-forward with no traffic
  // An exec's output still flowing after its process ended (a background
  // child holding stdout) is cut off after this.
  absl::Duration drain_timeout = absl::Seconds(2);
};

class StreamingServer {
 public:
  static absl::StatusOr<std::unique_ptr<StreamingServer>> Start(StreamingOptions options,
                                                                StreamRuntime* runtime);
  // Ends every session (their processes get EOF/EPIPE/SIGHUP as with any
  // closed stdio) and joins every thread.
  ~StreamingServer();

  // "http://host:port/"
  std::string base_url() const { return base_url_; }
  // RESOURCE_EXHAUSTED when max_tokens are waiting.
  absl::StatusOr<std::string> ExecUrl(ExecTarget target);
  // target.attach is set.
  absl::StatusOr<std::string> AttachUrl(ExecTarget target);
  absl::StatusOr<std::string> PortForwardUrl(PortForwardTarget target);

  // Sessions running now (for tests and metrics).
  size_t sessions() const;

 private:
  using Target = std::variant<ExecTarget, PortForwardTarget>;
  struct Token {
    Target target;
    absl::Time expires;
  };
  struct Session {
    std::thread thread;
    int fd = -1;  // to shut down on stop
    bool done = false;
  };

  StreamingServer(StreamingOptions options, StreamRuntime* runtime, UniqueFd listener,
                  UniqueFd stop, std::string base_url);
  absl::StatusOr<std::string> Insert(Target target, absl::string_view path);
  bool Take(const std::string& token, Target* target);
  void Loop();
  void Serve(uint64_t id, UniqueFd fd);
  void ReapDone() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StreamingOptions options_;
  StreamRuntime* const runtime_;
  UniqueFd listener_;
  UniqueFd stop_;  // eventfd
  const std::string base_url_;
  mutable absl::Mutex mu_;
  std::map<std::string, Token> tokens_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The sessions, after the upgrade (exec_session.cc, portforward_session.cc).
class SpdyConn;
void RunExecSession(SpdyConn& conn, const std::string& protocol, const ExecTarget& target,
                    StreamRuntime& runtime, const StreamingOptions& options);
void RunPortForwardSession(SpdyConn& conn, const PortForwardTarget& target, StreamRuntime& runtime,
                           const StreamingOptions& options);

}  // namespace berth::streaming
