// berthd: the Berth node agent. Serves CRI v1 on a unix socket (and optionally
// TCP with mutual TLS) until SIGTERM or SIGINT, then shuts down gracefully.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <grpc/support/log.h>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "agent/options.h"
#include "agent/server.h"
#include "os/log.h"

ABSL_FLAG(std::string, socket, "/run/berth/berth.sock", "unix socket to serve CRI on");
ABSL_FLAG(std::string, root, "/var/lib/berth", "directory for durable state");
ABSL_FLAG(std::string, state_dir, "/run/berth", "directory for runtime state (lost on reboot)");
ABSL_FLAG(std::string, shim_path, "", "berth-shim binary (default: beside berthd)");
ABSL_FLAG(std::string, cgroup_root, "/berth",
          "cgroup (absolute, cgroupfs) under which pods without a cgroup_parent get theirs");
ABSL_FLAG(std::string, cgroup_driver, "",
          "systemd or cgroupfs (default: systemd when systemd is PID 1 on a pure cgroup-v2 "
          "host, else cgroupfs); must match kubelet's cgroupDriver");
ABSL_FLAG(std::string, listen, "",
          "HOST:PORT for remote controllers; needs --tls-cert, --tls-key, --tls-client-ca");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain for --listen");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: --listen accepts only clients with a certificate it signed");
ABSL_FLAG(std::string, insecure_listen, "",
          "HOST:PORT for plain TCP without authentication; loopback addresses only");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:9464",
          "HOST:PORT for the Prometheus /metrics endpoint; empty disables it");
ABSL_FLAG(int, metrics_max_age, 60,
          "seconds: a /metrics scrape serves container values read since the previous scrape "
          "began when that was at most this long ago, then reads them again behind its answer; "
          "0 reads every cgroup at every scrape");
ABSL_FLAG(std::string, streaming_address, "127.0.0.1:0",
          "HOST:PORT of the CRI streaming server (exec, port-forward URLs), plain HTTP: keep it on "
          "loopback, where kubelet reaches it; port 0 picks a free one; empty disables");
ABSL_FLAG(int, shutdown_grace, 10, "seconds in-flight calls get to finish on SIGTERM");
ABSL_FLAG(std::string, registry_config_dir, "/etc/berth/registries.d",
          "per-registry <host>/hosts.toml: mirrors, CAs, insecure (see README)");
ABSL_FLAG(uint64_t, max_layer_size, uint64_t{64} << 30,
          "bytes one image layer may unpack to (against decompression bombs); 0: no limit");
ABSL_FLAG(uint64_t, max_layer_entries, 2000000, "files one image layer may hold; 0: no limit");
ABSL_FLAG(std::vector<std::string>, import, {},
          "OCI image layout directories to import at start, comma-separated");
ABSL_FLAG(std::string, cni_conf_dir, "/etc/cni/net.d",
          "CNI network configs: the first .conflist/.conf/.json by name is used");
ABSL_FLAG(std::string, cni_bin_dir, "/usr/lib/cni:/opt/cni/bin",
          "colon-separated directories holding the CNI plugin binaries");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");

namespace berth {
namespace {

// gRPC's own log lines take our format, so the whole log reads one way.
void GrpcLogToOurs(gpr_log_func_args* args) {
  LogSeverity severity = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogSeverity::kERROR
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogSeverity::kINFO
                                                                   : LogSeverity::kDEBUG;
  EmitLog(severity, args->file, args->line, args->message);
}

int Run() {
  LogSeverity level;
  if (!ParseLogSeverity(absl::GetFlag(FLAGS_log_level), &level)) {
    BERTH_LOG(ERROR) << "--log-level: want debug, info, warning or error";
    return 2;
  }
  SetMinLogSeverity(level);
  gpr_set_log_function(GrpcLogToOurs);

  AgentOptions o;
  o.socket_path = absl::GetFlag(FLAGS_socket);
  o.root_dir = absl::GetFlag(FLAGS_root);
  o.state_dir = absl::GetFlag(FLAGS_state_dir);
  o.shim_path = absl::GetFlag(FLAGS_shim_path);
  o.cgroup_root = absl::GetFlag(FLAGS_cgroup_root);
  o.cgroup_driver = absl::GetFlag(FLAGS_cgroup_driver);
  o.listen = absl::GetFlag(FLAGS_listen);
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  o.insecure_listen = absl::GetFlag(FLAGS_insecure_listen);
  o.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  o.metrics_max_age_seconds = absl::GetFlag(FLAGS_metrics_max_age);
  o.streaming_address = absl::GetFlag(FLAGS_streaming_address);
  o.shutdown_grace_seconds = absl::GetFlag(FLAGS_shutdown_grace);
  o.registry_config_dir = absl::GetFlag(FLAGS_registry_config_dir);
  o.max_layer_bytes = absl::GetFlag(FLAGS_max_layer_size);
  o.max_layer_entries = absl::GetFlag(FLAGS_max_layer_entries);
  o.import_dirs = absl::GetFlag(FLAGS_import);
  o.cni_conf_dir = absl::GetFlag(FLAGS_cni_conf_dir);
  o.cni_bin_dirs = absl::StrSplit(absl::GetFlag(FLAGS_cni_bin_dir), ':', absl::SkipEmpty());

  // Each running container keeps ~30 cgroup files open for /metrics
  // (metrics/cgroup_reader.h): the soft fd limit goes up to the hard one, as
  // far as the kernel lets a process without CAP_SYS_RESOURCE.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    const rlim_t soft = nofile.rlim_cur;
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
      BERTH_LOG(WARNING) << "RLIMIT_NOFILE stays at " << soft << ": " << strerror(errno);
    }
  }

  // Block the stop signals in every thread (gRPC's included, which inherit the
  // mask) so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that disconnects mid-write must not kill the agent.
  signal(SIGPIPE, SIG_IGN);

  BERTH_LOG(INFO) << "berthd " << BERTH_VERSION << " starting (pid " << getpid() << ")";
  absl::StatusOr<std::unique_ptr<AgentServer>> server = AgentServer::Start(o);
  if (!server.ok()) {
    BERTH_LOG(ERROR) << "cannot start: " << server.status().message();
    return 1;
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  BERTH_LOG(INFO) << "got " << strsignal(signal_number) << ": shutting down (in-flight calls get "
                  << o.shutdown_grace_seconds << "s; send it again to exit at once)";
  std::thread([stop_signals] {
    int again = 0;
    sigwait(&stop_signals, &again);
    BERTH_LOG(WARNING) << "got " << strsignal(again) << " again: exiting now";
    _exit(1);
  }).detach();
  (*server)->Shutdown();
  BERTH_LOG(INFO) << "stopped";
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  // A crash prints its stack to stderr (berthd's log) before dying.
  absl::InitializeSymbolizer(argv[0]);
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  // Debian builds Abseil without NDEBUG, so every Mutex acquisition would also
  // update a global lock-order graph (GraphCycles showed in berthd's profile).
  // Tests keep the detection; the agent does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "berthd: the Berth node agent, serving the Kubernetes CRI v1 API.\n"
      "  berthd [--socket=/run/berth/berth.sock] [--root=/var/lib/berth] "
      "[--listen=HOST:PORT --tls-cert=F --tls-key=F --tls-client-ca=F]");
  // Flags are spelled with dashes (--state-dir), as the docs and other runtimes
  // do; Abseil names them with underscores, so the two spellings are one.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> argv2;
  for (std::string& arg : args) {
    if (arg.rfind("--", 0) == 0) {
      for (size_t i = 2; i < arg.size() && arg[i] != '='; ++i) {
        if (arg[i] == '-') arg[i] = '_';
      }
    }
    argv2.push_back(arg.data());
  }
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(argv2.size()), argv2.data());
  if (rest.size() > 1) {
    BERTH_LOG(ERROR) << "unexpected argument `" << rest[1]
                     << "` (flags take the form --name=value)";
    return 2;
  }
  return berth::Run();
}
