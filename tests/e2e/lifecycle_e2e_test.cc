// The CRI RuntimeService of a real berthd over its unix socket, as crictl
// drives it: runp, create, start, ps, exec, logs, stop, rm, stopp, rmp; the
// errors; OOM; custom stop signals; events. Each test ends with the leak check
// (lifecycle_fixture.h).
#include <signal.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "os/cgroup/layout.h"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST_F(LifecycleTest, CrictlLifecycle) {
  v1::PodSandboxConfig pod_config = PodConfig("web");
  pod_config.mutable_dns_config()->add_servers("10.10.10.10");
  pod_config.mutable_dns_config()->add_searches("example.com");
  pod_config.mutable_dns_config()->add_options("ndots:8");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  EXPECT_EQ(pod->size(), 64u);

  absl::StatusOr<v1::PodSandboxStatusResponse> ps = PodStatus(pod->substr(0, 12));
  ASSERT_THAT(ps.status(), IsOk());
  EXPECT_EQ(ps->status().state(), v1::SANDBOX_READY);
  EXPECT_GT(ps->status().created_at(), 0);
  EXPECT_EQ(ps->status().labels().at("app"), "web");
  EXPECT_EQ(ps->status().annotations().at("note"), "kept verbatim");
  EXPECT_THAT(ps->info().at("info"), HasSubstr("cgroupPath"));

  v1::ContainerConfig config =
      ContainerConfig("app", {"/bin/sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"});
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_CREATED);
  EXPECT_EQ(st->status().image().image(), "docker.io/berth/demo:latest");
  EXPECT_EQ(st->status().log_path(), dir_.Join("logs/web/app/0.log"));
  ASSERT_THAT(StartContainer(*id), IsOk());

  v1::ContainerFilter running;
  running.mutable_state()->set_state(v1::CONTAINER_RUNNING);
  running.set_pod_sandbox_id(*pod);
  absl::StatusOr<std::vector<v1::Container>> list = ListContainers(running);
  ASSERT_THAT(list.status(), IsOk());
  ASSERT_THAT(*list, SizeIs(1));
  EXPECT_EQ((*list)[0].id(), *id);
  EXPECT_EQ((*list)[0].labels().at("container"), "app");

  // exec: the pod's hostname and DNS, a failing command's exit code.
  absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(*id, {"hostname"});
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "web-host\n");
  out = ExecSync(*id, {"cat", "/etc/resolv.conf"});
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "nameserver 10.10.10.10\nsearch example.com\noptions ndots:8\n");
  out = ExecSync(*id, {"/bin/sh", "-c", "echo no >&2; exit 7"});
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->exit_code(), 7);
  EXPECT_EQ(out->stderr(), "no\n");
  // A timed-out exec is DEADLINE_EXCEEDED and leaves nothing running.
  EXPECT_THAT(ExecSync(*id, {"/bin/sh", "-c", "sleep 100 & sleep 100"}, 1).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // Only the container's own sleep runs. (The killed background sleep may stay
  // a zombie: it was reparented to the container's init, `sleep`, which never
  // reaps - as in any container without an init that reaps.)
  out = ExecSync(*id, {"/bin/sh", "-c", "ps -o stat,comm | grep -v '^Z' | grep -c sleep"});
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "1\n");

  // logs, in CRI format at the path CRI asked for.
  absl::StatusOr<std::string> log = ReadFile(dir_.Join("logs/web/app/0.log"));
  ASSERT_THAT(log.status(), IsOk());
  EXPECT_THAT(*log, HasSubstr(" stdout F hello\n"));
  EXPECT_THAT(*log, HasSubstr(" stderr F oops\n"));

  // stop: sleep as PID 1 ignores SIGTERM, so SIGKILL after the 1 s timeout.
  absl::Time before = absl::Now();
  ASSERT_THAT(StopContainer(*id, 1), IsOk());
  EXPECT_GE(absl::Now() - before, absl::Seconds(1));
  st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st->status().exit_code(), 137);
  EXPECT_EQ(st->status().reason(), "Error");
  EXPECT_GE(st->status().finished_at(), st->status().started_at());
  EXPECT_GT(st->status().started_at(), st->status().created_at());
  EXPECT_THAT(StopContainer(*id, 1), IsOk());  // idempotent

  ASSERT_THAT(RemoveContainer(*id), IsOk());
  EXPECT_THAT(RemoveContainer(*id), IsOk());  // idempotent
  EXPECT_THAT(ContainerStatus(*id).status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(StopPod(*pod), IsOk());
  EXPECT_THAT(StopPod(*pod), IsOk());
  ps = PodStatus(*pod);
  ASSERT_THAT(ps.status(), IsOk());
  EXPECT_EQ(ps->status().state(), v1::SANDBOX_NOTREADY);
  ASSERT_THAT(RemovePod(*pod), IsOk());
  EXPECT_THAT(RemovePod(*pod), IsOk());
  EXPECT_THAT(PodStatus(*pod).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LifecycleTest, CustomStopSignalAndCompletedExit) {
  v1::PodSandboxConfig pod_config = PodConfig("sig", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = ContainerConfig(
      "trap",
      {"/bin/sh", "-c", "trap 'exit 42' USR1; echo ready; while true; do sleep 0.05; done"});
  v1::Signal usr1;
  ASSERT_TRUE(v1::Signal_Parse("SIGUSR1", &usr1));
  config.set_stop_signal(usr1);
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  // Wait for the trap to be set.
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> log = ReadFile(dir_.Join("logs/sig/trap/0.log"));
    if (log.ok() && log->find("ready") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_THAT(StopContainer(*id, 30), IsOk());
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().exit_code(), 42);
  EXPECT_EQ(st->status().reason(), "Error");
  EXPECT_EQ(st->status().stop_signal(), usr1);

  absl::StatusOr<std::string> done =
      CreateContainer(*pod, ContainerConfig("done", {"/bin/true"}), pod_config);
  ASSERT_THAT(done.status(), IsOk());
  ASSERT_THAT(StartContainer(*done), IsOk());
  absl::StatusOr<v1::ContainerStatus> exited = WaitState(*done, v1::CONTAINER_EXITED);
  ASSERT_THAT(exited.status(), IsOk());
  EXPECT_EQ(exited->exit_code(), 0);
  EXPECT_EQ(exited->reason(), "Completed");
}

TEST_F(LifecycleTest, OomKilledContainerReportsOOMKilled) {
  v1::PodSandboxConfig pod_config = PodConfig("oom", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = ContainerConfig("hog", {"/probe", "alloc", "256"});
  v1::Mount* m = config.add_mounts();
  m->set_host_path(BERTH_PROBE_PATH);
  m->set_container_path("/probe");
  m->set_readonly(true);
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  absl::StatusOr<v1::ContainerStatus> st = WaitState(*id, v1::CONTAINER_EXITED);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->exit_code(), 137);
  EXPECT_EQ(st->reason(), "OOMKilled");
  EXPECT_EQ(st->resources().linux().memory_limit_in_bytes(), 16 << 20);
}

// The cgroupfs driver (this host is not pure v2 with systemd): RuntimeConfig
// says so, a slice name is refused naming the field, and a cgroup_parent is
// the client's: its containers' cgroups go below it, and it stays when the
// pod goes (other pods may share it; kubelet removes its own).
TEST_F(LifecycleTest, CgroupParentFollowsTheCgroupfsDriver) {
  v1::RuntimeConfigRequest creq;
  v1::RuntimeConfigResponse cresp;
  ASSERT_TRUE(runtime_->RuntimeConfig(Ctx().get(), creq, &cresp).ok());
  EXPECT_EQ(cresp.linux().cgroup_driver(), v1::CGROUPFS);

  v1::PodSandboxConfig slice = PodConfig("slice", /*host_network=*/true);
  slice.mutable_linux()->set_cgroup_parent("kubepods-burstable-pod1.slice");
  EXPECT_THAT(RunPod(slice).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("config.linux.cgroup_parent `kubepods-burstable-pod1.slice`: "
                                 "berth uses the cgroupfs driver")));

  v1::PodSandboxConfig parent = PodConfig("parent", /*host_network=*/true);
  const std::string path = cgroup_root_ + "/kubepods/pod1";
  parent.mutable_linux()->set_cgroup_parent(path);
  absl::StatusOr<std::string> pod = RunPod(parent);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id =
      CreateContainer(*pod, ContainerConfig("c", {"sleep", "1000"}), parent);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  const std::string memory = "/sys/fs/cgroup/memory" + path;
  EXPECT_EQ(::access((memory + "/" + *id).c_str(), F_OK), 0);
  ASSERT_THAT(StopPod(*pod), IsOk());
  ASSERT_THAT(RemovePod(*pod), IsOk());
  EXPECT_NE(::access((memory + "/" + *id).c_str(), F_OK), 0);
  EXPECT_EQ(::access(memory.c_str(), F_OK), 0) << memory << ": the client's, removed";
  // kubelet's part, here the test's (TearDown finds any other leftover).
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  ASSERT_THAT(layout.status(), IsOk());
  for (const CgroupHierarchy& h : layout->hierarchies()) {
    ::rmdir((h.mount_point + path).c_str());
    ::rmdir((h.mount_point + cgroup_root_ + "/kubepods").c_str());
  }
}

TEST_F(LifecycleTest, BadRequestsGetClearErrorsAndLeaveNothing) {
  v1::PodSandboxConfig pod_config = PodConfig("bad");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  EXPECT_THAT(RunPod(pod_config).status(), StatusIs(absl::StatusCode::kAlreadyExists));
  v1::PodSandboxConfig unsafe = PodConfig("unsafe");
  (*unsafe.mutable_linux()->mutable_sysctls())["kernel.panic"] = "1";
  EXPECT_THAT(RunPod(unsafe).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kernel.panic")));
  v1::PodSandboxConfig nameless = PodConfig("");
  EXPECT_THAT(RunPod(nameless).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.metadata.name")));

  v1::ContainerConfig config = ContainerConfig("c", {"/bin/sleep", "100"});
  EXPECT_THAT(CreateContainer("nosuchpod", config, pod_config).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("pod_sandbox_id")));
  v1::ContainerConfig no_image = config;
  no_image.mutable_image()->set_image("docker.io/library/nope:1");
  EXPECT_THAT(CreateContainer(*pod, no_image, pod_config).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.image.image")));
  v1::ContainerConfig bad_mount = config;
  v1::Mount* m = bad_mount.add_mounts();
  m->set_host_path(dir_.Join("missing"));
  m->set_container_path("/data");
  EXPECT_THAT(CreateContainer(*pod, bad_mount, pod_config).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.mounts[0].host_path")));
  // A failed create left no trace: the name is free and no dirs stayed.
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  EXPECT_THAT(CreateContainer(*pod, config, pod_config).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  absl::StatusOr<std::vector<std::string>> dirs = ListDir(berthd_->root_dir() + "/containers");
  ASSERT_THAT(dirs.status(), IsOk());
  EXPECT_THAT(*dirs, SizeIs(1));
  // A program that does not exist fails at start, naming it.
  absl::StatusOr<std::string> missing =
      CreateContainer(*pod, ContainerConfig("missing", {"/no/such/program"}), pod_config);
  ASSERT_THAT(missing.status(), IsOk());
  EXPECT_THAT(StartContainer(*missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/no/such/program")));
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*missing);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st->status().reason(), "StartError");
  EXPECT_THAT(StartContainer(*missing), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ExecSync(*missing, {"true"}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(LifecycleTest, SharedPidNamespaceHasAPauseInit) {
  v1::PodSandboxConfig pod_config = PodConfig("shared");
  pod_config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::POD);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  std::vector<std::string> ids;
  for (const char* name : {"a", "b"}) {
    absl::StatusOr<std::string> id =
        CreateContainer(*pod, ContainerConfig(name, {"/bin/sleep", "1000"}), pod_config);
    ASSERT_THAT(id.status(), IsOk());
    ASSERT_THAT(StartContainer(*id), IsOk());
    ids.push_back(*id);
  }
  absl::StatusOr<v1::ExecSyncResponse> ps = ExecSync(ids[0], {"/bin/sh", "-c", "ps -o pid,comm"});
  ASSERT_THAT(ps.status(), IsOk());
  EXPECT_THAT(ps->stdout(), HasSubstr("    1 pause"));
  // Both sleeps: the other container's process is visible in the shared namespace.
  EXPECT_EQ(std::count(ps->stdout().begin(), ps->stdout().end(), 's') >= 2, true);
  absl::StatusOr<v1::ExecSyncResponse> n =
      ExecSync(ids[1], {"/bin/sh", "-c", "ps -o comm | grep -c sleep"});
  ASSERT_THAT(n.status(), IsOk());
  EXPECT_EQ(n->stdout(), "2\n");
  // Not PID 1, so SIGTERM (the default stop signal) ends it at once.
  ASSERT_THAT(StopContainer(ids[0], 30), IsOk());
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(ids[0]);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().exit_code(), 143);
}

TEST_F(LifecycleTest, ContainersOfAPodShareItsDevShm) {
  v1::PodSandboxConfig pod_config = PodConfig("shm");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  std::vector<std::string> ids;
  for (const char* name : {"writer", "reader"}) {
    absl::StatusOr<std::string> id =
        CreateContainer(*pod, ContainerConfig(name, {"/bin/sleep", "1000"}), pod_config);
    ASSERT_THAT(id.status(), IsOk());
    ASSERT_THAT(StartContainer(*id), IsOk());
    ids.push_back(*id);
  }
  absl::StatusOr<v1::ExecSyncResponse> w =
      ExecSync(ids[0], {"/bin/sh", "-c", "echo hello > /dev/shm/seg && stat -c %a /dev/shm"});
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_EQ(w->exit_code(), 0) << w->stderr();
  EXPECT_EQ(w->stdout(), "1777\n");
  absl::StatusOr<v1::ExecSyncResponse> r =
      ExecSync(ids[1], {"/bin/sh", "-c", "cat /dev/shm/seg; grep ' /dev/shm ' /proc/mounts"});
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_THAT(r->stdout(), HasSubstr("hello\n"));
  EXPECT_THAT(r->stdout(), HasSubstr("nosuid,nodev,noexec"));
  // Another pod sees nothing of it.
  v1::PodSandboxConfig other_config = PodConfig("other");
  absl::StatusOr<std::string> other = RunPod(other_config);
  ASSERT_THAT(other.status(), IsOk());
  absl::StatusOr<std::string> o =
      CreateContainer(*other, ContainerConfig("o", {"/bin/sleep", "1000"}), other_config);
  ASSERT_THAT(o.status(), IsOk());
  ASSERT_THAT(StartContainer(*o), IsOk());
  absl::StatusOr<v1::ExecSyncResponse> none = ExecSync(*o, {"/bin/ls", "/dev/shm"});
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_EQ(none->stdout(), "");
  // Stopping the pod takes its /dev/shm down (the leak check after the test
  // finds no mount under the test's dirs).
  ASSERT_THAT(StopPod(*pod), IsOk());
  ASSERT_THAT(RemovePod(*pod), IsOk());
}

TEST_F(LifecycleTest, UpdateResourcesAndReopenLog) {
  v1::PodSandboxConfig pod_config = PodConfig("upd", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = ContainerConfig(
      "ticker", {"/bin/sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done"});
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());

  v1::UpdateContainerResourcesRequest update;
  update.set_container_id(*id);
  update.mutable_linux()->set_memory_limit_in_bytes(32 << 20);
  update.mutable_linux()->set_cpu_period(100000);
  update.mutable_linux()->set_cpu_quota(50000);
  v1::UpdateContainerResourcesResponse updated;
  grpc::Status s = runtime_->UpdateContainerResources(Ctx().get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id, true);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().resources().linux().memory_limit_in_bytes(), 32 << 20);
  EXPECT_EQ(st->status().resources().linux().cpu_quota(), 50000);
  // The kernel has it: v1 memory.limit_in_bytes, or v2 memory.max (hosts without v1 memory).
  const std::string cgroup = nlohmann::json::parse(st->info().at("info")).at("cgroupPath");
  absl::StatusOr<std::string> limit =
      ReadFile("/sys/fs/cgroup/memory" + cgroup + "/memory.limit_in_bytes");
  if (!limit.ok()) limit = ReadFile("/sys/fs/cgroup" + cgroup + "/memory.max");
  ASSERT_THAT(limit.status(), IsOk());
  EXPECT_EQ(*limit, absl::StrCat(32 << 20, "\n"));

  // kubelet's rotation: rename the live file, ask for a reopen, the new file grows.
  const std::string log = dir_.Join("logs/upd/ticker/0.log");
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  v1::ReopenContainerLogRequest reopen;
  reopen.set_container_id(*id);
  v1::ReopenContainerLogResponse reopened;
  s = runtime_->ReopenContainerLog(Ctx().get(), reopen, &reopened);
  ASSERT_TRUE(s.ok()) << s.error_message();
  absl::StatusOr<std::string> rotated = ReadFile(log + ".1");
  ASSERT_THAT(rotated.status(), IsOk());
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<std::string> fresh = ReadFile(log);
  ASSERT_THAT(fresh.status(), IsOk());
  EXPECT_THAT(*fresh, HasSubstr(" stdout F line"));
  absl::StatusOr<std::string> rotated_later = ReadFile(log + ".1");
  ASSERT_THAT(rotated_later.status(), IsOk());
  EXPECT_EQ(*rotated_later, *rotated);  // the old file stopped growing

  ASSERT_THAT(StopContainer(*id, 0), IsOk());
  s = runtime_->ReopenContainerLog(Ctx().get(), reopen, &reopened);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  s = runtime_->UpdateContainerResources(Ctx().get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace berth::testing
