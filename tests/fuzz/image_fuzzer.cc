// Registry and image content a registry (or an image file) controls: manifests
// and indexes of every media type, image configs, references, hosts.toml and
// WWW-Authenticate challenges.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/images/hosts.h"
#include "agent/images/manifest.h"
#include "agent/images/manifest_config.h"
#include "agent/images/reference.h"
#include "agent/images/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  using namespace berth::images;
  (void)ParseManifestOrIndex(text, "");
  (void)ParseManifest(text, "application/vnd.docker.distribution.manifest.v2+json");
  (void)ParseIndex(text, "application/vnd.oci.image.index.v1+json");
  (void)ParseImageConfig(text);
  (void)Reference::Parse(text);
  (void)ParseHostsToml("registry.example", text);
  (void)ParseAuthChallenge(text);
  return 0;
}
