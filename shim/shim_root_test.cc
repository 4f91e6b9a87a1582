// berth-shim end to end, as root: isolation, exec, exit codes, logs, detach,
// cleanup. Limits are in shim_limits_root_test.cc.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "shim/cri_log.h"
#include "shim/exit_file.h"
#include "shim/testing/shim_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::shim::testing {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::Not;

std::string NsInode(pid_t pid, const char* ns) {
  struct stat st;
  if (stat(absl::StrCat("/proc/", pid, "/ns/", ns).c_str(), &st) != 0) return "?";
  return absl::StrCat(st.st_ino);
}

// Until EOF, or EIO: a pty master once its last slave is closed.
std::string ReadToEof(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

TEST_F(ShimTest, InitIsPid1WithItsOwnHostnameAndRoot) {
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  spec.set_hostname("berth-c0");
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  v1::ExitStatus exit = RunToExit(*shim);
  EXPECT_EQ(exit.exit_code(), 0);
  EXPECT_FALSE(exit.oom_killed());
  ProbeOutput out = ParseProbe(LogText(*shim));
  EXPECT_EQ(One(out, "pid"), "1");
  EXPECT_EQ(One(out, "hostname"), "berth-c0");
  EXPECT_EQ(One(out, "root_entries"), "bin,dev,proc,sys,tmp");  // host files invisible
  EXPECT_NE(One(out, "ns.pid"), NsInode(getpid(), "pid"));
  EXPECT_NE(One(out, "ns.mnt"), NsInode(getpid(), "mnt"));
  EXPECT_NE(One(out, "ns.net"), NsInode(getpid(), "net"));
  // The OCI default capabilities, nothing more: CHOWN DAC_OVERRIDE FOWNER FSETID
  // KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD
  // AUDIT_WRITE SETFCAP.
  EXPECT_EQ(One(out, "cap.eff"), "00000000a80425fb");
  EXPECT_EQ(One(out, "cap.bnd"), "00000000a80425fb");
  EXPECT_EQ(One(out, "uid"), "0");
  // Masked and read-only paths.
  bool proc_sys_ro = false, keys_masked = false;
  for (auto [it, end] = out.equal_range("mount"); it != end; ++it) {
    if (absl::StartsWith(it->second, "/proc/sys "))
      proc_sys_ro = absl::StrContains(it->second, "ro");
    if (absl::StartsWith(it->second, "/proc/keys ")) keys_masked = true;
  }
  EXPECT_TRUE(proc_sys_ro);
  EXPECT_TRUE(keys_masked) << LogText(*shim);
}

TEST_F(ShimTest, UserNamespaceMapsRootToAnUnprivilegedHostUid) {
  // As containerd does for a user-namespaced pod, the rootfs belongs to the
  // mapped root (creating mount points there needs it).
  ASSERT_EQ(system(absl::StrCat("chown -R 100000:100000 ", rootfs_).c_str()), 0);
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  spec.add_namespaces()->set_type(v1::USER);
  for (auto* maps : {spec.mutable_uid_mappings(), spec.mutable_gid_mappings()}) {
    v1::IdMapping* m = maps->Add();
    m->set_container_id(0);
    m->set_host_id(100000);
    m->set_size(65536);
  }
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  // Created, not started: the host already sees init as the mapped uid.
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", shim->init_pid, "/status"));
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(*status, HasSubstr("Uid:\t100000\t100000\t100000\t100000"));
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*shim));
  EXPECT_EQ(One(out, "uid"), "0");
  EXPECT_EQ(One(out, "gid"), "0");
  EXPECT_NE(One(out, "ns.user"), NsInode(getpid(), "user"));
}

TEST_F(ShimTest, ExecJoinsTheContainersNamespacesAndReturnsItsExitCode) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  v1::Request req;
  v1::Process* p = req.mutable_exec()->mutable_process();
  *p = Spec({"/bin/probe", "report"}).process();
  absl::StatusOr<v1::Response> r = Call(*shim, req);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exec().exit().exit_code(), 0);
  ProbeOutput out = ParseProbe(r->exec().stdout());
  for (const char* ns : {"pid", "mnt", "net", "ipc", "uts"}) {
    EXPECT_EQ(One(out, absl::StrCat("ns.", ns)), NsInode(shim->init_pid, ns)) << ns;
  }
  EXPECT_NE(One(out, "pid"), "1");
  EXPECT_EQ(One(out, "root_entries"), "bin,dev,proc,sys,tmp");
  // In the container's cgroup too.
  std::string memory_cgroup;
  for (auto [it, end] = out.equal_range("cgroup"); it != end; ++it) {
    if (absl::StrContains(it->second, ":memory:")) memory_cgroup = it->second;
  }
  EXPECT_THAT(memory_cgroup, HasSubstr(CgroupPath("c0")));

  p->clear_args();
  p->add_args("sh");
  p->add_args("-c");
  p->add_args("echo out; echo err >&2; exit 3");
  r = Call(*shim, req);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exec().exit().exit_code(), 3);
  EXPECT_EQ(r->exec().stdout(), "out\n");
  EXPECT_EQ(r->exec().stderr(), "err\n");

  p->set_args(0, "/bin/nope");
  p->mutable_args()->DeleteSubrange(1, 2);
  EXPECT_THAT(Call(*shim, req), StatusIs(absl::StatusCode::kNotFound, HasSubstr("/bin/nope")));
}

TEST_F(ShimTest, ExecWithPassedStdioUsesThemAndAnswersWithTheExitAlone) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  int in[2], out[2], err[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  UniqueFd in_w(in[1]), out_r(out[0]), err_r(err[0]);
  v1::Request req;
  *req.mutable_exec()->mutable_process() =
      Spec({"sh", "-c", "read x; echo got $x; echo e >&2; exit 4"}).process();
  req.mutable_exec()->set_stdio_fds(true);
  absl::StatusOr<UniqueFd> conn = SendShimRequest(shim->socket, req, {in[0], out[1], err[1]});
  for (int fd : {in[0], out[1], err[1]}) close(fd);
  ASSERT_THAT(conn, IsOk());
  ASSERT_EQ(write(in_w.get(), "hello\n", 6), 6);
  in_w.reset();
  // EOF on both once the process is gone: the shim kept no copy.
  EXPECT_EQ(ReadToEof(out_r.get()), "got hello\n");
  EXPECT_EQ(ReadToEof(err_r.get()), "e\n");
  absl::StatusOr<v1::Response> r = ReceiveShimResponse(*conn);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exec().exit().exit_code(), 4);
  EXPECT_EQ(r->exec().stdout(), "");

  // Fewer than three fds is refused.
  conn = SendShimRequest(shim->socket, req, {});
  ASSERT_THAT(conn, IsOk());
  EXPECT_THAT(ReceiveShimResponse(*conn),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 fds")));
}

TEST_F(ShimTest, AStreamingExecWhoseClientGoesIsKilled) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  v1::Request req;
  *req.mutable_exec()->mutable_process() = Spec({"sh", "-c", "sleep 100 & sleep 100"}).process();
  req.mutable_exec()->set_stdio_fds(true);
  absl::StatusOr<UniqueFd> conn =
      SendShimRequest(shim->socket, req, {null.get(), null.get(), null.get()});
  ASSERT_THAT(conn, IsOk());
  const std::string procs_file = CgroupDir("pids", "c0") + "/cgroup.procs";
  absl::StatusOr<std::string> procs = ReadFile(procs_file);
  for (int i = 0; i < 100 && procs.ok() && std::count(procs->begin(), procs->end(), '\n') < 3;
       ++i) {
    usleep(20000);
    procs = ReadFile(procs_file);
  }
  ASSERT_THAT(procs, IsOk());
  // init and two sleeps (sh runs its last command in its own place)
  EXPECT_EQ(std::count(procs->begin(), procs->end(), '\n'), 3) << *procs;
  conn->reset();  // the client goes: the exec's process group is killed
  for (int i = 0; i < 100 && *procs != absl::StrCat(shim->init_pid, "\n"); ++i) {
    usleep(20000);
    procs = ReadFile(procs_file);
  }
  EXPECT_EQ(*procs, absl::StrCat(shim->init_pid, "\n"));
  // The shim still answers (it does not spin on the closed connection).
  EXPECT_THAT(Call(*shim, StateRequest()), IsOk());
}

TEST_F(ShimTest, AttachCopiesInitsOutputUntilItExits) {
  absl::StatusOr<LaunchedShim> shim =
      Launch(Spec({"sh", "-c", "sleep 0.5; echo out; echo err >&2; exit 2"}));
  ASSERT_THAT(shim, IsOk());
  int out[2], err[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  UniqueFd out_r(out[0]), err_r(err[0]);
  v1::Request attach;
  attach.mutable_attach();
  absl::StatusOr<UniqueFd> conn = SendShimRequest(shim->socket, attach, {out[1], err[1]});
  close(out[1]);
  close(err[1]);
  ASSERT_THAT(conn, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  absl::StatusOr<v1::Response> r = ReceiveShimResponse(*conn);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exit().exit_code(), 2);
  // The shim closed its ends with the answer: EOF after the output.
  EXPECT_EQ(ReadToEof(out_r.get()), "out\n");
  EXPECT_EQ(ReadToEof(err_r.get()), "err\n");
  EXPECT_EQ(LogText(*shim), "out\nerr\n");  // the log has it too
  // After the exit, an attach is answered at once.
  conn = SendShimRequest(shim->socket, attach, {out_r.get(), err_r.get()});
  ASSERT_THAT(conn, IsOk());
  r = ReceiveShimResponse(*conn);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exit().exit_code(), 2);
}

TEST_F(ShimTest, ExecOnATerminalMakesItTheControllingTerminal) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(master);
  ASSERT_EQ(grantpt(master.get()), 0);
  ASSERT_EQ(unlockpt(master.get()), 0);
  struct winsize ws = {};
  ws.ws_row = 33;
  ws.ws_col = 101;
  ASSERT_EQ(ioctl(master.get(), TIOCSWINSZ, &ws), 0);
  UniqueFd slave(open(ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave);
  v1::Request req;
  *req.mutable_exec()->mutable_process() =
      Spec({"sh", "-c", "test -t 0 && echo tty; stty size; exit 5"}).process();
  req.mutable_exec()->mutable_process()->set_terminal(true);
  req.mutable_exec()->set_stdio_fds(true);
  absl::StatusOr<UniqueFd> conn =
      SendShimRequest(shim->socket, req, {slave.get(), slave.get(), slave.get()});
  slave.reset();
  ASSERT_THAT(conn, IsOk());
  absl::StatusOr<v1::Response> r = ReceiveShimResponse(*conn);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exec().exit().exit_code(), 5);
  EXPECT_EQ(ReadToEof(master.get()), "tty\r\n33 101\r\n");  // the line discipline's ONLCR
}

TEST_F(ShimTest, ExecTimeoutKillsTheProcess) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  v1::Request req;
  *req.mutable_exec()->mutable_process() = Spec({"sh", "-c", "echo started; sleep 30"}).process();
  req.mutable_exec()->set_timeout_ms(300);
  absl::StatusOr<v1::Response> r = Call(*shim, req);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(r->exec().timed_out());
  EXPECT_EQ(r->exec().stdout(), "started\n");
  // Nothing of the exec is left in the cgroup: only init.
  absl::StatusOr<std::string> procs = ReadFile(CgroupDir("pids", "c0") + "/cgroup.procs");
  ASSERT_THAT(procs, IsOk());
  for (int i = 0; i < 50 && *procs != absl::StrCat(shim->init_pid, "\n"); ++i) {
    usleep(20000);
    procs = ReadFile(CgroupDir("pids", "c0") + "/cgroup.procs");
  }
  EXPECT_EQ(*procs, absl::StrCat(shim->init_pid, "\n"));
}

TEST_F(ShimTest, ExitCodesAndSignalsPropagate) {
  absl::StatusOr<LaunchedShim> a = Launch(Spec({"/bin/probe", "exit", "7"}));
  ASSERT_THAT(a, IsOk());
  v1::ExitStatus exit = RunToExit(*a);
  EXPECT_EQ(exit.exit_code(), 7);
  EXPECT_EQ(exit.signal(), 0);
  // The exit file says the same, written before wait answered.
  absl::StatusOr<v1::ExitStatus> file = ReadExitFile(a->bundle + "/exit");
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(file->exit_code(), 7);
  EXPECT_EQ(file->exited_at_ns(), exit.exited_at_ns());

  // Killed from outside: 128 + 9.
  absl::StatusOr<LaunchedShim> b = Launch(Spec({"/bin/probe", "sleep", "60"}));
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(Call(*b, StartRequest()), IsOk());
  ASSERT_THAT(Call(*b, KillRequest(SIGKILL)), IsOk());
  absl::StatusOr<v1::Response> w = Call(*b, WaitRequest());
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->exit().signal(), SIGKILL);
  EXPECT_EQ(w->exit().exit_code(), 137);
  absl::StatusOr<v1::Response> st = Call(*b, StateRequest());
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->state().state(), v1::STOPPED);

  // A signal the process sends itself, outside a PID namespace (PID 1 would
  // be immune to it).
  v1::ContainerSpec spec = Spec({"/bin/probe", "signal", "TERM"});
  spec.mutable_namespaces()->erase(spec.mutable_namespaces()->begin());  // PID
  absl::StatusOr<LaunchedShim> c = Launch(spec);
  ASSERT_THAT(c, IsOk());
  exit = RunToExit(*c);
  EXPECT_EQ(exit.signal(), SIGTERM);
  EXPECT_EQ(exit.exit_code(), 143);
}

TEST_F(ShimTest, LogsAreInTheCriFormat) {
  absl::StatusOr<LaunchedShim> shim =
      Launch(Spec({"sh", "-c", "echo one; echo two >&2; printf 'no newline'; printf 'err' >&2"}));
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  absl::StatusOr<std::string> log = ReadFile(LogPath(*shim));
  ASSERT_THAT(log, IsOk());
  std::vector<std::string> stdout_records, stderr_records;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipEmpty())) {
    absl::StatusOr<CriLogRecord> rec = ParseCriLogLine(line);
    ASSERT_TRUE(rec.ok()) << rec.status() << line;
    // <RFC3339Nano> <stream> <P|F> <content>
    ASSERT_GT(line.size(), 31u);
    EXPECT_EQ(line[10], 'T');
    EXPECT_EQ(line[29], 'Z');
    (rec->stream == CriStream::kStdout ? stdout_records : stderr_records)
        .push_back(absl::StrCat(rec->partial ? "P " : "F ", rec->content));
  }
  EXPECT_THAT(stdout_records, ::testing::ElementsAre("F one", "P no newline"));
  EXPECT_THAT(stderr_records, ::testing::ElementsAre("F two", "P err"));
}

TEST_F(ShimTest, ReopenLogFollowsARotation) {
  absl::StatusOr<LaunchedShim> shim = Launch(
      Spec({"sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after"}));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  for (int i = 0; i < 250 && LogText(*shim).empty(); ++i) usleep(20000);
  ASSERT_EQ(rename(LogPath(*shim).c_str(), (LogPath(*shim) + ".1").c_str()), 0);
  v1::Request reopen;
  reopen.mutable_reopen_log();
  ASSERT_THAT(Call(*shim, reopen), IsOk());
  WriteFileOrDie(rootfs_ + "/tmp/go", "");
  absl::StatusOr<v1::Response> w = Call(*shim, WaitRequest());
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(LogText(*shim), "after\n");
  absl::StatusOr<std::string> old = ReadFile(LogPath(*shim) + ".1");
  ASSERT_THAT(old, IsOk());
  EXPECT_THAT(*old, HasSubstr(" stdout F before\n"));
}

TEST_F(ShimTest, JoinsNamespacesGivenByPath) {
  // A "pod": the first container's namespaces, joined by the second by path as a
  // sandbox's pinned namespaces would be.
  absl::StatusOr<LaunchedShim> pod = Launch(Spec({"/bin/probe", "sleep", "60"}));
  ASSERT_THAT(pod, IsOk());
  ASSERT_THAT(Call(*pod, StartRequest()), IsOk());
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  for (v1::Namespace& ns : *spec.mutable_namespaces()) {
    const char* name = ns.type() == v1::NETWORK ? "net"
                       : ns.type() == v1::IPC   ? "ipc"
                       : ns.type() == v1::UTS   ? "uts"
                       : ns.type() == v1::PID   ? "pid"
                                                : nullptr;
    if (name != nullptr) ns.set_path(absl::StrCat("/proc/", pod->init_pid, "/ns/", name));
  }
  absl::StatusOr<LaunchedShim> c = Launch(spec);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(RunToExit(*c).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*c));
  for (const char* ns : {"net", "ipc", "uts", "pid"}) {
    EXPECT_EQ(One(out, absl::StrCat("ns.", ns)), NsInode(pod->init_pid, ns)) << ns;
  }
  EXPECT_NE(One(out, "ns.mnt"), NsInode(pod->init_pid, "mnt"));  // its own root
  EXPECT_NE(One(out, "pid"), "1");                               // the pod's PID 1 is there

  v1::ContainerSpec bad = Spec({"/bin/true"});
  bad.mutable_namespaces(0)->set_path("/proc/no/ns/pid");
  EXPECT_THAT(Launch(bad), StatusIs(absl::StatusCode::kNotFound,
                                    HasSubstr("namespaces[0].path: open `/proc/no/ns/pid`")));
}

TEST_F(ShimTest, BindMountsDevicesWorkingDirAndEnvironment) {
  const std::string data = dir_->Join("data");
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0);
  v1::ContainerSpec spec = Spec({"sh", "-c",
                                 "pwd; echo $GREETING; probe writefile /ro/x; probe writefile "
                                 "/rw/x; probe read /dev/kmsg; probe read /dev/null"},
                                true);
  spec.mutable_process()->set_cwd("/rw");
  spec.mutable_process()->add_env("GREETING=hello");
  for (const char* dest : {"/ro", "/rw"}) {
    v1::Mount* m = spec.add_mounts();
    m->set_destination(dest);
    m->set_type("bind");
    m->set_source(data);
    m->add_options("rbind");
    m->add_options(dest == std::string("/ro") ? "ro" : "rw");
    m->add_options("rprivate");
  }
  // A node the container has but may not use: the device cgroup denies all
  // but the default nodes.
  v1::Device* kmsg = spec.add_devices();
  kmsg->set_path("/dev/kmsg");
  kmsg->set_type("c");
  kmsg->set_major(1);
  kmsg->set_minor(11);
  spec.mutable_resources()->set_devices_set(true);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  std::string text = LogText(*shim);
  EXPECT_THAT(text, HasSubstr("/rw\nhello\n"));
  ProbeOutput out = ParseProbe(text);
  EXPECT_EQ(One(out, "write./ro/x"), "ERR:Read-only file system");
  EXPECT_EQ(One(out, "write./rw/x"), "ok");
  EXPECT_EQ(One(out, "read./dev/kmsg"), "ERR:Operation not permitted");
  EXPECT_EQ(One(out, "read./dev/null"), "ok");
  struct stat st;
  EXPECT_EQ(stat((data + "/x").c_str(), &st), 0);  // the rw bind reached the host dir
}

TEST_F(ShimTest, ASymlinkInTheImageCannotRedirectMountsOrNodesToTheHost) {
  // The image's /dev points at a host directory by absolute path; inside the
  // root that path names a directory of the rootfs instead.
  const std::string host_dir = dir_->Join("escape");
  ASSERT_EQ(mkdir(host_dir.c_str(), 0755), 0);
  ASSERT_EQ(symlink(host_dir.c_str(), (rootfs_ + "/dev").c_str()), 0);
  // Dangling inside the root: its target is made inside the root (as the
  // kernel resolves the link there), and everything lands in it.
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "read", "/dev/null"}));
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  EXPECT_EQ(One(ParseProbe(LogText(*shim)), "read./dev/null"), "ok");
  struct stat made;
  EXPECT_EQ(stat((rootfs_ + host_dir).c_str(), &made), 0) << "the link's target, inside the root";
  struct stat st;
  EXPECT_NE(stat((host_dir + "/null").c_str(), &st), 0) << "a device node reached the host";
  EXPECT_NE(stat((host_dir + "/fd").c_str(), &st), 0) << "a symlink reached the host";
}

TEST_F(ShimTest, ExecFailureIsReportedByStartWithThePath) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/nope"}));
  ASSERT_THAT(shim, IsOk());
  EXPECT_THAT(Call(*shim, StartRequest()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("exec `/bin/nope`")));
  absl::StatusOr<v1::Response> w = Call(*shim, WaitRequest());
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->exit().exit_code(), 127);
  // Not executable.
  absl::StatusOr<LaunchedShim> shim2 = Launch(Spec({"/proc/self/status"}));
  ASSERT_THAT(shim2, IsOk());
  EXPECT_THAT(Call(*shim2, StartRequest()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("/proc/self/status")));
}

TEST_F(ShimTest, CreateFailureNamesTheStepAndLeavesNothing) {
  v1::ContainerSpec spec = Spec({"/bin/true"}, true);
  (*spec.mutable_sysctls())["kernel.no_such_sysctl"] = "1";
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  EXPECT_THAT(shim, StatusIs(absl::StatusCode::kNotFound,
                             HasSubstr("sysctl `/proc/sys/kernel/no_such_sysctl`")));
  struct stat st;
  EXPECT_NE(stat(CgroupDir("memory", "c0").c_str(), &st), 0);
  EXPECT_NE(stat((dir_->Join("b0") + "/shim.sock").c_str(), &st), 0);

  v1::ContainerSpec bad = Spec({"/bin/true"});
  bad.mutable_mounts(0)->set_destination("proc");
  EXPECT_THAT(Launch(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("mounts[0].destination `proc` is not absolute")));
}

TEST_F(ShimTest, SurvivesTheDeathOfItsStarterAndStillReportsTheExit) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  v1::ContainerSpec spec = Spec({"/bin/probe", "exit", "5"});
  const std::string bundle = dir_->Join("starter");
  mkdir(bundle.c_str(), 0700);
  spec.set_log_path(bundle + "/ctr.log");
  pid_t starter = fork();
  if (starter == 0) {
    absl::StatusOr<LaunchedShim> s = LaunchShim(BERTH_SHIM_PATH, bundle, spec);
    pid_t pid = s.ok() ? s->shim_pid : -1;
    (void)!write(p[1], &pid, sizeof(pid));
    pause();
    _exit(0);
  }
  close(p[1]);
  pid_t shim_pid = -1;
  ASSERT_EQ(read(p[0], &shim_pid, sizeof(shim_pid)), static_cast<ssize_t>(sizeof(shim_pid)));
  close(p[0]);
  kill(starter, SIGKILL);
  waitpid(starter, nullptr, 0);
  ASSERT_GT(shim_pid, 0);
  LaunchedShim shim{shim_pid, -1, bundle, bundle + "/shim.sock"};
  shims_.push_back(shim);
  ASSERT_EQ(kill(shim_pid, 0), 0) << "the shim died with its starter";
  EXPECT_EQ(RunToExit(shim).exit_code(), 5);
}

int CountFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

TEST_F(ShimTest, DeleteLeavesNothingBehind) {
  const int fds_before = CountFds();
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  pid_t init = shim->init_pid;
  ASSERT_THAT(Call(*shim, DeleteRequest()), IsOk());
  absl::StatusOr<int> status = ReapShim(shim->shim_pid);
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(*status, 0);
  shims_.clear();
  EXPECT_NE(kill(init, 0), 0);
  struct stat st;
  for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
    EXPECT_NE(stat(CgroupDir(c, "c0").c_str(), &st), 0) << c;
  }
  for (const char* f : {"shim.sock", "shim.pid", "init.pid", "exit"}) {
    EXPECT_NE(stat((shim->bundle + "/" + f).c_str(), &st), 0) << f;
  }
  absl::StatusOr<std::string> mounts = ReadFile("/proc/self/mountinfo");
  ASSERT_THAT(mounts, IsOk());
  EXPECT_THAT(*mounts, Not(HasSubstr(rootfs_)));
  EXPECT_EQ(CountFds(), fds_before);  // the client side keeps nothing open either
}

}  // namespace
}  // namespace berth::shim::testing
