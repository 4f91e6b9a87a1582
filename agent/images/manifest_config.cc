#include "agent/images/manifest_config.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/images/manifest_json.h"
#include "os/status.h"

namespace berth::images {
namespace {

using internal::ElementPath;
using internal::FieldError;
using internal::Json;

absl::StatusOr<ContainerDefaults> ParseContainerDefaults(const Json& j) {
  constexpr absl::string_view kPath = "config";
  ContainerDefaults c;
  BERTH_ASSIGN_OR_RETURN(c.user, internal::OptionalString(j, "User", kPath));
  BERTH_ASSIGN_OR_RETURN(c.env, internal::OptionalStringArray(j, "Env", kPath));
  BERTH_ASSIGN_OR_RETURN(c.entrypoint, internal::OptionalStringArray(j, "Entrypoint", kPath));
  BERTH_ASSIGN_OR_RETURN(c.cmd, internal::OptionalStringArray(j, "Cmd", kPath));
  BERTH_ASSIGN_OR_RETURN(c.working_dir, internal::OptionalString(j, "WorkingDir", kPath));
  BERTH_ASSIGN_OR_RETURN(c.stop_signal, internal::OptionalString(j, "StopSignal", kPath));
  BERTH_ASSIGN_OR_RETURN(c.exposed_ports, internal::OptionalObjectKeys(j, "ExposedPorts", kPath));
  BERTH_ASSIGN_OR_RETURN(c.volumes, internal::OptionalObjectKeys(j, "Volumes", kPath));
  BERTH_ASSIGN_OR_RETURN(c.labels, internal::OptionalStringMap(j, "Labels", kPath));
  return c;
}

absl::StatusOr<RootFs> ParseRootFs(const Json& doc) {
  BERTH_ASSIGN_OR_RETURN(const Json* j, internal::OptionalObject(doc, "rootfs", ""));
  if (j == nullptr) return FieldError("rootfs", "missing");
  RootFs rootfs;
  BERTH_ASSIGN_OR_RETURN(rootfs.type, internal::RequiredString(*j, "type", "rootfs"));
  if (rootfs.type != "layers") {
    return FieldError("rootfs.type",
                      absl::StrCat("want \"layers\", got \"", absl::CHexEscape(rootfs.type), "\""));
  }
  const Json* ids = internal::Member(*j, "diff_ids");
  if (ids == nullptr) return FieldError("rootfs.diff_ids", "missing");
  if (!ids->is_array()) {
    return FieldError("rootfs.diff_ids", absl::StrCat("want an array, got ", ids->type_name()));
  }
  for (size_t i = 0; i < ids->size(); ++i) {
    std::string path = ElementPath("rootfs.diff_ids", i);
    const Json& e = (*ids)[i];
    if (!e.is_string()) return FieldError(path, absl::StrCat("want a string, got ", e.type_name()));
    absl::StatusOr<Digest> d = Digest::Parse(e.get<std::string>());
    if (!d.ok()) return FieldError(path, d.status().message());
    rootfs.diff_ids.push_back(*std::move(d));
  }
  return rootfs;
}

absl::StatusOr<ImageConfig> ImageConfigFromJson(const Json& doc) {
  ImageConfig c;
  BERTH_ASSIGN_OR_RETURN(c.architecture, internal::RequiredString(doc, "architecture", ""));
  BERTH_ASSIGN_OR_RETURN(c.os, internal::RequiredString(doc, "os", ""));
  BERTH_ASSIGN_OR_RETURN(c.variant, internal::OptionalString(doc, "variant", ""));
  BERTH_ASSIGN_OR_RETURN(c.os_version, internal::OptionalString(doc, "os.version", ""));
  BERTH_ASSIGN_OR_RETURN(c.os_features, internal::OptionalStringArray(doc, "os.features", ""));
  BERTH_ASSIGN_OR_RETURN(c.created, internal::OptionalString(doc, "created", ""));
  BERTH_ASSIGN_OR_RETURN(c.author, internal::OptionalString(doc, "author", ""));
  BERTH_ASSIGN_OR_RETURN(const Json* defaults, internal::OptionalObject(doc, "config", ""));
  if (defaults != nullptr) {
    BERTH_ASSIGN_OR_RETURN(c.config, ParseContainerDefaults(*defaults));
  }
  BERTH_ASSIGN_OR_RETURN(c.rootfs, ParseRootFs(doc));
  return c;
}

}  // namespace

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json) {
  absl::StatusOr<Json> doc = internal::ParseJsonObject(json);
  if (!doc.ok()) return Annotate(doc.status(), "image config");
  absl::StatusOr<ImageConfig> config = ImageConfigFromJson(*doc);
  if (!config.ok()) return Annotate(config.status(), "image config");
  return config;
}

std::vector<Digest> ChainIds(absl::Span<const Digest> diff_ids) {
  std::vector<Digest> chain;
  chain.reserve(diff_ids.size());
  for (const Digest& diff_id : diff_ids) {
    if (chain.empty()) {
      chain.push_back(diff_id);
    } else {
      chain.push_back(DigestOfBytes(absl::StrCat(chain.back().string(), " ", diff_id.string())));
    }
  }
  return chain;
}

}  // namespace berth::images
