// Test fixture for BuildContainerSpec: a temp-dir rootfs with its own
// /etc/passwd and /etc/group, a fake image record, a sandbox with pinned
// namespaces and its /etc files, and a container config to fill in.
#pragma once

#include <sys/stat.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runtime/container_spec.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::lifecycle::testing {

namespace v1 = ::runtime::v1;

// The image's users: app (1000) is listed in wheel, audio and video; its
// own-named group "app" lists it too, which does not count as supplementary.
inline constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "# a comment\n"
    "\n"
    "broken:x:notanumber:1::/:/bin/sh\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
inline constexpr char kGroup[] =
    "root:x:0:\n"
    "wheel:x:10:root,app\n"
    "audio:x:29:app\n"
    "video:x:44: app , daemon\n"
    "staff:x:50:\n"
    "app:x:1000:app\n";

class SpecTest : public ::testing::Test {
 protected:
  SpecTest() {
    rootfs_ = dir_.Join("rootfs");
    MakeDir(rootfs_);
    MakeDir(rootfs_ + "/etc");
    berth::testing::WriteFileOrDie(rootfs_ + "/etc/passwd", kPasswd);
    berth::testing::WriteFileOrDie(rootfs_ + "/etc/group", kGroup);
    MakeDir(dir_.Join("sandbox"));
    for (const char* f : {"hostname", "hosts", "resolv.conf"}) {
      berth::testing::WriteFileOrDie(dir_.Join(std::string("sandbox/") + f), "x\n");
    }
    image_.id = "sha256:0123";
    image_.config.config.cmd = {"/bin/sh"};
    sandbox_config_.set_hostname("pod-host");
    in_.id = "c1";
    in_.config = &config_;
    in_.sandbox_config = &sandbox_config_;
    in_.image = &image_;
    in_.rootfs = rootfs_;
    // Every capability, whatever this machine's root holds; tests of a
    // restricted bounding set narrow it.
    in_.bounding_set = ~uint64_t{0};
    in_.mountinfo = "1 0 8:1 / / rw shared:1 - ext4 /dev/root rw\n";  // a systemd host's /
    in_.lsm = LsmHost{};  // neither AppArmor nor SELinux, whatever this machine runs
    in_.sandbox.id = "s1";
    in_.sandbox.net_ns = "/run/berth/sandboxes/s1/ns/net";
    in_.sandbox.ipc_ns = "/run/berth/sandboxes/s1/ns/ipc";
    in_.sandbox.uts_ns = "/run/berth/sandboxes/s1/ns/uts";
    in_.sandbox.hostname_file = dir_.Join("sandbox/hostname");
    in_.sandbox.hosts_file = dir_.Join("sandbox/hosts");
    in_.sandbox.resolv_conf_file = dir_.Join("sandbox/resolv.conf");
    in_.sandbox.cgroup_parent = "/berth/s1";
    in_.sandbox.log_directory = "/var/log/pods/ns_pod_uid";
    // kubelet's usual: a PID namespace per container.
    SecurityContext().mutable_namespace_options()->set_pid(v1::CONTAINER);
  }

  static void MakeDir(const std::string& path) {
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0) << path;
  }

  v1::LinuxContainerSecurityContext& SecurityContext() {
    return *config_.mutable_linux()->mutable_security_context();
  }

  absl::StatusOr<BuiltSpec> Build() { return BuildContainerSpec(in_); }

  BuiltSpec BuildOk() {
    absl::StatusOr<BuiltSpec> built = Build();
    EXPECT_THAT(built, berth::testing::IsOk());
    return built.ok() ? *std::move(built) : BuiltSpec{};
  }

  berth::testing::TempDir dir_;
  std::string rootfs_;
  v1::ContainerConfig config_;
  v1::PodSandboxConfig sandbox_config_;
  images::ImageRecord image_;
  ContainerSpecInputs in_;
};

}  // namespace berth::lifecycle::testing
