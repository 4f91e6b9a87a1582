#include "os/syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

// Resolves `path` inside root_fd, creating what is missing. Every lookup is
// one openat2(RESOLVE_IN_ROOT) of a whole prefix of the path from root_fd, so
// symlinks on the way resolve as the container will see them - absolute ones
// from its root, relative ones from their directory, `..` clamped at the root
// (a base image's /var/run -> /run, merged-/usr's /bin -> usr/bin) - and a
// symlink planted in the image cannot send a mount outside the container's
// tree. A missing name is made in the directory its prefix resolved to; a
// dangling symlink there is followed by splicing its target into the path
// (at most 40 times, as the kernel's MAXSYMLINKS), so its target is made.
// Allocation-free: the shim calls it in a forked child.
int RealSyscalls::OpenInRoot(int root_fd, const char* path, bool directory, int* out) {
  if (root_fd == AT_FDCWD) {  // the root itself: a host path, taken as it is
    *out = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return *out < 0 ? errno : 0;
  }
  char cur[PATH_MAX], next[PATH_MAX], link[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof(cur)) return ENAMETOOLONG;
  memcpy(cur, path, n + 1);
  int fd = OpenAt2(root_fd, cur, O_PATH);  // the usual case: it is all there
  if (fd >= 0) {
    *out = fd;
    return 0;
  }
  if (errno != ENOENT) return errno;
  for (int links = 0;;) {
    size_t start = 0;
    bool spliced = false;
    while (!spliced) {
      while (cur[start] == '/') ++start;
      if (cur[start] == '\0') {  // the root itself, or a path of slashes
        fd = OpenAt2(root_fd, "/", O_PATH);
        if (fd < 0) return errno;
        *out = fd;
        return 0;
      }
      size_t end = start;
      while (cur[end] != '\0' && cur[end] != '/') ++end;
      size_t after = end;
      while (cur[after] == '/') ++after;
      const bool last = cur[after] == '\0';
      if (end - start >= NAME_MAX + 1) return ENAMETOOLONG;
      char saved = cur[end];
      cur[end] = '\0';
      fd = OpenAt2(root_fd, cur, O_PATH);
      if (fd < 0 && errno == ENOENT) {
        // Missing: make it in the directory the prefix before it resolves to.
        char name[NAME_MAX + 1];
        memcpy(name, cur + start, end - start + 1);
        cur[start] = '\0';
        int parent = OpenAt2(root_fd, start == 0 ? "/" : cur, O_PATH | O_DIRECTORY);
        memcpy(cur + start, name, end - start);
        if (parent < 0) return errno;
        int rc;
        if (last && !directory) {
          struct open_how how;
          memset(&how, 0, sizeof(how));
          how.flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
          how.mode = 0644;
          how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
          long f = syscall(SYS_openat2, parent, name, &how, sizeof(how));
          rc = f < 0 ? -1 : close(static_cast<int>(f));
        } else {
          rc = mkdirat(parent, name, 0755);
        }
        int err = errno;
        ssize_t len = -1;
        if (rc != 0 && err == EEXIST) len = readlinkat(parent, name, link, sizeof(link) - 1);
        close(parent);
        if (rc != 0 && err != EEXIST) return err;
        if (len > 0) {
          // A dangling symlink: go on from its target, as the kernel would.
          if (++links > 40) return ELOOP;
          link[len] = '\0';
          cur[end] = saved;
          size_t keep = link[0] == '/' ? 0 : start;  // relative: from its directory
          size_t rest = strlen(cur + end);
          if (keep + static_cast<size_t>(len) + rest >= sizeof(next)) return ENAMETOOLONG;
          memcpy(next, cur, keep);
          memcpy(next + keep, link, static_cast<size_t>(len));
          memcpy(next + keep + len, cur + end, rest + 1);
          memcpy(cur, next, keep + static_cast<size_t>(len) + rest + 1);
          spliced = true;
          continue;
        }
        fd = OpenAt2(root_fd, cur, O_PATH);  // made (by us or a racing peer)
      }
      int err = errno;
      cur[end] = saved;
      if (fd < 0) return err;
      if (last) {
        *out = fd;
        return 0;
      }
      close(fd);
      start = end;
    }
  }
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

int RealSyscalls::Fchdir(int fd) { return Check(fchdir(fd)); }

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
