// The streaming server with a runtime of the test's own (processes on the
// host, a TCP echo server on loopback) and a small SPDY client: tokens,
// upgrade errors, the exec and port-forward sessions. The same sessions run
// against real containers and moby/spdystream in tests/e2e/streaming_e2e_test.cc.
#include "agent/streaming/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "agent/streaming/spdy.h"
#include "agent/streaming/spdy_test_client.h"
#include "shim/protocol.h"
#include "shim/v1/shim.pb.h"
#include "tests/support/status_matchers.h"

extern char** environ;

namespace berth::streaming {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Runs target.cmd[0] with /bin/sh -c on the host; answers as the shim does.
class FakeRuntime : public StreamRuntime {
 public:
  ~FakeRuntime() override {
    for (std::thread& t : waiters_) t.join();
  }
  absl::StatusOr<UniqueFd> StartExec(const ExecTarget& target, const int stdio[3]) override {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int i = 0; i < 3; ++i) posix_spawn_file_actions_adddup2(&fa, stdio[i], i);
    const char* argv[] = {"/bin/sh", "-c", target.cmd[0].c_str(), nullptr};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return absl::InternalError("spawn");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return absl::InternalError("sp");
    waiters_.emplace_back([pid, fd = sv[1]] {
      int status = 0;
      waitpid(pid, &status, 0);
      shim::v1::Response r;
      r.mutable_exec()->mutable_exit()->set_exit_code(WEXITSTATUS(status));
      (void)shim::WriteFrame(fd, r);
      close(fd);
    });
    return UniqueFd(sv[0]);
  }
  // The "container" is a process started now that says its piece.
  absl::StatusOr<UniqueFd> StartAttach(const ExecTarget& target, const int stdio[3]) override {
    ExecTarget t = target;
    t.cmd = {"echo attached; echo to-err >&2; exit 3"};
    return StartExec(t, stdio);
  }
  absl::StatusOr<UniqueFd> DialPod(const std::string& sandbox_id, uint16_t port) override {
    if (sandbox_id != "pod1") return absl::NotFoundError("no pod");
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) != 0) {
      return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
    }
    return fd;
  }

 private:
  std::vector<std::thread> waiters_;
};

class StreamingServerTest : public ::testing::Test {
 protected:
  void Start(StreamingOptions options = {}) {
    options.drain_timeout = absl::Milliseconds(500);
    absl::StatusOr<std::unique_ptr<StreamingServer>> s = StreamingServer::Start(options, &runtime_);
    ASSERT_THAT(s.status(), IsOk());
    server_ = std::move(*s);
  }
  std::string Exec(const std::string& cmd, bool in, bool out, bool err, bool tty = false) {
    ExecTarget t;
    t.container_id = "c1";
    t.cmd = {cmd};
    t.in = in;
    t.out = out;
    t.err = err;
    t.tty = tty;
    absl::StatusOr<std::string> url = server_->ExecUrl(t);
    EXPECT_THAT(url.status(), IsOk());
    return url.value_or("");
  }

  FakeRuntime runtime_;
  std::unique_ptr<StreamingServer> server_;
};

TEST_F(StreamingServerTest, TokensAreSingleUseAndExpireAndAreBounded) {
  StreamingOptions o;
  o.max_tokens = 2;
  Start(o);
  std::string url = Exec("true", false, true, false);
  EXPECT_THAT(url, StartsWith(server_->base_url() + "exec/"));
  EXPECT_EQ(url.size(), server_->base_url().size() + 5 + 22);  // 16 random bytes, base64url
  {
    SpdyTestClient c;
    EXPECT_THAT(c.Upgrade(url, {"v4.channel.k8s.io"}), StartsWith("HTTP/1.1 101"));
  }
  SpdyTestClient again;
  EXPECT_THAT(again.Upgrade(url, {"v4.channel.k8s.io"}), StartsWith("HTTP/1.1 404"));
  // A port-forward token is not an exec one.
  absl::StatusOr<std::string> pf = server_->PortForwardUrl({"pod1"});
  ASSERT_THAT(pf.status(), IsOk());
  SpdyTestClient wrong;
  EXPECT_THAT(
      wrong.Upgrade(absl::StrReplaceAll(*pf, {{"/portforward/", "/exec/"}}), {"v4.channel.k8s.io"}),
      StartsWith("HTTP/1.1 404"));
  // Two waiting at most.
  (void)Exec("true", false, true, false);
  (void)Exec("true", false, true, false);
  ExecTarget t;
  t.cmd = {"true"};
  EXPECT_THAT(server_->ExecUrl(t).status(), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(StreamingServerTest, AnExpiredTokenIsNotFound) {
  StreamingOptions o;
  o.token_ttl = absl::Milliseconds(1);
  Start(o);
  std::string url = Exec("true", false, true, false);
  absl::SleepFor(absl::Milliseconds(20));
  SpdyTestClient c;
  EXPECT_THAT(c.Upgrade(url, {"v4.channel.k8s.io"}), StartsWith("HTTP/1.1 404"));
}

TEST_F(StreamingServerTest, UpgradesOnlyToSpdyWithAProtocolInCommon) {
  Start();
  SpdyTestClient ws;
  EXPECT_THAT(ws.Upgrade(Exec("true", false, true, false), {"v5.channel.k8s.io"}, "websocket"),
              AllOf(StartsWith("HTTP/1.1 400"), HasSubstr("WebSocket streaming is not served")));
  SpdyTestClient old;
  std::string head = old.Upgrade(Exec("true", false, true, false), {"channel.k8s.io"});
  EXPECT_THAT(head, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(head, HasSubstr("client supports [channel.k8s.io]"));
  SpdyTestClient v3;
  head = v3.Upgrade(Exec("true", false, true, false), {"v9.channel.k8s.io", "v3.channel.k8s.io"});
  EXPECT_THAT(head, HasSubstr("X-Stream-Protocol-Version: v3.channel.k8s.io"));
}

TEST_F(StreamingServerTest, ExecCopiesStdioAndReportsTheExitCode) {
  Start();
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(Exec("read x; echo out $x; echo e >&2; exit 2", true, true, true),
                        {"v5.channel.k8s.io", "v4.channel.k8s.io"}),
              HasSubstr("X-Stream-Protocol-Version: v5.channel.k8s.io"));
  uint32_t error = c.Open({{"streamType", "error"}});
  uint32_t in = c.Open({{"streamType", "stdin"}});
  uint32_t out = c.Open({{"streamType", "stdout"}});
  uint32_t err = c.Open({{"streamType", "stderr"}});
  c.Send(in, "hi\n", /*fin=*/true);
  ASSERT_TRUE(c.WaitFin(error));
  ASSERT_TRUE(c.WaitFin(out));
  ASSERT_TRUE(c.WaitFin(err));
  EXPECT_EQ(c.replied.size(), 4u);
  EXPECT_EQ(c.data[out], "out hi\n");
  EXPECT_EQ(c.data[err], "e\n");
  EXPECT_THAT(c.data[error], HasSubstr("\"reason\":\"NonZeroExitCode\""));
  EXPECT_THAT(c.data[error], HasSubstr("{\"message\":\"2\",\"reason\":\"ExitCode\"}"));
}

TEST_F(StreamingServerTest, AttachCopiesOutputAndEndsInSuccess) {
  Start();
  ExecTarget t;
  t.container_id = "c1";
  t.out = t.err = true;
  absl::StatusOr<std::string> url = server_->AttachUrl(t);
  ASSERT_THAT(url.status(), IsOk());
  EXPECT_THAT(*url, StartsWith(server_->base_url() + "attach/"));
  // Not an exec token.
  SpdyTestClient wrong;
  EXPECT_THAT(
      wrong.Upgrade(absl::StrReplaceAll(*url, {{"/attach/", "/exec/"}}), {"v4.channel.k8s.io"}),
      StartsWith("HTTP/1.1 404"));
  url = server_->AttachUrl(t);
  ASSERT_THAT(url.status(), IsOk());
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(*url, {"v4.channel.k8s.io"}), StartsWith("HTTP/1.1 101"));
  uint32_t error = c.Open({{"streamType", "error"}});
  uint32_t out = c.Open({{"streamType", "stdout"}});
  uint32_t err = c.Open({{"streamType", "stderr"}});
  ASSERT_TRUE(c.WaitFin(error));
  ASSERT_TRUE(c.WaitFin(out));
  ASSERT_TRUE(c.WaitFin(err));
  EXPECT_EQ(c.data[out], "attached\n");
  EXPECT_EQ(c.data[err], "to-err\n");
  // The container's exit code is its own, not the attach's.
  EXPECT_THAT(c.data[error], HasSubstr("\"status\":\"Success\""));
}

TEST_F(StreamingServerTest, ExecV3SaysNothingOnSuccess) {
  Start();
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(Exec("echo ok", false, true, false), {"v3.channel.k8s.io"}),
              StartsWith("HTTP/1.1 101"));
  uint32_t error = c.Open({{"streamType", "error"}});
  uint32_t out = c.Open({{"streamType", "stdout"}});
  ASSERT_TRUE(c.WaitFin(error));
  ASSERT_TRUE(c.WaitFin(out));
  EXPECT_EQ(c.data[out], "ok\n");
  EXPECT_EQ(c.data[error], "");
}

TEST_F(StreamingServerTest, ExecOnATerminalAppliesResizes) {
  Start();
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(Exec("read x; stty size", true, true, false, true), {"v4.channel.k8s.io"}),
              StartsWith("HTTP/1.1 101"));
  uint32_t error = c.Open({{"streamType", "error"}});
  uint32_t in = c.Open({{"streamType", "stdin"}});
  uint32_t out = c.Open({{"streamType", "stdout"}});
  uint32_t resize = c.Open({{"streamType", "resize"}});
  // Garbage is skipped (a string where a number goes once threw, and took
  // berthd down). Two objects in one frame, split across two: the last counts.
  c.Send(resize, "{\"Width\":\"a\",\"Height\":null}[1]", false);
  c.Send(resize, "{\"Width\":10,\"Height\":5}{\"Width\":", false);
  c.Send(resize, "120,\"Height\":40}", false);
  c.Send(in, "\n", false);
  ASSERT_TRUE(c.WaitFin(error));
  ASSERT_TRUE(c.WaitFin(out));
  EXPECT_THAT(c.data[out], HasSubstr("40 120\r\n"));
  EXPECT_THAT(c.data[error], HasSubstr("\"status\":\"Success\""));
}

TEST_F(StreamingServerTest, PortForwardCarriesConnectionsAndReportsDialErrors) {
  Start();
  // An echo server on loopback: one connection, echoes until EOF.
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  socklen_t len = sizeof(a);
  getsockname(listener.get(), reinterpret_cast<struct sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));
  std::thread echo([&] {
    UniqueFd c(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[4096];
    ssize_t n;
    while ((n = read(c.get(), buf, sizeof(buf))) > 0) (void)!write(c.get(), buf, n);
  });
  absl::StatusOr<std::string> url = server_->PortForwardUrl({"pod1"});
  ASSERT_THAT(url.status(), IsOk());
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(*url, {"portforward.k8s.io"}),
              HasSubstr("X-Stream-Protocol-Version: portforward.k8s.io"));
  uint32_t error = c.Open({{"streamType", "error"}, {"port", port}, {"requestID", "0"}});
  c.Send(error, "", true);
  uint32_t data = c.Open({{"streamType", "data"}, {"port", port}, {"requestID", "0"}});
  c.Send(data, "ping", true);
  ASSERT_TRUE(c.WaitFin(data));
  ASSERT_TRUE(c.WaitFin(error));
  EXPECT_EQ(c.data[data], "ping");
  EXPECT_EQ(c.data[error], "");
  echo.join();
  // A client without requestID headers (older kubelets): paired by stream id.
  std::thread echo2([&] {
    UniqueFd c(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[4096];
    ssize_t n;
    while ((n = read(c.get(), buf, sizeof(buf))) > 0) (void)!write(c.get(), buf, n);
  });
  uint32_t error1 = c.Open({{"streamType", "error"}, {"port", port}});
  uint32_t data1 = c.Open({{"streamType", "data"}, {"port", port}});
  c.Send(data1, "pong", true);
  ASSERT_TRUE(c.WaitFin(data1));
  ASSERT_TRUE(c.WaitFin(error1));
  EXPECT_EQ(c.data[data1], "pong");
  echo2.join();
  listener.reset();
  // Nothing listens there now.
  uint32_t error2 = c.Open({{"streamType", "error"}, {"port", port}, {"requestID", "1"}});
  uint32_t data2 = c.Open({{"streamType", "data"}, {"port", port}, {"requestID", "1"}});
  ASSERT_TRUE(c.WaitFin(error2));
  ASSERT_TRUE(c.WaitFin(data2));
  EXPECT_THAT(c.data[error2], AllOf(HasSubstr("error forwarding port " + port + " to pod pod1"),
                                    HasSubstr("Connection refused")));
}

TEST_F(StreamingServerTest, AProcessThatDoesNotReadStdinStallsNothing) {
  Start();
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(Exec("sleep 2", true, true, false), {"v4.channel.k8s.io"}),
              StartsWith("HTTP/1.1 101"));
  uint32_t error = c.Open({{"streamType", "error"}});
  uint32_t in = c.Open({{"streamType", "stdin"}});
  (void)c.Open({{"streamType", "stdout"}});
  // 4 MiB more than a pipe and the writer's queue hold.
  for (int i = 0; i < 128; ++i) ASSERT_TRUE(c.Send(in, std::string(32768, 'x'), false));
  // The exit still comes through.
  ASSERT_TRUE(c.WaitFin(error));
  EXPECT_THAT(c.data[error], HasSubstr("Success"));
}

TEST_F(StreamingServerTest, StoppingEndsTheSessionsInFlight) {
  Start();
  SpdyTestClient c;
  ASSERT_THAT(c.Upgrade(Exec("cat", true, true, false), {"v4.channel.k8s.io"}),
              StartsWith("HTTP/1.1 101"));
  (void)c.Open({{"streamType", "error"}});
  uint32_t in = c.Open({{"streamType", "stdin"}});
  uint32_t out = c.Open({{"streamType", "stdout"}});
  c.Send(in, "x", false);
  while (c.data[out].empty()) ASSERT_TRUE(c.ReadOne());
  EXPECT_EQ(c.data[out], "x");
  EXPECT_EQ(server_->sessions(), 1u);
  server_.reset();  // cat gets EOF; the session ends without its FINs; nothing hangs
  EXPECT_FALSE(c.WaitFin(out));
}

}  // namespace
}  // namespace berth::streaming
