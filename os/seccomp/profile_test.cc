// Parsing both profile formats, errors that name the field, and Docker's
// includes/excludes; no kernel involved.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/seccomp.h>

#include "os/files.h"
#include "os/seccomp/seccomp.h"
#include "tests/support/status_matchers.h"

namespace berth::seccomp {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// tests/fuzz/cri_request_fuzzer: a number too large for a double made
// nlohmann throw out_of_range, which only parse_error was caught for, and
// a Localhost profile file holding one took berthd down (std::terminate).
TEST(ParseProfileTest, ANumberTooLargeIsBadJsonNotACrash) {
  EXPECT_THAT(ParseProfile("{\"defaultAction\": 1111111111e886}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid JSON")));
}

TEST(ParseProfileTest, Oci) {
  absl::StatusOr<Profile> p = ParseProfile(R"({
    "defaultAction": "SCMP_ACT_KILL_PROCESS",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    "listenerPath": "",
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
      {"names": ["personality"], "action": "SCMP_ACT_LOG",
       "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"},
                {"index": 1, "value": 18446744073709551615, "op": "SCMP_CMP_NE"}]}
    ]})");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->default_action, Action::kKillProcess);
  EXPECT_FALSE(p->default_errno_ret.has_value());
  EXPECT_THAT(p->architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
  EXPECT_EQ(FilterFlags(*p), unsigned{SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW});
  ASSERT_EQ(p->syscalls.size(), 3u);
  EXPECT_THAT(p->syscalls[0].names, ElementsAre("read", "write"));
  EXPECT_EQ(p->syscalls[0].action, Action::kAllow);
  EXPECT_EQ(p->syscalls[1].action, Action::kErrno);
  EXPECT_EQ(p->syscalls[1].errno_ret, 38u);
  const std::vector<ArgRule>& args = p->syscalls[2].args;
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0].index, 0u);
  EXPECT_EQ(args[0].op, ArgOp::kMaskedEqual);
  EXPECT_EQ(args[0].value, 255u);
  EXPECT_EQ(args[0].value_two, 8u);
  EXPECT_EQ(args[1].op, ArgOp::kNotEqual);
  EXPECT_EQ(args[1].value, UINT64_MAX);
}

TEST(ParseProfileTest, Docker) {
  absl::StatusOr<Profile> p = ParseProfile(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
    "syscalls": [
      {"name": "getpid", "action": "SCMP_ACT_ALLOW", "args": null, "comment": "old style",
       "includes": {}, "excludes": {}},
      {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
       "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
      {"names": ["clone3"], "action": "SCMP_ACT_KILL"}
    ]})");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->default_action, Action::kErrno);
  EXPECT_EQ(p->default_errno_ret, 1u);
  ASSERT_EQ(p->arch_map.size(), 2u);
  EXPECT_EQ(p->arch_map[0].architecture, "SCMP_ARCH_X86_64");
  EXPECT_THAT(p->arch_map[0].sub_architectures, ElementsAre("SCMP_ARCH_X86", "SCMP_ARCH_X32"));
  EXPECT_TRUE(p->arch_map[1].sub_architectures.empty());
  ASSERT_EQ(p->syscalls.size(), 4u);
  EXPECT_THAT(p->syscalls[0].names, ElementsAre("getpid"));
  ASSERT_TRUE(p->syscalls[1].includes.min_kernel.has_value());
  EXPECT_EQ(p->syscalls[1].includes.min_kernel->major, 4);
  EXPECT_EQ(p->syscalls[1].includes.min_kernel->minor, 8);
  EXPECT_THAT(p->syscalls[2].excludes.caps, ElementsAre("CAP_SYS_ADMIN"));
  EXPECT_THAT(p->syscalls[2].excludes.arches, ElementsAre("s390", "s390x"));
  EXPECT_EQ(p->syscalls[3].action, Action::kKillThread);
}

TEST(ParseProfileTest, DefaultProfileIsDockers) {
  absl::StatusOr<Profile> p = DefaultProfile();
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->default_action, Action::kErrno);
  EXPECT_EQ(p->default_errno_ret, 1u);
  EXPECT_EQ(p->arch_map.at(0).architecture, "SCMP_ARCH_X86_64");
  ASSERT_GT(p->syscalls.size(), 20u);
  EXPECT_GT(p->syscalls[0].names.size(), 300u);
  bool unshare_needs_admin = false;
  for (const SyscallRule& r : p->syscalls) {
    for (const std::string& n : r.names) {
      if (n == "unshare") {
        unshare_needs_admin = r.includes.caps == std::vector<std::string>{"CAP_SYS_ADMIN"};
      }
    }
  }
  EXPECT_TRUE(unshare_needs_admin);
}

TEST(ParseProfileTest, EmbeddedDefaultMatchesDeployFile) {
  absl::StatusOr<std::string> file = ReadFile(BERTH_SOURCE_DIR "/deploy/seccomp/default.json");
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(DefaultProfileJson(), *file) << "re-run cmake to embed the edited JSON";
}

struct BadCase {
  const char* json;
  absl::StatusCode code;
  const char* message;
};

TEST(ParseProfileTest, ErrorsNameTheField) {
  constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
  const BadCase cases[] = {
      {R"({"defaultAction": )", kInvalid, "invalid JSON"},
      {R"([])", kInvalid, "must be a JSON object"},
      {R"({})", kInvalid, "defaultAction: missing"},
      {R"({"defaultAction": 3})", kInvalid, "defaultAction: must be a string"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": "SCMP_ACT_FOO"}]})",
       kInvalid, R"(syscalls[1].action: unknown action "SCMP_ACT_FOO")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"],
          "action": "SCMP_ACT_NOTIFY"}]})",
       absl::StatusCode::kUnimplemented, "syscalls[0].action: SCMP_ACT_NOTIFY is not supported"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})", kInvalid,
       R"(architectures[0]: unknown architecture "SCMP_ARCH_VAX")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
          "subArchitectures": ["SCMP_ARCH_X86", "x32"]}]})",
       kInvalid, "archMap[0].subArchitectures[1]: unknown architecture"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
          "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})",
       kInvalid, "use one"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"],
          "action": "SCMP_ACT_ALLOW"}]})",
       kInvalid, R"(syscalls[0]: has both "name" and "names")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]})",
       kInvalid, "syscalls[0].names: missing"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read",
          "action": "SCMP_ACT_ALLOW"}]})",
       kInvalid, "syscalls[0].names: must be an array of strings"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       kInvalid, "syscalls[0].args[0].index: must be an integer from 0 to 5"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": -1, "op": "SCMP_CMP_EQ"}]}]})",
       kInvalid, "syscalls[0].args[0].value: must be an integer"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "op": "SCMP_CMP_ABOUT"}]}]})",
       kInvalid, R"(syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT")"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000})", kInvalid,
       "defaultErrnoRet: must be an integer from 0 to 4095"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]})",
       kInvalid, "syscalls[0].includes.minKernel: invalid kernel version"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "excludes": {"caps": [1]}}]})",
       kInvalid, "syscalls[0].excludes.caps[0]: must be a string"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})", kInvalid,
       R"(flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE")"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(ParseProfile(c.json), StatusIs(c.code, HasSubstr(c.message))) << c.json;
  }
}

TEST(ParseKernelVersionTest, LeadingMajorMinor) {
  absl::StatusOr<KernelVersion> v = ParseKernelVersion("6.18.44-fc-v782");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->major, 6);
  EXPECT_EQ(v->minor, 18);
  v = ParseKernelVersion("4.8");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->minor, 8);
  EXPECT_THAT(ParseKernelVersion("5"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseKernelVersion("a.b"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE((KernelVersion{4, 19} < KernelVersion{5, 0}));
  EXPECT_FALSE((KernelVersion{5, 10} < KernelVersion{5, 4}));
}

TEST(RuleAppliesTest, IncludesNeedEveryCapExcludesAny) {
  SyscallRule rule;
  rule.includes.caps = {"CAP_SYS_ADMIN", "CAP_NET_ADMIN"};
  RuleEnvironment env{{"CAP_SYS_ADMIN"}, "amd64", {6, 1}};
  EXPECT_FALSE(RuleApplies(rule, env));
  env.capabilities.push_back("net_admin");  // CRI style: no prefix, any case
  EXPECT_TRUE(RuleApplies(rule, env));

  SyscallRule ex;
  ex.excludes.caps = {"CAP_SYS_ADMIN", "CAP_BPF"};
  EXPECT_TRUE(RuleApplies(ex, RuleEnvironment{{"CAP_CHOWN"}, "amd64", {6, 1}}));
  EXPECT_FALSE(RuleApplies(ex, RuleEnvironment{{"CAP_CHOWN", "BPF"}, "amd64", {6, 1}}));
}

TEST(RuleAppliesTest, ArchesAndMinKernel) {
  SyscallRule rule;
  rule.includes.arches = {"amd64", "x32"};
  EXPECT_TRUE(RuleApplies(rule, RuleEnvironment{{}, "amd64", {6, 1}}));
  EXPECT_FALSE(RuleApplies(rule, RuleEnvironment{{}, "arm64", {6, 1}}));
  rule.excludes.arches = {"amd64"};
  EXPECT_FALSE(RuleApplies(rule, RuleEnvironment{{}, "amd64", {6, 1}}));

  SyscallRule kernel;
  kernel.includes.min_kernel = KernelVersion{4, 8};
  EXPECT_TRUE(RuleApplies(kernel, RuleEnvironment{{}, "amd64", {4, 8}}));
  EXPECT_FALSE(RuleApplies(kernel, RuleEnvironment{{}, "amd64", {4, 4}}));
  kernel.includes.min_kernel.reset();
  kernel.excludes.min_kernel = KernelVersion{5, 0};
  EXPECT_TRUE(RuleApplies(kernel, RuleEnvironment{{}, "amd64", {4, 19}}));
  EXPECT_FALSE(RuleApplies(kernel, RuleEnvironment{{}, "amd64", {5, 0}}));
}

}  // namespace
}  // namespace berth::seccomp
