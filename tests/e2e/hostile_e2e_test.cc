// Containers that fight their runtime, and state that went bad (issue 17).
// A container whose init SIGSTOPs every other process in its PID namespace
// catches the child the shim clones in for an exec before that child reports
// back: at 6d1084a the shim waited on it forever, so exec and stop hung, and
// a restarted berthd, which asks every shim for its state before it serves,
// never served.
#include <signal.h>
#include <sqlite3.h>

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
  // container can still be stopped and removed. An exec that reported before
  // the loop stopped it is not caught: up to three tries.
  absl::StatusOr<v1::ContainerStatusResponse> st;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto caught = std::async(std::launch::async, [&] { return ExecSync(*id, {"true"}, 5); });
    absl::SleepFor(absl::Seconds(1));
    ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
    (void)caught.get();  // UNAVAILABLE: berthd went
    begin = absl::Now();
    StartBerthd();  // returns once the socket serves
    const absl::Duration restart_took = absl::Now() - begin;
    std::cout << "restart with a caught shim served after " << restart_took << "\n";
    EXPECT_LT(restart_took, absl::Seconds(8));
    st = ContainerStatus(*id);
    ASSERT_THAT(st.status(), IsOk());
    if (st->status().state() == v1::CONTAINER_UNKNOWN) break;
    EXPECT_EQ(st->status().state(), v1::CONTAINER_RUNNING) << "the shim answered: as it said";
  }
  // The shim was still caught (up to its 10 s child deadline) when the new
  // berthd asked it: the container's state is not known, and CRI says so
  // and why, rather than the stale RUNNING of the record.
  EXPECT_EQ(st->status().state(), v1::CONTAINER_UNKNOWN);
  EXPECT_EQ(st->status().reason(), "ShimUnresponsive");
  EXPECT_THAT(st->status().message(), ::testing::HasSubstr("berth-shim did not answer"));

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

// Runs one statement on berthd's database (berthd is down), binding `blob`
// to ?1 when given; the first column of the first row, if any.
std::string Sql(const std::string& db_path, const std::string& sql, const std::string* blob) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    ADD_FAILURE() << "open " << db_path;
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    if (blob != nullptr) {
      sqlite3_bind_blob(st, 1, blob->data(), static_cast<int>(blob->size()), SQLITE_TRANSIENT);
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_blob(st, 0) != nullptr) {
      out.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                 static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// A row torn by a disk, or written by a newer berthd, once stopped berthd
// from starting at all (store.cc: DATA_LOSS for the whole load); an image
// config that no longer parses likewise.
TEST_F(HostileTest, AnUnreadableRowDoesNotStopStartUp) {
  absl::StatusOr<std::string> victim = RunPod(PodConfig("victim"));
  ASSERT_THAT(victim.status(), IsOk());
  absl::StatusOr<std::string> other = RunPod(PodConfig("other"));
  ASSERT_THAT(other.status(), IsOk());
  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  const std::string db = berthd_->root_dir() + "/berth.db";
  const std::string garbage = "\xff\xff\xff\xff not a record";
  const std::string saved =
      Sql(db, "SELECT record FROM sandboxes WHERE id = '" + *victim + "'", nullptr);
  ASSERT_FALSE(saved.empty());
  Sql(db, "UPDATE sandboxes SET record = ?1 WHERE id = '" + *victim + "'", &garbage);
  const std::string config = "{\"rootfs\": 7}";
  Sql(db, "UPDATE images SET config = ?1", &config);

  StartBerthd();  // serves
  absl::StatusOr<std::vector<v1::PodSandbox>> pods = ListPods();
  ASSERT_THAT(pods.status(), IsOk());
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].id(), *other);
  v1::StatusRequest req;
  v1::StatusResponse status;
  grpc::ClientContext ctx;
  ASSERT_TRUE(runtime_->Status(&ctx, req, &status).ok());
  bool said = false;
  for (const v1::RuntimeCondition& c : status.status().conditions()) {
    if (c.type() != "BerthStateReadable") continue;
    said = true;
    EXPECT_FALSE(c.status());
    EXPECT_THAT(c.message(), ::testing::HasSubstr("sandbox `" + *victim + "`: unreadable record"));
    EXPECT_THAT(c.message(), ::testing::HasSubstr("image sha256:"));
  }
  EXPECT_TRUE(said);
  // The demo image, dropped, came back from --import.
  absl::StatusOr<std::string> pod = RunPod(PodConfig("after"));
  ASSERT_THAT(pod.status(), IsOk());
  EXPECT_THAT(CreateContainer(*pod, ContainerConfig("c", {"true"}), PodConfig("after")).status(),
              IsOk());

  // The row put back, the victim is managed again (and cleaned up).
  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  Sql(db, "UPDATE sandboxes SET record = ?1 WHERE id = '" + *victim + "'", &saved);
  StartBerthd();
  pods = ListPods();
  ASSERT_THAT(pods.status(), IsOk());
  EXPECT_EQ(pods->size(), 3u);
}

}  // namespace
}  // namespace berth::testing
