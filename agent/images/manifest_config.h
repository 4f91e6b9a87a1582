// The image config (opencontainers/image-spec config.md; Docker's
// application/vnd.docker.container.image.v1+json is the same document): the
// platform, the process defaults a container starts from, and the DiffIDs of
// the uncompressed layers, from which the layers' ChainIDs follow.
//
//   BERTH_ASSIGN_OR_RETURN(std::string json, store.ReadBlob(manifest.config.digest));
//   BERTH_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(json));
//   std::vector<Digest> chain = ChainIds(config.rootfs.diff_ids);
//   // chain[i] names the snapshot of layers 0..i: /var/lib/berth/layers/<chain[i].hex()>
//
// Required: architecture, os, rootfs (type "layers", diff_ids). The `config`
// object and every field in it are optional, and Docker writes `null` for unset
// ones ("Cmd": null), which reads as absent. Unknown fields are ignored.
// Errors are INVALID_ARGUMENT naming the field: `image config:
// rootfs.diff_ids[1]: invalid digest ...`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "agent/images/digest.h"
#include "agent/images/manifest.h"

namespace berth::images {

// config.md, "config": the defaults for a container's process. Field names
// follow the JSON ("User", "Env", ...).
struct ContainerDefaults {
  std::string user;              // "1000:1000", "nobody"; "" = root
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string stop_signal;                 // "SIGQUIT"; "" = SIGTERM
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  std::vector<std::string> volumes;        // "/data", sorted
  std::map<std::string, std::string> labels;
};

struct RootFs {
  std::string type;              // always "layers"
  std::vector<Digest> diff_ids;  // base layer first
};

struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;
  std::string created;  // RFC 3339, as written
  std::string author;
  ContainerDefaults config;
  RootFs rootfs;

  Platform platform() const { return Platform{os, architecture, variant, os_version, os_features}; }
};

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json);

// config.md, "Layer ChainID": ChainID(L0) = DiffID(L0), and
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) over the digests'
// string forms. Element i names the filesystem of layers 0..i applied in order.
std::vector<Digest> ChainIds(absl::Span<const Digest> diff_ids);

}  // namespace berth::images
