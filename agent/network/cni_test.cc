// The Cni flow against fake plugins: small shell scripts in a temp bin dir that
// record their command line, environment and stdin, and print canned results.
#include "agent/network/cni.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/network/cache.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::network {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kResultA[] = R"({"cniVersion": "1.0.0",
  "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/proc/self/ns/net"}],
  "ips": [{"address": "10.22.0.5/24", "gateway": "10.22.0.1", "interface": 2}]})";
constexpr char kResultB[] = R"({"cniVersion": "1.0.0",
  "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/proc/self/ns/net"}],
  "ips": [{"address": "fd00::5/64", "interface": 2},
          {"address": "10.22.0.5/24", "gateway": "10.22.0.1", "interface": 2}]})";

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const std::string& d : {bin_, conf_, rec_}) ASSERT_THAT(MakeDirs(d, 0755), IsOk());
    Plugin("first", absl::StrCat("cat <<'EOF'\n", kResultA, "\nEOF\n"));
    Plugin("second", absl::StrCat("cat <<'EOF'\n", kResultB, "\nEOF\n"));
    Plugin("fail", R"(echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no ipam"}'
exit 1
)");
    Plugin("crash", "echo 'panic: runtime error' >&2\nexit 2\n");
    Plugin("slow", "sleep 30\n");
    Plugin("garbage", "echo 'not json'\n");
  }

  // A plugin that records every call and runs `add` for ADD; other commands succeed.
  void Plugin(const std::string& name, const std::string& add) {
    const std::string r = rec_ + "/" + name;
    const std::string path = bin_ + "/" + name;
    WriteFileOrDie(path, absl::StrCat("#!/bin/sh\necho \"", name, " $CNI_COMMAND\" >> ", rec_,
                                      "/calls\ncat > ", r, ".$CNI_COMMAND.stdin\nenv > ", r,
                                      ".$CNI_COMMAND.env\nif [ \"$CNI_COMMAND\" = ADD ]; then\n",
                                      add, "fi\nexit 0\n"));
    ASSERT_EQ(chmod(path.c_str(), 0755), 0);
  }

  void Conflist(const std::string& version, const std::vector<std::string>& plugins,
                const std::string& extra = "") {
    std::string list;
    for (const std::string& p : plugins) {
      absl::StrAppend(&list, list.empty() ? "" : ",", R"({"type": ")", p,
                      R"(", "capabilities": {"portMappings": true}})");
    }
    WriteFileOrDie(conf_ + "/10-test.conflist",
                   absl::StrCat(R"({"cniVersion": ")", version, R"(", "name": "testnet", )", extra,
                                R"("plugins": [)", list, "]}"));
  }

  Cni MakeCni(absl::Duration timeout = absl::Seconds(20)) {
    return Cni(CniOptions{.conf_dir = conf_,
                          .bin_dirs = {dir_.Join("nobin"), bin_},
                          .cache_dir = cache_,
                          .plugin_timeout = timeout});
  }

  static Attachment MakeAttachment() {
    Attachment a;
    a.container_id = "c0ffee";
    a.netns = "/proc/self/ns/net";  // a real namespace that DEL passes through
    a.args = KubernetesArgs("default", "nginx", "c0ffee", "uid-1");
    a.port_mappings.push_back({.host_port = 8080, .container_port = 80});
    return a;
  }

  std::vector<std::string> Calls() {
    absl::StatusOr<std::string> text = ReadFile(rec_ + "/calls");
    if (!text.ok()) return {};
    return absl::StrSplit(absl::StripSuffix(*text, "\n"), '\n');
  }
  void ClearCalls() { unlink((rec_ + "/calls").c_str()); }

  nlohmann::json Stdin(const std::string& plugin, const std::string& command) {
    absl::StatusOr<std::string> text = ReadFile(rec_ + "/" + plugin + "." + command + ".stdin");
    EXPECT_THAT(text, IsOk());
    return nlohmann::json::parse(text.ok() ? *text : "null");
  }

  std::map<std::string, std::string> Env(const std::string& plugin, const std::string& command) {
    std::map<std::string, std::string> env;
    absl::StatusOr<std::string> text = ReadFile(rec_ + "/" + plugin + "." + command + ".env");
    EXPECT_THAT(text, IsOk());
    for (absl::string_view line : absl::StrSplit(text.ok() ? *text : "", '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      env.insert(std::move(kv));
    }
    return env;
  }

  std::string CacheFile() { return cache_ + "/results/testnet-c0ffee-eth0"; }
  bool Exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }

  TempDir dir_;
  const std::string bin_ = dir_.Join("bin"), conf_ = dir_.Join("net.d"),
                    cache_ = dir_.Join("cache"), rec_ = dir_.Join("rec");
};

TEST_F(CniTest, AddChainsPluginsAndCachesTheResult) {
  Conflist("1.0.0", {"first", "second"});
  Cni cni = MakeCni();
  absl::StatusOr<Result> result = cni.Add(MakeAttachment());
  ASSERT_THAT(result, IsOk());
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "second ADD"));

  nlohmann::json first = Stdin("first", "ADD");
  EXPECT_EQ(first["name"], "testnet");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_FALSE(first.contains("prevResult"));
  EXPECT_FALSE(first.contains("capabilities"));
  EXPECT_EQ(first["runtimeConfig"]["portMappings"],
            nlohmann::json::parse(R"([{"hostPort":8080,"containerPort":80,"protocol":"tcp"}])"));
  EXPECT_EQ(Stdin("second", "ADD")["prevResult"], nlohmann::json::parse(kResultA));

  std::map<std::string, std::string> env = Env("first", "ADD");
  EXPECT_EQ(env["CNI_COMMAND"], "ADD");
  EXPECT_EQ(env["CNI_CONTAINERID"], "c0ffee");
  EXPECT_EQ(env["CNI_NETNS"], "/proc/self/ns/net");
  EXPECT_EQ(env["CNI_IFNAME"], "eth0");
  EXPECT_EQ(env["CNI_ARGS"],
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;"
            "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=uid-1");
  EXPECT_EQ(env["CNI_PATH"], dir_.Join("nobin") + ":" + bin_);
  EXPECT_EQ(env["PATH"], CniOptions().path_env);

  EXPECT_EQ(result->raw, nlohmann::json::parse(kResultB));
  PodIps ips = SelectPodIps(*result, "eth0");
  EXPECT_EQ(ips.primary, "10.22.0.5");
  EXPECT_THAT(ips.additional, ElementsAre("fd00::5"));
  absl::StatusOr<CacheEntry> cached = ReadCache(CacheFile());
  ASSERT_THAT(cached, IsOk());
  EXPECT_EQ(cached->result, nlohmann::json::parse(kResultB));
  EXPECT_EQ(cached->attachment.port_mappings.size(), 1u);
}

TEST_F(CniTest, DelUsesTheCachedConfigInReverseAndIsIdempotent) {
  Conflist("1.0.0", {"first", "second"});
  Cni cni = MakeCni();
  ASSERT_THAT(cni.Add(MakeAttachment()), IsOk());
  Conflist("1.0.0", {"crash"});  // the config changes under a running pod
  ClearCalls();

  Attachment del;  // the caller no longer knows the port mappings or args
  del.container_id = "c0ffee";
  del.netns = "/proc/self/ns/net";
  ASSERT_THAT(cni.Del(del), IsOk());
  EXPECT_THAT(Calls(), ElementsAre("second DEL", "first DEL"));
  nlohmann::json second = Stdin("second", "DEL");
  EXPECT_EQ(second["prevResult"], nlohmann::json::parse(kResultB));
  EXPECT_EQ(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  EXPECT_EQ(Env("second", "DEL")["CNI_ARGS"], FormatCniArgs(MakeAttachment().args));
  EXPECT_FALSE(Exists(CacheFile()));

  // No cache now: the current config's plugins run, with no prevResult.
  Conflist("1.0.0", {"first"});
  ClearCalls();
  ASSERT_THAT(cni.Del(del), IsOk());
  EXPECT_THAT(Calls(), ElementsAre("first DEL"));
  EXPECT_FALSE(Stdin("first", "DEL").contains("prevResult"));
}

TEST_F(CniTest, DelLeavesOtherAttachmentsAloneAndDropsUnreadableEntries) {
  Conflist("1.0.0", {"first"});
  Cni cni = MakeCni();
  Attachment other = MakeAttachment();
  other.container_id = "x-c0ffee";  // its cache file also ends in -c0ffee-eth0
  ASSERT_THAT(cni.Add(other), IsOk());
  ASSERT_THAT(MakeDirs(cache_ + "/results", 0700), IsOk());
  WriteFileOrDie(cache_ + "/results/old-c0ffee-eth0", "{torn");
  ClearCalls();
  ASSERT_THAT(cni.Del(MakeAttachment()), IsOk());
  EXPECT_THAT(Calls(), ElementsAre("first DEL"));  // the current config, no cache of ours
  EXPECT_TRUE(Exists(cache_ + "/results/testnet-x-c0ffee-eth0"));
  EXPECT_FALSE(Exists(cache_ + "/results/old-c0ffee-eth0"));
}

TEST_F(CniTest, DelPassesAnEmptyNetnsWhenTheNamespaceIsGone) {
  Conflist("1.0.0", {"first"});
  Cni cni = MakeCni();
  Attachment a = MakeAttachment();
  a.netns = dir_.Join("pinned-net");  // a pin file whose bind mount is gone
  WriteFileOrDie(a.netns, "");
  ASSERT_THAT(cni.Add(a), IsOk());
  ASSERT_THAT(cni.Del(a), IsOk());
  EXPECT_EQ(Env("first", "DEL")["CNI_NETNS"], "");

  ASSERT_THAT(cni.Add(a), IsOk());
  a.netns = dir_.Join("no-such-file");
  ASSERT_THAT(cni.Del(a), IsOk());
  EXPECT_EQ(Env("first", "DEL")["CNI_NETNS"], "");

  EXPECT_EQ(NetnsForDel("/proc/self/ns/net"), "/proc/self/ns/net");
  EXPECT_EQ(NetnsForDel(""), "");
}

TEST_F(CniTest, FailedAddRollsBackTheWholeListAndReturnsThePluginsError) {
  Conflist("1.0.0", {"first", "fail", "second"});
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Add(MakeAttachment()), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  "cni plugin `fail` ADD: bad config; no ipam"));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "fail ADD", "second DEL", "fail DEL", "first DEL"));
  EXPECT_EQ(Stdin("second", "DEL")["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  EXPECT_FALSE(Exists(CacheFile()));
}

TEST_F(CniTest, PluginWithoutErrorJsonReportsStderr) {
  Conflist("1.0.0", {"first", "crash"});
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Add(MakeAttachment()),
              StatusIs(absl::StatusCode::kInternal,
                       "cni plugin `crash` ADD: exit status 2: panic: runtime error"));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "crash ADD", "crash DEL", "first DEL"));
}

TEST_F(CniTest, UnparsableResultFailsAndRollsBack) {
  Conflist("1.0.0", {"garbage"});
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Add(MakeAttachment()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cni plugin `garbage` ADD: result is not valid JSON")));
  EXPECT_THAT(Calls(), ElementsAre("garbage ADD", "garbage DEL"));
}

TEST_F(CniTest, TimeoutKillsThePluginAndRollsBack) {
  Conflist("1.0.0", {"first", "slow"});
  Cni cni = MakeCni(absl::Seconds(1));
  absl::Time start = absl::Now();
  EXPECT_THAT(cni.Add(MakeAttachment()),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("cni plugin `slow` ADD: timed out after 1s")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "slow ADD", "slow DEL", "first DEL"));
}

TEST_F(CniTest, MissingPluginFailsTheAdd) {
  Conflist("1.0.0", {"first", "nosuch"});
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Add(MakeAttachment()), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                  HasSubstr("cni plugin `nosuch` not found in [")));
  EXPECT_THAT(Calls(), ElementsAre("first ADD", "first DEL"));
}

TEST_F(CniTest, CheckRunsInOrderWithTheCachedResult) {
  Conflist("1.0.0", {"first", "second"});
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Check(MakeAttachment()), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(cni.Add(MakeAttachment()), IsOk());
  ClearCalls();
  ASSERT_THAT(cni.Check(MakeAttachment()), IsOk());
  EXPECT_THAT(Calls(), ElementsAre("first CHECK", "second CHECK"));
  EXPECT_EQ(Stdin("first", "CHECK")["prevResult"], nlohmann::json::parse(kResultB));
  EXPECT_EQ(Env("first", "CHECK")["CNI_NETNS"], "/proc/self/ns/net");
}

TEST_F(CniTest, CheckNeedsVersion040AndHonoursDisableCheck) {
  Conflist("0.3.1", {"first"});
  Cni cni = MakeCni();
  ASSERT_THAT(cni.Add(MakeAttachment()), IsOk());
  EXPECT_THAT(cni.Check(MakeAttachment()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("0.3.1 has no CHECK")));
  // 0.3.x DEL gets no prevResult (libcni passes it from 0.4.0 on).
  ASSERT_THAT(cni.Del(MakeAttachment()), IsOk());
  EXPECT_FALSE(Stdin("first", "DEL").contains("prevResult"));

  Conflist("1.0.0", {"first"}, R"("disableCheck": true, )");
  ASSERT_THAT(cni.Add(MakeAttachment()), IsOk());
  ClearCalls();
  EXPECT_THAT(cni.Check(MakeAttachment()), IsOk());
  EXPECT_THAT(Calls(), IsEmpty());
}

TEST_F(CniTest, DelOfUnknownAttachmentWithoutConfigSucceeds) {
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Del(MakeAttachment()), IsOk());
  EXPECT_THAT(Calls(), IsEmpty());
}

TEST_F(CniTest, SingleConfRunsOnePlugin) {
  WriteFileOrDie(conf_ + "/10-one.conf",
                 R"({"cniVersion": "0.4.0", "name": "testnet", "type": "first"})");
  Cni cni = MakeCni();
  absl::StatusOr<Result> r = cni.Add(MakeAttachment());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(SelectPodIps(*r, "eth0").primary, "10.22.0.5");
  EXPECT_FALSE(Stdin("first", "ADD").contains("runtimeConfig"));  // no capabilities declared
}

TEST_F(CniTest, ReadyFollowsTheConfigDirectory) {
  Cni cni = MakeCni();
  EXPECT_THAT(cni.Ready(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    "no network config found in `" + conf_ + "`"));
  Conflist("1.0.0", {"first", "second"});
  EXPECT_THAT(cni.Ready(), IsOk());
  // Edited in place (same inode, other size): re-read.
  Conflist("1.0.0", {"first", "portmap"});
  EXPECT_THAT(cni.Ready(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("cni plugin `portmap` not found")));
  // The IPAM plugin a plugin delegates to must be there too.
  WriteFileOrDie(conf_ + "/05-ipam.conf",
                 R"({"cniVersion": "1.0.0", "name": "n", "type": "first",
                     "ipam": {"type": "host-local"}})");
  EXPECT_THAT(cni.Ready(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("cni plugin `host-local` not found")));
  unlink((conf_ + "/05-ipam.conf").c_str());
  unlink((conf_ + "/10-test.conflist").c_str());
  WriteFileOrDie(conf_ + "/20-broken.conflist", "{");
  EXPECT_THAT(cni.Ready(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("20-broken")));
}

void SetMtime(const std::string& path, absl::Time t) {
  timespec times[2] = {absl::ToTimespec(t), absl::ToTimespec(t)};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

TEST_F(CniTest, ConfigIsReusedUntilTheDirectoryOrFileChanges) {
  const absl::Time old = absl::Now() - absl::Seconds(60);
  Conflist("1.0.0", {"first"});
  SetMtime(conf_ + "/10-test.conflist", old);
  SetMtime(conf_, old);
  Cni cni = MakeCni();
  absl::StatusOr<NetworkConfigList> list = cni.Config();
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->plugins[0].type, "first");
  // Same size, same inode, same mtime: not re-read.
  Conflist("1.0.0", {"frst2"});
  SetMtime(conf_ + "/10-test.conflist", old);
  list = cni.Config();
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->plugins[0].type, "first");
  // The file's mtime moved: re-read.
  SetMtime(conf_ + "/10-test.conflist", old + absl::Seconds(1));
  list = cni.Config();
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->plugins[0].type, "frst2");
  // A new file sorting first changes the directory: re-listed.
  WriteFileOrDie(conf_ + "/00-new.conf", R"({"cniVersion": "1.0.0", "name": "new", "type": "x"})");
  list = cni.Config();
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->name, "new");
}

// The exec seam: an in-process fake sees exactly the calls Cni makes.
class RecordingExec : public PluginExec {
 public:
  explicit RecordingExec(std::vector<PluginCall>* calls) : calls_(calls) {}
  absl::StatusOr<PluginOutput> Run(const PluginCall& call) override {
    calls_->push_back(call);
    return PluginOutput{.wait_status = 0, .out = kResultA, .err = ""};
  }

 private:
  std::vector<PluginCall>* calls_;
};

TEST_F(CniTest, ExecSeesTheWholeEnvironmentAndNothingElse) {
  Conflist("1.0.0", {"first"});
  std::vector<PluginCall> calls;
  Cni cni(CniOptions{.conf_dir = conf_,
                     .bin_dirs = {bin_},
                     .cache_dir = cache_,
                     .plugin_timeout = absl::Seconds(7),
                     .path_env = "/bin"},
          std::make_unique<RecordingExec>(&calls));
  Attachment a = MakeAttachment();
  a.args.clear();
  ASSERT_THAT(cni.Add(a), IsOk());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, bin_ + "/first");
  EXPECT_EQ(calls[0].timeout, absl::Seconds(7));
  EXPECT_THAT(calls[0].env, ElementsAre("CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee",
                                        "CNI_NETNS=/proc/self/ns/net", "CNI_IFNAME=eth0",
                                        "CNI_ARGS=", "CNI_PATH=" + bin_, "PATH=/bin"));
  EXPECT_THAT(Calls(), IsEmpty());  // the scripts never ran
}

TEST_F(CniTest, InvalidAttachmentIsRefusedBeforeAnyPlugin) {
  Conflist("1.0.0", {"first"});
  Cni cni = MakeCni();
  Attachment a = MakeAttachment();
  a.container_id = "../etc";
  EXPECT_THAT(cni.Add(a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(cni.Del(a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Calls(), IsEmpty());
}

}  // namespace
}  // namespace berth::network
