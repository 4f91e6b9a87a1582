// Who the container's first process is: uid, gid and supplementary groups, from
// the CRI security context or the image's User, resolved against the image's own
// /etc/passwd and /etc/group (passwd(5), group(5)).
//
// The rules are containerd's (internal/cri/server/container_create_linux.go and
// pkg/oci/spec_opts.go), which follow Docker's:
// - run_as_username wins over run_as_user; run_as_group needs one of them
//   (generateUserString: "user group %q is specified without user").
// - Without either, the image's User: "name", "uid", "name:group", "uid:gid".
// - A numeric uid takes its primary gid from passwd, or 0 when passwd does not
//   list it (oci.WithUserID); a name must be in passwd (oci.WithUsername).
//   "u:g" with both numeric reads no file.
// - Supplementary groups (unless supplemental_groups_policy is Strict): the
//   groups of /etc/group listing the user's name, except one named like the
//   user (oci.WithAdditionalGIDs); then security_context.supplemental_groups
//   (WithSupplementalGroups). The lookup name comes from the user part alone,
//   "0" (root) when nothing names a user.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/runtime/container_spec_internal.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::lifecycle::internal {
namespace {

constexpr size_t kMaxUserDbBytes = 16 << 20;
constexpr char kSecurityContext[] = "config.linux.security_context";

// Digits only: "+1", " 1" and "-1" are names as far as USER is concerned.
bool ParseId(absl::string_view s, uint32_t* id) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v > UINT32_MAX) return false;
  *id = static_cast<uint32_t>(v);
  return true;
}

std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

const PasswdEntry* FindUser(const UserDb& db, absl::string_view name) {
  if (!db.passwd) return nullptr;
  for (const PasswdEntry& e : *db.passwd) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const PasswdEntry* FindUid(const UserDb& db, uint32_t uid) {
  if (!db.passwd) return nullptr;
  for (const PasswdEntry& e : *db.passwd) {
    if (e.uid == uid) return &e;
  }
  return nullptr;
}

// What asked for the user, for error messages.
struct UserRequest {
  std::string user;   // "", "1000", "app"
  std::string group;  // "", "1000", "staff"
  std::string field;  // the CRI field or image field it came from
};

absl::StatusOr<UserRequest> RequestedUser(const runtime::v1::LinuxContainerSecurityContext& sc,
                                          absl::string_view image_user) {
  UserRequest r;
  if (sc.has_run_as_user()) {
    const int64_t v = sc.run_as_user().value();
    if (v < 0 || v > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(kSecurityContext, ".run_as_user ", v, ": not a uid"));
    }
    r.user = absl::StrCat(v);
    r.field = absl::StrCat(kSecurityContext, ".run_as_user");
  }
  if (!sc.run_as_username().empty()) {
    r.user = sc.run_as_username();
    r.field = absl::StrCat(kSecurityContext, ".run_as_username");
  }
  if (sc.has_run_as_group()) {
    const int64_t v = sc.run_as_group().value();
    if (v < 0 || v > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(kSecurityContext, ".run_as_group ", v, ": not a gid"));
    }
    if (r.user.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          kSecurityContext, ".run_as_group ", v, ": set without run_as_user or run_as_username"));
    }
    r.group = absl::StrCat(v);
  }
  if (!r.user.empty()) return r;
  if (image_user.empty()) return r;  // root
  std::vector<absl::string_view> parts = absl::StrSplit(image_user, ':');
  if (parts.size() > 2 || parts[0].empty() || (parts.size() == 2 && parts[1].empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("image config User `", image_user, "`: not user, uid, user:group or uid:gid"));
  }
  r.user = std::string(parts[0]);
  if (parts.size() == 2) r.group = std::string(parts[1]);
  r.field = "image config User";
  return r;
}

absl::Status NoSuchUser(const UserRequest& r, bool db_missing) {
  return absl::NotFoundError(absl::StrCat(r.field, " `", r.user,
                                          "`: no such user in the image's /etc/passwd",
                                          db_missing ? " (the image has no /etc/passwd)" : ""));
}

// oci.WithUser: uid and primary gid.
absl::Status ResolveIds(const UserRequest& r, const UserDb& db, ResolvedUser& out) {
  if (r.user.empty()) return absl::OkStatus();  // root, gid 0: the spec's default
  uint32_t uid = 0;
  const bool numeric_user = ParseId(r.user, &uid);
  if (numeric_user) {
    out.uid = uid;
    if (r.group.empty()) {
      const PasswdEntry* e = FindUid(db, uid);
      out.gid = e != nullptr ? e->gid : 0;
    }
  } else {
    const PasswdEntry* e = FindUser(db, r.user);
    if (e == nullptr) return NoSuchUser(r, !db.passwd.has_value());
    out.uid = e->uid;
    out.gid = e->gid;
  }
  if (r.group.empty()) return absl::OkStatus();
  uint32_t gid = 0;
  if (ParseId(r.group, &gid)) {
    out.gid = gid;
    return absl::OkStatus();
  }
  if (db.group) {
    for (const GroupEntry& g : *db.group) {
      if (g.name == r.group) {
        out.gid = g.gid;
        return absl::OkStatus();
      }
    }
  }
  return absl::NotFoundError(absl::StrCat(r.field, " `", r.user, ":", r.group, "`: no group `",
                                          r.group, "` in the image's /etc/group"));
}

// oci.WithAdditionalGIDs: groups listing the user by name in /etc/group.
std::set<uint32_t> ImageGroups(const UserRequest& r, const UserDb& db) {
  std::set<uint32_t> gids;
  if (!db.group) return gids;
  std::string name = r.user.empty() ? "0" : r.user;
  uint32_t uid = 0;
  if (ParseId(name, &uid)) {
    const PasswdEntry* e = FindUid(db, uid);
    if (e == nullptr) return gids;
    name = e->name;
  }
  for (const GroupEntry& g : *db.group) {
    if (g.name == name) continue;  // "we only want supplemental groups"
    if (std::find(g.members.begin(), g.members.end(), name) != g.members.end()) {
      gids.insert(g.gid);
    }
  }
  return gids;
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(absl::string_view text) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    PasswdEntry e;
    if (f.size() < 4 || f[0].empty() || !ParseId(f[2], &e.uid) || !ParseId(f[3], &e.gid)) continue;
    e.name = std::string(f[0]);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(absl::string_view text) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    GroupEntry e;
    if (f.size() < 3 || f[0].empty() || !ParseId(f[2], &e.gid)) continue;
    e.name = std::string(f[0]);
    if (f.size() > 3) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipWhitespace())) {
        e.members.emplace_back(absl::StripAsciiWhitespace(m));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> ReadFileInRoot(const std::string& root,
                                                          const std::string& path) {
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoStatus(errno, "open", root);
  struct open_how how = {};
  // O_PATH first: image content is never opened for real before fstat says
  // it is a regular file. A layer may carry a device node at /etc/passwd
  // (`c 10 130` is the host's watchdog: opening it as root arms a reboot),
  // or a FIFO whose writer an open would release.
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = -1;
  // EAGAIN: a concurrent rename in the tree (openat2(2), RESOLVE_IN_ROOT); retry.
  for (int attempt = 0; attempt < 16; ++attempt) {
    fd = syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof(how));
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  const std::string shown = absl::StrCat(root, path);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    return ErrnoStatus(errno, "openat2", shown);
  }
  UniqueFd path_fd(static_cast<int>(fd));
  struct stat st;
  if (fstat(path_fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", shown);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("`", shown, "` is not a regular file"));
  }
  // Reopened through the O_PATH fd itself: the very inode just checked.
  UniqueFd file(open(absl::StrCat("/proc/self/fd/", path_fd.get()).c_str(),
                     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!file) return ErrnoStatus(errno, "reopen", shown);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(file.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read", shown);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxUserDbBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat("`", shown, "` is larger than ", kMaxUserDbBytes, " bytes"));
    }
  }
  return out;
}

absl::StatusOr<UserDb> ReadUserDb(const std::string& rootfs) {
  UserDb db;
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> passwd, ReadFileInRoot(rootfs, "/etc/passwd"));
  if (passwd) db.passwd = ParsePasswd(*passwd);
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> group, ReadFileInRoot(rootfs, "/etc/group"));
  if (group) db.group = ParseGroup(*group);
  return db;
}

absl::StatusOr<ResolvedUser> ResolveUser(const runtime::v1::LinuxContainerSecurityContext& sc,
                                         absl::string_view image_user, const UserDb& db) {
  BERTH_ASSIGN_OR_RETURN(UserRequest request, RequestedUser(sc, image_user));
  ResolvedUser out;
  BERTH_RETURN_IF_ERROR(ResolveIds(request, db, out));
  std::set<uint32_t> groups;
  if (sc.supplemental_groups_policy() != runtime::v1::Strict) groups = ImageGroups(request, db);
  for (int i = 0; i < sc.supplemental_groups_size(); ++i) {
    const int64_t g = sc.supplemental_groups(i);
    if (g < 0 || g > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(kSecurityContext, ".supplemental_groups[", i, "] ", g, ": not a gid"));
    }
    groups.insert(static_cast<uint32_t>(g));
  }
  groups.erase(out.gid);
  out.supplemental_groups.assign(groups.begin(), groups.end());
  return out;
}

}  // namespace berth::lifecycle::internal
