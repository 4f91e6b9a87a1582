#include "agent/images/manifest.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

// Docker Hub's shape for an official image's manifest list (as `docker
// manifest inspect --verbose` and `crane manifest` show them).
constexpr char kDockerManifestList[] = R"json({
  "manifests": [
    {
      "digest": "sha256:5861314d7fccb39c2192173240eab44fa35ca66426201ca2acd0630a6258dd51",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "amd64", "os": "linux"},
      "size": 528
    },
    {
      "digest": "sha256:50b8c3e55c3365d624e7e10ae6a783d525e02b16924d4dcff0611f3e2544efaf",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v6"},
      "size": 527
    },
    {
      "digest": "sha256:5ba6c8710dd1369ce61603ab9b7a81b25f92d4a9f74956ab72a7ea75884f07ee",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
      "size": 527
    },
    {
      "digest": "sha256:f69162950f235e3cdbbad33f1f912d1a504be90d8a37d002c735d6f3e3882265",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
      "size": 527
    },
    {
      "digest": "sha256:6ff39ad64fc78addfe205e809111bee54caf0f35447e077658ed3c9b7025c3af",
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "ppc64le", "os": "linux"},
      "size": 528
    }
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
})json";

// A Docker schema 2 image manifest.
constexpr char kDockerManifest[] = R"json({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": "sha256:e67d23e7820c49a8051dac2831f38290f5e72f66c8db5079eeb60d82f14894c0"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2220094,
         "digest": "sha256:2804bad6fe94a55f18b2b37e300919a5fd517b95aa81e95db574c0ba069a3740"
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 0,
         "digest": "sha256:8a1cee436cbac1489a1883c9d886fcfc46f302c55ed4106ae31729e4f4eb9041"
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 9007199254740993,
         "digest": "sha256:10dacdccfe877dc064d57442e6fa7a4e3085dc94e11a29819c2290fc3d788724",
         "urls": ["https://mcr.microsoft.com/v2/blobs/x"]
      }
   ]
})json";

// A buildx-made OCI index: two images, each with an attestation manifest
// ("unknown/unknown", pointing at its image by annotation).
constexpr char kOciIndex[] = R"json({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:3e750e3cead4df7e0439f5f8112b1d55a9340065b55bc853ba3b9c6ca68a1a95",
      "size": 1025,
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:b3940c0aba623d239720d1583a50a759becbeb779fa902b19512e393b048ab2a",
      "size": 1025,
      "platform": {"architecture": "arm64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:35143e7a5239313ee73b81f2f99b785aaed42d9572d1f797dc19fa14aa6b081f",
      "size": 566,
      "annotations": {
        "vnd.docker.reference.digest": "sha256:3e750e3cead4df7e0439f5f8112b1d55a9340065b55bc853ba3b9c6ca68a1a95",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "platform": {"architecture": "unknown", "os": "unknown"}
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2024-05-01T10:00:00Z"}
})json";

// An OCI image manifest (zstd layer, 1.1 fields).
constexpr char kOciManifest[] = R"json({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:c74b7af921a5b5ac06b12ffc88076fe19bdca196200a54e37bcb0e1024238d41",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:dad498a994fffe62e4e44f8bb1bb0013f8ec0422a470e9a364d96cab1ea90fef",
      "size": 32654,
      "annotations": {"org.opencontainers.image.title": "rootfs.tar.zst"}
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:3e750e3cead4df7e0439f5f8112b1d55a9340065b55bc853ba3b9c6ca68a1a95",
    "size": 1025
  },
  "annotations": {"com.example.key1": "value1"},
  "unknownField": {"readers": "MUST ignore"}
})json";

TEST(ParseManifestOrIndexTest, DockerManifestList) {
  absl::StatusOr<ManifestOrIndex> doc = ParseManifestOrIndex(kDockerManifestList);
  ASSERT_THAT(doc, IsOk());
  const Index* index = std::get_if<Index>(&*doc);
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->media_type, kMediaTypeDockerManifestList);
  ASSERT_EQ(index->manifests.size(), 5u);
  const Descriptor& arm7 = index->manifests[2];
  EXPECT_EQ(arm7.media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(arm7.digest.hex(), "5ba6c8710dd1369ce61603ab9b7a81b25f92d4a9f74956ab72a7ea75884f07ee");
  EXPECT_EQ(arm7.size, 527);
  ASSERT_TRUE(arm7.platform.has_value());
  EXPECT_EQ(arm7.platform->os, "linux");
  EXPECT_EQ(arm7.platform->architecture, "arm");
  EXPECT_EQ(arm7.platform->variant, "v7");
}

TEST(ParseManifestOrIndexTest, DockerManifest) {
  absl::StatusOr<Manifest> m = ParseManifest(kDockerManifest);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(m->config.size, 1457);
  ASSERT_EQ(m->layers.size(), 3u);
  EXPECT_EQ(m->layers[0].size, 2220094);
  EXPECT_EQ(m->layers[1].size, 0);
  EXPECT_EQ(m->layers[2].size, 9007199254740993);  // beyond a double's exact range
  EXPECT_THAT(m->layers[2].urls, ::testing::ElementsAre("https://mcr.microsoft.com/v2/blobs/x"));
  EXPECT_THAT(CheckImageManifest(*m), IsOk());
}

TEST(ParseManifestOrIndexTest, OciIndexAndManifest) {
  absl::StatusOr<Index> index = ParseIndex(kOciIndex);
  ASSERT_THAT(index, IsOk());
  ASSERT_EQ(index->manifests.size(), 3u);
  EXPECT_EQ(index->manifests[2].annotations.at("vnd.docker.reference.type"),
            "attestation-manifest");
  EXPECT_EQ(index->annotations.at("org.opencontainers.image.created"), "2024-05-01T10:00:00Z");

  absl::StatusOr<Manifest> m = ParseManifest(kOciManifest, kMediaTypeOciManifest);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->config.media_type, kMediaTypeOciConfig);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].annotations.at("org.opencontainers.image.title"), "rootfs.tar.zst");
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->size, 1025);
  EXPECT_EQ(m->annotations.at("com.example.key1"), "value1");
  EXPECT_THAT(CheckImageManifest(*m), IsOk());
}

// Drops the top-level mediaType, which follows schemaVersion in both samples.
std::string WithoutMediaType(std::string json, absl::string_view type) {
  return absl::StrReplaceAll(
      json, {{absl::StrCat("\"schemaVersion\": 2,\n  \"mediaType\": \"", type, "\","),
              "\"schemaVersion\": 2,"}});
}

TEST(ParseManifestOrIndexTest, WithoutMediaTypeTellsByFields) {
  std::string index = WithoutMediaType(kOciIndex, kMediaTypeOciIndex);
  ASSERT_EQ(index.find("image.index"), std::string::npos);
  absl::StatusOr<ManifestOrIndex> doc = ParseManifestOrIndex(index);
  ASSERT_THAT(doc, IsOk());
  EXPECT_TRUE(std::holds_alternative<Index>(*doc));
  EXPECT_EQ(std::get<Index>(*doc).media_type, "");

  std::string manifest = WithoutMediaType(kOciManifest, kMediaTypeOciManifest);
  ASSERT_NE(manifest, kOciManifest);
  doc = ParseManifestOrIndex(manifest);
  ASSERT_THAT(doc, IsOk());
  EXPECT_TRUE(std::holds_alternative<Manifest>(*doc));

  EXPECT_THAT(ParseManifestOrIndex(R"({"schemaVersion": 2})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither a manifest")));
}

TEST(ParseManifestOrIndexTest, FetchedAsTypeDecidesAndMustAgree) {
  // An unhelpful Content-Type is ignored.
  EXPECT_THAT(ParseIndex(kOciIndex, "text/plain"), IsOk());
  // Docker and OCI names of the same kind are interchangeable.
  EXPECT_THAT(ParseIndex(kOciIndex, kMediaTypeDockerManifestList), IsOk());
  EXPECT_THAT(ParseManifestOrIndex(kOciIndex, kMediaTypeOciManifest),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("fetched as application/vnd.oci.image.manifest.v1+json but the "
                                 "document is an index")));
  EXPECT_THAT(ParseManifestOrIndex(kDockerManifest, kMediaTypeOciIndex),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is a manifest")));
  // A mediaType field that contradicts the fields.
  std::string lying = absl::StrReplaceAll(
      kOciIndex, {{"\"mediaType\": \"application/vnd.oci.image.index.v1+json\"",
                   "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\""}});
  EXPECT_THAT(ParseManifestOrIndex(lying),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is an index")));
  // Wrong kind for the caller.
  EXPECT_THAT(ParseManifest(kOciIndex), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ParseIndex(kOciManifest), StatusIs(absl::StatusCode::kFailedPrecondition));
}

struct BadDoc {
  std::string name;
  std::string from, to;  // replaced in kDockerManifest (or whole text when `from` is empty)
  std::string message;
};

void PrintTo(const BadDoc& b, std::ostream* os) { *os << b.name; }

class ManifestErrorTest : public ::testing::TestWithParam<BadDoc> {};

TEST_P(ManifestErrorTest, NamesTheField) {
  const BadDoc& bad = GetParam();
  std::string text =
      bad.from.empty() ? bad.to : absl::StrReplaceAll(kDockerManifest, {{bad.from, bad.to}});
  ASSERT_NE(text, kDockerManifest) << "the replacement did not apply";
  absl::StatusOr<ManifestOrIndex> doc = ParseManifestOrIndex(text);
  EXPECT_THAT(doc, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad.message)));
}

const std::string kLayer2 = "\"size\": 0,";
INSTANTIATE_TEST_SUITE_P(
    Table, ManifestErrorTest,
    ::testing::Values(
        BadDoc{"NotJson", "", "{\"schemaVersion\": 2,", "manifest: invalid JSON at byte"},
        BadDoc{"NotAnObject", "", "[1, 2]", "manifest: want a JSON object, got array"},
        BadDoc{"SchemaVersion3", "\"schemaVersion\": 2", "\"schemaVersion\": 3",
               "image manifest: schemaVersion: want 2, got 3"},
        BadDoc{"SchemaVersionString", "\"schemaVersion\": 2", "\"schemaVersion\": \"2\"",
               "schemaVersion: want an integer, got string"},
        BadDoc{"NoSchemaVersion", "\"schemaVersion\": 2,", "", "schemaVersion: missing"},
        BadDoc{"NegativeSize", kLayer2, "\"size\": -1,", "layers[1].size: -1 is less than 0"},
        BadDoc{"FloatSize", kLayer2, "\"size\": 1.5,", "layers[1].size: want an integer"},
        BadDoc{"HugeSize", kLayer2, "\"size\": 18446744073709551615,",
               "layers[1].size: 18446744073709551615 does not fit in int64"},
        BadDoc{"NullSize", kLayer2, "\"size\": null,", "layers[1].size: missing"},
        BadDoc{"ShortDigest",
               "sha256:8a1cee436cbac1489a1883c9d886fcfc46f302c55ed4106ae31729e4f4eb9041",
               "sha256:8a1c", "layers[1].digest: invalid digest \"sha256:8a1c\""},
        BadDoc{"UnknownAlgorithm",
               "sha256:8a1cee436cbac1489a1883c9d886fcfc46f302c55ed4106ae31729e4f4eb9041",
               "md5:d41d8cd98f00b204e9800998ecf8427e",
               "layers[1].digest: unsupported digest algorithm"},
        BadDoc{"ConfigDigestNumber",
               "\"sha256:e67d23e7820c49a8051dac2831f38290f5e72f66c8db5079eeb60d82f14894c0\"", "7",
               "config.digest: want a string, got number"},
        BadDoc{"NoConfig", "\"config\"", "\"konfig\"", "config: missing"},
        BadDoc{"LayersNotArray", "\"layers\": [", "\"layers\": \"x\", \"y\": [",
               "layers: want an array, got string"},
        BadDoc{"BadMediaType", "\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\"",
               "\"tar\"", "layers[2].mediaType: \"tar\" is not a media type"},
        BadDoc{"UrlNotString", "\"https://mcr.microsoft.com/v2/blobs/x\"", "42",
               "layers[2].urls[0]: want a string, got number"},
        BadDoc{"AnnotationNotString", "\"urls\"", "\"annotations\": {\"a\": 1}, \"urls\"",
               "layers[2].annotations[\"a\"]: want a string, got number"},
        BadDoc{"UnknownDocumentType", "application/vnd.docker.distribution.manifest.v2+json",
               "application/vnd.oci.artifact.manifest.v1+json", "unsupported document type"}));

TEST(ParseManifestOrIndexTest, IndexErrorsNameTheField) {
  std::string bad = absl::StrReplaceAll(
      kDockerManifestList,
      {{"{\"architecture\": \"arm64\", \"os\": \"linux\", ", "{\"architecture\": \"arm64\", "}});
  EXPECT_THAT(ParseIndex(bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image index: manifests[3].platform.os: missing")));
  EXPECT_THAT(ParseIndex(R"({"schemaVersion": 2, "manifests": {}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("manifests: want an array")));
}

TEST(ParseManifestOrIndexTest, SchemaOneIsUnimplemented) {
  EXPECT_THAT(ParseManifestOrIndex(R"({"schemaVersion": 1, "fsLayers": [], "name": "x"})"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("schema 1")));
  EXPECT_THAT(ParseManifestOrIndex(R"({"schemaVersion": 1, "layers": []})"),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(LayerMediaTypeTest, Table) {
  struct Case {
    absl::string_view type;
    LayerCompression compression;
    bool non_distributable;
  };
  for (const Case& c : {
           Case{"application/vnd.oci.image.layer.v1.tar", LayerCompression::kNone, false},
           Case{"application/vnd.oci.image.layer.v1.tar+gzip", LayerCompression::kGzip, false},
           Case{"application/vnd.oci.image.layer.v1.tar+zstd", LayerCompression::kZstd, false},
           Case{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                LayerCompression::kGzip, true},
           Case{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                LayerCompression::kZstd, true},
           Case{"application/vnd.docker.image.rootfs.diff.tar.gzip", LayerCompression::kGzip,
                false},
           Case{"application/vnd.docker.image.rootfs.diff.tar", LayerCompression::kNone, false},
           Case{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                LayerCompression::kGzip, true},
       }) {
    absl::StatusOr<LayerMediaType> t = ParseLayerMediaType(c.type);
    ASSERT_THAT(t, IsOk()) << c.type;
    EXPECT_EQ(t->compression, c.compression) << c.type;
    EXPECT_EQ(t->non_distributable, c.non_distributable) << c.type;
  }
  EXPECT_THAT(ParseLayerMediaType("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("encrypted")));
  EXPECT_THAT(ParseLayerMediaType("application/vnd.oci.image.layer.v1.tar+bzip2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported layer")));
}

TEST(CheckImageManifestTest, RefusesArtifactsAndUnknownLayers) {
  Manifest m = *ParseManifest(kOciManifest);
  m.config.media_type = "application/vnd.cncf.helm.config.v1+json";
  EXPECT_THAT(CheckImageManifest(m),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.mediaType")));
  m = *ParseManifest(kOciManifest);
  m.layers[0].media_type = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
  EXPECT_THAT(CheckImageManifest(m),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layers[0].mediaType")));
}

}  // namespace
}  // namespace berth::images
