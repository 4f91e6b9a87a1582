// AddCgroupView on the three cgroup layouts: this machine's hybrid one, pure
// v2 (most nodes) and pure v1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runtime/container_spec.h"
#include "shim/client.h"

namespace berth::lifecycle {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

CgroupLayout Layout(std::vector<CgroupHierarchy> h) {
  absl::StatusOr<CgroupLayout> l = CgroupLayout::FromHierarchies(std::move(h));
  EXPECT_TRUE(l.ok()) << l.status();
  return *std::move(l);
}

// The hybrid layout of these machines (v1 controllers, cgroup2 with hugetlb).
CgroupLayout Hybrid() {
  return Layout({{"/sys/fs/cgroup/cpu", false, {"cpu"}},
                 {"/sys/fs/cgroup/memory", false, {"memory"}},
                 {"/sys/fs/cgroup/cpu,cpuacct", false, {"cpu", "cpuacct"}},
                 {"/sys/fs/cgroup/unified", true, {"hugetlb"}}});
}

shim::v1::ContainerSpec Spec() {
  shim::v1::ContainerSpec spec = shim::DefaultSpec("c1", "/root", {"sh"});
  spec.set_cgroup_path("/berth/pod/c1");
  return spec;
}

std::vector<std::string> Destinations(const shim::v1::ContainerSpec& spec) {
  std::vector<std::string> out;
  for (const shim::v1::Mount& m : spec.mounts()) out.push_back(m.destination());
  return out;
}

bool HasCgroupNamespace(const shim::v1::ContainerSpec& spec) {
  for (const shim::v1::Namespace& ns : spec.namespaces()) {
    if (ns.type() == shim::v1::CGROUP && ns.path().empty()) return true;
  }
  return false;
}

TEST(CgroupViewTest, UnifiedMountsCgroup2ReadOnlyAfterSys) {
  shim::v1::ContainerSpec spec = Spec();
  AddCgroupView(Layout({{"/sys/fs/cgroup", true, {"cpu", "memory", "pids"}}}), false, spec);
  EXPECT_TRUE(HasCgroupNamespace(spec));
  std::vector<std::string> d = Destinations(spec);
  auto sys = std::find(d.begin(), d.end(), "/sys");
  ASSERT_NE(sys, d.end());
  ASSERT_NE(sys + 1, d.end());
  EXPECT_EQ(*(sys + 1), "/sys/fs/cgroup");
  const shim::v1::Mount& m = spec.mounts(static_cast<int>(sys + 1 - d.begin()));
  EXPECT_EQ(m.type(), "cgroup2");
  EXPECT_THAT(m.options(), Contains("ro"));
  EXPECT_THAT(spec.readonly_paths(), Not(Contains("/sys/fs/cgroup")));
}

TEST(CgroupViewTest, HybridBindsTheContainersCgroupOfEachHierarchy) {
  shim::v1::ContainerSpec spec = Spec();
  AddCgroupView(Hybrid(), false, spec);
  std::vector<std::string> d = Destinations(spec);
  auto sys = std::find(d.begin(), d.end(), "/sys");
  ASSERT_GE(d.end() - sys, 6);
  EXPECT_THAT(std::vector<std::string>(sys, sys + 6),
              ElementsAre("/sys", "/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory",
                          "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified"));
  const int at = static_cast<int>(sys - d.begin());
  EXPECT_EQ(spec.mounts(at + 1).type(), "tmpfs");
  EXPECT_EQ(spec.mounts(at + 4).type(), "bind");
  EXPECT_EQ(spec.mounts(at + 4).source(), "/sys/fs/cgroup/cpu,cpuacct/berth/pod/c1");
  EXPECT_THAT(spec.mounts(at + 4).options(), Contains("ro"));
  EXPECT_EQ(spec.mounts(at + 5).source(), "/sys/fs/cgroup/unified/berth/pod/c1");
  EXPECT_THAT(spec.readonly_paths(), Contains("/sys/fs/cgroup"));
}

TEST(CgroupViewTest, PrivilegedIsReadWrite) {
  shim::v1::ContainerSpec spec = Spec();
  spec.clear_readonly_paths();
  AddCgroupView(Hybrid(), true, spec);
  for (const shim::v1::Mount& m : spec.mounts()) {
    if (m.destination().rfind("/sys/fs/cgroup", 0) == 0) {
      EXPECT_THAT(m.options(), Not(Contains("ro"))) << m.destination();
    }
  }
  EXPECT_THAT(spec.readonly_paths(), IsEmpty());
}

TEST(CgroupViewTest, NothingWithoutACgroupOrUnderAClientMount) {
  for (const char* d : {"/sys", "/sys/fs", "/sys/fs/cgroup/memory"}) {
    shim::v1::ContainerSpec spec = Spec();
    shim::v1::Mount* m = spec.add_mounts();
    m->set_destination(d);
    m->set_type("bind");
    m->set_source(d);
    const int before = spec.mounts_size();
    AddCgroupView(Hybrid(), false, spec);
    EXPECT_EQ(spec.mounts_size(), before) << d;
  }
  shim::v1::ContainerSpec spec = Spec();
  spec.clear_cgroup_path();
  AddCgroupView(Hybrid(), false, spec);
  EXPECT_FALSE(HasCgroupNamespace(spec));
  spec = Spec();
  shim::v1::Mount* m = spec.add_mounts();
  m->set_destination("/sys/fs/cgroup");
  m->set_type("bind");
  m->set_source("/sys/fs/cgroup");
  const int before = spec.mounts_size();
  AddCgroupView(Hybrid(), false, spec);
  EXPECT_EQ(spec.mounts_size(), before);
  EXPECT_FALSE(HasCgroupNamespace(spec));
}

}  // namespace
}  // namespace berth::lifecycle
