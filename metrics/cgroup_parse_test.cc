// Parsers on real files captured from this machine's v1 hierarchies (kernel
// 6.18, hybrid layout) and on v2 files written from cgroup-v2.rst; see
// tests/fixtures/cgroup/README.md for which is which.
#include "metrics/cgroup_parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"

namespace berth::metrics {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::string Fixture(const std::string& name) {
  absl::StatusOr<std::string> text = ReadFile(BERTH_SOURCE_DIR "/tests/fixtures/cgroup/" + name);
  EXPECT_THAT(text, IsOk());
  return text.ok() ? *text : "";
}

TEST(ParseUintTest, SingleValues) {
  EXPECT_EQ(*ParseUint(Fixture("v1/memory.usage_in_bytes")), 60547072u);
  EXPECT_EQ(*ParseUint(Fixture("v1/cpuacct.usage")), 599108612u);
  EXPECT_EQ(*ParseUint(Fixture("v2/memory.peak")), 104857600u);
  EXPECT_THAT(ParseUint("max\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUint(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseLimitTest, MaxAndV1UnlimitedAreUnlimited) {
  EXPECT_EQ(*ParseLimit(Fixture("v1/memory.limit_in_bytes")), kUnlimited);  // 2^63 - 4096
  EXPECT_EQ(*ParseLimit(Fixture("v1/cpu.cfs_quota_us")), kUnlimited);       // -1
  EXPECT_EQ(*ParseLimit(Fixture("v2/memory.swap.max")), kUnlimited);        // max
  EXPECT_EQ(*ParseLimit(Fixture("v2/memory.max")), 268435456u);
  EXPECT_EQ(*ParseLimit(Fixture("v1/pids.max")), 50u);
  EXPECT_EQ(*ParseLimit("4611686018427387903\n"), 4611686018427387903u);  // 2^62 - 1
  EXPECT_EQ(*ParseLimit("4611686018427387904\n"), kUnlimited);            // 2^62
  EXPECT_THAT(ParseLimit("-2"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseFlatKeyedTest, V1MemoryStat) {
  auto stat = ParseFlatKeyed(Fixture("v1/memory.stat"));
  ASSERT_THAT(stat, IsOk());
  EXPECT_EQ(stat->size(), 42u);
  EXPECT_EQ(stat->at("total_rss"), 59887616u);
  EXPECT_EQ(stat->at("total_inactive_file"), 0u);
  EXPECT_EQ(stat->at("hierarchical_memory_limit"), 9223372036854771712u);
  EXPECT_EQ(stat->at("total_pgmajfault"), 3u);
}

TEST(ParseFlatKeyedTest, V1RootMemoryStatAndCpuFiles) {
  auto stat = ParseFlatKeyed(Fixture("v1-root/memory.stat"));
  ASSERT_THAT(stat, IsOk());
  EXPECT_EQ(stat->at("total_inactive_file"), 539934720u);
  EXPECT_THAT(*ParseFlatKeyed(Fixture("v1/cpuacct.stat")),
              UnorderedElementsAre(Pair("user", 40), Pair("system", 19)));
  EXPECT_THAT(
      *ParseFlatKeyed(Fixture("v1/memory.oom_control")),
      UnorderedElementsAre(Pair("oom_kill_disable", 0), Pair("under_oom", 0), Pair("oom_kill", 0)));
  EXPECT_EQ(ParseFlatKeyed(Fixture("v1/cpu.stat"))->at("throttled_time"), 0u);
}

TEST(ParseFlatKeyedTest, V2Files) {
  auto cpu = ParseFlatKeyed(Fixture("v2/cpu.stat"));
  ASSERT_THAT(cpu, IsOk());
  EXPECT_EQ(cpu->at("usage_usec"), 599108u);
  EXPECT_EQ(cpu->at("core_sched.force_idle_usec"), 0u);
  EXPECT_EQ(ParseFlatKeyed(Fixture("v2/memory.events"))->at("oom_kill"), 1u);
  EXPECT_EQ(ParseFlatKeyed(Fixture("v2/memory.stat"))->at("inactive_file"), 12288000u);
  EXPECT_EQ(ParseFlatKeyed(Fixture("hybrid-unified-root/cpu.stat"))->at("nice_usec"), 148142249u);
}

TEST(ParseFlatKeyedTest, RejectsMalformedLines) {
  EXPECT_THAT(ParseFlatKeyed("a 1\nb\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseFlatKeyed("a x\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseFlatKeyed(""), IsOk());
}

TEST(ParseCpuMaxTest, QuotaAndMax) {
  EXPECT_EQ(*ParseCpuMax(Fixture("v2/cpu.max")), std::make_pair(uint64_t{50000}, uint64_t{100000}));
  EXPECT_EQ(*ParseCpuMax("max 100000\n"), std::make_pair(kUnlimited, uint64_t{100000}));
  EXPECT_THAT(ParseCpuMax("max\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseIoStatTest, TwoDevices) {
  auto devs = ParseIoStat(Fixture("v2/io.stat"));
  ASSERT_THAT(devs, IsOk());
  ASSERT_EQ(devs->size(), 2u);
  EXPECT_EQ((*devs)[0].major, 8u);
  EXPECT_EQ((*devs)[0].minor, 16u);
  EXPECT_EQ((*devs)[0].read_bytes, 1459200u);
  EXPECT_EQ((*devs)[0].write_bytes, 314773504u);
  EXPECT_EQ((*devs)[0].read_ops, 192u);
  EXPECT_EQ((*devs)[0].write_ops, 353u);
  EXPECT_EQ((*devs)[1].major, 254u);
  // iocost keys carry decimals and are ignored.
  auto cost = ParseIoStat("8:0 rbytes=1 wbytes=2 rios=3 wios=4 cost.usage=0.50\n");
  ASSERT_THAT(cost, IsOk());
  EXPECT_EQ((*cost)[0].write_ops, 4u);
  EXPECT_THAT(ParseIoStat("sda rbytes=1\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseBlkioV1Test, RealEmptyAndWrittenFiles) {
  std::vector<BlkioDeviceStats> devs;
  // What this machine's v1 blkio shows: only the grand total.
  ASSERT_THAT(ParseBlkioV1(Fixture("v1/blkio.throttle.io_service_bytes_recursive"), true, devs),
              IsOk());
  EXPECT_TRUE(devs.empty());
  ASSERT_THAT(
      ParseBlkioV1(Fixture("v1-written/blkio.throttle.io_service_bytes_recursive"), true, devs),
      IsOk());
  ASSERT_THAT(ParseBlkioV1(Fixture("v1-written/blkio.throttle.io_serviced_recursive"), false, devs),
              IsOk());
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0].major, 254u);
  EXPECT_EQ(devs[0].read_bytes, 16777216u);
  EXPECT_EQ(devs[0].write_bytes, 33554432u);
  EXPECT_EQ(devs[0].read_ops, 16u);
  EXPECT_EQ(devs[0].write_ops, 32u);
  EXPECT_EQ(devs[1].minor, 16u);
  EXPECT_EQ(devs[1].write_ops, 353u);
  EXPECT_THAT(ParseBlkioV1("8:0 Read\n", true, devs), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParsePressureTest, RealAndWritten) {
  auto cpu = ParsePressure(Fixture("hybrid-unified-root/cpu.pressure"));
  ASSERT_THAT(cpu, IsOk());
  EXPECT_EQ(cpu->some_total_us, 3543912093u);
  EXPECT_EQ(cpu->full_total_us, 0u);
  auto io = ParsePressure(Fixture("hybrid-unified-root/io.pressure"));
  ASSERT_THAT(io, IsOk());
  EXPECT_EQ(io->full_total_us, 74464797u);
  // Before Linux 5.13 a cgroup's cpu.pressure had no "full" line.
  auto some = ParsePressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n");
  ASSERT_THAT(some, IsOk());
  EXPECT_EQ(some->some_total_us, 12u);
  EXPECT_EQ(some->full_total_us, std::nullopt);
  EXPECT_THAT(ParsePressure("some avg10=0.00\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParsePidListTest, CgroupProcs) {
  EXPECT_THAT(*ParsePidList(Fixture("v1/cgroup.procs")), ::testing::ElementsAre(1576, 1580));
  EXPECT_THAT(*ParsePidList(""), ::testing::IsEmpty());
  EXPECT_THAT(ParsePidList("12\nx\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CpuWeightToSharesTest, InvertsCpuSharesToWeight) {
  EXPECT_EQ(CpuWeightToShares(1), 2u);
  EXPECT_EQ(CpuWeightToShares(10000), 262144u);
  EXPECT_EQ(CpuWeightToShares(100), 2597u);  // v2 default, as cAdvisor reports it
  // Round trip through os/cgroup: within one weight step (~26 shares).
  for (uint64_t shares : {2, 256, 512, 1024, 4096, 262144}) {
    uint64_t back = CpuWeightToShares(CpuSharesToWeight(shares));
    EXPECT_LE(back, shares);
    EXPECT_LT(shares - back, 27u) << shares;
  }
}

TEST(TicksToNsTest, UserHz) {
  EXPECT_EQ(TicksToNs(40, 100), 400000000u);
  EXPECT_EQ(TicksToNs(2306289, 100), 23062890000000u);
  EXPECT_EQ(TicksToNs(1, 0), 0u);
}

TEST(ParseStatusThreadsTest, RealStatus) {
  EXPECT_EQ(*ParseStatusThreads(Fixture("proc-status")), 1u);
  EXPECT_THAT(ParseStatusThreads("Name:\tx\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseNetDevTest, RealNetDevSkipsLoopback) {
  auto ifaces = ParseNetDev(Fixture("proc-net-dev"));
  ASSERT_THAT(ifaces, IsOk());
  ASSERT_EQ(ifaces->size(), 3u);
  const NetInterfaceStats& eth0 = (*ifaces)[2];
  EXPECT_EQ(eth0.name, "eth0");
  EXPECT_EQ(eth0.rx_bytes, 48278430u);
  EXPECT_EQ(eth0.rx_packets, 1694u);
  EXPECT_EQ(eth0.tx_bytes, 90879u);
  EXPECT_EQ(eth0.tx_packets, 1196u);
  EXPECT_EQ(eth0.tx_dropped, 0u);
  auto errs = ParseNetDev("  eth1: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n");
  ASSERT_THAT(errs, IsOk());
  EXPECT_EQ((*errs)[0].rx_errors, 3u);
  EXPECT_EQ((*errs)[0].rx_dropped, 4u);
  EXPECT_EQ((*errs)[0].tx_errors, 7u);
  EXPECT_EQ((*errs)[0].tx_dropped, 8u);
  EXPECT_THAT(ParseNetDev("eth0: 1 2 3\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth::metrics
