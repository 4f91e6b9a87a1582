// ReadProcessStats and ReadNetDev on a fake /proc in a temp dir, and once on
// this process's own /proc entry.
#include "metrics/proc_reader.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/fake_cgroupfs.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::metrics {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(ReadProcessStatsTest, FakeProc) {
  TempDir proc;
  FakeProcess(proc, 100, "1", {"/dev/null", "socket:[4242]", "pipe:[17]"});
  FakeProcess(proc, 101, "12", {"socket:[1]", "socket:[2]", "anon_inode:[eventpoll]"});
  // Pid 102 has exited between cgroup.procs and our walk: skipped, no error.
  ProcessStats p = ReadProcessStats({100, 101, 102}, proc.path());
  EXPECT_EQ(p.processes, 2u);
  EXPECT_EQ(p.threads, 13u);
  EXPECT_EQ(p.fds, 6u);
  EXPECT_EQ(p.sockets, 3u);
  EXPECT_THAT(p.errors, IsEmpty());
}

TEST(ReadProcessStatsTest, BadStatusIsAnError) {
  TempDir proc;
  FakeProcess(proc, 100, "many", {});
  ProcessStats p = ReadProcessStats({100}, proc.path());
  EXPECT_EQ(p.processes, 0u);
  ASSERT_THAT(p.errors, SizeIs(1));
  EXPECT_THAT(p.errors[0], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/100/status")));
}

TEST(ReadProcessStatsTest, OwnProcess) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ProcessStats p = ReadProcessStats({::getpid()});
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_THAT(p.errors, IsEmpty());
  EXPECT_EQ(p.processes, 1u);
  EXPECT_GE(p.threads, 1u);
  EXPECT_GE(p.fds, 5u);  // stdio, the socket pair
  EXPECT_GE(p.sockets, 2u);
}

TEST(ReadNetDevTest, FakeAndMissing) {
  TempDir proc;
  FakeProcess(proc, 100, "1", {});
  auto ifaces = ReadNetDev(100, proc.path());
  ASSERT_THAT(ifaces, IsOk());
  ASSERT_THAT(*ifaces, SizeIs(3));
  EXPECT_EQ((*ifaces)[2].name, "eth0");
  EXPECT_EQ((*ifaces)[2].rx_bytes, 48278430u);
  EXPECT_THAT(ReadNetDev(999, proc.path()), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ReadNetDevTest, OwnProcess) {
  auto ifaces = ReadNetDev(::getpid());
  ASSERT_THAT(ifaces, IsOk());
  for (const NetInterfaceStats& i : *ifaces) EXPECT_NE(i.name, "lo");
}

TEST(CountOpenFdsTest, CountsTheRealFdDirAndAFakeOne) {
  // procfs: the count the kernel reports (or a listing on kernels before 6.2);
  // a listing holds one more fd of its own while it runs.
  absl::StatusOr<std::vector<std::string>> listed = ListDir("/proc/self/fd");
  ASSERT_TRUE(listed.ok());
  absl::StatusOr<uint64_t> counted = CountOpenFds("/proc/self/fd");
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_GE(*counted + 1, listed->size());
  EXPECT_LE(*counted, listed->size());
  int extra = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(extra, 0);
  EXPECT_EQ(*CountOpenFds("/proc/self/fd"), *counted + 1);
  ::close(extra);
  // Anywhere else the entries are listed.
  berth::testing::TempDir fake;
  for (const char* name : {"0", "1", "7"}) {
    ASSERT_EQ(::symlink("/dev/null", fake.Join(name).c_str()), 0);
  }
  EXPECT_EQ(*CountOpenFds(fake.path()), 3u);
}

}  // namespace
}  // namespace berth::metrics
