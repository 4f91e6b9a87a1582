// Capabilities, privileged mode, masked paths and seccomp.
#include <linux/capability.h>
#include <linux/filter.h>

#include <algorithm>
#include <fstream>

#include "agent/runtime/container_spec_internal.h"
#include "agent/runtime/container_spec_testing.h"

namespace berth::lifecycle::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::WriteFileOrDie;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FOWNER",      "CAP_FSETID",           "CAP_KILL",
    "CAP_SETGID",     "CAP_SETUID",       "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
    "CAP_SYS_CHROOT", "CAP_MKNOD",        "CAP_AUDIT_WRITE", "CAP_SETFCAP"};  // by number

std::vector<std::string> AllCaps() {
  const std::vector<std::string>& known = internal::KnownCapabilities();
  return std::vector<std::string>(known.begin(), known.begin() + internal::LastCapability() + 1);
}

std::vector<std::string> Without(std::vector<std::string> caps, const std::string& cap) {
  caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
  return caps;
}

TEST(CapabilityNumberTest, AcceptsAnyCaseWithOrWithoutPrefix) {
  EXPECT_EQ(internal::CapabilityNumber("chown"), 0);
  EXPECT_EQ(internal::CapabilityNumber("CAP_CHOWN"), 0);
  EXPECT_EQ(internal::CapabilityNumber("cap_Net_Admin"), 12);
  EXPECT_EQ(internal::CapabilityNumber("CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(internal::CapabilityNumber("BOGUS"), -1);
  EXPECT_EQ(internal::CapabilityNumber("ALL"), -1);
  EXPECT_GE(internal::LastCapability(), 37);  // CAP_AUDIT_READ: Linux 3.16
}

struct CapCase {
  const char* name;
  std::vector<std::string> add, drop, ambient;
  std::function<std::vector<std::string>()> want;
  std::vector<std::string> want_ambient;
};
void PrintTo(const CapCase& c, std::ostream* os) { *os << c.name; }

class CapabilitiesTest : public SpecTest, public ::testing::WithParamInterface<CapCase> {};

TEST_P(CapabilitiesTest, FollowsContainerd) {
  const CapCase& c = GetParam();
  v1::Capability* caps = SecurityContext().mutable_capabilities();
  for (const std::string& s : c.add) caps->add_add_capabilities(s);
  for (const std::string& s : c.drop) caps->add_drop_capabilities(s);
  for (const std::string& s : c.ambient) caps->add_add_ambient_capabilities(s);
  BuiltSpec built = BuildOk();
  const shim::v1::Capabilities& got = built.spec.process().capabilities();
  const std::vector<std::string> want = c.want();
  EXPECT_THAT(got.bounding(), ElementsAreArray(want));
  EXPECT_THAT(got.effective(), ElementsAreArray(want));
  EXPECT_THAT(got.permitted(), ElementsAreArray(want));
  EXPECT_THAT(got.ambient(), ElementsAreArray(c.want_ambient));
  EXPECT_THAT(got.inheritable(), ElementsAreArray(c.want_ambient));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CapabilitiesTest,
    ::testing::Values(
        CapCase{"Defaults", {}, {}, {}, [] { return kDefaultCaps; }, {}},
        CapCase{"AddOne",
                {"NET_ADMIN"},
                {},
                {},
                [] {
                  std::vector<std::string> v = kDefaultCaps;
                  v.insert(v.begin() + 9, "CAP_NET_ADMIN");  // number 12, after NET_BIND_SERVICE
                  return v;
                },
                {}},
        CapCase{"DropAllThenAdd",
                {"net_bind_service"},
                {"ALL"},
                {},
                [] { return std::vector<std::string>{"CAP_NET_BIND_SERVICE"}; },
                {}},
        CapCase{"AddAllThenDrop",
                {"all"},
                {"CAP_CHOWN"},
                {},
                [] { return Without(AllCaps(), "CAP_CHOWN"); },
                {}},
        CapCase{"DropWinsOverAdd",
                {"SYS_TIME"},
                {"SYS_TIME", "KILL"},
                {},
                [] { return Without(kDefaultCaps, "CAP_KILL"); },
                {}},
        CapCase{"DropAll", {}, {"all"}, {}, [] { return std::vector<std::string>{}; }, {}},
        // Both ALLs: drop ALL applies after add ALL, then the single names.
        CapCase{"AddAllDropAll",
                {"ALL", "KILL"},
                {"ALL"},
                {},
                [] { return std::vector<std::string>{"CAP_KILL"}; },
                {}},
        CapCase{"Ambient",
                {},
                {"ALL"},
                {"NET_BIND_SERVICE"},
                [] { return std::vector<std::string>{"CAP_NET_BIND_SERVICE"}; },
                {"CAP_NET_BIND_SERVICE"}}),
    [](const ::testing::TestParamInfo<CapCase>& info) { return info.param.name; });

TEST_F(SpecTest, UnknownCapabilityIsNamed) {
  SecurityContext().mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  SecurityContext().mutable_capabilities()->add_add_capabilities("NET_WIZARD");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("capabilities.add_capabilities[1]: unknown capability "
                                          "`NET_WIZARD`")));
  SecurityContext().mutable_capabilities()->clear_add_capabilities();
  SecurityContext().mutable_capabilities()->add_drop_capabilities("X");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("capabilities.drop_capabilities[0]")));
}

// berthd without CAP_SYS_RESOURCE (this machine's root; nested containers and
// hardened units alike): "container init: capset: Operation not permitted"
// failed privileged and add ALL before; now they mean what berthd holds.
uint64_t Without(uint64_t set, int cap) { return set & ~(uint64_t{1} << cap); }

TEST_F(SpecTest, PrivilegedGetsBerthdsBoundingSetOnly) {
  in_.bounding_set = Without(~uint64_t{0}, CAP_SYS_RESOURCE);
  sandbox_config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  SecurityContext().set_privileged(true);
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.process().capabilities().bounding(),
              ElementsAreArray(Without(AllCaps(), "CAP_SYS_RESOURCE")));
  EXPECT_THAT(built.spec.process().capabilities().effective(),
              ElementsAreArray(Without(AllCaps(), "CAP_SYS_RESOURCE")));
}

TEST_F(SpecTest, AddAllGetsBerthdsBoundingSetOnly) {
  in_.bounding_set = Without(Without(~uint64_t{0}, CAP_SYS_RESOURCE), CAP_NET_RAW);
  SecurityContext().mutable_capabilities()->add_add_capabilities("ALL");
  EXPECT_THAT(BuildOk().spec.process().capabilities().permitted(),
              ElementsAreArray(Without(Without(AllCaps(), "CAP_SYS_RESOURCE"), "CAP_NET_RAW")));
}

TEST_F(SpecTest, DefaultsAreCutToBerthdsBoundingSet) {
  in_.bounding_set = Without(~uint64_t{0}, CAP_NET_RAW);
  EXPECT_THAT(BuildOk().spec.process().capabilities().bounding(),
              ElementsAreArray(Without(kDefaultCaps, "CAP_NET_RAW")));
}

TEST_F(SpecTest, NamedCapabilityBerthdLacksIsRefusedNamingIt) {
  in_.bounding_set = Without(~uint64_t{0}, CAP_SYS_RESOURCE);
  SecurityContext().mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  SecurityContext().mutable_capabilities()->add_add_capabilities("sys_resource");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("capabilities.add_capabilities[1]: CAP_SYS_RESOURCE is "
                                          "not in berthd's capability bounding set")));
  SecurityContext().mutable_capabilities()->clear_add_capabilities();
  SecurityContext().mutable_capabilities()->add_add_ambient_capabilities("SYS_RESOURCE");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("add_ambient_capabilities[0]: CAP_SYS_RESOURCE")));
}

TEST(CurrentBoundingSetTest, MatchesProcStatus) {
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t want = 0;
  while (std::getline(in, line)) {
    if (line.rfind("CapBnd:", 0) == 0) want = std::stoull(line.substr(7), nullptr, 16);
  }
  const uint64_t known = (uint64_t{2} << internal::LastCapability()) - 1;
  EXPECT_EQ(internal::CurrentBoundingSet(), want & known);
}

TEST_F(SpecTest, PrivilegedNeedsAPrivilegedSandbox) {
  SecurityContext().set_privileged(true);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.linux.security_context.privileged")));
}

TEST_F(SpecTest, PrivilegedGetsEverything) {
  sandbox_config_.mutable_linux()->mutable_security_context()->set_privileged(true);
  SecurityContext().set_privileged(true);
  SecurityContext().mutable_capabilities()->add_drop_capabilities("ALL");  // ignored
  SecurityContext().mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.process().capabilities().bounding(), ElementsAreArray(AllCaps()));
  EXPECT_THAT(built.spec.masked_paths(), IsEmpty());
  EXPECT_THAT(built.spec.readonly_paths(), IsEmpty());
  EXPECT_THAT(built.spec.process().seccomp_bpf(), IsEmpty());
  for (const shim::v1::Mount& m : built.spec.mounts()) {
    if (m.destination() != "/sys") continue;
    EXPECT_THAT(m.options(), Not(Contains("ro")));
    EXPECT_THAT(m.options(), Contains("rw"));
  }
  const shim::v1::Resources& r = built.spec.resources();
  ASSERT_TRUE(r.devices_set());
  ASSERT_GE(r.devices_size(), 1);
  EXPECT_TRUE(r.devices(0).allow());
  EXPECT_EQ(r.devices(0).type(), "a");
  EXPECT_EQ(r.devices(0).major(), -1);
  EXPECT_EQ(r.devices(0).minor(), -1);
  EXPECT_EQ(r.devices(0).access(), "rwm");
}

TEST_F(SpecTest, MaskedAndReadonlyPathsReplaceTheDefaultsWhenGiven) {
  SecurityContext().add_masked_paths("/proc/secret");
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.masked_paths(), ElementsAre("/proc/secret"));
  EXPECT_THAT(built.spec.readonly_paths(), Contains("/proc/sysrq-trigger"));
  SecurityContext().add_readonly_paths("/proc/ro");
  EXPECT_THAT(BuildOk().spec.readonly_paths(), ElementsAre("/proc/ro"));
}

// The deprecated string field, which CRI clients may still send.
void SetProfilePath(v1::LinuxContainerSecurityContext& sc, const std::string& path) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  sc.set_seccomp_profile_path(path);
#pragma GCC diagnostic pop
}

void ExpectProgram(const std::string& bpf) {
  EXPECT_FALSE(bpf.empty());
  EXPECT_EQ(bpf.size() % sizeof(struct sock_filter), 0u);
}

TEST_F(SpecTest, SeccompProfileTypes) {
  v1::SecurityProfile* p = SecurityContext().mutable_seccomp();
  p->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  ExpectProgram(BuildOk().spec.process().seccomp_bpf());
  p->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_THAT(BuildOk().spec.process().seccomp_bpf(), IsEmpty());
  // The message wins over the deprecated string.
  SetProfilePath(SecurityContext(), "runtime/default");
  EXPECT_THAT(BuildOk().spec.process().seccomp_bpf(), IsEmpty());
}

TEST_F(SpecTest, SeccompLocalhost) {
  const std::string path = dir_.Join("profile.json");
  WriteFileOrDie(path, R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  v1::SecurityProfile* p = SecurityContext().mutable_seccomp();
  p->set_profile_type(v1::SecurityProfile::Localhost);
  p->set_localhost_ref(path);
  ExpectProgram(BuildOk().spec.process().seccomp_bpf());
  p->set_localhost_ref(dir_.Join("missing.json"));
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound,
                                HasSubstr("config.linux.security_context.seccomp.localhost_ref")));
  p->set_localhost_ref("profile.json");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an absolute")));
  WriteFileOrDie(path, R"({"defaultAction": "SCMP_ACT_BOGUS"})");
  p->set_localhost_ref(path);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("seccomp.localhost_ref `" + path + "`")));
  p->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("profile_type is not Localhost")));
}

struct ProfilePathCase {
  const char* name;
  std::string path;
  bool confined;
};
void PrintTo(const ProfilePathCase& c, std::ostream* os) { *os << c.name; }

class SeccompProfilePathTest : public SpecTest,
                               public ::testing::WithParamInterface<ProfilePathCase> {};

TEST_P(SeccompProfilePathTest, DeprecatedStringIsHonoured) {
  SetProfilePath(SecurityContext(), GetParam().path);
  const std::string bpf = BuildOk().spec.process().seccomp_bpf();
  if (GetParam().confined) {
    ExpectProgram(bpf);
  } else {
    EXPECT_THAT(bpf, IsEmpty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SeccompProfilePathTest,
    ::testing::Values(ProfilePathCase{"Unset", "", false},
                      ProfilePathCase{"Unconfined", "unconfined", false},
                      ProfilePathCase{"RuntimeDefault", "runtime/default", true},
                      ProfilePathCase{"DockerDefault", "docker/default", true}),
    [](const ::testing::TestParamInfo<ProfilePathCase>& info) { return info.param.name; });

TEST_F(SpecTest, SeccompProfilePathLocalhostAndErrors) {
  const std::string path = dir_.Join("p.json");
  WriteFileOrDie(path, R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  SetProfilePath(SecurityContext(), "localhost/" + path);
  ExpectProgram(BuildOk().spec.process().seccomp_bpf());
  SetProfilePath(SecurityContext(), "localhost/" + dir_.Join("nope.json"));
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("seccomp_profile_path")));
  SetProfilePath(SecurityContext(), "strict");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("seccomp_profile_path `strict`")));
}

TEST_F(SpecTest, SeccompIsCompiledForTheFinalCapabilities) {
  // Docker's profile allows more syscalls (mount, ...) with CAP_SYS_ADMIN.
  SecurityContext().mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  const std::string without = BuildOk().spec.process().seccomp_bpf();
  SecurityContext().mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  const std::string with = BuildOk().spec.process().seccomp_bpf();
  ExpectProgram(without);
  ExpectProgram(with);
  EXPECT_NE(with, without);
}

}  // namespace
}  // namespace berth::lifecycle::testing
