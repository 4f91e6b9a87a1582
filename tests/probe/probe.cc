// berth-probe: runs inside a container started by a root integration test and reports what the
// container sees, or does one thing the test then observes from outside (hits a memory or pids
// limit, exits with a code, dies by a signal, writes log output).
//
// The container's rootfs holds only busybox-static and this binary, so it is linked with -static
// and uses no NSS (getpwnam), no locale and no iostreams: only the standard library and syscalls.
//
// Output is one `key=value` per line on stdout, values without newlines, lists comma-separated;
// `mount=` and `cgroup=` repeat once per entry. A field that cannot be read prints
// `key=ERR:<strerror>` and the probe carries on. The subcommands are listed in kUsage; bad usage
// prints it on stderr and exits 2. Tests build it as `$<TARGET_FILE:berth-probe>`.

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace berth::probe {
namespace {

constexpr int kUsageExit = 2;
constexpr size_t kMiB = 1 << 20;

std::string Err(int err) { return std::string("ERR:") + std::strerror(err); }

// One `key=value` line on (buffered) stdout. Newlines in values are escaped so that every line
// stays one entry for the test's parser.
void Emit(std::string_view key, std::string_view value) {
  std::string line(key);
  line += '=';
  for (char c : value) line += c == '\n' ? std::string_view("\\n") : std::string_view(&c, 1);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

// Unbuffered write(2) of the whole buffer, so output survives an OOM kill right after it.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

// Splits on sep; a trailing separator (as at the end of a file) adds no empty item.
std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Reads a whole file ("e": O_CLOEXEC); returns the errno on failure.
int ReadFile(const char* path, std::string& out) {
  std::FILE* file = std::fopen(path, "re");
  if (file == nullptr) return errno;
  out.clear();
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), file)) out.append(buf, n);
  int err = std::ferror(file) ? errno : 0;
  std::fclose(file);
  return err;
}

// Strict decimal parse of a whole argument.
bool ParseLong(const char* s, long& out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtol(s, &end, 10);
  return errno == 0 && *end == '\0';
}

std::string Limit(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

void EmitRlimit(const char* key, int resource) {
  rlimit rl{};
  if (getrlimit(resource, &rl) != 0) return Emit(key, Err(errno));
  Emit(key, Limit(rl.rlim_cur) + ":" + Limit(rl.rlim_max));
}

// `/proc/self/ns/pid` links to `pid:[4026531836]`; the inode identifies the namespace.
void EmitNamespaces() {
  for (const char* ns : {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "user", "uts"}) {
    std::string key = std::string("ns.") + ns;
    char target[256];
    ssize_t n = readlink(("/proc/self/ns/" + std::string(ns)).c_str(), target, sizeof(target) - 1);
    if (n < 0) {
      Emit(key, Err(errno));
      continue;
    }
    std::string_view link(target, static_cast<size_t>(n));
    size_t open = link.find(":[");
    bool inode = open != std::string_view::npos && link.back() == ']';
    Emit(key, inode ? link.substr(open + 2, link.size() - open - 3) : link);
  }
}

// Capability sets and the seccomp mode, from proc(5) /proc/[pid]/status.
void EmitStatusFields() {
  static constexpr std::pair<const char*, const char*> kFields[] = {
      {"CapEff", "cap.eff"}, {"CapPrm", "cap.prm"}, {"CapInh", "cap.inh"},
      {"CapBnd", "cap.bnd"}, {"CapAmb", "cap.amb"}, {"Seccomp", "seccomp"}};
  std::string status;
  int err = ReadFile("/proc/self/status", status);
  std::vector<std::string> lines = err == 0 ? Split(status, '\n') : std::vector<std::string>{};
  for (const auto& [field, key] : kFields) {
    std::string value = Err(err != 0 ? err : ENODATA);
    std::string prefix = std::string(field) + ":";
    for (const std::string& line : lines) {
      if (line.compare(0, prefix.size(), prefix) != 0) continue;
      size_t start = line.find_first_not_of(" \t", prefix.size());
      value = start == std::string::npos ? "" : line.substr(start);
    }
    Emit(key, value);
  }
}

void EmitRootEntries() {
  DIR* dir = opendir("/");
  if (dir == nullptr) return Emit("root_entries", Err(errno));
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  Emit("root_entries", Join(names));
}

// mountinfo (proc(5)): `id parent maj:min root mountpoint options [optional...] - fstype source
// superoptions`. Prints `mount=<mountpoint> <fstype> <options>`; paths keep their octal escapes.
void EmitMounts() {
  std::string text;
  if (int err = ReadFile("/proc/self/mountinfo", text); err != 0) return Emit("mount", Err(err));
  for (const std::string& line : Split(text, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || dash + 1 == f.end()) {
      Emit("mount", "ERR:unparsed " + line);
      continue;
    }
    Emit("mount", f[4] + " " + *(dash + 1) + " " + f[5]);
  }
}

// One `key=<line>` per line of a file.
void EmitLines(const char* key, const char* path) {
  std::string text;
  if (int err = ReadFile(path, text); err != 0) return Emit(key, Err(err));
  for (const std::string& line : Split(text, '\n')) Emit(key, line);
}

void EmitIds() {
  Emit("pid", std::to_string(getpid()));
  Emit("ppid", std::to_string(getppid()));
  char host[256] = {};
  Emit("hostname", gethostname(host, sizeof(host) - 1) == 0 ? std::string(host) : Err(errno));
  Emit("uid", std::to_string(getuid()));
  Emit("gid", std::to_string(getgid()));
  Emit("euid", std::to_string(geteuid()));
  Emit("egid", std::to_string(getegid()));
  int n = getgroups(0, nullptr);
  std::vector<gid_t> gids(n > 0 ? n : 0);
  if (n < 0 || (n = getgroups(n, gids.data())) < 0) {
    Emit("groups", Err(errno));
  } else {
    std::vector<std::string> groups;
    for (int i = 0; i < n; ++i) groups.push_back(std::to_string(gids[i]));
    Emit("groups", Join(groups));
  }
  char cwd[4096];
  Emit("cwd", getcwd(cwd, sizeof(cwd)) != nullptr ? std::string(cwd) : Err(errno));
}

int Report() {
  EmitIds();
  EmitNamespaces();
  EmitStatusFields();
  int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  Emit("no_new_privs", nnp >= 0 ? std::to_string(nnp) : Err(errno));
  EmitLines("oom_score_adj", "/proc/self/oom_score_adj");
  EmitRlimit("rlimit.nofile", RLIMIT_NOFILE);
  EmitRlimit("rlimit.nproc", RLIMIT_NPROC);
  EmitRlimit("rlimit.core", RLIMIT_CORE);
  mode_t mask = umask(0);  // umask(2) can only be read by setting it.
  umask(mask);
  char octal[8];
  std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mask));
  Emit("umask", octal);
  size_t env_count = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) ++env_count;
  Emit("env.count", std::to_string(env_count));
  EmitRootEntries();
  EmitMounts();
  EmitLines("cgroup", "/proc/self/cgroup");
  return 0;
}

int Env() {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view var = *e;
    size_t eq = var.find('=');
    if (eq == std::string_view::npos) eq = var.size();
    Emit("env." + std::string(var.substr(0, eq)), eq < var.size() ? var.substr(eq + 1) : "");
  }
  return 0;
}

// Each MiB is kept (so the compiler cannot drop it) and memset so its pages are really charged to
// the memory cgroup.
int Alloc(long mib) {
  static std::vector<char*> kept;
  for (long k = 1; k <= mib; ++k) {
    kept.push_back(static_cast<char*>(std::malloc(kMiB)));
    if (kept.back() == nullptr) {
      WriteAll(STDOUT_FILENO, "alloc=" + Err(errno) + "\n");
      return 1;
    }
    std::memset(kept.back(), 0xa5, kMiB);
    WriteAll(STDOUT_FILENO, "allocated=" + std::to_string(k) + "\n");
  }
  WriteAll(STDOUT_FILENO, "done\n");
  return 0;
}

// Forks until n children exist or fork(2) fails (EAGAIN under a pids limit), then reports and
// cleans up. Children die with the probe (PR_SET_PDEATHSIG) even if the probe is killed first.
int ForkBomb(long n) {
  std::fflush(stdout);  // Children must not inherit (and never flush) buffered output.
  std::vector<pid_t> children;
  int fork_errno = 0;
  while (static_cast<long>(children.size()) < n) {
    pid_t pid = fork();
    if (pid < 0) {
      fork_errno = errno;
      break;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      for (;;) pause();
    }
    children.push_back(pid);
  }
  Emit("forked", std::to_string(children.size()));
  Emit("fork_errno", fork_errno == 0 ? "0" : strerrorname_np(fork_errno));
  for (pid_t pid : children) kill(pid, SIGKILL);
  for (pid_t pid : children) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  return 0;
}

// Accepts `9`, `KILL` or `SIGKILL`.
int ParseSignal(const char* arg) {
  long num = 0;
  if (ParseLong(arg, num)) return num > 0 && num < NSIG ? static_cast<int>(num) : -1;
  std::string_view name = arg;
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  return -1;
}

// Note: as PID 1 of a pid namespace the kernel drops signals the process sends itself while their
// disposition is SIG_DFL (pid_namespaces(7)), so there raise() returns and we report that.
int RaiseSignal(int sig) {
  std::fflush(stdout);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  std::fprintf(stderr, "berth-probe: still alive after raising signal %d (%s)\n", sig,
               getpid() == 1 ? "pid 1 ignores default-action signals" : "not fatal by default");
  return 1;
}

int Sleep(double seconds) {
  timespec ts{static_cast<time_t>(seconds),
              static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

int StreamFd(std::string_view name) {
  if (name == "stdout") return STDOUT_FILENO;
  if (name == "stderr") return STDERR_FILENO;
  return -1;
}

int Cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    Emit("affinity", Err(errno));
    return 0;
  }
  std::vector<std::string> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(std::to_string(cpu));
  }
  Emit("affinity", Join(cpus));
  return 0;
}

std::string TryRead(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err(errno);
  char byte;
  ssize_t n = read(fd, &byte, 1);
  int err = errno;
  close(fd);
  return n < 0 ? Err(err) : "ok";
}

std::string TryWrite(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Err(errno);
  bool ok = WriteAll(fd, "berth-probe\n");
  int err = errno;
  close(fd);
  return ok ? "ok" : Err(err);
}

constexpr char kUsage[] = R"(usage: berth-probe <subcommand> [args]
  report                       (default) ids, namespaces, caps, limits, mounts, cgroups
  env                          env.<NAME>=<value> per environment variable
  alloc <MiB>                  touch N MiB in 1 MiB steps: allocated=<k> after each, then done
  forkbomb <n>                 fork up to n paused children: forked=<k>, fork_errno=<name|0>
  exit <code>                  exit with that code
  signal <name|number>         raise it at itself with the default disposition
  sleep <seconds>              nanosleep, for long-running containers
  write <stdout|stderr> <text...>  the text joined by spaces, no trailing newline
  lines <n> <stdout|stderr>    n lines "line <i>"
  big <bytes>                  that many 'x' to stdout, no newline (partial CRI log lines)
  cpus                         affinity=<cpu list> from sched_getaffinity(2)
  exists <path...>             exists.<path>=1|0 (lstat)
  read <path>                  read.<path>=ok|ERR:<strerror> (open + read 1 byte)
  writefile <path>             write.<path>=ok|ERR:<strerror> (open O_CREAT + write)
)";

// write, lines and big: raw output for the CRI log format tests, bypassing stdio.
int Output(std::string_view cmd, int argc, char** argv) {
  long num = 0;
  bool has_num = ParseLong(argv[2], num) && num >= 0;
  if (cmd == "write" && StreamFd(argv[2]) >= 0) {
    std::string text;
    for (int i = 3; i < argc; ++i) text += std::string(i > 3 ? " " : "") + argv[i];
    return WriteAll(StreamFd(argv[2]), text) ? 0 : 1;
  }
  if (cmd == "lines" && argc == 4 && has_num && StreamFd(argv[3]) >= 0) {
    std::string text;
    for (long i = 1; i <= num; ++i) text += "line " + std::to_string(i) + "\n";
    return WriteAll(StreamFd(argv[3]), text) ? 0 : 1;
  }
  if (cmd == "big" && argc == 3 && has_num) {
    std::string chunk(64 * 1024, 'x');
    for (long left = num; left > 0; left -= static_cast<long>(chunk.size())) {
      size_t n = std::min(chunk.size(), static_cast<size_t>(left));
      if (!WriteAll(STDOUT_FILENO, std::string_view(chunk).substr(0, n))) return 1;
    }
    return 0;
  }
  return -1;
}

// exists, read and writefile: what the container can see and change in its filesystem.
int Paths(std::string_view cmd, int argc, char** argv) {
  if (cmd == "exists") {
    struct stat st;
    for (int i = 2; i < argc; ++i) {
      Emit(std::string("exists.") + argv[i], lstat(argv[i], &st) == 0 ? "1" : "0");
    }
    return 0;
  }
  if (argc != 3) return -1;
  if (cmd == "read") Emit(std::string("read.") + argv[2], TryRead(argv[2]));
  if (cmd == "writefile") Emit(std::string("write.") + argv[2], TryWrite(argv[2]));
  return cmd == "read" || cmd == "writefile" ? 0 : -1;
}

int Main(int argc, char** argv) {
  std::string_view cmd = argc > 1 ? argv[1] : "report";
  const char* arg = argc > 2 ? argv[2] : nullptr;
  long num = 0;
  bool has_num = ParseLong(arg, num) && num >= 0;
  if (cmd == "report" && argc <= 2) return Report();
  if (cmd == "env" && argc == 2) return Env();
  if (cmd == "cpus" && argc == 2) return Cpus();
  if (cmd == "alloc" && argc == 3 && has_num) return Alloc(num);
  if (cmd == "forkbomb" && argc == 3 && has_num) return ForkBomb(num);
  if (cmd == "exit" && argc == 3 && ParseLong(arg, num)) return static_cast<int>(num & 0xff);
  if (cmd == "signal" && argc == 3 && ParseSignal(arg) > 0) return RaiseSignal(ParseSignal(arg));
  if (cmd == "sleep" && argc == 3) {
    char* end = nullptr;
    double seconds = std::strtod(arg, &end);
    if (*end == '\0' && seconds >= 0) return Sleep(seconds);
  }
  int code = argc >= 3 ? Output(cmd, argc, argv) : -1;
  if (code < 0 && argc >= 3) code = Paths(cmd, argc, argv);
  if (code >= 0) return code;
  std::fputs(kUsage, stderr);
  return kUsageExit;
}

}  // namespace
}  // namespace berth::probe

int main(int argc, char** argv) {
  int code = berth::probe::Main(argc, argv);
  std::fflush(stdout);
  return code;
}
