// Image manifests and indexes: the JSON documents a registry serves for a tag
// or a digest, in both the OCI form (opencontainers/image-spec manifest.md,
// image-index.md, descriptor.md) and Docker's schema 2 (manifest v2 and
// manifest list), which share one shape.
//
//   BERTH_ASSIGN_OR_RETURN(ManifestOrIndex doc,
//                          ParseManifestOrIndex(fetched.body, fetched.media_type));
//   if (auto* index = std::get_if<Index>(&doc)) {
//     BERTH_ASSIGN_OR_RETURN(Descriptor chosen, SelectPlatform(*index));  // manifest_platform.h
//     ... fetch chosen.digest and parse again ...
//   }
//   const Manifest& m = std::get<Manifest>(doc);
//   for (const Descriptor& layer : m.layers) ...
//
// Parsing is strict where the spec says MUST (schemaVersion 2, every descriptor
// with a mediaType, a valid digest and a size >= 0; annotations and urls of
// strings) and ignores unknown fields, as the spec requires of readers. Errors
// are INVALID_ARGUMENT naming the field: `manifest: layers[2].digest: invalid
// digest "sha256:abc": sha256 needs 64 hex digits, got 3`. Schema 1 manifests
// are UNIMPLEMENTED.
//
// Which document is which: the media type it was fetched as (a Content-Type
// or a descriptor's mediaType), else its own mediaType field, else its fields
// ("manifests" makes an index; "config" or "layers" a manifest). A document
// that contradicts the type it was fetched as is refused, as containerd does
// (images/image.go, validateMediaType): a confused manifest/index is how an
// attacker would swap content under a verified digest.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/images/digest.h"

namespace berth::images {

// Documents.
inline constexpr absl::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr absl::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
// Image configs.
inline constexpr absl::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr absl::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
// Layers (the ones the unpacker reads; see ParseLayerMediaType).
inline constexpr absl::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr absl::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr absl::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr absl::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

bool IsManifestMediaType(absl::string_view media_type);  // OCI manifest, Docker v2
bool IsIndexMediaType(absl::string_view media_type);     // OCI index, Docker list
bool IsImageConfigMediaType(absl::string_view media_type);

enum class LayerCompression { kNone, kGzip, kZstd };
struct LayerMediaType {
  LayerCompression compression = LayerCompression::kNone;
  // OCI "nondistributable" and Docker "foreign" layers: fetched from the
  // descriptor's urls when the registry lacks them; unpacked like any other.
  bool non_distributable = false;
};
// The OCI tar, tar+gzip, tar+zstd layers (and their nondistributable forms) and
// Docker's rootfs.diff.tar[.gzip|.zstd] (and foreign forms). Encrypted layers
// are UNIMPLEMENTED, anything else INVALID_ARGUMENT.
absl::StatusOr<LayerMediaType> ParseLayerMediaType(absl::string_view media_type);

// image-index.md, "platform".
struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64", "arm"
  std::string variant;       // "v7", "v8"; often empty
  std::string os_version;
  std::vector<std::string> os_features;
};

using Annotations = std::map<std::string, std::string>;

// descriptor.md.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  Annotations annotations;
  std::string artifact_type;
  std::optional<Platform> platform;  // in an index's manifests[]
};

// manifest.md (and Docker's schema 2 manifest).
struct Manifest {
  std::string media_type;  // as the document says; may be empty
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // base layer first
  std::optional<Descriptor> subject;
  Annotations annotations;
};

// image-index.md (and Docker's manifest list).
struct Index {
  std::string media_type;  // as the document says; may be empty
  std::vector<Descriptor> manifests;
  Annotations annotations;
};

using ManifestOrIndex = std::variant<Manifest, Index>;

// `media_type` is what the document was fetched as, or "" if unknown; types
// that name neither a manifest nor an index (a registry's "text/plain") are
// ignored.
absl::StatusOr<ManifestOrIndex> ParseManifestOrIndex(absl::string_view json,
                                                     absl::string_view media_type = "");
// The same, insisting on one kind (FAILED_PRECONDITION when it is the other).
absl::StatusOr<Manifest> ParseManifest(absl::string_view json, absl::string_view media_type = "");
absl::StatusOr<Index> ParseIndex(absl::string_view json, absl::string_view media_type = "");

// What the image pull path needs beyond the spec's MUSTs: an image config and
// layers Berth can unpack. Errors name the field (`layers[1].mediaType: ...`).
absl::Status CheckImageManifest(const Manifest& manifest);

}  // namespace berth::images
