// A recording fake of the Syscalls seam (os/syscalls.h; STYLE.md 4 and 15, after
// youki's syscall/test.rs): each call becomes one readable line, so a test checks
// a mount sequence as a list of strings, and any call can be made to fail.
//
//   RecordingSyscalls sys;
//   sys.AddDirectory("/proc/acpi");
//   sys.FailOn("-> /dev/pts", EPERM);        // the first matching call fails
//   int err = RunRootfs(plan, sys, &stage, &index);
//   EXPECT_THAT(sys.calls(), Contains("mount devpts -> /dev/pts type=devpts "
//                                     "flags=MS_NOSUID|MS_NOEXEC data=newinstance,..."));
//
// Record formats (flags are symbolic, absent strings are "-"):
//   mount <source> -> <target> type=<fstype> flags=<MS_*|...> data=<data>
//   umount2 <target> <MNT_*|...|0>
//   open <host path> dir|file               OpenInRoot(AT_FDCWD, ...)
//   open_in_root <path> dir|file            OpenInRoot(an fd this fake gave out, ...)
//   open_in_root fd=<n> <path> dir|file     OpenInRoot(an fd it did not give out, ...)
//   close <path>                            (or close fd=<n> for an unknown fd)
//   mknod <path> c|b|p|s|- <major>:<minor> <perm, octal>
//   symlink <target> <- <link>
//   chown <path> <uid>:<gid>
//   pivot_root <new_root> <put_old>
//   chdir <path>
//   mount_flags <path>
//   is_directory <path>
//   sethostname <name>
//   write_file <path> <data>
//   setns fd=<n> <CLONE_NEW*>
//   unshare <CLONE_NEW*|...>
//
// OpenInRoot hands out fake fds 1000, 1001, ... and remembers the path each
// names; a later "/proc/self/fd/<n>" in any path argument is recorded as that
// path ("mount tmpfs -> /dev ..."), or as "<closed fd n>" once n was closed, so a
// use after close shows up in the record. open_fds() tells what was not closed.
//
// Not thread-safe; one per test.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "os/syscalls.h"

namespace berth::testing {

// "MS_BIND|MS_REC", "0"; unknown bits are appended in hex.
std::string MountFlagsString(unsigned long flags);
// "MNT_DETACH", "0".
std::string UmountFlagsString(int flags);
// "CLONE_NEWNS|CLONE_NEWUTS", "0".
std::string CloneFlagsString(int flags);

class RecordingSyscalls : public Syscalls {
 public:
  static constexpr int kFirstFd = 1000;

  // Every call so far, in order, failed ones included.
  const std::vector<std::string>& calls() const { return calls_; }
  void ClearCalls() { calls_.clear(); }

  // The first call from now on whose record contains `substring` returns `err`
  // (and, for OpenInRoot, gives no fd). Each FailOn fires once; several may wait.
  void FailOn(std::string substring, int err);
  // FailOn()s that have not fired yet.
  std::vector<std::string> PendingFailures() const;

  // What MountFlags reports: `flags` for every path, or for one path (recorded
  // form, so a container path for a fake fd's /proc/self/fd/<n>).
  void SetMountFlags(unsigned long flags) { default_mount_flags_ = flags; }
  void SetMountFlags(std::string path, unsigned long flags);

  // What IsDirectory reports: true for directories, false for files, ENOENT for
  // any other path.
  void AddDirectory(std::string path) { dirs_.insert(std::move(path)); }
  void AddFile(std::string path) { files_.insert(std::move(path)); }

  // Fake fds given out and not closed, with their paths.
  std::map<int, std::string> open_fds() const;

  int Mount(const char* source, const char* target, const char* fstype, unsigned long flags,
            const char* data) override;
  int Umount2(const char* target, int flags) override;
  int OpenInRoot(int root_fd, const char* path, bool directory, int* fd) override;
  int Close(int fd) override;
  int Mknod(const char* path, mode_t mode, dev_t dev) override;
  int Symlink(const char* target, const char* link) override;
  int Chown(const char* path, uid_t uid, gid_t gid) override;
  int PivotRoot(const char* new_root, const char* put_old) override;
  int Chdir(const char* path) override;
  int Fchdir(int fd) override;
  int MountFlags(const char* path, unsigned long* flags) override;
  int IsDirectory(const char* path, bool* dir) override;
  int Sethostname(const char* name, size_t len) override;
  int WriteFile(const char* path, const char* data, size_t len) override;
  int Setns(int fd, int nstype) override;
  int Unshare(int flags) override;

 private:
  struct Failure {
    std::string substring;
    int err;
    bool fired = false;
  };
  struct FakeFd {
    std::string path;
    bool open = true;
  };

  // Records `call`; the errno of the first pending FailOn it matches, or 0.
  int Record(std::string call);
  // `path` with a fake fd's /proc/self/fd/<n> replaced by its path; "-" for null.
  std::string Show(const char* path) const;

  std::vector<std::string> calls_;
  std::vector<Failure> failures_;
  std::map<int, FakeFd> fds_;
  int next_fd_ = kFirstFd;
  unsigned long default_mount_flags_ = 0;
  std::map<std::string, unsigned long> mount_flags_;
  std::set<std::string> dirs_;
  std::set<std::string> files_;
};

}  // namespace berth::testing
