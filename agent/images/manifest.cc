#include "agent/images/manifest.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/images/manifest_json.h"
#include "os/status.h"

namespace berth::images {
namespace {

using internal::ElementPath;
using internal::FieldError;
using internal::FieldPath;
using internal::Json;

struct KnownLayer {
  absl::string_view media_type;
  LayerMediaType type;
};
constexpr KnownLayer kKnownLayers[] = {
    {"application/vnd.oci.image.layer.v1.tar", {LayerCompression::kNone, false}},
    {"application/vnd.oci.image.layer.v1.tar+gzip", {LayerCompression::kGzip, false}},
    {"application/vnd.oci.image.layer.v1.tar+zstd", {LayerCompression::kZstd, false}},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", {LayerCompression::kNone, true}},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
     {LayerCompression::kGzip, true}},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
     {LayerCompression::kZstd, true}},
    {"application/vnd.docker.image.rootfs.diff.tar", {LayerCompression::kNone, false}},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", {LayerCompression::kGzip, false}},
    {"application/vnd.docker.image.rootfs.diff.tar.zstd", {LayerCompression::kZstd, false}},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar", {LayerCompression::kNone, true}},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", {LayerCompression::kGzip, true}},
};

// RFC 6838 section 4.2 restricted-name, as the image-spec schema checks it
// (schema/defs-descriptor.json): type "/" subtype, each 1..127 characters.
bool IsRestrictedName(absl::string_view s) {
  if (s.empty() || s.size() > 127 || !absl::ascii_isalnum(s.front())) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("!#$&^_.+-", c)) return false;
  }
  return true;
}
bool IsMediaType(absl::string_view s) {
  size_t slash = s.find('/');
  return slash != absl::string_view::npos && IsRestrictedName(s.substr(0, slash)) &&
         IsRestrictedName(s.substr(slash + 1));
}

absl::StatusOr<Platform> ParsePlatform(const Json& j, const std::string& path) {
  if (!j.is_object()) return FieldError(path, absl::StrCat("want an object, got ", j.type_name()));
  Platform p;
  BERTH_ASSIGN_OR_RETURN(p.architecture, internal::RequiredString(j, "architecture", path));
  BERTH_ASSIGN_OR_RETURN(p.os, internal::RequiredString(j, "os", path));
  BERTH_ASSIGN_OR_RETURN(p.variant, internal::OptionalString(j, "variant", path));
  BERTH_ASSIGN_OR_RETURN(p.os_version, internal::OptionalString(j, "os.version", path));
  BERTH_ASSIGN_OR_RETURN(p.os_features, internal::OptionalStringArray(j, "os.features", path));
  return p;
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& j, const std::string& path) {
  if (!j.is_object()) return FieldError(path, absl::StrCat("want an object, got ", j.type_name()));
  Descriptor d;
  BERTH_ASSIGN_OR_RETURN(d.media_type, internal::RequiredString(j, "mediaType", path));
  if (!IsMediaType(d.media_type)) {
    return FieldError(FieldPath(path, "mediaType"),
                      absl::StrCat("\"", absl::CHexEscape(d.media_type), "\" is not a media type"));
  }
  BERTH_ASSIGN_OR_RETURN(d.digest, internal::RequiredDigest(j, "digest", path));
  BERTH_ASSIGN_OR_RETURN(d.size, internal::RequiredInt64(j, "size", path, 0));
  BERTH_ASSIGN_OR_RETURN(d.urls, internal::OptionalStringArray(j, "urls", path));
  BERTH_ASSIGN_OR_RETURN(d.annotations, internal::OptionalStringMap(j, "annotations", path));
  BERTH_ASSIGN_OR_RETURN(d.artifact_type, internal::OptionalString(j, "artifactType", path));
  if (const Json* p = internal::Member(j, "platform")) {
    BERTH_ASSIGN_OR_RETURN(d.platform, ParsePlatform(*p, FieldPath(path, "platform")));
  }
  return d;
}

absl::StatusOr<std::vector<Descriptor>> ParseDescriptors(const Json& doc, absl::string_view key) {
  const Json* array = internal::Member(doc, key);
  if (array == nullptr) return FieldError(key, "missing");
  if (!array->is_array()) {
    return FieldError(key, absl::StrCat("want an array, got ", array->type_name()));
  }
  std::vector<Descriptor> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*array)[i], ElementPath(key, i)));
    out.push_back(std::move(d));
  }
  return out;
}

absl::Status CheckSchemaVersion(const Json& doc) {
  BERTH_ASSIGN_OR_RETURN(int64_t version, internal::RequiredInt64(doc, "schemaVersion", "", 0));
  if (version == 1) return absl::UnimplementedError("Docker schema 1 manifests are not supported");
  if (version != 2) return FieldError("schemaVersion", absl::StrCat("want 2, got ", version));
  return absl::OkStatus();
}

absl::StatusOr<Manifest> ManifestFromJson(const Json& doc) {
  Manifest m;
  BERTH_RETURN_IF_ERROR(CheckSchemaVersion(doc));
  BERTH_ASSIGN_OR_RETURN(m.media_type, internal::OptionalString(doc, "mediaType", ""));
  BERTH_ASSIGN_OR_RETURN(m.artifact_type, internal::OptionalString(doc, "artifactType", ""));
  const Json* config = internal::Member(doc, "config");
  if (config == nullptr) return FieldError("config", "missing");
  BERTH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, "config"));
  BERTH_ASSIGN_OR_RETURN(m.layers, ParseDescriptors(doc, "layers"));
  if (const Json* subject = internal::Member(doc, "subject")) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseDescriptor(*subject, "subject"));
  }
  BERTH_ASSIGN_OR_RETURN(m.annotations, internal::OptionalStringMap(doc, "annotations", ""));
  return m;
}

absl::StatusOr<Index> IndexFromJson(const Json& doc) {
  Index index;
  BERTH_RETURN_IF_ERROR(CheckSchemaVersion(doc));
  BERTH_ASSIGN_OR_RETURN(index.media_type, internal::OptionalString(doc, "mediaType", ""));
  BERTH_ASSIGN_OR_RETURN(index.manifests, ParseDescriptors(doc, "manifests"));
  BERTH_ASSIGN_OR_RETURN(index.annotations, internal::OptionalStringMap(doc, "annotations", ""));
  return index;
}

enum class Kind { kUnknown, kManifest, kIndex };

Kind KindOf(absl::string_view media_type) {
  if (IsManifestMediaType(media_type)) return Kind::kManifest;
  if (IsIndexMediaType(media_type)) return Kind::kIndex;
  return Kind::kUnknown;
}

// See manifest.h: the fetched-as type, else the mediaType field, else the shape.
absl::StatusOr<Kind> DetectKind(const Json& doc, absl::string_view fetched_as) {
  if (internal::Member(doc, "fsLayers") != nullptr) {
    return absl::UnimplementedError("Docker schema 1 manifests are not supported");
  }
  BERTH_ASSIGN_OR_RETURN(std::string field, internal::OptionalString(doc, "mediaType", ""));
  Kind said = KindOf(field);
  if (!field.empty() && said == Kind::kUnknown) {
    return FieldError("mediaType",
                      absl::StrCat("unsupported document type \"", absl::CHexEscape(field), "\""));
  }
  bool index_shape = internal::Member(doc, "manifests") != nullptr;
  bool manifest_shape =
      internal::Member(doc, "config") != nullptr || internal::Member(doc, "layers") != nullptr;
  Kind kind = KindOf(fetched_as);
  std::string source = absl::StrCat("fetched as ", fetched_as);
  if (kind == Kind::kUnknown) {
    kind = said;
    source = absl::StrCat("mediaType ", field);
  }
  if (kind == Kind::kUnknown) {
    if (index_shape == manifest_shape) {
      return absl::InvalidArgumentError(
          "no mediaType, and the fields fit neither a manifest (config, layers) nor an index "
          "(manifests) alone");
    }
    return index_shape ? Kind::kIndex : Kind::kManifest;
  }
  if (kind == Kind::kManifest && (index_shape || said == Kind::kIndex)) {
    return absl::InvalidArgumentError(absl::StrCat(source, " but the document is an index"));
  }
  if (kind == Kind::kIndex && (manifest_shape || said == Kind::kManifest)) {
    return absl::InvalidArgumentError(absl::StrCat(source, " but the document is a manifest"));
  }
  return kind;
}

}  // namespace

bool IsManifestMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciManifest || media_type == kMediaTypeDockerManifest;
}

bool IsIndexMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList;
}

bool IsImageConfigMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciConfig || media_type == kMediaTypeDockerConfig;
}

absl::StatusOr<LayerMediaType> ParseLayerMediaType(absl::string_view media_type) {
  for (const KnownLayer& known : kKnownLayers) {
    if (media_type == known.media_type) return known.type;
  }
  std::string quoted = absl::StrCat("\"", absl::CHexEscape(media_type), "\"");
  if (absl::EndsWith(media_type, "+encrypted")) {
    return absl::UnimplementedError(absl::StrCat("encrypted layer ", quoted, " is not supported"));
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported layer media type ", quoted));
}

absl::StatusOr<ManifestOrIndex> ParseManifestOrIndex(absl::string_view json,
                                                     absl::string_view media_type) {
  absl::StatusOr<Json> doc = internal::ParseJsonObject(json);
  if (!doc.ok()) return Annotate(doc.status(), "manifest");
  absl::StatusOr<Kind> kind = DetectKind(*doc, media_type);
  if (!kind.ok()) return Annotate(kind.status(), "manifest");
  if (*kind == Kind::kIndex) {
    absl::StatusOr<Index> index = IndexFromJson(*doc);
    if (!index.ok()) return Annotate(index.status(), "image index");
    return ManifestOrIndex(*std::move(index));
  }
  absl::StatusOr<Manifest> manifest = ManifestFromJson(*doc);
  if (!manifest.ok()) return Annotate(manifest.status(), "image manifest");
  return ManifestOrIndex(*std::move(manifest));
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view json, absl::string_view media_type) {
  BERTH_ASSIGN_OR_RETURN(ManifestOrIndex doc, ParseManifestOrIndex(json, media_type));
  if (auto* m = std::get_if<Manifest>(&doc)) return std::move(*m);
  return absl::FailedPreconditionError("want an image manifest, got an image index");
}

absl::StatusOr<Index> ParseIndex(absl::string_view json, absl::string_view media_type) {
  BERTH_ASSIGN_OR_RETURN(ManifestOrIndex doc, ParseManifestOrIndex(json, media_type));
  if (auto* index = std::get_if<Index>(&doc)) return std::move(*index);
  return absl::FailedPreconditionError("want an image index, got an image manifest");
}

absl::Status CheckImageManifest(const Manifest& manifest) {
  if (!IsImageConfigMediaType(manifest.config.media_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image manifest: config.mediaType: \"", absl::CHexEscape(manifest.config.media_type),
        "\" is not an image config (an artifact, not a container image)"));
  }
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    absl::Status s = ParseLayerMediaType(manifest.layers[i].media_type).status();
    if (!s.ok()) {
      return Annotate(s, absl::StrCat("image manifest: layers[", i, "].mediaType"));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::images
