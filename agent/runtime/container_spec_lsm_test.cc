// AppArmor and SELinux options: applied where the node has the LSM, refused
// where a profile or label was asked for and cannot be given - never dropped.
#include "agent/runtime/container_spec_internal.h"
#include "agent/runtime/container_spec_testing.h"
#include "tests/support/berthd_process.h"

// The deprecated apparmor_profile string is what older kubelets send.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace berth::lifecycle::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;

LsmHost WithAppArmor(std::set<std::string> profiles) {
  LsmHost h;
  h.apparmor = true;
  h.apparmor_profiles = std::move(profiles);
  return h;
}

void Localhost(v1::LinuxContainerSecurityContext& sc, const std::string& name) {
  sc.mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
  sc.mutable_apparmor()->set_localhost_ref(name);
}

// This machine: no AppArmor. containerd refuses a Localhost profile there.
TEST_F(SpecTest, WithoutAppArmorLocalhostIsRefusedAndTheRestAccepted) {
  Localhost(SecurityContext(), "nope");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("config.linux.security_context.apparmor: Localhost "
                                 "profile `nope` asked for, but AppArmor is not enabled")));
  SecurityContext().clear_apparmor();
  SecurityContext().set_apparmor_profile("localhost/nope");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition));
  for (auto type : {v1::SecurityProfile::RuntimeDefault, v1::SecurityProfile::Unconfined}) {
    SecurityContext().clear_apparmor_profile();
    SecurityContext().mutable_apparmor()->set_profile_type(type);
    EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "");
  }
  SecurityContext().clear_apparmor();
  SecurityContext().set_apparmor_profile("bogus");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apparmor_profile `bogus`")));
}

TEST_F(SpecTest, WithAppArmorLocalhostMustBeLoaded) {
  in_.lsm = WithAppArmor({"mine"});
  Localhost(SecurityContext(), "nope");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("`nope` is not loaded")));
  Localhost(SecurityContext(), "mine");
  EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "mine");
  // Privileged does not drop a profile named for it.
  sandbox_config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  SecurityContext().set_privileged(true);
  EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "mine");
}

TEST_F(SpecTest, WithAppArmorRuntimeDefaultLoadsBerthDefaultOnce) {
  in_.lsm = WithAppArmor({});
  int loads = 0;
  in_.load_default_apparmor = [&] {
    ++loads;
    return absl::OkStatus();
  };
  // Unset means RuntimeDefault for an unprivileged container.
  EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "berth-default");
  EXPECT_EQ(loads, 1);
  in_.lsm = WithAppArmor({"berth-default"});
  SecurityContext().set_apparmor_profile("runtime/default");
  EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "berth-default");
  EXPECT_EQ(loads, 1);
  SecurityContext().set_apparmor_profile("unconfined");
  EXPECT_EQ(BuildOk().spec.process().apparmor_profile(), "");
  // A parser that fails fails the create, naming the field.
  in_.lsm = WithAppArmor({});
  in_.load_default_apparmor = [] { return absl::FailedPreconditionError("no apparmor_parser"); };
  SecurityContext().clear_apparmor_profile();
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("apparmor RuntimeDefault: no apparmor_parser")));
}

TEST_F(SpecTest, SelinuxLabelsAreRefusedOnlyWhereSelinuxEnforces) {
  SecurityContext().mutable_selinux_options()->set_type("container_t");
  EXPECT_THAT(Build(), IsOk());
  LsmHost enforcing;
  enforcing.selinux_enforcing = true;
  in_.lsm = enforcing;
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("selinux_options")));
  SecurityContext().clear_selinux_options();
  EXPECT_THAT(Build(), IsOk());
}

TEST(LsmHostTest, DetectsFromAFakeTree) {
  berth::testing::TempDir dir;
  EXPECT_FALSE(LsmHost::Detect(dir.path()).apparmor);
  ASSERT_EQ(berth::testing::Shell("mkdir -p " + dir.Join("sys/module/apparmor/parameters") + " " +
                                  dir.Join("sys/kernel/security/apparmor") + " " +
                                  dir.Join("sys/fs/selinux")),
            0);
  WriteFileOrDie(dir.Join("sys/module/apparmor/parameters/enabled"), "Y\n");
  WriteFileOrDie(dir.Join("sys/kernel/security/apparmor/profiles"),
                 "berth-default (enforce)\n/usr/bin/man (complain)\n");
  WriteFileOrDie(dir.Join("sys/fs/selinux/enforce"), "0");
  LsmHost h = LsmHost::Detect(dir.path());
  EXPECT_TRUE(h.apparmor);
  EXPECT_EQ(h.apparmor_profiles, (std::set<std::string>{"berth-default", "/usr/bin/man"}));
  EXPECT_FALSE(h.selinux_enforcing);
}

}  // namespace
}  // namespace berth::lifecycle::testing
