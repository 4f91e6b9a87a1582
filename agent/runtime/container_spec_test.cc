// BuildContainerSpec as a whole: process args, env, cwd, namespaces, log path,
// stop signal, cgroup, and what it refuses. Users, security, mounts,
// resources and signals have their own test files.
#include <signal.h>
#include <unistd.h>

#include <climits>

#include "agent/runtime/container_spec.h"
#include "agent/runtime/container_spec_testing.h"

namespace berth::lifecycle::testing {
namespace {

using ::berth::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kDefaultPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct ArgsCase {
  const char* name;
  std::vector<std::string> command, args, entrypoint, cmd, want;
};
void PrintTo(const ArgsCase& c, std::ostream* os) { *os << c.name; }

class ProcessArgsTest : public SpecTest, public ::testing::WithParamInterface<ArgsCase> {};

TEST_P(ProcessArgsTest, FollowsDockerRules) {
  const ArgsCase& c = GetParam();
  for (const std::string& s : c.command) config_.add_command(s);
  for (const std::string& s : c.args) config_.add_args(s);
  image_.config.config.entrypoint = c.entrypoint;
  image_.config.config.cmd = c.cmd;
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.process().args(), ElementsAreArray(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ProcessArgsTest,
    ::testing::Values(
        ArgsCase{"ImageCmd", {}, {}, {}, {"sh", "-c", "x"}, {"sh", "-c", "x"}},
        ArgsCase{"ImageEntrypointAndCmd", {}, {}, {"/init"}, {"-v"}, {"/init", "-v"}},
        ArgsCase{"ArgsReplaceCmd", {}, {"-q"}, {"/init"}, {"-v"}, {"/init", "-q"}},
        ArgsCase{"CommandReplacesBoth", {"/bin/x"}, {"a"}, {"/init"}, {"-v"}, {"/bin/x", "a"}},
        ArgsCase{"CommandWithoutArgsDropsCmd", {"/bin/x"}, {}, {"/init"}, {"-v"}, {"/bin/x"}},
        ArgsCase{"EmptyEntrypointString", {}, {}, {""}, {"top"}, {"top"}}),
    [](const ::testing::TestParamInfo<ArgsCase>& info) { return info.param.name; });

TEST_F(SpecTest, NoCommandAnywhereIsInvalid) {
  image_.config.config.cmd.clear();
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no command")));
}

TEST_F(SpecTest, EnvDefaultsPathAndHostname) {
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.process().env(), ElementsAre(kDefaultPath, "HOSTNAME=pod-host"));
}

TEST_F(SpecTest, EnvImageThenConfigOverrideByKeyInPlace) {
  image_.config.config.env = {"PATH=/img/bin", "A=image", "B=image", "HOSTNAME=img"};
  auto add = [&](const char* k, const char* v) {
    v1::KeyValue* kv = config_.add_envs();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("B", "config");
  add("C", "config=with=equals");
  add("B", "last");
  BuiltSpec built = BuildOk();
  EXPECT_THAT(built.spec.process().env(), ElementsAre("PATH=/img/bin", "HOSTNAME=img", "A=image",
                                                      "B=last", "C=config=with=equals"));
}

TEST_F(SpecTest, EnvImageEntryWithoutValueUnsets) {
  image_.config.config.env = {"HOSTNAME"};
  EXPECT_THAT(BuildOk().spec.process().env(), ElementsAre(kDefaultPath));
}

TEST_F(SpecTest, EnvBadKeyIsNamed) {
  config_.add_envs()->set_key("OK");
  config_.add_envs()->set_key("A=B");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.envs[1].key `A=B`")));
}

TEST_F(SpecTest, EnvHostnameFallsBackToTheNodes) {
  sandbox_config_.clear_hostname();
  char host[HOST_NAME_MAX + 1] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_THAT(BuildOk().spec.process().env(), Contains(std::string("HOSTNAME=") + host));
}

TEST_F(SpecTest, CwdConfigThenImageThenRoot) {
  EXPECT_EQ(BuildOk().spec.process().cwd(), "/");
  image_.config.config.working_dir = "/srv";
  EXPECT_EQ(BuildOk().spec.process().cwd(), "/srv");
  config_.set_working_dir("/work");
  EXPECT_EQ(BuildOk().spec.process().cwd(), "/work");
}

TEST_F(SpecTest, RelativeCwdIsNamed) {
  config_.set_working_dir("work");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.working_dir `work`")));
  config_.clear_working_dir();
  image_.config.config.working_dir = "srv";
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("image config WorkingDir `srv`")));
}

std::vector<std::string> Namespaces(const shim::v1::ContainerSpec& spec) {
  std::vector<std::string> out;
  for (const shim::v1::Namespace& ns : spec.namespaces()) {
    out.push_back(shim::v1::NamespaceType_Name(ns.type()) + "=" + ns.path());
  }
  return out;
}

TEST_F(SpecTest, NamespacesJoinTheSandboxAndGetOwnPid) {
  BuiltSpec built = BuildOk();
  EXPECT_THAT(Namespaces(built.spec),
              ElementsAre("MOUNT=", "NETWORK=/run/berth/sandboxes/s1/ns/net",
                          "IPC=/run/berth/sandboxes/s1/ns/ipc",
                          "UTS=/run/berth/sandboxes/s1/ns/uts", "PID="));
  EXPECT_EQ(built.spec.hostname(), "");
}

TEST_F(SpecTest, NamespacesOfAHostSandboxAreNotListed) {
  in_.sandbox.net_ns.clear();
  in_.sandbox.ipc_ns.clear();
  in_.sandbox.uts_ns.clear();
  SecurityContext().mutable_namespace_options()->set_pid(v1::NODE);
  BuiltSpec built = BuildOk();
  EXPECT_THAT(Namespaces(built.spec), ElementsAre("MOUNT="));
  EXPECT_EQ(built.spec.hostname(), "");
}

TEST_F(SpecTest, PidPodJoinsTheSandbox) {
  SecurityContext().mutable_namespace_options()->set_pid(v1::POD);
  in_.sandbox.pid_ns = "/proc/42/ns/pid";
  EXPECT_THAT(Namespaces(BuildOk().spec), Contains("PID=/proc/42/ns/pid"));
  in_.sandbox.pid_ns.clear();
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("namespace_options.pid POD")));
  in_.sandbox.host_pid = true;
  EXPECT_THAT(Namespaces(BuildOk().spec), Not(Contains(HasSubstr("PID"))));
}

TEST_F(SpecTest, PidTargetJoinsTheTarget) {
  SecurityContext().mutable_namespace_options()->set_pid(v1::TARGET);
  SecurityContext().mutable_namespace_options()->set_target_id("c0");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target_id `c0`")));
  in_.target_pid_ns = "/proc/7/ns/pid";
  EXPECT_THAT(Namespaces(BuildOk().spec), Contains("PID=/proc/7/ns/pid"));
}

TEST_F(SpecTest, PodUserNamespaceIsRefused) {
  v1::UserNamespace* userns =
      SecurityContext().mutable_namespace_options()->mutable_userns_options();
  userns->set_mode(v1::NODE);
  EXPECT_THAT(Build(), berth::testing::IsOk());
  userns->set_mode(v1::POD);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("namespace_options.userns_options.mode POD")));
}

struct LogCase {
  const char* name;
  std::string directory, file, want;  // want "" with error set: expect an error
  bool error = false;
};
void PrintTo(const LogCase& c, std::ostream* os) { *os << c.name; }

class LogPathTest : public SpecTest, public ::testing::WithParamInterface<LogCase> {};

TEST_P(LogPathTest, JoinsTheSandboxDirectory) {
  const LogCase& c = GetParam();
  in_.sandbox.log_directory = c.directory;
  config_.set_log_path(c.file);
  if (c.error) {
    EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("log")));
  } else {
    EXPECT_EQ(BuildOk().spec.log_path(), c.want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LogPathTest,
    ::testing::Values(LogCase{"Joined", "/var/log/pods/p", "c/0.log", "/var/log/pods/p/c/0.log"},
                      LogCase{"DoubleSlashes", "/var/log/pods/p/", "/c//0.log",
                              "/var/log/pods/p/c/0.log"},
                      LogCase{"NoFile", "/var/log/pods/p", "", ""},
                      LogCase{"AbsoluteWithoutDirectory", "", "/tmp/c.log", "/tmp/c.log"},
                      LogCase{"RelativeWithoutDirectory", "", "c/0.log", "", true},
                      LogCase{"DotDot", "/var/log/pods/p", "../../etc/x", "", true},
                      LogCase{"RelativeDirectory", "pods", "c/0.log", "", true}),
    [](const ::testing::TestParamInfo<LogCase>& info) { return info.param.name; });

TEST_F(SpecTest, StopSignalDefaultsToSigterm) { EXPECT_EQ(BuildOk().stop_signal, SIGTERM); }

TEST_F(SpecTest, StopSignalFromTheImage) {
  image_.config.config.stop_signal = "SIGQUIT";
  EXPECT_EQ(BuildOk().stop_signal, SIGQUIT);
  image_.config.config.stop_signal = "SIGNOPE";
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("image config StopSignal")));
}

TEST_F(SpecTest, StopSignalFromTheConfigWinsAndIsNotTheEnumNumber) {
  image_.config.config.stop_signal = "SIGQUIT";
  v1::Signal sig = v1::RUNTIME_DEFAULT;
  ASSERT_TRUE(v1::Signal_Parse("SIGTERM", &sig));
  ASSERT_NE(static_cast<int>(sig), SIGTERM);  // CRI's SIGTERM is 23, SIGURG's number
  config_.set_stop_signal(sig);
  EXPECT_EQ(BuildOk().stop_signal, SIGTERM);
  ASSERT_TRUE(v1::Signal_Parse("SIGRTMINPLUS3", &sig));
  config_.set_stop_signal(sig);
  EXPECT_EQ(BuildOk().stop_signal, 37);
}

TEST_F(SpecTest, UnsupportedFieldsAreNamed) {
  config_.set_tty(true);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.tty: not supported by berth yet")));
  config_.set_tty(false);
  config_.set_stdin(true);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.stdin")));
  config_.set_stdin(false);
  config_.add_cdi_devices()->set_name("vendor.com/gpu=0");
  EXPECT_THAT(Build(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.CDI_devices")));
}

TEST_F(SpecTest, CgroupPathIsUnderTheSandbox) {
  EXPECT_EQ(BuildOk().spec.cgroup_path(), "/berth/s1/c1");
  in_.sandbox.cgroup_parent = "/kubepods/pod1/";
  EXPECT_EQ(BuildOk().spec.cgroup_path(), "/kubepods/pod1/c1");
  in_.sandbox.cgroup_parent.clear();
  EXPECT_EQ(BuildOk().spec.cgroup_path(), "");
}

TEST_F(SpecTest, ResourcesAndOomScoreAdj) {
  v1::LinuxContainerResources* r = config_.mutable_linux()->mutable_resources();
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_cpu_shares(512);
  BuiltSpec built = BuildOk();
  EXPECT_EQ(built.spec.resources().memory_limit(), 64 << 20);
  EXPECT_EQ(built.spec.resources().cpu_shares(), 512u);
  EXPECT_FALSE(built.spec.process().has_oom_score_adj());
  r->set_oom_score_adj(-997);
  EXPECT_EQ(BuildOk().spec.process().oom_score_adj(), -997);
  r->set_oom_score_adj(1001);
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.linux.resources.oom_score_adj 1001")));
  r->set_oom_score_adj(0);
  (*r->mutable_unified())["cgroup.procs"] = "1";
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("config.linux.resources: unified[cgroup.procs]")));
}

TEST_F(SpecTest, DefaultsFromDefaultSpec) {
  BuiltSpec built = BuildOk();
  EXPECT_EQ(built.spec.id(), "c1");
  EXPECT_EQ(built.spec.root(), rootfs_);
  EXPECT_THAT(built.spec.masked_paths(), Contains("/proc/kcore"));
  EXPECT_THAT(built.spec.readonly_paths(), Contains("/proc/sys"));
  EXPECT_THAT(built.spec.process().capabilities().bounding(), Contains("CAP_CHOWN"));
  EXPECT_FALSE(built.spec.readonly_root());
  EXPECT_FALSE(built.spec.process().no_new_privileges());
  EXPECT_THAT(built.spec.process().seccomp_bpf(), IsEmpty());  // unset is unconfined
  EXPECT_TRUE(built.spec.resources().devices_set());
}

TEST_F(SpecTest, ReadonlyRootfsAndNoNewPrivs) {
  SecurityContext().set_readonly_rootfs(true);
  SecurityContext().set_no_new_privs(true);
  BuiltSpec built = BuildOk();
  EXPECT_TRUE(built.spec.readonly_root());
  EXPECT_TRUE(built.spec.process().no_new_privileges());
}

TEST_F(SpecTest, MissingRootfsIsAnError) {
  in_.rootfs = dir_.Join("nope");
  EXPECT_THAT(Build(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

}  // namespace
}  // namespace berth::lifecycle::testing
