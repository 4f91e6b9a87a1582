// RealSyscalls::OpenInRoot on temp-dir root filesystems shaped like real base
// images: Debian's and Alpine's /var/run -> /run (kubelet mounts every pod's
// service-account token under it), merged-/usr's /bin -> usr/bin, relative
// links, links to links, dangling links, `..` clamped at the root. It once
// resolved each step with the current directory as the root: ELOOP.
#include "os/syscalls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/unique_fd.h"
#include "tests/support/temp_dir.h"

namespace berth {
namespace {

using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;

class OpenInRootTest : public ::testing::Test {
 protected:
  OpenInRootTest() : root_(dir_.Join("root")) {
    Mkdir("");
    root_fd_.reset(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  void Mkdir(const std::string& p) { ASSERT_EQ(mkdir((root_ + "/" + p).c_str(), 0755), 0) << p; }
  void Link(const std::string& target, const std::string& p) {
    ASSERT_EQ(symlink(target.c_str(), (root_ + "/" + p).c_str()), 0) << p;
  }
  // Opens `path` in the root and says where it landed, relative to the root
  // ("" for an error, with *err set).
  std::string Open(const std::string& path, bool directory, int* err = nullptr) {
    int fd = -1;
    int rc = sys_.OpenInRoot(root_fd_.get(), path.c_str(), directory, &fd);
    if (err != nullptr) *err = rc;
    if (rc != 0) return "";
    UniqueFd owned(fd);
    char buf[4096] = {};
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(proc.c_str(), buf, sizeof(buf) - 1);
    std::string real(buf, n > 0 ? static_cast<size_t>(n) : 0);
    std::string canon_root(realpath(root_.c_str(), nullptr));
    return real.substr(0, canon_root.size()) == canon_root ? real.substr(canon_root.size())
                                                           : "OUTSIDE:" + real;
  }
  bool IsDir(const std::string& p) {
    struct stat st;
    return lstat((root_ + p).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  bool IsFile(const std::string& p) {
    struct stat st;
    return lstat((root_ + p).c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  TempDir dir_;
  std::string root_;
  UniqueFd root_fd_;
  RealSyscalls sys_;
};

TEST_F(OpenInRootTest, DebianVarRunToRunMakesTheServiceAccountDir) {
  Mkdir("var");
  Mkdir("run");
  Link("/run", "var/run");
  EXPECT_EQ(Open("/var/run/secrets/kubernetes.io/serviceaccount", true),
            "/run/secrets/kubernetes.io/serviceaccount");
  EXPECT_TRUE(IsDir("/run/secrets/kubernetes.io/serviceaccount"));
  // Again, now that it exists.
  EXPECT_EQ(Open("/var/run/secrets/kubernetes.io/serviceaccount", true),
            "/run/secrets/kubernetes.io/serviceaccount");
}

TEST_F(OpenInRootTest, MergedUsrAndRelativeLinksAndLinksToLinks) {
  Mkdir("usr");
  Mkdir("usr/bin");
  Link("usr/bin", "bin");       // merged-/usr, relative
  Link("bin", "sbin");          // a link to a link
  Link("../usr/bin", "usr/x");  // relative with ..
  EXPECT_EQ(Open("/sbin/tool", false), "/usr/bin/tool");
  EXPECT_TRUE(IsFile("/usr/bin/tool"));
  EXPECT_EQ(Open("usr/x/tool", false), "/usr/bin/tool");
}

TEST_F(OpenInRootTest, DotDotAndAbsoluteLinksStayInsideTheRoot) {
  Mkdir("etc");
  Link("/../../../../etc", "escape");
  Link("../../../..", "up");
  EXPECT_EQ(Open("/escape/passwd", false), "/etc/passwd");
  EXPECT_EQ(Open("/up/up/etc", true), "/etc");
  EXPECT_EQ(Open("/../../etc/x", true), "/etc/x");
  EXPECT_EQ(Open("/", true), "");
  EXPECT_EQ(Open("//", true), "");
}

TEST_F(OpenInRootTest, DanglingLinksHaveTheirTargetsMadeInside) {
  Mkdir("var");
  Link("/run", "var/run");        // /run does not exist yet
  Link("/nowhere/deep", "data");  // an absolute link to a missing path
  Link("missing", "rel");         // relative, missing
  EXPECT_EQ(Open("/var/run/secrets/token", false), "/run/secrets/token");
  EXPECT_TRUE(IsFile("/run/secrets/token"));
  EXPECT_EQ(Open("/data/x", true), "/nowhere/deep/x");
  EXPECT_EQ(Open("/rel", false), "/missing");
  EXPECT_TRUE(IsFile("/missing"));
}

TEST_F(OpenInRootTest, LinkLoopsEndWithEloop) {
  Link("/b", "a");
  Link("/a", "b");
  int err = 0;
  EXPECT_EQ(Open("/a/x", true, &err), "");
  EXPECT_EQ(err, ELOOP);
}

TEST_F(OpenInRootTest, AFileInTheWayIsNotADirectory) {
  WriteFileOrDie(root_ + "/file", "x");
  int err = 0;
  EXPECT_EQ(Open("/file/x", true, &err), "");
  EXPECT_EQ(err, ENOTDIR);
}

}  // namespace
}  // namespace berth
