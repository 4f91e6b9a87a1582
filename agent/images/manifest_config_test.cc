#include "agent/images/manifest_config.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What `docker build` writes (nginx-like): Docker's extra fields, nulls for
// unset ones, history.
constexpr char kDockerConfig[] = R"json({
  "architecture": "amd64",
  "config": {
    "Hostname": "",
    "User": "101:101",
    "AttachStdin": false,
    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
    "Tty": false,
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "NGINX_VERSION=1.25.4"
    ],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Image": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    "Volumes": null,
    "WorkingDir": "/srv",
    "Entrypoint": ["/docker-entrypoint.sh"],
    "OnBuild": null,
    "Labels": {"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"},
    "StopSignal": "SIGQUIT"
  },
  "created": "2024-02-14T18:21:16.789064585Z",
  "docker_version": "20.10.23",
  "history": [
    {"created": "2024-02-13T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
    {"created": "2024-02-13T00:00:01Z", "created_by": "CMD [\"bash\"]", "empty_layer": true}
  ],
  "os": "linux",
  "rootfs": {
    "type": "layers",
    "diff_ids": [
      "sha256:4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e",
      "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2",
      "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06"
    ]
  }
})json";

// The smallest OCI config: no "config" at all.
constexpr char kMinimalOciConfig[] = R"json({
  "architecture": "arm64",
  "variant": "v8",
  "os": "linux",
  "rootfs": {"type": "layers", "diff_ids": []}
})json";

TEST(ParseImageConfigTest, DockerConfig) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(kDockerConfig);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->architecture, "amd64");
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->created, "2024-02-14T18:21:16.789064585Z");
  EXPECT_EQ(c->config.user, "101:101");
  EXPECT_THAT(c->config.env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "NGINX_VERSION=1.25.4"));
  EXPECT_THAT(c->config.entrypoint, ElementsAre("/docker-entrypoint.sh"));
  EXPECT_THAT(c->config.cmd, ElementsAre("nginx", "-g", "daemon off;"));
  EXPECT_EQ(c->config.working_dir, "/srv");
  EXPECT_EQ(c->config.stop_signal, "SIGQUIT");
  EXPECT_THAT(c->config.exposed_ports, ElementsAre("443/tcp", "80/tcp"));
  EXPECT_THAT(c->config.volumes, IsEmpty());  // null
  EXPECT_EQ(c->config.labels.at("maintainer"), "NGINX Docker Maintainers <docker-maint@nginx.com>");
  EXPECT_EQ(c->rootfs.type, "layers");
  ASSERT_EQ(c->rootfs.diff_ids.size(), 3u);
  EXPECT_EQ(c->rootfs.diff_ids[1].string(),
            "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2");
  EXPECT_EQ(c->platform().architecture, "amd64");
}

TEST(ParseImageConfigTest, MinimalOciConfig) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(kMinimalOciConfig);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->variant, "v8");
  EXPECT_THAT(c->config.cmd, IsEmpty());
  EXPECT_THAT(c->rootfs.diff_ids, IsEmpty());
}

TEST(ParseImageConfigTest, NullCmdAndEntrypointReadAsAbsent) {
  std::string text = absl::StrReplaceAll(
      kDockerConfig,
      {{"[\"nginx\", \"-g\", \"daemon off;\"]", "null"}, {"[\"/docker-entrypoint.sh\"]", "null"}});
  absl::StatusOr<ImageConfig> c = ParseImageConfig(text);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->config.cmd, IsEmpty());
  EXPECT_THAT(c->config.entrypoint, IsEmpty());
}

TEST(ParseImageConfigTest, ErrorsNameTheField) {
  struct Case {
    std::string from, to, message;
  };
  for (const Case& c : {
           Case{"\"os\": \"linux\",", "", "image config: os: missing"},
           Case{"\"architecture\": \"amd64\"", "\"architecture\": 64",
                "architecture: want a string, got number"},
           Case{"\"type\": \"layers\"", "\"type\": \"tarballs\"",
                "rootfs.type: want \"layers\", got \"tarballs\""},
           Case{"\"sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2\"",
                "\"77ea7eee\"", "rootfs.diff_ids[1]: invalid digest"},
           Case{"\"diff_ids\"", "\"diffids\"", "rootfs.diff_ids: missing"},
           Case{"\"rootfs\"", "\"root_fs\"", "rootfs: missing"},
           Case{"\"Cmd\": [\"nginx\"", "\"Cmd\": [7", "config.Cmd[0]: want a string, got number"},
           Case{"\"Env\": [", "\"Env\": \"x\", \"_\": [", "config.Env: want an array"},
           Case{"\"User\": \"101:101\"", "\"User\": 101", "config.User: want a string"},
           Case{"\"ExposedPorts\": {", "\"ExposedPorts\": 1, \"_\": {",
                "config.ExposedPorts: want an object"},
           Case{"\"maintainer\": \"NGINX", "\"maintainer\": 1, \"x\": \"NGINX",
                "config.Labels[\"maintainer\"]: want a string"},
       }) {
    std::string text = absl::StrReplaceAll(kDockerConfig, {{c.from, c.to}});
    ASSERT_NE(text, kDockerConfig) << c.from;
    EXPECT_THAT(ParseImageConfig(text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.from;
  }
  EXPECT_THAT(ParseImageConfig("not json"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("image config: invalid JSON")));
  EXPECT_THAT(ParseImageConfig(R"({"architecture": "amd64", "os": "linux", "config": []})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config: want an object")));
}

TEST(ChainIdsTest, MatchesHandComputedSha256) {
  // DiffIDs are sha256 of "layer0", "layer1", "layer2". The expected ChainIDs
  // come from the shell:
  //   AB=$(printf '%s %s' "$A" "$B" | sha256sum); ABC=$(printf '%s %s' "sha256:$AB" "$C" |
  //   sha256sum)
  ImageConfig c = *ParseImageConfig(kDockerConfig);
  std::vector<Digest> chain = ChainIds(c.rootfs.diff_ids);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0], c.rootfs.diff_ids[0]);
  EXPECT_EQ(chain[1].string(),
            "sha256:ef232af0eb422cdfd7917631657cd8ed2bfd5b9461b37c427aa0d3e0a19adf79");
  EXPECT_EQ(chain[2].string(),
            "sha256:7ad3896338947cc04ee0b35b50d400ff32538d63f42f85ec87feac78bf71a54d");
  EXPECT_THAT(ChainIds({}), IsEmpty());
  // A prefix of the layers has a prefix of the chain.
  std::vector<Digest> two = ChainIds(absl::MakeConstSpan(c.rootfs.diff_ids).subspan(0, 2));
  EXPECT_THAT(two, ElementsAre(chain[0], chain[1]));
}

}  // namespace
}  // namespace berth::images
