// The recording Syscalls fake (tests/support/recording_syscalls.h) checked on
// its own, next to its main user (rootfs_run_test.cc): a wrong record there
// would make every mount-sequence test meaningless.
#include "tests/support/recording_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(RecordingSyscallsTest, FlagsAreSymbolic) {
  EXPECT_EQ(MountFlagsString(0), "0");
  EXPECT_EQ(MountFlagsString(MS_NOEXEC | MS_NOSUID | MS_NODEV), "MS_NOSUID|MS_NODEV|MS_NOEXEC");
  EXPECT_EQ(MountFlagsString(MS_BIND | MS_REMOUNT | MS_RDONLY), "MS_RDONLY|MS_REMOUNT|MS_BIND");
  EXPECT_EQ(MountFlagsString(MS_SLAVE | MS_REC), "MS_REC|MS_SLAVE");
  EXPECT_EQ(MountFlagsString(MS_STRICTATIME | (1ul << 40)), "MS_STRICTATIME|0x10000000000");
  EXPECT_EQ(UmountFlagsString(MNT_DETACH), "MNT_DETACH");
  EXPECT_EQ(UmountFlagsString(0), "0");
  EXPECT_EQ(CloneFlagsString(CLONE_NEWNET | CLONE_NEWNS), "CLONE_NEWNS|CLONE_NEWNET");
}

TEST(RecordingSyscallsTest, FakeFdsNameTheirPaths) {
  RecordingSyscalls sys;
  int root = -1, fd = -1;
  ASSERT_EQ(sys.OpenInRoot(AT_FDCWD, "/tmp/r", true, &root), 0);
  EXPECT_EQ(root, RecordingSyscalls::kFirstFd);
  ASSERT_EQ(sys.OpenInRoot(root, "/dev/pts", true, &fd), 0);
  EXPECT_EQ(fd, RecordingSyscalls::kFirstFd + 1);
  EXPECT_EQ(sys.Mount("devpts", "/proc/self/fd/1001", "devpts", MS_NOSUID, "gid=5"), 0);
  unsigned long flags = 1;
  EXPECT_EQ(sys.MountFlags("/proc/self/fd/1001", &flags), 0);
  EXPECT_EQ(flags, 0u);
  EXPECT_THAT(sys.open_fds(), ElementsAre(Pair(1000, "/tmp/r"), Pair(1001, "/dev/pts")));
  EXPECT_EQ(sys.Close(fd), 0);
  EXPECT_EQ(sys.Mount(nullptr, "/proc/self/fd/1001", nullptr, MS_PRIVATE, nullptr), 0);
  EXPECT_EQ(sys.Close(7), 0);
  EXPECT_EQ(sys.OpenInRoot(5, "/x", false, &fd), 0);
  EXPECT_EQ(sys.Mount("", "/proc/self/fd/99", "", 0, ""), 0);
  EXPECT_THAT(sys.calls(),
              ElementsAre("open /tmp/r dir", "open_in_root /dev/pts dir",
                          "mount devpts -> /dev/pts type=devpts flags=MS_NOSUID data=gid=5",
                          "mount_flags /dev/pts", "close /dev/pts",
                          "mount - -> <closed fd 1001> type=- flags=MS_PRIVATE data=-",
                          "close fd=7", "open_in_root fd=5 /x file",
                          "mount \"\" -> /proc/self/fd/99 type=\"\" flags=0 data=\"\""));
}

TEST(RecordingSyscallsTest, FailOnFiresOnceAndIsRecorded) {
  RecordingSyscalls sys;
  sys.FailOn("/dev/shm", EACCES);
  sys.FailOn("never", EIO);
  int fd = -1;
  EXPECT_EQ(sys.OpenInRoot(AT_FDCWD, "/dev/shm", true, &fd), EACCES);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(sys.OpenInRoot(AT_FDCWD, "/dev/shm", true, &fd), 0);
  EXPECT_EQ(fd, RecordingSyscalls::kFirstFd);
  EXPECT_THAT(sys.calls(), ElementsAre("open /dev/shm dir", "open /dev/shm dir"));
  EXPECT_THAT(sys.PendingFailures(), ElementsAre("never"));
}

TEST(RecordingSyscallsTest, IsDirectoryAndMountFlagsAnswers) {
  RecordingSyscalls sys;
  sys.AddDirectory("/proc/acpi");
  sys.AddFile("/proc/kcore");
  sys.SetMountFlags(MS_NOSUID);
  sys.SetMountFlags("/", MS_RDONLY);
  bool dir = false;
  EXPECT_EQ(sys.IsDirectory("/proc/acpi", &dir), 0);
  EXPECT_TRUE(dir);
  EXPECT_EQ(sys.IsDirectory("/proc/kcore", &dir), 0);
  EXPECT_FALSE(dir);
  EXPECT_EQ(sys.IsDirectory("/proc/nope", &dir), ENOENT);
  unsigned long flags = 0;
  EXPECT_EQ(sys.MountFlags("/", &flags), 0);
  EXPECT_EQ(flags, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(sys.MountFlags("/proc", &flags), 0);
  EXPECT_EQ(flags, static_cast<unsigned long>(MS_NOSUID));
  sys.ClearCalls();
  EXPECT_THAT(sys.calls(), IsEmpty());
  EXPECT_EQ(sys.Chdir("/"), 0);
  EXPECT_THAT(sys.calls(), ElementsAre("chdir /"));
}

TEST(RecordingSyscallsTest, RecordFormats) {
  RecordingSyscalls sys;
  sys.Mknod("/r/dev/null", S_IFCHR | 0666, makedev(1, 3));
  sys.Mknod("/r/dev/sda", S_IFBLK | 0600, makedev(8, 0));
  sys.Symlink("/proc/self/fd", "/r/dev/fd");
  sys.Chown("/r/dev/null", 0, 5);
  sys.PivotRoot(".", ".");
  sys.Umount2(".", MNT_DETACH);
  sys.WriteFile("/proc/sys/net/ipv4/ip_forward", "1\n", 1);
  sys.Sethostname("web-1xyz", 5);
  sys.Setns(4, CLONE_NEWNET);
  sys.Unshare(CLONE_NEWCGROUP);
  EXPECT_THAT(
      sys.calls(),
      ElementsAre("mknod /r/dev/null c 1:3 0666", "mknod /r/dev/sda b 8:0 0600",
                  "symlink /proc/self/fd <- /r/dev/fd", "chown /r/dev/null 0:5", "pivot_root . .",
                  "umount2 . MNT_DETACH", "write_file /proc/sys/net/ipv4/ip_forward 1",
                  "sethostname web-1", "setns fd=4 CLONE_NEWNET", "unshare CLONE_NEWCGROUP"));
}

}  // namespace
}  // namespace berth::testing
