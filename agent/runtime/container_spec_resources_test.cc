// ToShimResources: CRI's 0-means-unset fields and the unified map.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runtime/container_spec.h"
#include "tests/support/status_matchers.h"

namespace berth::lifecycle {
namespace {

namespace v1 = ::runtime::v1;
using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

shim::v1::Resources Convert(const v1::LinuxContainerResources& r) {
  absl::StatusOr<shim::v1::Resources> out = ToShimResources(r);
  EXPECT_THAT(out, IsOk());
  return out.ok() ? *out : shim::v1::Resources{};
}

TEST(ToShimResourcesTest, ZeroMeansUnset) {
  shim::v1::Resources out = Convert(v1::LinuxContainerResources{});
  EXPECT_EQ(out.ByteSizeLong(), 0u);
}

TEST(ToShimResourcesTest, EveryField) {
  v1::LinuxContainerResources r;
  r.set_cpu_shares(512);
  r.set_cpu_quota(50000);
  r.set_cpu_period(100000);
  r.set_cpuset_cpus("0-1");
  r.set_cpuset_mems("0");
  r.set_memory_limit_in_bytes(128 << 20);
  r.set_memory_swap_limit_in_bytes(256 << 20);
  r.set_oom_score_adj(500);  // not a cgroup setting
  v1::HugepageLimit* h = r.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 20);
  shim::v1::Resources out = Convert(r);
  EXPECT_EQ(out.cpu_shares(), 512u);
  EXPECT_EQ(out.cpu_quota_us(), 50000);
  EXPECT_EQ(out.cpu_period_us(), 100000u);
  EXPECT_EQ(out.cpuset_cpus(), "0-1");
  EXPECT_EQ(out.cpuset_mems(), "0");
  EXPECT_EQ(out.memory_limit(), 128 << 20);
  EXPECT_EQ(out.memory_swap(), 256 << 20);
  ASSERT_EQ(out.hugepage_limits_size(), 1);
  EXPECT_EQ(out.hugepage_limits(0).page_size(), "2MB");
  EXPECT_EQ(out.hugepage_limits(0).limit(), 4u << 20);
  EXPECT_FALSE(out.has_pids_max());
  EXPECT_FALSE(out.devices_set());
}

TEST(ToShimResourcesTest, MemoryAloneLeavesSwapAlone) {
  v1::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(1 << 20);
  EXPECT_FALSE(Convert(r).has_memory_swap());
}

TEST(ToShimResourcesTest, NegativeValuesAreNamed) {
  v1::LinuxContainerResources r;
  r.set_cpu_shares(-2);
  EXPECT_THAT(ToShimResources(r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cpu_shares -2")));
  r = {};
  r.set_cpu_quota(-1);  // no limit
  EXPECT_EQ(Convert(r).cpu_quota_us(), -1);
  r.set_cpu_quota(-5);
  EXPECT_THAT(ToShimResources(r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cpu_quota -5")));
  r = {};
  r.set_memory_limit_in_bytes(-3);
  EXPECT_THAT(ToShimResources(r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory_limit_in_bytes")));
  r = {};
  r.add_hugepage_limits()->set_limit(1);
  EXPECT_THAT(ToShimResources(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("hugepage_limits[0].page_size")));
}

// os/cgroup's CpuSharesToWeight, which the shim applies on cgroup v2.
uint64_t SharesToWeight(uint64_t shares) { return 1 + ((shares - 2) * 9999) / 262142; }

TEST(ToShimResourcesTest, CpuWeightRoundTripsThroughShares) {
  for (int64_t weight : {1, 2, 39, 100, 4999, 9999, 10000}) {
    v1::LinuxContainerResources r;
    (*r.mutable_unified())["cpu.weight"] = std::to_string(weight);
    shim::v1::Resources out = Convert(r);
    EXPECT_EQ(SharesToWeight(out.cpu_shares()), static_cast<uint64_t>(weight)) << weight;
  }
}

struct UnifiedCase {
  const char* name;
  std::map<std::string, std::string> unified;
  std::function<void(const shim::v1::Resources&)> check;
};
void PrintTo(const UnifiedCase& c, std::ostream* os) { *os << c.name; }

class UnifiedTest : public ::testing::TestWithParam<UnifiedCase> {};

TEST_P(UnifiedTest, MapsOntoTypedFields) {
  v1::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(1 << 20);
  for (const auto& [k, v] : GetParam().unified) (*r.mutable_unified())[k] = v;
  GetParam().check(Convert(r));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, UnifiedTest,
    ::testing::Values(UnifiedCase{"MemoryMaxWins",
                                  {{"memory.max", "2097152"}},
                                  [](const auto& o) { EXPECT_EQ(o.memory_limit(), 2 << 20); }},
                      UnifiedCase{"MemoryMaxMax",
                                  {{"memory.max", "max"}},
                                  [](const auto& o) { EXPECT_EQ(o.memory_limit(), -1); }},
                      UnifiedCase{"PidsMax",
                                  {{"pids.max", "100\n"}},
                                  [](const auto& o) { EXPECT_EQ(o.pids_max(), 100); }},
                      UnifiedCase{"CpuMax",
                                  {{"cpu.max", "50000 100000"}},
                                  [](const auto& o) {
                                    EXPECT_EQ(o.cpu_quota_us(), 50000);
                                    EXPECT_EQ(o.cpu_period_us(), 100000u);
                                  }},
                      UnifiedCase{"CpuMaxUnlimited",
                                  {{"cpu.max", "max"}},
                                  [](const auto& o) {
                                    EXPECT_EQ(o.cpu_quota_us(), -1);
                                    EXPECT_FALSE(o.has_cpu_period_us());
                                  }},
                      UnifiedCase{"Cpuset",
                                  {{"cpuset.cpus", "2-3"}, {"cpuset.mems", "1"}},
                                  [](const auto& o) {
                                    EXPECT_EQ(o.cpuset_cpus(), "2-3");
                                    EXPECT_EQ(o.cpuset_mems(), "1");
                                  }},
                      UnifiedCase{"Hugetlb",
                                  {{"hugetlb.1GB.max", "1073741824"}},
                                  [](const auto& o) {
                                    ASSERT_EQ(o.hugepage_limits_size(), 1);
                                    EXPECT_EQ(o.hugepage_limits(0).page_size(), "1GB");
                                    EXPECT_EQ(o.hugepage_limits(0).limit(), 1u << 30);
                                  }},
                      // memory.swap.max is swap alone, with or without memory.max.
                      UnifiedCase{"SwapWithMemoryMax",
                                  {{"memory.swap.max", "0"}, {"memory.max", "4194304"}},
                                  [](const auto& o) {
                                    EXPECT_EQ(o.memory_limit(), 4 << 20);
                                    EXPECT_EQ(o.swap_max(), 0);
                                    EXPECT_FALSE(o.has_memory_swap());
                                  }},
                      UnifiedCase{"SwapMax",
                                  {{"memory.swap.max", "max"}},
                                  [](const auto& o) { EXPECT_EQ(o.swap_max(), -1); }}),
    [](const ::testing::TestParamInfo<UnifiedCase>& info) { return info.param.name; });

// kubelet's NoSwap on cgroup v2, for a container without a memory limit (a
// BestEffort pod): accepted, swap alone, no memory limit invented.
TEST(ToShimResourcesTest, SwapZeroWithoutAMemoryLimit) {
  v1::LinuxContainerResources r;
  (*r.mutable_unified())["memory.swap.max"] = "0";
  shim::v1::Resources out = Convert(r);
  EXPECT_EQ(out.swap_max(), 0);
  EXPECT_FALSE(out.has_memory_limit());
  EXPECT_FALSE(out.has_memory_swap());
  // With a memory+swap limit given too, the unified key replaces it.
  r.set_memory_limit_in_bytes(4 << 20);
  r.set_memory_swap_limit_in_bytes(8 << 20);
  out = Convert(r);
  EXPECT_EQ(out.swap_max(), 0);
  EXPECT_FALSE(out.has_memory_swap());
}

// kubelet's MemoryQoS (and anyone's unified settings) reach the shim as they
// are; the shim refuses a key the kernel has no file for (os/cgroup).
TEST(ToShimResourcesTest, OtherUnifiedKeysGoThroughAsTheyAre) {
  v1::LinuxContainerResources r;
  (*r.mutable_unified())["memory.high"] = "1073741824";
  (*r.mutable_unified())["memory.min"] = "0";
  (*r.mutable_unified())["io.weight"] = "default 100";
  shim::v1::Resources out = Convert(r);
  EXPECT_EQ(out.unified().size(), 3u);
  EXPECT_EQ(out.unified().at("memory.high"), "1073741824");
  EXPECT_EQ(out.unified().at("io.weight"), "default 100");
  EXPECT_FALSE(out.has_memory_limit());
}

// The size becomes part of a file name (hugetlb.<size>.max): only sizes.
TEST(ToShimResourcesTest, AHugePageSizeIsASize) {
  v1::LinuxContainerResources r;
  v1::HugepageLimit* h = r.add_hugepage_limits();
  h->set_page_size("../../cgroup.procs");
  EXPECT_THAT(ToShimResources(r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("hugepage_limits[0].page_size `../../cgroup.procs`")));
  h->set_page_size("2MB");
  EXPECT_THAT(ToShimResources(r).status(), IsOk());
}

TEST(ToShimResourcesTest, UnifiedErrorsNameTheKey) {
  const std::pair<std::map<std::string, std::string>, std::string> cases[] = {
      {{{"Memory.high", "1000"}}, "unified[Memory.high]: not a cgroup v2 interface file"},
      {{{"memory", "1000"}}, "unified[memory]: not a cgroup v2 interface file"},
      {{{"../memory.high", "1"}}, "unified[../memory.high]: not a cgroup v2"},
      {{{"cgroup.procs", "1"}}, "unified[cgroup.procs]: cgroup.* files"},
      {{{"devices.allow", "a"}}, "unified[devices.allow]: cgroup.* files and device"},
      {{{"memory.high", "1\n2"}}, "a value is one line"},
      {{{"hugetlb.2M.max", "0"}}, "unified[hugetlb.2M.max] `0`: not a hugetlb.<size>.max key"},
      {{{"memory.max", "lots"}}, "unified[memory.max] `lots`"},
      {{{"cpu.weight", "0"}}, "unified[cpu.weight] `0`"},
      {{{"cpu.max", "1 2 3"}}, "unified[cpu.max]"},
      {{{"pids.max", "-4"}}, "unified[pids.max]"},
      {{{"memory.swap.max", "-5"}}, "unified[memory.swap.max] `-5`"},
  };
  for (const auto& [unified, message] : cases) {
    v1::LinuxContainerResources r;
    for (const auto& [k, v] : unified) (*r.mutable_unified())[k] = v;
    EXPECT_THAT(ToShimResources(r),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)));
  }
}

}  // namespace
}  // namespace berth::lifecycle
