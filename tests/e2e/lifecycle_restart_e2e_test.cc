// berthd killed with SIGKILL and started again (DESIGN.md, Agent restart; Host
// reboot): running containers keep running and are re-adopted, one that exited
// meanwhile shows its exit, a loop of create/start/stop/remove cut at a random
// moment leaves a true state and nothing orphaned, and an emptied state dir
// (a reboot) shows everything exited. Also GetContainerEvents.
#include <signal.h>

#include <atomic>
#include <random>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::testing::AnyOf;
using ::testing::SizeIs;

TEST_F(LifecycleTest, RunningContainersSurviveAKilledBerthd) {
  v1::PodSandboxConfig pod_config = PodConfig("crash");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> keeps =
      CreateContainer(*pod, ContainerConfig("keeps", {"/bin/sleep", "1000"}), pod_config);
  ASSERT_THAT(keeps.status(), IsOk());
  ASSERT_THAT(StartContainer(*keeps), IsOk());
  absl::StatusOr<std::string> ends = CreateContainer(
      *pod, ContainerConfig("ends", {"/bin/sh", "-c", "sleep 1; exit 3"}), pod_config);
  ASSERT_THAT(ends.status(), IsOk());
  ASSERT_THAT(StartContainer(*ends), IsOk());
  absl::StatusOr<std::string> created =
      CreateContainer(*pod, ContainerConfig("created", {"/bin/true"}), pod_config);
  ASSERT_THAT(created.status(), IsOk());

  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  absl::SleepFor(absl::Milliseconds(1500));  // "ends" exits while berthd is away
  StartBerthd();

  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*keeps);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_RUNNING);
  absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(*keeps, {"echo", "still here"});
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "still here\n");
  st = ContainerStatus(*ends);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st->status().exit_code(), 3);
  EXPECT_EQ(st->status().reason(), "Error");
  EXPECT_GT(st->status().finished_at(), st->status().started_at());
  st = ContainerStatus(*created);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_CREATED);
  // The re-adopted container is watched again: its exit is seen.
  ASSERT_THAT(StopContainer(*keeps, 0), IsOk());
  st = ContainerStatus(*keeps);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st->status().exit_code(), 137);
  // A created one can still be started.
  ASSERT_THAT(StartContainer(*created), IsOk());
  EXPECT_THAT(WaitState(*created, v1::CONTAINER_EXITED).status(), IsOk());
}

TEST_F(LifecycleTest, KillingBerthdDuringALifecycleLoopLeavesATrueState) {
  v1::PodSandboxConfig pod_config = PodConfig("loop", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> stop{false};
    std::thread loop([&] {
      for (int i = 0; !stop; ++i) {
        v1::ContainerConfig c =
            ContainerConfig(absl::StrCat("c", round, "-", i), {"/bin/sleep", "1000"});
        absl::StatusOr<std::string> id = CreateContainer(*pod, c, pod_config);
        if (!id.ok()) return;
        if (!StartContainer(*id).ok()) return;
        if (i % 2 == 0) continue;  // some stay running
        if (!StopContainer(*id, 0).ok()) return;
        if (!RemoveContainer(*id).ok()) return;
      }
    });
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));
    ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
    stop = true;
    loop.join();
    StartBerthd();
    absl::StatusOr<std::vector<v1::Container>> all = ListContainers();
    ASSERT_THAT(all.status(), IsOk());
    for (const v1::Container& c : *all) {
      absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(c.id(), true);
      ASSERT_THAT(st.status(), IsOk());
      // Created, running (and then answering exec) or exited (killed by us): never unknown.
      EXPECT_THAT(st->status().state(),
                  AnyOf(v1::CONTAINER_CREATED, v1::CONTAINER_RUNNING, v1::CONTAINER_EXITED));
      if (st->status().state() == v1::CONTAINER_RUNNING) {
        EXPECT_THAT(ExecSync(c.id(), {"true"}).status(), IsOk()) << c.id();
      }
    }
    // Every container dir on disk belongs to a listed container.
    absl::StatusOr<std::vector<std::string>> dirs = ListDir(berthd_->root_dir() + "/containers");
    ASSERT_THAT(dirs.status(), IsOk());
    EXPECT_EQ(dirs->size(), all->size());
  }
}

TEST_F(LifecycleTest, AfterARebootEverythingIsExited) {
  v1::PodSandboxConfig pod_config = PodConfig("reboot");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id =
      CreateContainer(*pod, ContainerConfig("app", {"/bin/sleep", "1000"}), pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id, true);
  ASSERT_THAT(st.status(), IsOk());
  nlohmann::json info = nlohmann::json::parse(st->info().at("info"));
  const int shim = info.at("shimPid").get<int>();
  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  // The reboot: every process of the node gone, /run empty (its mounts too).
  ASSERT_EQ(kill(shim, SIGKILL), 0);
  ASSERT_EQ(Shell(absl::StrCat("for m in $(awk '{print $5}' /proc/self/mountinfo | grep '^",
                               berthd_->state_dir(), "' | sort -r); do umount -l $m; done; rm -rf ",
                               berthd_->state_dir(), "/*")),
            0);
  StartBerthd();
  st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st->status().reason(), "Unknown");
  absl::StatusOr<v1::PodSandboxStatusResponse> ps = PodStatus(*pod);
  ASSERT_THAT(ps.status(), IsOk());
  EXPECT_EQ(ps->status().state(), v1::SANDBOX_NOTREADY);
}

TEST_F(LifecycleTest, GetContainerEventsStreamsTheLifecycle) {
  grpc::ClientContext ctx;
  auto stream = runtime_->GetContainerEvents(&ctx, v1::GetEventsRequest());
  absl::SleepFor(absl::Milliseconds(200));  // subscribed before the first event
  v1::PodSandboxConfig pod_config = PodConfig("events", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id =
      CreateContainer(*pod, ContainerConfig("app", {"/bin/true"}), pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  ASSERT_THAT(WaitState(*id, v1::CONTAINER_EXITED).status(), IsOk());
  ASSERT_THAT(RemoveContainer(*id), IsOk());
  std::vector<v1::ContainerEventType> seen;
  v1::ContainerEventResponse event;
  while (seen.size() < 6 && stream->Read(&event)) {
    if (event.container_id() == *pod) {
      EXPECT_EQ(event.pod_sandbox_status().id(), *pod);
      continue;
    }
    EXPECT_EQ(event.container_id(), *id);
    EXPECT_GT(event.created_at(), 0);
    seen.push_back(event.container_event_type());
    if (event.container_event_type() == v1::CONTAINER_DELETED_EVENT) break;
  }
  EXPECT_EQ(seen, (std::vector<v1::ContainerEventType>{
                      v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                      v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
  ctx.TryCancel();
}

}  // namespace
}  // namespace berth::testing
