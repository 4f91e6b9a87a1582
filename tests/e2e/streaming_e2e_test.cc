// Exec and PortForward through a real berthd: the RPC's URL, then the session
// driven by berth-streamclient (Go, moby/spdystream: the SPDY implementation
// kubelet, client-go and crictl use) as `crictl exec` and `crictl
// port-forward` would.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ClientRun {
  int rc = -1;
  std::string out, err;
};

class StreamingTest : public LifecycleTest {
 protected:
  // A running container `app` (sleep) in a pod of its own network.
  void SetUp() override {
    LifecycleTest::SetUp();
    pod_config_ = PodConfig("stream-" + RandomHex(3));
    absl::StatusOr<std::string> pod = RunPod(pod_config_);
    ASSERT_THAT(pod.status(), IsOk());
    pod_ = *pod;
    absl::StatusOr<std::string> id =
        CreateContainer(pod_, ContainerConfig("app", {"/bin/sleep", "1000"}), pod_config_);
    ASSERT_THAT(id.status(), IsOk());
    ASSERT_THAT(StartContainer(*id), IsOk());
    container_ = *id;
  }

  absl::StatusOr<std::string> ExecUrl(std::vector<std::string> cmd, bool in, bool out, bool err,
                                      bool tty) {
    v1::ExecRequest req;
    req.set_container_id(container_);
    for (auto& c : cmd) req.add_cmd(c);
    req.set_stdin(in);
    req.set_stdout(out);
    req.set_stderr(err);
    req.set_tty(tty);
    v1::ExecResponse resp;
    grpc::Status s = runtime_->Exec(Ctx().get(), req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return resp.url();
  }

  absl::StatusOr<std::string> PortForwardUrl(const std::string& pod) {
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod);
    req.add_port(8080);
    v1::PortForwardResponse resp;
    grpc::Status s = runtime_->PortForward(Ctx().get(), req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return resp.url();
  }

  // berth-streamclient with `args`, `input` on its stdin; SIGKILLed after
  // `seconds`.
  ClientRun Client(const std::vector<std::string>& args, const std::string& input = "",
                   int seconds = 60) {
    const std::string in = dir_.path() + "/client.in", out = dir_.path() + "/client.out",
                      err = dir_.path() + "/client.err";
    EXPECT_THAT(WriteFileAtomically(in, input, 0600), IsOk());
    std::string command = BERTH_STREAMCLIENT_PATH;
    for (const std::string& a : args) absl::StrAppend(&command, " '", a, "'");
    absl::StrAppend(&command, " <", in, " >", out, " 2>", err);
    ClientRun r;
    r.rc = Shell(absl::StrCat("timeout -s KILL ", seconds, " ", command));
    r.out = ReadFile(out).value_or("");
    r.err = ReadFile(err).value_or("");
    return r;
  }

  v1::PodSandboxConfig pod_config_;
  std::string pod_, container_;
};

TEST_F(StreamingTest, ExecCopiesStdioBothWaysAndReturnsTheExitCode) {
  absl::StatusOr<std::string> url = ExecUrl(
      {"/bin/sh", "-c", "read x; echo out $x; echo err >&2; exit 3"}, true, true, true, false);
  ASSERT_THAT(url.status(), IsOk());
  EXPECT_THAT(*url, StartsWith("http://127.0.0.1:"));
  EXPECT_THAT(*url, HasSubstr("/exec/"));
  ClientRun r = Client({"exec", *url, "-stdin", "-stdout", "-stderr"}, "hello\n");
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_EQ(r.out, "out hello\n");
  EXPECT_THAT(r.err, HasSubstr("protocol: v5.channel.k8s.io"));
  EXPECT_THAT(r.err, HasSubstr("err\n"));
  EXPECT_THAT(r.err, HasSubstr("\"reason\":\"NonZeroExitCode\""));

  // Success is a Success status; stdin EOF reaches the process (cat ends).
  url = ExecUrl({"/bin/cat"}, true, true, false, false);
  ASSERT_THAT(url.status(), IsOk());
  std::string big(300000, 'x');  // more than one frame, more than a pipe holds
  r = Client({"exec", *url, "-stdin", "-stdout"}, big);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.size(), big.size());
  EXPECT_EQ(r.out, big);

  // The URL is single use.
  r = Client({"exec", *url, "-stdout"});
  EXPECT_EQ(r.rc, 3);
  EXPECT_THAT(r.err, HasSubstr("http 404"));
}

TEST_F(StreamingTest, ExecOnATerminalGetsItsSizeAndIsItsControllingTerminal) {
  absl::StatusOr<std::string> url = ExecUrl(
      {"/bin/sh", "-c", "read x; stty size; test -t 0 && echo tty; tty"}, true, true, false, true);
  ASSERT_THAT(url.status(), IsOk());
  ClientRun r = Client({"exec", *url, "-stdin", "-stdout", "-tty", "-resize", "100x30"}, "go\n");
  EXPECT_EQ(r.rc, 0) << r.err;
  // The terminal echoes the input and ends lines with \r\n. It is one of the
  // container's own devpts: it has a name there.
  EXPECT_EQ(r.out, "go\r\n30 100\r\ntty\r\n/dev/pts/0\r\n");
}

TEST_F(StreamingTest, OlderProtocolsAndFailuresOnTheErrorStream) {
  // v2: no exit code on the wire, the failure as text.
  absl::StatusOr<std::string> url = ExecUrl({"/bin/sh", "-c", "exit 4"}, false, true, false, false);
  ASSERT_THAT(url.status(), IsOk());
  ClientRun r = Client({"exec", *url, "-stdout", "-protocol", "v2.channel.k8s.io"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("protocol: v2.channel.k8s.io"));
  EXPECT_THAT(r.err, HasSubstr("error stream: command terminated with non-zero exit code: 4"));

  // No protocol in common: 403 naming both sides'.
  url = ExecUrl({"true"}, false, true, false, false);
  ASSERT_THAT(url.status(), IsOk());
  r = Client({"exec", *url, "-stdout", "-protocol", "channel.k8s.io"});
  EXPECT_EQ(r.rc, 3);
  EXPECT_THAT(r.err, HasSubstr("http 403"));
  EXPECT_THAT(r.err, HasSubstr("server supports [v5.channel.k8s.io"));

  // A program that is not there: the shim's message, as a Failure.
  url = ExecUrl({"/no/such/program"}, false, true, false, false);
  ASSERT_THAT(url.status(), IsOk());
  r = Client({"exec", *url, "-stdout"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("/no/such/program"));
  EXPECT_THAT(r.err, HasSubstr("\"status\":\"Failure\""));
}

TEST_F(StreamingTest, BadRequestsAreRefusedNamingTheField) {
  EXPECT_THAT(ExecUrl({"sh"}, false, true, true, true).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stderr")));
  EXPECT_THAT(ExecUrl({"sh"}, false, false, false, false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stdin, stdout, stderr")));
  EXPECT_THAT(ExecUrl({}, false, true, false, false).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cmd")));
  v1::ExecRequest req;
  req.set_container_id("0123456789abcdef");
  req.add_cmd("true");
  req.set_stdout(true);
  v1::ExecResponse resp;
  EXPECT_EQ(runtime_->Exec(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(PortForwardUrl("0123456789abcdef").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("pod_sandbox_id")));
  v1::PortForwardRequest pf;
  pf.set_pod_sandbox_id(pod_);
  pf.add_port(70000);
  v1::PortForwardResponse pf_resp;
  grpc::Status s = runtime_->PortForward(Ctx().get(), pf, &pf_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("port[0]"));
  // A stopped container takes no exec.
  ASSERT_THAT(StopContainer(container_, 0), IsOk());
  EXPECT_THAT(ExecUrl({"true"}, false, true, false, false).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not running")));
}

TEST_F(StreamingTest, AClientThatGoesAwayHangsUpItsTerminal) {
  absl::StatusOr<std::string> url = ExecUrl({"/bin/sleep", "999"}, true, true, false, true);
  ASSERT_THAT(url.status(), IsOk());
  // The client is killed while the exec runs.
  ClientRun r = Client({"exec", *url, "-stdin", "-stdout", "-tty"}, "", 1);
  EXPECT_EQ(r.rc, 128 + SIGKILL) << r.err;
  absl::StatusOr<v1::ExecSyncResponse> ps;
  for (int i = 0; i < 100; ++i) {
    ps = ExecSync(container_, {"/bin/sh", "-c", "ps -o args | grep -c '^/bin/sleep 999' || true"});
    ASSERT_THAT(ps.status(), IsOk());
    if (ps->stdout() == "0\n") break;
    usleep(50000);
  }
  EXPECT_EQ(ps->stdout(), "0\n");
}

TEST_F(StreamingTest, AttachFollowsTheContainersOutputUntilItExits) {
  // It waits for a file the test makes once attached, so nothing is missed.
  absl::StatusOr<std::string> talker =
      CreateContainer(pod_,
                      ContainerConfig("talker", {"/bin/sh", "-c",
                                                 "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                                                 "echo hello; echo oops >&2; exit 3"}),
                      pod_config_);
  ASSERT_THAT(talker.status(), IsOk());
  ASSERT_THAT(StartContainer(*talker), IsOk());
  v1::AttachRequest req;
  req.set_container_id(*talker);
  req.set_stdout(true);
  req.set_stderr(true);
  v1::AttachResponse resp;
  ASSERT_TRUE(runtime_->Attach(Ctx().get(), req, &resp).ok());
  EXPECT_THAT(resp.url(), HasSubstr("/attach/"));
  // The attach runs in the background; the go file comes once it is there.
  const std::string out = dir_.path() + "/attach.out", err = dir_.path() + "/attach.err";
  ASSERT_EQ(Shell(absl::StrCat("(timeout -s KILL 30 ", BERTH_STREAMCLIENT_PATH, " exec '",
                               resp.url(), "' -stdout -stderr </dev/null >", out, " 2>", err,
                               "; echo $? > ", out, ".rc) &")),
            0);
  usleep(500000);
  ASSERT_THAT(ExecSync(*talker, {"touch", "/tmp/go"}).status(), IsOk());
  absl::StatusOr<std::string> rc;
  for (int i = 0; i < 200 && !(rc = ReadFile(out + ".rc")).ok(); ++i) usleep(50000);
  ASSERT_THAT(rc.status(), IsOk());
  EXPECT_EQ(*rc, "0\n") << ReadFile(err).value_or("");  // the session ends in Success
  EXPECT_EQ(ReadFile(out).value_or(""), "hello\n");
  EXPECT_THAT(ReadFile(err).value_or(""), HasSubstr("oops\n"));
  ASSERT_THAT(WaitState(*talker, v1::CONTAINER_EXITED).status(), IsOk());

  // What a container without stdin or a terminal cannot give.
  req.set_container_id(container_);
  req.set_stdin(true);
  grpc::Status s = runtime_->Attach(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("stdin"));
  req.set_stdin(false);
  req.set_stdout(false);
  req.set_stderr(false);
  EXPECT_EQ(runtime_->Attach(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // An exited container takes no attach.
  req.set_container_id(*talker);
  req.set_stdout(true);
  EXPECT_EQ(runtime_->Attach(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(StreamingTest, PortForwardReachesTheServerInThePodsNetwork) {
  // httpd on 127.0.0.1:8080 inside the pod: the host cannot reach it, the
  // forward can.
  absl::StatusOr<std::string> web = CreateContainer(
      pod_,
      ContainerConfig("web", {"/bin/sh", "-c",
                              "mkdir -p /www && echo forwarded-ok > /www/index.html && "
                              "exec httpd -f -p 127.0.0.1:8080 -h /www"}),
      pod_config_);
  ASSERT_THAT(web.status(), IsOk());
  ASSERT_THAT(StartContainer(*web), IsOk());
  absl::StatusOr<std::string> url;
  ClientRun r;
  for (int i = 0; i < 50; ++i) {  // until httpd listens
    url = PortForwardUrl(pod_);
    ASSERT_THAT(url.status(), IsOk());
    r = Client({"portforward", *url, "-port", "8080", "-connections", "2"},
               "GET /index.html HTTP/1.0\r\n\r\n", 10);
    if (r.rc == 0) break;
    usleep(100000);
  }
  EXPECT_THAT(*url, HasSubstr("/portforward/"));
  EXPECT_EQ(r.rc, 0) << r.err;
  // Two connections, two answers.
  std::vector<std::string> answers = absl::StrSplit(r.out, "forwarded-ok\n");
  EXPECT_EQ(answers.size(), 3u) << r.out;
  EXPECT_THAT(r.out, HasSubstr("200 OK"));

  // Nothing on that port: the dial's error on the error stream.
  url = PortForwardUrl(pod_);
  ASSERT_THAT(url.status(), IsOk());
  r = Client({"portforward", *url, "-port", "8081"}, "x");
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("error forwarding port 8081"));
  EXPECT_THAT(r.err, HasSubstr("Connection refused"));
}

}  // namespace
}  // namespace berth::testing
