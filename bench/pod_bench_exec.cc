// pod_bench --exec (issue 4's streaming; pod_bench.cc has the overview): one
// pod with its own network namespace and two containers, `sleep` and busybox
// httpd on the pod's 127.0.0.1:8080; then N of each in turn:
//   ExecSync `true`                  the whole RPC
//   Exec `true` over the stream      Exec RPC + connect + upgrade + error and
//                                    stdout streams + the exit status (as
//                                    `crictl exec` without a terminal)
//   port-forward GET                 PortForward RPC + upgrade + a stream pair
//                                    + GET / through it + the answer's end
// The client is agent/streaming's SPDY test client, in this process.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/streaming/spdy_test_client.h"
#include "bench/pod_bench.h"
#include "os/status.h"

namespace berth::podbench {

absl::Status MeasureExec(Bench& b, const Options& o, nlohmann::json* json) {
  Client client(b.socket);
  BERTH_RETURN_IF_ERROR(client.Connect());
  Phase phase;
  std::string pod;
  BERTH_RETURN_IF_ERROR(StartPod(b, client, 0, phase, &pod));
  v1::ListContainersRequest list;
  list.mutable_filter()->set_pod_sandbox_id(pod);
  v1::ListContainersResponse listed;
  BERTH_RETURN_IF_ERROR(
      client.Call("ListContainers", &v1::RuntimeService::Stub::ListContainers, list, &listed));
  if (listed.containers_size() != 1) return absl::InternalError("the pod has no container");
  const std::string container = listed.containers(0).id();
  // httpd beside it.
  v1::CreateContainerRequest create;
  create.set_pod_sandbox_id(pod);
  *create.mutable_sandbox_config() = PodConfig(b, 0);
  v1::ContainerConfig& web = *create.mutable_config();
  web.mutable_metadata()->set_name("web");
  web.mutable_image()->set_image(kImage);
  for (const char* arg : {"/bin/sh", "-c",
                          "mkdir -p /www && echo ok > /www/index.html && "
                          "exec httpd -f -p 127.0.0.1:8080 -h /www"}) {
    web.add_command(arg);
  }
  web.set_log_path("web.log");
  v1::CreateContainerResponse created;
  BERTH_RETURN_IF_ERROR(client.Call("CreateContainer web",
                                    &v1::RuntimeService::Stub::CreateContainer, create, &created));
  v1::StartContainerRequest start;
  start.set_container_id(created.container_id());
  v1::StartContainerResponse started;
  BERTH_RETURN_IF_ERROR(client.Call("StartContainer web", &v1::RuntimeService::Stub::StartContainer,
                                    start, &started));

  Figures sync{"ExecSync true"}, rpc{"Exec RPC"}, stream{"exec true (stream, all)"},
      forward{"port-forward GET"};
  for (int i = 0; i < o.n && !interrupted; ++i) {
    v1::ExecSyncRequest req;
    req.set_container_id(container);
    req.add_cmd("true");
    v1::ExecSyncResponse resp;
    double ms = 0;
    BERTH_RETURN_IF_ERROR(
        client.Call("ExecSync", &v1::RuntimeService::Stub::ExecSync, req, &resp, &ms));
    sync.ms.push_back(ms);
  }
  for (int i = 0; i < o.n && !interrupted; ++i) {
    absl::Status s;
    double rpc_ms = 0;
    double ms = TimeMs([&] {
      v1::ExecRequest req;
      req.set_container_id(container);
      req.add_cmd("true");
      req.set_stdout(true);
      v1::ExecResponse resp;
      s = client.Call("Exec", &v1::RuntimeService::Stub::Exec, req, &resp, &rpc_ms);
      if (!s.ok()) return;
      streaming::SpdyTestClient c;
      if (!absl::StartsWith(c.Upgrade(resp.url(), {"v4.channel.k8s.io"}), "HTTP/1.1 101")) {
        s = absl::InternalError("exec: no upgrade");
        return;
      }
      uint32_t error = c.Open({{"streamType", "error"}});
      c.Open({{"streamType", "stdout"}});
      if (!c.WaitFin(error) || !absl::StrContains(c.data[error], "Success")) {
        s = absl::InternalError(absl::StrCat("exec: ", c.data[error]));
      }
    });
    BERTH_RETURN_IF_ERROR(s);
    rpc.ms.push_back(rpc_ms);
    stream.ms.push_back(ms);
  }
  for (int i = 0; i < o.n * 5 && forward.ms.size() < static_cast<size_t>(o.n) && !interrupted;
       ++i) {
    bool answered = false;
    double ms = TimeMs([&] {
      v1::PortForwardRequest req;
      req.set_pod_sandbox_id(pod);
      req.add_port(8080);
      v1::PortForwardResponse resp;
      if (!client.Call("PortForward", &v1::RuntimeService::Stub::PortForward, req, &resp).ok()) {
        return;
      }
      streaming::SpdyTestClient c;
      if (!absl::StartsWith(c.Upgrade(resp.url(), {"portforward.k8s.io"}), "HTTP/1.1 101")) return;
      uint32_t error = c.Open({{"streamType", "error"}, {"port", "8080"}, {"requestID", "0"}});
      c.Send(error, "", true);
      uint32_t data = c.Open({{"streamType", "data"}, {"port", "8080"}, {"requestID", "0"}});
      c.Send(data, "GET /index.html HTTP/1.0\r\n\r\n", true);
      answered = c.WaitFin(data) && absl::StrContains(c.data[data], "200 OK");
    });
    if (answered) forward.ms.push_back(ms);  // before httpd listens: not timed
  }
  (*json)["exec"] = PrintTable(
      absl::StrCat("exec and port-forward into one running container, ", o.n, " each, one client"),
      {&sync, &rpc, &stream, &forward});
  return TeardownPod(b, client, pod, nullptr);
}

}  // namespace berth::podbench
