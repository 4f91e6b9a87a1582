// The container's user: passwd/group parsing, reads inside the rootfs, and the
// CRI / image rules for uid, gid and supplementary groups.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "agent/runtime/container_spec_internal.h"
#include "agent/runtime/container_spec_testing.h"

namespace berth::lifecycle::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

internal::UserDb Db() {
  internal::UserDb db;
  db.passwd = internal::ParsePasswd(kPasswd);
  db.group = internal::ParseGroup(kGroup);
  return db;
}

TEST(ParsePasswdTest, SkipsCommentsBlanksAndBrokenLines) {
  std::vector<internal::PasswdEntry> users = internal::ParsePasswd(kPasswd);
  ASSERT_EQ(users.size(), 4u);
  EXPECT_EQ(users[2].name, "app");
  EXPECT_EQ(users[2].uid, 1000u);
  EXPECT_EQ(users[2].gid, 1000u);
  EXPECT_THAT(internal::ParsePasswd("short:x:1\n:x:1:1::/:\nbig:x:4294967296:1::/:\n"), IsEmpty());
}

TEST(ParseGroupTest, MembersAreTrimmed) {
  std::vector<internal::GroupEntry> groups = internal::ParseGroup(kGroup);
  ASSERT_EQ(groups.size(), 6u);
  EXPECT_EQ(groups[3].name, "video");
  EXPECT_EQ(groups[3].gid, 44u);
  EXPECT_THAT(groups[3].members, ElementsAre("app", "daemon"));
  EXPECT_THAT(groups[0].members, IsEmpty());
  EXPECT_THAT(internal::ParseGroup("nogid:x:\n"), IsEmpty());
}

struct UserCase {
  const char* name;
  std::function<void(v1::LinuxContainerSecurityContext&)> set;
  std::string image_user;
  uint32_t uid, gid;
  std::vector<uint32_t> groups;
};
void PrintTo(const UserCase& c, std::ostream* os) { *os << c.name; }

class ResolveUserTest : public ::testing::TestWithParam<UserCase> {};

TEST_P(ResolveUserTest, Resolves) {
  const UserCase& c = GetParam();
  v1::LinuxContainerSecurityContext sc;
  if (c.set) c.set(sc);
  absl::StatusOr<ResolvedUser> user = internal::ResolveUser(sc, c.image_user, Db());
  ASSERT_THAT(user, IsOk());
  EXPECT_EQ(user->uid, c.uid);
  EXPECT_EQ(user->gid, c.gid);
  EXPECT_EQ(user->supplemental_groups, c.groups);
}

void RunAs(v1::LinuxContainerSecurityContext& sc, int64_t uid) {
  sc.mutable_run_as_user()->set_value(uid);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResolveUserTest,
    ::testing::Values(
        // Nobody named: root, and root's groups (wheel) as containerd's "0".
        UserCase{"Default", nullptr, "", 0, 0, {10}},
        UserCase{
            "RunAsUserInPasswd", [](auto& sc) { RunAs(sc, 1000); }, "", 1000, 1000, {10, 29, 44}},
        UserCase{"RunAsUserNotInPasswd", [](auto& sc) { RunAs(sc, 4242); }, "", 4242, 0, {}},
        UserCase{"RunAsUsername",
                 [](auto& sc) { sc.set_run_as_username("app"); },
                 "",
                 1000,
                 1000,
                 {10, 29, 44}},
        UserCase{"UsernameWinsOverUid",
                 [](auto& sc) {
                   RunAs(sc, 1);
                   sc.set_run_as_username("app");
                 },
                 "",
                 1000,
                 1000,
                 {10, 29, 44}},
        UserCase{"RunAsGroup",
                 [](auto& sc) {
                   RunAs(sc, 1000);
                   sc.mutable_run_as_group()->set_value(50);
                 },
                 "",
                 1000,
                 50,
                 {10, 29, 44}},
        UserCase{"ConfigWinsOverImage", [](auto& sc) { RunAs(sc, 1); }, "app", 1, 1, {44}},
        UserCase{"ImageName", nullptr, "app", 1000, 1000, {10, 29, 44}},
        UserCase{"ImageUid", nullptr, "1000", 1000, 1000, {10, 29, 44}},
        UserCase{"ImageNameAndGroupName", nullptr, "daemon:staff", 1, 50, {44}},
        UserCase{"ImageUidAndGid", nullptr, "4242:4343", 4242, 4343, {}},
        UserCase{"ImageUidAndGroupName", nullptr, "1000:audio", 1000, 29, {10, 44}},
        UserCase{"SupplementalGroupsMergedSortedWithoutGid",
                 [](auto& sc) {
                   RunAs(sc, 1000);
                   for (int64_t g : {5, 29, 1000, 3}) sc.add_supplemental_groups(g);
                 },
                 "",
                 1000,
                 1000,
                 {3, 5, 10, 29, 44}},
        UserCase{"StrictIgnoresImageGroups",
                 [](auto& sc) {
                   RunAs(sc, 1000);
                   sc.add_supplemental_groups(7);
                   sc.set_supplemental_groups_policy(v1::Strict);
                 },
                 "",
                 1000,
                 1000,
                 {7}}),
    [](const ::testing::TestParamInfo<UserCase>& info) { return info.param.name; });

struct UserErrorCase {
  const char* name;
  std::function<void(v1::LinuxContainerSecurityContext&)> set;
  std::string image_user;
  absl::StatusCode code;
  std::string message;
};
void PrintTo(const UserErrorCase& c, std::ostream* os) { *os << c.name; }

class ResolveUserErrorTest : public ::testing::TestWithParam<UserErrorCase> {};

TEST_P(ResolveUserErrorTest, NamesTheField) {
  const UserErrorCase& c = GetParam();
  v1::LinuxContainerSecurityContext sc;
  if (c.set) c.set(sc);
  EXPECT_THAT(internal::ResolveUser(sc, c.image_user, Db()),
              StatusIs(c.code, HasSubstr(c.message)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResolveUserErrorTest,
    ::testing::Values(
        UserErrorCase{"UnknownUsername", [](auto& sc) { sc.set_run_as_username("nobody2"); }, "",
                      absl::StatusCode::kNotFound,
                      "config.linux.security_context.run_as_username `nobody2`: no such user"},
        UserErrorCase{"GroupWithoutUser", [](auto& sc) { sc.mutable_run_as_group()->set_value(5); },
                      "app", absl::StatusCode::kInvalidArgument,
                      "config.linux.security_context.run_as_group 5: set without run_as_user"},
        UserErrorCase{"NegativeUid", [](auto& sc) { RunAs(sc, -1); }, "",
                      absl::StatusCode::kInvalidArgument, "run_as_user -1: not a uid"},
        UserErrorCase{"NegativeSupplementalGroup", [](auto& sc) { sc.add_supplemental_groups(-2); },
                      "", absl::StatusCode::kInvalidArgument, "supplemental_groups[0] -2"},
        UserErrorCase{"ImageUnknownUser", nullptr, "ghost", absl::StatusCode::kNotFound,
                      "image config User `ghost`: no such user"},
        UserErrorCase{"ImageUnknownGroup", nullptr, "app:nogroup", absl::StatusCode::kNotFound,
                      "no group `nogroup`"},
        UserErrorCase{"ImageTooManyParts", nullptr, "a:b:c", absl::StatusCode::kInvalidArgument,
                      "image config User `a:b:c`"},
        UserErrorCase{"ImageEmptyGroup", nullptr, "app:", absl::StatusCode::kInvalidArgument,
                      "image config User `app:`"}),
    [](const ::testing::TestParamInfo<UserErrorCase>& info) { return info.param.name; });

TEST(ResolveUserTest, WithoutPasswdOnlyNumericUsersResolve) {
  internal::UserDb db;  // neither file
  v1::LinuxContainerSecurityContext sc;
  RunAs(sc, 1000);
  absl::StatusOr<ResolvedUser> user = internal::ResolveUser(sc, "", db);
  ASSERT_THAT(user, IsOk());
  EXPECT_EQ(user->uid, 1000u);
  EXPECT_EQ(user->gid, 0u);
  EXPECT_THAT(user->supplemental_groups, IsEmpty());
  sc.set_run_as_username("app");
  EXPECT_THAT(internal::ResolveUser(sc, "", db),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("the image has no /etc/passwd")));
}

class ReadInRootTest : public SpecTest {};

TEST_F(ReadInRootTest, MissingIsNullopt) {
  for (const char* path : {"/etc/shadow", "/etc/passwd/x", "/no/etc/group"}) {
    absl::StatusOr<std::optional<std::string>> got = internal::ReadFileInRoot(rootfs_, path);
    ASSERT_THAT(got, IsOk()) << path;
    EXPECT_FALSE(got->has_value()) << path;
  }
  absl::StatusOr<std::optional<std::string>> passwd =
      internal::ReadFileInRoot(rootfs_, "/etc/passwd");
  ASSERT_THAT(passwd, IsOk());
  EXPECT_EQ(passwd->value_or(""), kPasswd);
}

TEST_F(ReadInRootTest, SymlinksResolveInsideTheRoot) {
  // An absolute link and one climbing out: both stay inside the rootfs.
  WriteFileOrDie(rootfs_ + "/etc/passwd.real", "inside:x:7:7::/:/bin/sh\n");
  ASSERT_EQ(unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(symlink("/etc/passwd.real", (rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(unlink((rootfs_ + "/etc/group").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../../../etc/passwd.real", (rootfs_ + "/etc/group").c_str()), 0);
  absl::StatusOr<internal::UserDb> db = internal::ReadUserDb(rootfs_);
  ASSERT_THAT(db, IsOk());
  ASSERT_TRUE(db->passwd.has_value());
  ASSERT_EQ(db->passwd->size(), 1u);
  EXPECT_EQ((*db->passwd)[0].name, "inside");
  // ".." stops at the rootfs: the group file is the rootfs's passwd.real too.
  ASSERT_TRUE(db->group.has_value());
  ASSERT_EQ(db->group->size(), 1u);
  EXPECT_EQ((*db->group)[0].name, "inside");
}

TEST_F(ReadInRootTest, NotARegularFileIsAnError) {
  ASSERT_EQ(unlink((rootfs_ + "/etc/group").c_str()), 0);
  ASSERT_EQ(mkfifo((rootfs_ + "/etc/group").c_str(), 0644), 0);  // must not hang
  EXPECT_THAT(internal::ReadUserDb(rootfs_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
}

// Image content berthd must not even open: a FIFO at /etc/passwd whose
// writer an open(2) for reading would release (as a device node's open would
// reach its driver - `c 10 130` arms the host's watchdog).
TEST_F(ReadInRootTest, ANonRegularFileIsNeverOpened) {
  const std::string fifo = rootfs_ + "/etc/passwd";
  ASSERT_EQ(unlink(fifo.c_str()), 0);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::atomic<bool> released{false};
  std::thread writer([&] {
    int fd = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // blocks until a reader opens
    released = true;
    if (fd >= 0) close(fd);
  });
  EXPECT_THAT(internal::ReadFileInRoot(rootfs_, "/etc/passwd"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  usleep(200000);
  EXPECT_FALSE(released) << "berthd opened the FIFO";
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // lets the writer go
  writer.join();
  if (reader >= 0) close(reader);
}

TEST_F(SpecTest, UserGoesToTheSpecWithTheGidInAdditionalGids) {
  SecurityContext().set_run_as_username("app");
  SecurityContext().add_supplemental_groups(5);
  BuiltSpec built = BuildOk();
  EXPECT_EQ(built.user.uid, 1000u);
  EXPECT_EQ(built.user.gid, 1000u);
  EXPECT_THAT(built.user.supplemental_groups, ElementsAre(5, 10, 29, 44));
  const shim::v1::User& user = built.spec.process().user();
  EXPECT_EQ(user.uid(), 1000u);
  EXPECT_EQ(user.gid(), 1000u);
  EXPECT_THAT(user.additional_gids(), ElementsAre(5, 10, 29, 44, 1000));
}

TEST_F(SpecTest, UnknownUserFailsTheBuild) {
  SecurityContext().set_run_as_username("nobody2");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound,
                                HasSubstr("run_as_username `nobody2`: no such user in the image's "
                                          "/etc/passwd")));
}

TEST_F(SpecTest, ImageWithoutEtcRunsNumericUsers) {
  ASSERT_EQ(unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(unlink((rootfs_ + "/etc/group").c_str()), 0);
  image_.config.config.user = "65532";
  BuiltSpec built = BuildOk();
  EXPECT_EQ(built.spec.process().user().uid(), 65532u);
  EXPECT_EQ(built.spec.process().user().gid(), 0u);
  EXPECT_THAT(built.spec.process().user().additional_gids(), ElementsAre(0));
}

}  // namespace
}  // namespace berth::lifecycle::testing
