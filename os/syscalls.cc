#include "os/syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace berth {
namespace {

int Check(int rc) { return rc == 0 ? 0 : errno; }

int OpenAt2(int dirfd, const char* path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
  } while (fd < 0 && errno == EAGAIN);
  return static_cast<int>(fd);
}

}  // namespace

int RealSyscalls::Mount(const char* source, const char* target, const char* fstype,
                        unsigned long flags, const char* data) {
  return Check(mount(source, target, fstype, flags, data));
}

int RealSyscalls::Umount2(const char* target, int flags) { return Check(umount2(target, flags)); }

// Walks `path` one component at a time from root_fd, creating what is missing.
// Each step resolves inside the root, so a symlink planted in the image (say
// /dev -> /etc) cannot send a mount outside the container's tree.
int RealSyscalls::OpenInRoot(int root_fd, const char* path, bool directory, int* out) {
  if (root_fd == AT_FDCWD) {  // the root itself: a host path, taken as it is
    *out = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return *out < 0 ? errno : 0;
  }
  int dir = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
  if (dir < 0) return errno;
  char component[256];
  const char* p = path;
  while (true) {
    while (*p == '/') ++p;
    if (*p == '\0') break;
    const char* end = strchrnul(p, '/');
    size_t len = static_cast<size_t>(end - p);
    if (len >= sizeof(component)) {
      close(dir);
      return ENAMETOOLONG;
    }
    memcpy(component, p, len);
    component[len] = '\0';
    bool last = true;
    for (const char* q = end; *q != '\0'; ++q) {
      if (*q != '/') {
        last = false;
        break;
      }
    }
    int next = OpenAt2(dir, component, O_PATH);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (last && !directory) {
        int f = OpenAt2(dir, component, O_WRONLY | O_CREAT);
        rc = f < 0 ? -1 : close(f);
      } else {
        rc = mkdirat(dir, component, 0755);
      }
      if (rc != 0 && errno != EEXIST) {
        int err = errno;
        close(dir);
        return err;
      }
      next = OpenAt2(dir, component, O_PATH);
    }
    int err = errno;
    close(dir);
    if (next < 0) return err;
    dir = next;
    p = end;
  }
  *out = dir;
  return 0;
}

int RealSyscalls::Close(int fd) { return Check(close(fd)); }

int RealSyscalls::Mknod(const char* path, mode_t mode, dev_t dev) {
  return Check(mknod(path, mode, dev));
}

int RealSyscalls::Symlink(const char* target, const char* link) {
  return Check(symlink(target, link));
}

int RealSyscalls::Chown(const char* path, uid_t uid, gid_t gid) {
  return Check(lchown(path, uid, gid));
}

int RealSyscalls::PivotRoot(const char* new_root, const char* put_old) {
  return Check(static_cast<int>(syscall(SYS_pivot_root, new_root, put_old)));
}

int RealSyscalls::Chdir(const char* path) { return Check(chdir(path)); }

int RealSyscalls::MountFlags(const char* path, unsigned long* flags) {
  struct statvfs st;
  if (statvfs(path, &st) != 0) return errno;
  static constexpr struct {
    unsigned long st;
    unsigned long ms;
  } kMap[] = {{ST_RDONLY, MS_RDONLY},     {ST_NOSUID, MS_NOSUID},
              {ST_NODEV, MS_NODEV},       {ST_NOEXEC, MS_NOEXEC},
              {ST_NOATIME, MS_NOATIME},   {ST_NODIRATIME, MS_NODIRATIME},
              {ST_RELATIME, MS_RELATIME}, {ST_SYNCHRONOUS, MS_SYNCHRONOUS}};
  *flags = 0;
  for (const auto& m : kMap) {
    if (st.f_flag & m.st) *flags |= m.ms;
  }
  return 0;
}

int RealSyscalls::IsDirectory(const char* path, bool* dir) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  *dir = S_ISDIR(st.st_mode);
  return 0;
}

int RealSyscalls::Sethostname(const char* name, size_t len) {
  return Check(sethostname(name, len));
}

int RealSyscalls::WriteFile(const char* path, const char* data, size_t len) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, data, len);
  int err = n < 0 ? errno : (static_cast<size_t>(n) == len ? 0 : EIO);
  close(fd);
  return err;
}

int RealSyscalls::Setns(int fd, int nstype) { return Check(setns(fd, nstype)); }

int RealSyscalls::Unshare(int flags) { return Check(unshare(flags)); }

}  // namespace berth
