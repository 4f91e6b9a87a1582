// Cni: pod networking through CNI plugins, as libcni does it (SPEC.md section
// 3, "Execution of Network Configurations").
//
//   ADD    plugins in order; each gets `name`/`cniVersion` from the list, the
//          capability arguments it declares as `runtimeConfig`, and (after the
//          first) the previous plugin's result as `prevResult`. The last result
//          is cached with the config list and the attachment. If plugin k fails,
//          DEL runs for the whole list, last to first, best effort (SPEC.md:
//          "execute the DEL action ... for all plugins in the list, even if some
//          were not called"), so no veth, IP allocation or iptables rule is left,
//          and the plugin's error is returned.
//   DEL    the CACHED config list, last plugin first, with the cached result as
//          `prevResult` (from 0.4.0 on, as libcni), and the cached CNI_ARGS and
//          capability arguments. Without a cache entry (never added, or the ADD
//          died before caching) the current config, without `prevResult`. A
//          netns path that no longer holds a namespace is passed as an empty
//          CNI_NETNS, which 1.0.0 allows for DEL and plugins must tolerate.
//          Idempotent: DEL of an unknown attachment succeeds. The cache entry is
//          removed once every plugin succeeded; on failure it stays for the retry.
//   CHECK  the cached config list in order, with the cached result; only for
//          cniVersion >= 0.4.0, and a no-op when the list sets `disableCheck`.
//
// The config is the first file in conf_dir (LoadNetworkConfig), re-read when the
// directory or that file changed (mtime, size, inode; and while those mtimes are
// under 2 s old, always), so Ready() is cheap enough for every CRI Status call.
// Methods are thread-safe; per SPEC.md the caller must not run two operations on
// one attachment at once.
//
//   Cni cni({.conf_dir = "/etc/cni/net.d", .bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"},
//            .cache_dir = "/var/lib/berth/cni"});
//   if (absl::Status ready = cni.Ready(); !ready.ok()) ...  // NetworkReady=false, reason
//   Attachment a{.container_id = id, .netns = netns_path};
//   a.args = KubernetesArgs(ns, name, id, uid);
//   BERTH_ASSIGN_OR_RETURN(Result r, cni.Add(a));
//   PodIps ips = SelectPodIps(r, a.ifname);
//   ...
//   BERTH_RETURN_IF_ERROR(cni.Del(a));
#pragma once

#include <sys/types.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/network/attachment.h"
#include "agent/network/cache.h"
#include "agent/network/config.h"
#include "agent/network/plugin_exec.h"
#include "agent/network/result.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct CniOptions {
  std::string conf_dir = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  // Our cache format is not libcni's: keep it apart from /var/lib/cni.
  std::string cache_dir = "/var/lib/berth/cni";
  absl::Duration plugin_timeout = absl::Seconds(60);
  // PATH for plugins (portmap runs iptables, bridge may run sysctl helpers).
  std::string path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
};

class Cni {
 public:
  // `exec` runs the plugin binaries; null means SpawnPluginExec.
  explicit Cni(CniOptions options, std::unique_ptr<PluginExec> exec = nullptr);

  absl::StatusOr<Result> Add(const Attachment& attachment);
  absl::Status Del(const Attachment& attachment);
  absl::Status Check(const Attachment& attachment);

  // OK when a config is found and every plugin it names (IPAM plugins too) is in
  // a bin dir; otherwise FAILED_PRECONDITION or INVALID_ARGUMENT saying why, for
  // the CRI NetworkReady condition's message.
  absl::Status Ready();

  // The current config list (re-read only when conf_dir changed).
  absl::StatusOr<NetworkConfigList> Config();

 private:
  // What says conf_dir is unchanged since the last load.
  struct Stamp {
    timespec dir_mtime{};
    std::string file;
    timespec file_mtime{};
    off_t file_size = -1;
    ino_t file_ino = 0;
    bool operator==(const Stamp& o) const;
    bool Settled() const;  // old enough to compare (see Config())
  };

  absl::StatusOr<std::string> Invoke(const char* command, const NetworkConfigList& list,
                                     size_t index, const nlohmann::json& prev_result,
                                     const Attachment& attachment, const std::string& netns);
  absl::Status DelList(const NetworkConfigList& list, const nlohmann::json& result,
                       const Attachment& attachment, const std::string& netns, bool best_effort);
  absl::Status DelCached(const std::string& path, const CacheEntry& entry,
                         const Attachment& request);
  Stamp CurrentStamp(const Stamp& previous) const;

  const CniOptions options_;
  const std::unique_ptr<PluginExec> exec_;
  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  Stamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<NetworkConfigList> config_ ABSL_GUARDED_BY(mu_);
};

// The CNI_NETNS to pass for DEL: `netns` when it is a namespace (nsfs), else ""
// (gone, or a pin file whose bind mount was already removed).
std::string NetnsForDel(const std::string& netns);

}  // namespace berth::network
