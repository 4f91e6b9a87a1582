#include "agent/network/config.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::network {
namespace {

// A string member, or "" when absent; INVALID_ARGUMENT when present with another type.
absl::StatusOr<std::string> OptionalString(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return std::string();
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat("`", key, "` is not a string"));
  return it->get<std::string>();
}

absl::Status ValidateNameAndVersion(const NetworkConfigList& list) {
  if (list.name.empty()) return absl::InvalidArgumentError("missing network `name`");
  if (!IsValidCniIdentifier(list.name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid network name `", list.name, "`"));
  }
  if (list.cni_version.empty()) return absl::InvalidArgumentError("missing `cniVersion`");
  return ParseCniVersion(list.cni_version).status();
}

absl::StatusOr<PluginConfig> ParsePlugin(const nlohmann::json& raw, size_t index) {
  const std::string where = absl::StrCat("plugins[", index, "]");
  if (!raw.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
  absl::StatusOr<std::string> type = OptionalString(raw, "type");
  if (!type.ok()) return Annotate(type.status(), where);
  // The type is a file name looked up in the bin dirs: no path may sneak in.
  if (type->empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": missing `type`"));
  if (absl::StrContains(*type, '/') || *type == "." || *type == "..") {
    return absl::InvalidArgumentError(absl::StrCat(where, ": invalid `type` `", *type, "`"));
  }
  if (auto caps = raw.find("capabilities"); caps != raw.end() && !caps->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": `capabilities` is not an object"));
  }
  return PluginConfig{*std::move(type), raw};
}

absl::Status ParseList(const nlohmann::json& doc, NetworkConfigList& list) {
  BERTH_ASSIGN_OR_RETURN(list.name, OptionalString(doc, "name"));
  BERTH_ASSIGN_OR_RETURN(list.cni_version, OptionalString(doc, "cniVersion"));
  BERTH_RETURN_IF_ERROR(ValidateNameAndVersion(list));
  if (auto it = doc.find("disableCheck"); it != doc.end()) {
    // SPEC.md writes it as a boolean; some files carry the string "true".
    list.disable_check =
        it->is_boolean() ? it->get<bool>() : (it->is_string() && it->get<std::string>() == "true");
  }
  auto plugins = doc.find("plugins");
  if (plugins == doc.end() || !plugins->is_array() || plugins->empty()) {
    return absl::InvalidArgumentError("`plugins` is missing or empty");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(PluginConfig plugin, ParsePlugin((*plugins)[i], i));
    list.plugins.push_back(std::move(plugin));
  }
  return absl::OkStatus();
}

absl::Status ParseSingle(const nlohmann::json& doc, NetworkConfigList& list) {
  BERTH_ASSIGN_OR_RETURN(list.name, OptionalString(doc, "name"));
  BERTH_ASSIGN_OR_RETURN(list.cni_version, OptionalString(doc, "cniVersion"));
  BERTH_RETURN_IF_ERROR(ValidateNameAndVersion(list));
  BERTH_ASSIGN_OR_RETURN(PluginConfig plugin, ParsePlugin(doc, 0));
  list.plugins.push_back(std::move(plugin));
  return absl::OkStatus();
}

bool IsConfigFileName(absl::string_view name) {
  return absl::EndsWith(name, ".conflist") || absl::EndsWith(name, ".conf") ||
         absl::EndsWith(name, ".json");
}

}  // namespace

absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view text, ConfigFormat format) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("not a JSON object");
  NetworkConfigList list;
  BERTH_RETURN_IF_ERROR(format == ConfigFormat::kList ? ParseList(doc, list)
                                                      : ParseSingle(doc, list));
  return list;
}

absl::StatusOr<std::string> FindNetworkConfigFile(const std::string& conf_dir) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(conf_dir);
  if (!names.ok() && names.status().code() != absl::StatusCode::kNotFound) return names.status();
  if (names.ok()) {
    for (const std::string& name : *names) {  // ListDir sorts by name
      if (!IsConfigFileName(name)) continue;
      const std::string path = absl::StrCat(conf_dir, "/", name);
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
      return path;
    }
  }
  return absl::FailedPreconditionError(absl::StrCat("no network config found in `", conf_dir, "`"));
}

absl::StatusOr<NetworkConfigList> LoadNetworkConfig(const std::string& conf_dir) {
  BERTH_ASSIGN_OR_RETURN(std::string path, FindNetworkConfigFile(conf_dir));
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const ConfigFormat format =
      absl::EndsWith(path, ".conflist") ? ConfigFormat::kList : ConfigFormat::kSingle;
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(text, format);
  if (!list.ok()) return Annotate(list.status(), absl::StrCat("network config `", path, "`"));
  list->source = path;
  return list;
}

nlohmann::json ToJson(const NetworkConfigList& list) {
  nlohmann::json plugins = nlohmann::json::array();
  for (const PluginConfig& p : list.plugins) plugins.push_back(p.raw);
  nlohmann::json doc = {
      {"cniVersion", list.cni_version}, {"name", list.name}, {"plugins", plugins}};
  if (list.disable_check) doc["disableCheck"] = true;
  return doc;
}

absl::StatusOr<std::array<int, 3>> ParseCniVersion(absl::string_view version) {
  std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  std::array<int, 3> out{};
  bool ok = parts.size() == 3;
  for (size_t i = 0; ok && i < 3; ++i) {
    ok = !parts[i].empty() && absl::ascii_isdigit(parts[i][0]) &&
         absl::SimpleAtoi(parts[i], &out[i]) && out[i] >= 0;
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("invalid cniVersion `", version, "`"));
  return out;
}

bool CniVersionAtLeast(absl::string_view a, absl::string_view b) {
  absl::StatusOr<std::array<int, 3>> va = ParseCniVersion(a), vb = ParseCniVersion(b);
  return va.ok() && vb.ok() && *va >= *vb;
}

bool IsValidCniIdentifier(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalnum(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace berth::network
