// berthd's configuration, filled from flags in main.cc and passed by value.
#pragma once

#include <string>
#include <vector>

namespace berth {

struct AgentOptions {
  std::string socket_path = "/run/berth/berth.sock";
  std::string root_dir = "/var/lib/berth";  // durable state
  std::string state_dir = "/run/berth";     // runtime state: gone after a reboot
  std::string shim_path;                    // empty: berth-shim beside berthd
  // Where pod cgroups go when a sandbox gives no cgroup_parent: <cgroup_root>/<id>,
  // absolute from each hierarchy's root.
  std::string cgroup_root = "/berth";
  // "systemd": pods are transient slices and containers transient scopes made
  // over D-Bus (agent/runtime/systemd_units.h); "cgroupfs": berthd makes the
  // directories itself; empty: systemd where systemd is PID 1 on a pure
  // cgroup-v2 host (kubelet's recommendation), else cgroupfs.
  std::string cgroup_driver;
  // Remote listener: mutual TLS with these three files.
  std::string listen;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Plain TCP, loopback only, for local tools and tests.
  std::string insecure_listen;
  std::string metrics_address = "127.0.0.1:9464";  // empty: no /metrics endpoint
  // A scrape serves container values read since the previous scrape began when
  // that was at most this long ago, and reads them again behind its answer
  // (metrics/collector.h); zero: every scrape reads every cgroup first.
  int metrics_max_age_seconds = 60;
  // The CRI streaming server (Exec, PortForward URLs); port 0 picks a free
  // one; empty: off (those RPCs answer UNAVAILABLE).
  std::string streaming_address = "127.0.0.1:0";
  int shutdown_grace_seconds = 10;
  // Per-registry mirrors, CAs and insecure flags (agent/images/hosts.h).
  std::string registry_config_dir = "/etc/berth/registries.d";
  // One layer's unpacked size and entry count at most (0: no limit).
  uint64_t max_layer_bytes = uint64_t{64} << 30;
  uint64_t max_layer_entries = 2000000;
  // OCI image layouts imported at start (air-gapped nodes, the demo image).
  std::vector<std::string> import_dirs;
  // CNI (agent/network): the first config in conf_dir; plugins from bin_dirs.
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::vector<std::string> cni_bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
};

}  // namespace berth
