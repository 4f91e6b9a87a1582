// CNI network configuration: the file in /etc/cni/net.d that says which plugins
// set up a pod's network, and in which order.
//
// A configuration list (`.conflist`) names the network and lists plugins; a
// single-plugin configuration (`.conf`, `.json`) is read as a list of one, as
// libcni's ConfListFromConf does. The runtime uses the first file by name, as
// containerd does, and keeps each plugin's JSON untouched: plugins own their keys
// (SPEC.md, "Network Configuration"), we only read `type`, `capabilities` and the
// list's `name`, `cniVersion`, `disableCheck`.
//
//   BERTH_ASSIGN_OR_RETURN(NetworkConfigList list, LoadNetworkConfig("/etc/cni/net.d"));
//   // list.name == "containerd-net", list.plugins[0].type == "bridge", ...
//
// Spec: https://github.com/containernetworking/cni/blob/main/SPEC.md, section 1.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct PluginConfig {
  std::string type;    // the executable's file name, e.g. "bridge"
  nlohmann::json raw;  // the plugin's object as written, `type` included
};

struct NetworkConfigList {
  std::string name;
  std::string cni_version;  // e.g. "1.0.0"
  bool disable_check = false;
  std::vector<PluginConfig> plugins;
  std::string source;  // the file it came from; empty when parsed from bytes
};

enum class ConfigFormat {
  kList,    // {"name", "cniVersion", "plugins": [...]}
  kSingle,  // one plugin object with its own "name", "cniVersion", "type"
};

// Parses and validates one configuration: `name` (SPEC.md's pattern), a
// well-formed `cniVersion`, at least one plugin, each with a `type` that names a
// file. INVALID_ARGUMENT says what is wrong.
absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view text, ConfigFormat format);

// The first `.conflist`, `.conf` or `.json` file by name in `conf_dir`, parsed.
// No such file (or no directory): FAILED_PRECONDITION
// "no network config found in `/etc/cni/net.d`"; a broken first file is its
// INVALID_ARGUMENT error, naming the file (we do not skip to the next one: the
// administrator meant the first).
absl::StatusOr<NetworkConfigList> LoadNetworkConfig(const std::string& conf_dir);

// The file LoadNetworkConfig would read (its full path), or FAILED_PRECONDITION.
absl::StatusOr<std::string> FindNetworkConfigFile(const std::string& conf_dir);

// The list as a `.conflist` document; ParseNetworkConfig(kList) reads it back.
nlohmann::json ToJson(const NetworkConfigList& list);

// CNI versions are semver "major.minor.patch". INVALID_ARGUMENT when malformed.
absl::StatusOr<std::array<int, 3>> ParseCniVersion(absl::string_view version);
// a >= b for two well-formed versions; false when either is malformed.
bool CniVersionAtLeast(absl::string_view a, absl::string_view b);

// SPEC.md's identifier: an alphanumeric, then alphanumerics, '_', '.', '-'. Used
// for network names and container ids.
bool IsValidCniIdentifier(absl::string_view s);

}  // namespace berth::network
