#include "agent/network/cni.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/network/cache.h"
#include "os/log.h"
#include "os/status.h"

namespace berth::network {
namespace {

bool SameTime(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// The IPAM plugin a plugin delegates to, if it names one.
std::string IpamType(const PluginConfig& plugin) {
  auto ipam = plugin.raw.find("ipam");
  if (ipam == plugin.raw.end() || !ipam->is_object()) return "";
  auto type = ipam->find("type");
  return type != ipam->end() && type->is_string() ? type->get<std::string>() : "";
}

}  // namespace

std::string NetnsForDel(const std::string& netns) {
  struct statfs fs;
  if (netns.empty() || statfs(netns.c_str(), &fs) != 0) return "";
  return fs.f_type == static_cast<decltype(fs.f_type)>(NSFS_MAGIC) ? netns : "";
}

bool Cni::Stamp::operator==(const Stamp& o) const {
  return SameTime(dir_mtime, o.dir_mtime) && file == o.file && SameTime(file_mtime, o.file_mtime) &&
         file_size == o.file_size && file_ino == o.file_ino;
}

Cni::Cni(CniOptions options, std::unique_ptr<PluginExec> exec)
    : options_(std::move(options)),
      exec_(exec ? std::move(exec) : std::make_unique<SpawnPluginExec>()),
      config_(absl::FailedPreconditionError("not loaded")) {}

// A new or renamed file changes the directory's mtime; an edit in place changes
// the file's. Only when the directory changed is it listed again.
Cni::Stamp Cni::CurrentStamp(const Stamp& previous) const {
  Stamp s;
  struct stat st;
  if (stat(options_.conf_dir.c_str(), &st) != 0) return s;
  s.dir_mtime = st.st_mtim;
  if (SameTime(s.dir_mtime, previous.dir_mtime) && !previous.file.empty()) {
    s.file = previous.file;
  } else if (absl::StatusOr<std::string> file = FindNetworkConfigFile(options_.conf_dir);
             file.ok()) {
    s.file = *std::move(file);
  }
  if (!s.file.empty() && stat(s.file.c_str(), &st) == 0) {
    s.file_mtime = st.st_mtim;
    s.file_size = st.st_size;
    s.file_ino = st.st_ino;
  }
  return s;
}

// Timestamps come from a coarse clock: two changes within one tick leave the
// same mtime. A stamp whose times are that recent is not trusted (git's "racy
// index" rule), so a change in the same tick as the load is seen next time.
bool Cni::Stamp::Settled() const {
  const absl::Time now = absl::Now();
  auto settled = [now](const timespec& t) {
    return now - absl::TimeFromTimespec(t) > absl::Seconds(2);
  };
  return settled(dir_mtime) && (file.empty() || settled(file_mtime));
}

absl::StatusOr<NetworkConfigList> Cni::Config() {
  absl::MutexLock lock(&mu_);
  Stamp now = CurrentStamp(stamp_);
  if (loaded_ && now == stamp_ && stamp_.Settled()) return config_;
  config_ = LoadNetworkConfig(options_.conf_dir);
  stamp_ = std::move(now);
  loaded_ = true;
  return config_;
}

absl::Status Cni::Ready() {
  BERTH_ASSIGN_OR_RETURN(NetworkConfigList list, Config());
  for (const PluginConfig& plugin : list.plugins) {
    BERTH_RETURN_IF_ERROR(FindPlugin(plugin.type, options_.bin_dirs).status());
    if (std::string ipam = IpamType(plugin); !ipam.empty()) {
      BERTH_RETURN_IF_ERROR(FindPlugin(ipam, options_.bin_dirs).status());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Cni::Invoke(const char* command, const NetworkConfigList& list,
                                        size_t index, const nlohmann::json& prev_result,
                                        const Attachment& attachment, const std::string& netns) {
  const std::string& type = list.plugins[index].type;
  BERTH_ASSIGN_OR_RETURN(std::string path, FindPlugin(type, options_.bin_dirs));
  PluginCall call;
  call.path = std::move(path);
  call.timeout = options_.plugin_timeout;
  call.stdin_data = BuildPluginConfig(list, index, prev_result, CapabilityArgs(attachment)).dump();
  call.env = {absl::StrCat("CNI_COMMAND=", command),
              absl::StrCat("CNI_CONTAINERID=", attachment.container_id),
              absl::StrCat("CNI_NETNS=", netns),
              absl::StrCat("CNI_IFNAME=", attachment.ifname),
              absl::StrCat("CNI_ARGS=", FormatCniArgs(attachment.args)),
              absl::StrCat("CNI_PATH=", absl::StrJoin(options_.bin_dirs, ":")),
              absl::StrCat("PATH=", options_.path_env)};
  absl::StatusOr<PluginOutput> output = exec_->Run(call);
  if (!output.ok()) {
    return Annotate(output.status(), absl::StrCat("cni plugin `", type, "` ", command));
  }
  BERTH_RETURN_IF_ERROR(PluginError(type, command, *output));
  return std::move(output->out);
}

absl::StatusOr<Result> Cni::Add(const Attachment& attachment) {
  BERTH_RETURN_IF_ERROR(ValidateAttachment(attachment));
  if (attachment.netns.empty()) return absl::InvalidArgumentError("cni ADD: no netns");
  BERTH_ASSIGN_OR_RETURN(NetworkConfigList list, Config());
  // Armed until the result is cached: whatever plugin k did, and what plugins
  // before it did, is undone (the error that made us roll back is returned).
  absl::Cleanup rollback = [&] {
    (void)DelList(list, nullptr, attachment, attachment.netns, /*best_effort=*/true);
  };
  nlohmann::json prev;  // null: the first plugin gets no prevResult
  for (size_t i = 0; i < list.plugins.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(std::string out,
                           Invoke("ADD", list, i, prev, attachment, attachment.netns));
    absl::StatusOr<Result> parsed = ParseResult(out);
    if (!parsed.ok()) {
      return Annotate(parsed.status(), absl::StrCat("cni plugin `", list.plugins[i].type, "` ADD"));
    }
    prev = std::move(parsed->raw);
  }
  BERTH_ASSIGN_OR_RETURN(Result result, ResultFromJson(prev));
  BERTH_RETURN_IF_ERROR(Annotate(
      WriteCache(options_.cache_dir, CacheEntry{list, result.raw, attachment}), "cni cache"));
  std::move(rollback).Cancel();
  return result;
}

absl::Status Cni::DelList(const NetworkConfigList& list, const nlohmann::json& result,
                          const Attachment& attachment, const std::string& netns,
                          bool best_effort) {
  // libcni hands DEL the cached result only from 0.4.0 on: older plugins do not
  // expect prevResult there.
  const nlohmann::json prev = CniVersionAtLeast(list.cni_version, "0.4.0") ? result : nullptr;
  absl::Status first;
  for (size_t i = list.plugins.size(); i-- > 0;) {
    absl::Status s = Invoke("DEL", list, i, prev, attachment, netns).status();
    if (s.ok()) continue;
    if (!best_effort) return s;  // SPEC.md: halt at the first error
    BERTH_LOG(WARNING) << "cni rollback of " << attachment.container_id << ": " << s.message();
    first.Update(s);
  }
  return first;
}

// DEL of one cached attachment, then its cache file.
absl::Status Cni::DelCached(const std::string& path, const CacheEntry& entry,
                            const Attachment& request) {
  const Attachment& cached = entry.attachment;
  const std::string netns = NetnsForDel(request.netns.empty() ? cached.netns : request.netns);
  BERTH_RETURN_IF_ERROR(DelList(entry.config, entry.result, cached, netns, /*best_effort=*/false));
  return RemoveCache(path);
}

absl::Status Cni::Del(const Attachment& attachment) {
  BERTH_RETURN_IF_ERROR(ValidateAttachment(attachment));
  bool found = false;
  std::vector<std::string> unreadable;
  for (const std::string& path :
       FindCacheFiles(options_.cache_dir, attachment.container_id, attachment.ifname)) {
    absl::StatusOr<CacheEntry> entry = ReadCache(path);
    if (!entry.ok()) {
      BERTH_LOG(WARNING) << "cni: unreadable cache entry: " << entry.status().message();
      unreadable.push_back(path);
      continue;
    }
    const Attachment& cached = entry->attachment;
    if (cached.container_id != attachment.container_id || cached.ifname != attachment.ifname) {
      continue;  // another network's name and another id happened to end alike
    }
    BERTH_RETURN_IF_ERROR(DelCached(path, *entry, attachment));
    found = true;
  }
  if (found) return absl::OkStatus();
  absl::StatusOr<NetworkConfigList> list = Config();
  if (!list.ok()) {
    // Nothing cached and no config: nothing we know how to undo.
    BERTH_LOG(WARNING) << "cni DEL " << attachment.container_id
                       << " without cache or config: " << list.status().message();
    return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(
      DelList(*list, nullptr, attachment, NetnsForDel(attachment.netns), /*best_effort=*/false));
  for (const std::string& path : unreadable) BERTH_RETURN_IF_ERROR(RemoveCache(path));
  return absl::OkStatus();
}

absl::Status Cni::Check(const Attachment& attachment) {
  BERTH_RETURN_IF_ERROR(ValidateAttachment(attachment));
  for (const std::string& path :
       FindCacheFiles(options_.cache_dir, attachment.container_id, attachment.ifname)) {
    BERTH_ASSIGN_OR_RETURN(CacheEntry entry, ReadCache(path));
    const Attachment& cached = entry.attachment;
    if (cached.container_id != attachment.container_id || cached.ifname != attachment.ifname) {
      continue;
    }
    const NetworkConfigList& list = entry.config;
    if (!CniVersionAtLeast(list.cni_version, "0.4.0")) {
      return absl::FailedPreconditionError(absl::StrCat("cni network `", list.name, "` version ",
                                                        list.cni_version, " has no CHECK"));
    }
    if (list.disable_check) return absl::OkStatus();
    const std::string& netns = attachment.netns.empty() ? cached.netns : attachment.netns;
    for (size_t i = 0; i < list.plugins.size(); ++i) {
      BERTH_RETURN_IF_ERROR(Invoke("CHECK", list, i, entry.result, cached, netns).status());
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("cni CHECK: no cached ADD for `", attachment.container_id,
                                          "` ", attachment.ifname));
}

}  // namespace berth::network
