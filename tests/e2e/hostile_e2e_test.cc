// Containers that fight their runtime (issue 17). A container whose init
// SIGSTOPs every other process in its PID namespace catches the child the
// shim clones in for an exec before that child reports back: at 6d1084a the
// shim waited on it forever, so exec and stop hung, and a restarted berthd,
// which asks every shim for its state before it serves, never served.
#include <signal.h>

#include <future>
#include <iostream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

// Stops every process of its PID namespace but itself, over and over; half
// a CPU, so the loop does not starve the node.
v1::ContainerConfig Stopper(const v1::ContainerConfig& base) {
  v1::ContainerConfig c = base;
  c.clear_command();
  for (const char* a : {"/bin/sh", "-c",
                        "trap '' TERM; while :; do for p in /proc/[0-9]*; do n=${p#/proc/}; "
                        "[ \"$n\" -gt 1 ] && kill -STOP \"$n\" 2>/dev/null; done; done"}) {
    c.add_command(a);
  }
  c.mutable_linux()->mutable_resources()->set_cpu_period(100000);
  c.mutable_linux()->mutable_resources()->set_cpu_quota(50000);
  return c;
}

class HostileTest : public LifecycleTest {};

TEST_F(HostileTest, ASigstopLoopCannotFreezeItsShimOrBerthd) {
  v1::PodSandboxConfig pod_config = PodConfig("stopper");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id =
      CreateContainer(*pod, Stopper(ContainerConfig("s", {})), pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());

  // An exec ends, one way or the other, in bounded time (the shim's 10 s
  // child deadline, or the exec's own 5 s timeout once it runs).
  absl::Time begin = absl::Now();
  absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(*id, {"true"}, 5);
  const absl::Duration exec_took = absl::Now() - begin;
  std::cout << "exec into the stopper: " << out.status() << " after " << exec_took << "\n";
  EXPECT_LT(exec_took, absl::Seconds(25));

  // berthd killed while an exec is caught: it serves again at once, and the
  // container can still be stopped and removed.
  auto caught = std::async(std::launch::async, [&] { return ExecSync(*id, {"true"}, 5); });
  absl::SleepFor(absl::Seconds(1));
  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  (void)caught.get();  // UNAVAILABLE: berthd went
  begin = absl::Now();
  StartBerthd();  // returns once the socket serves
  const absl::Duration restart_took = absl::Now() - begin;
  std::cout << "restart with a caught shim served after " << restart_took << "\n";
  EXPECT_LT(restart_took, absl::Seconds(8));
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());

  begin = absl::Now();
  EXPECT_THAT(StopContainer(*id, 2), IsOk());
  EXPECT_LT(absl::Now() - begin, absl::Seconds(25));
  st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_EXITED);
  EXPECT_THAT(RemoveContainer(*id), IsOk());
}

// kubelet's force delete: a second stop with a shorter timeout kills at once
// instead of queueing behind the first one's grace period.
TEST_F(HostileTest, AShorterStopEscalatesPastALongOne) {
  v1::PodSandboxConfig pod_config = PodConfig("stubborn");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id = CreateContainer(
      *pod, ContainerConfig("s", {"/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"}),
      pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  ASSERT_THAT(WaitState(*id, v1::CONTAINER_RUNNING).status(), IsOk());
  auto long_stop = std::async(std::launch::async, [&] { return StopContainer(*id, 3600); });
  absl::SleepFor(absl::Milliseconds(500));
  const absl::Time begin = absl::Now();
  EXPECT_THAT(StopContainer(*id, 0), IsOk());
  EXPECT_LT(absl::Now() - begin, absl::Seconds(10));
  if (long_stop.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Queued behind the first: end it rather than wait out its hour.
    ADD_FAILURE() << "the first stop did not end after the second killed the container";
    (void)berthd_->Stop(SIGKILL);
    (void)long_stop.get();
    StartBerthd();
    return;
  }
  EXPECT_THAT(long_stop.get(), IsOk());
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().exit_code(), 137);
}

}  // namespace
}  // namespace berth::testing
