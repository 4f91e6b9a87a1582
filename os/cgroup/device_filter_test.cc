// The device filter's program, run by a small interpreter of the instructions
// it uses (the kernel runs it for real in cgroup_root_test): v1's semantics,
// rule by rule.
#include "os/cgroup/device_filter.h"

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kM = BPF_DEVCG_ACC_MKNOD, kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE;
constexpr uint32_t kChar = BPF_DEVCG_DEV_CHAR, kBlock = BPF_DEVCG_DEV_BLOCK;

// Runs `p` on one access; fails the test on an instruction it does not know
// or a jump out of the program.
int Eval(const std::vector<bpf_insn>& p, uint32_t type, uint32_t access, uint32_t major,
         uint32_t minor) {
  bpf_cgroup_dev_ctx ctx{(access << 16) | type, major, minor};
  uint64_t r[11] = {};
  const char* base = reinterpret_cast<const char*>(&ctx);
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const bpf_insn& i = p[pc];
    uint32_t imm = static_cast<uint32_t>(i.imm);
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        EXPECT_EQ(i.src_reg, 1) << "loads only from the context, at pc " << pc;
        uint32_t v;
        std::memcpy(&v, base + i.off, 4);
        r[i.dst_reg] = v;
        break;
      }
      case BPF_ALU | BPF_MOV | BPF_X:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.src_reg]);
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) & imm;
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> imm;
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        break;
      case BPF_JMP32 | BPF_JNE | BPF_K:
        if (static_cast<uint32_t>(r[i.dst_reg]) != imm) pc += i.off;
        break;
      case BPF_JMP32 | BPF_JEQ | BPF_K:
        if (static_cast<uint32_t>(r[i.dst_reg]) == imm) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(r[0]);
      default:
        ADD_FAILURE() << "unknown instruction code " << int{i.code} << " at pc " << pc;
        return -1;
    }
  }
  ADD_FAILURE() << "ran off the end of the program";
  return -1;
}

std::vector<bpf_insn> Program(const std::vector<DeviceRule>& rules) {
  absl::StatusOr<std::vector<bpf_insn>> p = DeviceFilterProgram(rules);
  EXPECT_THAT(p.status(), IsOk());
  return p.ok() ? *p : std::vector<bpf_insn>{};
}

TEST(DeviceFilterTest, NoRulesDenyEverything) {
  std::vector<bpf_insn> p = Program({});
  EXPECT_EQ(Eval(p, kChar, kR, 1, 3), 0);
  EXPECT_EQ(Eval(p, kBlock, kM, 8, 0), 0);
}

TEST(DeviceFilterTest, AnAllowRuleCoversOnlyItsDeviceAndAccess) {
  std::vector<bpf_insn> p = Program({{true, 'c', 1, 3, "rw"}});
  EXPECT_EQ(Eval(p, kChar, kR, 1, 3), 1);
  EXPECT_EQ(Eval(p, kChar, kR | kW, 1, 3), 1);
  EXPECT_EQ(Eval(p, kChar, kM, 1, 3), 0);   // mknod not in "rw"
  EXPECT_EQ(Eval(p, kChar, kR, 1, 5), 0);   // another minor
  EXPECT_EQ(Eval(p, kChar, kR, 2, 3), 0);   // another major
  EXPECT_EQ(Eval(p, kBlock, kR, 1, 3), 0);  // a block device, same numbers
}

TEST(DeviceFilterTest, WildcardsMatchAnyNumberAndAnyType) {
  std::vector<bpf_insn> p = Program({{true, 'c', 136, -1, "rwm"}, {true, 'b', -1, -1, "m"}});
  EXPECT_EQ(Eval(p, kChar, kR | kW, 136, 7), 1);
  EXPECT_EQ(Eval(p, kBlock, kM, 8, 1), 1);
  EXPECT_EQ(Eval(p, kBlock, kR, 8, 1), 0);
  std::vector<bpf_insn> all = Program({{true, 'a', -1, -1, "rwm"}});
  EXPECT_EQ(Eval(all, kBlock, kR | kW, 259, 0), 1);
  EXPECT_EQ(Eval(all, kChar, kM, 10, 200), 1);
}

TEST(DeviceFilterTest, ALaterRuleOverridesAnEarlierOne) {
  // v1: allow rw, then deny w: a read passes, anything that writes does not.
  std::vector<bpf_insn> p = Program({{true, 'c', 1, 3, "rw"}, {false, 'c', 1, 3, "w"}});
  EXPECT_EQ(Eval(p, kChar, kR, 1, 3), 1);
  EXPECT_EQ(Eval(p, kChar, kW, 1, 3), 0);
  EXPECT_EQ(Eval(p, kChar, kR | kW, 1, 3), 0);
  // Privileged then a deny: all but that device.
  std::vector<bpf_insn> q = Program({{true, 'a', -1, -1, "rwm"}, {false, 'b', 8, -1, "rwm"}});
  EXPECT_EQ(Eval(q, kBlock, kR, 8, 0), 0);
  EXPECT_EQ(Eval(q, kBlock, kR, 9, 0), 1);
}

TEST(DeviceFilterTest, NothingFollowsARuleThatMatchesEverything) {
  // The verifier refuses unreachable instructions: the rules before an
  // all-matching one (tested after it) are not emitted.
  std::vector<bpf_insn> p = Program({{true, 'c', 1, 3, "rwm"}, {true, 'a', -1, -1, "rwm"}});
  EXPECT_EQ(p.size(), 8u);  // 6 of prologue, mov, exit
  EXPECT_EQ(Eval(p, kBlock, kR, 7, 7), 1);
}

// A privileged container: allow all, then an allow per host device. Those
// change nothing and are not emitted; a deny among them still counts, and so
// does an allow after that deny.
TEST(DeviceFilterTest, RulesAfterAllowAllAreKeptOnlyWhereTheyMatter) {
  std::vector<DeviceRule> privileged = {{true, 'a', -1, -1, "rwm"}};
  for (int i = 0; i < 20000; ++i) privileged.push_back({true, 'c', 1, i, "rwm"});
  std::vector<bpf_insn> p = Program(privileged);
  EXPECT_EQ(p.size(), 8u);
  std::vector<bpf_insn> q =
      Program({{true, 'a', -1, -1, "rwm"}, {false, 'b', 8, -1, "rwm"}, {true, 'b', 8, 1, "r"}});
  EXPECT_EQ(Eval(q, kBlock, kR, 8, 0), 0);
  EXPECT_EQ(Eval(q, kBlock, kR, 8, 1), 1);
  EXPECT_EQ(Eval(q, kChar, kR, 1, 1), 1);
}

TEST(DeviceFilterTest, TooManyRulesAreRefusedNamingTheCount) {
  std::vector<DeviceRule> many;
  for (int i = 0; i < 20000; ++i) many.push_back({true, 'c', 1, i, "rwm"});
  EXPECT_THAT(DeviceFilterProgram(many),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("20000 device rules")));
}

TEST(DeviceFilterTest, NumbersAboveTwoToTheThirtyOneCompareRight) {
  std::vector<bpf_insn> p = Program({{true, 'c', 0xfffffff0LL, 0x80000001LL, "r"}});
  EXPECT_EQ(Eval(p, kChar, kR, 0xfffffff0u, 0x80000001u), 1);
  EXPECT_EQ(Eval(p, kChar, kR, 0xfffffff0u, 1), 0);
}

TEST(DeviceFilterTest, BadRulesAreNamed) {
  EXPECT_THAT(DeviceFilterProgram({{true, 'c', 1, 3, ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("access ``")));
  EXPECT_THAT(DeviceFilterProgram({{true, 'c', -2, 3, "r"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("major -2")));
  EXPECT_THAT(DeviceFilterProgram({{true, 'c', 1, 1LL << 32, "r"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("minor 4294967296")));
}

}  // namespace
}  // namespace berth
