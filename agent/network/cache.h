// The attachment cache: what an ADD did, kept so DEL and CHECK can undo and
// verify exactly that, even after the config in /etc/cni/net.d changed or the
// agent restarted (SPEC.md: DEL and CHECK get the ADD's result as `prevResult`;
// "the runtime must store the result returned by the final plugin persistently").
//
// One file per attachment at `<cache_dir>/results/<network>-<containerid>-<ifname>`
// (libcni's layout; our own JSON, so keep it out of libcni's /var/lib/cni):
//   {"kind": "berth-cni-cache-v1", "config": <conflist>, "result": <ADD result>,
//    "attachment": {"containerId", "netns", "ifName", "args": [[k, v]...],
//                   "capabilityArgs": {...}}}
// Written atomically (temp + fsync + rename): a crash leaves the old file or the
// new one.
//
//   BERTH_RETURN_IF_ERROR(WriteCache(dir, {list, result.raw, attachment}));
//   for (const std::string& path : FindCacheFiles(dir, id, "eth0")) ReadCache(path)...
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/network/attachment.h"
#include "agent/network/config.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct CacheEntry {
  NetworkConfigList config;
  nlohmann::json result;  // null when there is none
  Attachment attachment;
};

std::string CachePath(const std::string& cache_dir, absl::string_view network,
                      const Attachment& attachment);

// Creates `<cache_dir>/results` as needed.
absl::Status WriteCache(const std::string& cache_dir, const CacheEntry& entry);

// INVALID_ARGUMENT for a file that is not a cache entry of ours.
absl::StatusOr<CacheEntry> ParseCache(absl::string_view text);
absl::StatusOr<CacheEntry> ReadCache(const std::string& path);
nlohmann::json ToJson(const CacheEntry& entry);

// The cache files for (container id, ifname) under any network name, sorted. A
// missing directory is no files.
std::vector<std::string> FindCacheFiles(const std::string& cache_dir,
                                        absl::string_view container_id, absl::string_view ifname);

// OK when the file is gone already.
absl::Status RemoveCache(const std::string& path);

}  // namespace berth::network
