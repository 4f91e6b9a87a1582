// The syscall seam for code that mutates mount and namespace state (STYLE.md 4).
//
// The shim's container init runs its mount plan and namespace joins through a
// Syscalls&: RealSyscalls makes the calls, tests pass a recording fake
// (tests/support/recording_syscalls.h) and check the exact sequence.
//
// Every method returns 0 or an errno value (never -1 + errno) and must be safe to
// call in a child forked from a single-threaded process: no allocation in
// RealSyscalls, no locks.
//
//   RealSyscalls sys;
//   if (int err = sys.Mount("proc", "/proc", "proc", MS_NOSUID, nullptr)) return err;
#pragma once

#include <sys/types.h>

namespace berth {

class Syscalls {
 public:
  virtual ~Syscalls() = default;

  // mount(2), umount2(2).
  virtual int Mount(const char* source, const char* target, const char* fstype, unsigned long flags,
                    const char* data) = 0;
  virtual int Umount2(const char* target, int flags) = 0;
  // Opens `path` inside the tree rooted at `root_fd` without leaving it
  // (openat2 RESOLVE_IN_ROOT: symlinks and ".." resolve as if root_fd were "/"),
  // creating missing directories on the way and, with `directory` false, an
  // empty file at the end. *fd gets an O_PATH descriptor to mount onto.
  // With root_fd AT_FDCWD, `path` (a host path) is opened as it is.
  virtual int OpenInRoot(int root_fd, const char* path, bool directory, int* fd) = 0;
  virtual int Close(int fd) = 0;
  virtual int Mknod(const char* path, mode_t mode, dev_t dev) = 0;
  virtual int Symlink(const char* target, const char* link) = 0;
  // lchown(2): a symlink at `path` is not followed.
  virtual int Chown(const char* path, uid_t uid, gid_t gid) = 0;
  // pivot_root(2): makes `new_root` the root and puts the old root at `put_old`.
  virtual int PivotRoot(const char* new_root, const char* put_old) = 0;
  virtual int Chdir(const char* path) = 0;
  // fchdir(2); an O_PATH directory fd will do.
  virtual int Fchdir(int fd) = 0;
  // The MS_* flags the kernel reports for the mount at `path` (statvfs(3)
  // f_flag translated), so a remount can keep the ones it may not drop.
  virtual int MountFlags(const char* path, unsigned long* flags) = 0;
  // Whether `path` is a directory (0 and *dir set) or ENOENT etc.
  virtual int IsDirectory(const char* path, bool* dir) = 0;
  virtual int Sethostname(const char* name, size_t len) = 0;
  // Writes `data` to an existing file (a sysctl under /proc/sys).
  virtual int WriteFile(const char* path, const char* data, size_t len) = 0;
  // setns(2), unshare(2).
  virtual int Setns(int fd, int nstype) = 0;
  virtual int Unshare(int flags) = 0;
};

class RealSyscalls final : public Syscalls {
 public:
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
};

}  // namespace berth
