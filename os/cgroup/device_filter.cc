#include "os/cgroup/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth {
namespace {

// The registers (the eBPF calling convention: r1 holds the context on entry,
// r0 the verdict on exit) and what the prologue loads into them.
constexpr uint8_t kR0 = 0, kScratch = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
// dst = *(u32 *)(src + off): zero-extends into the 64-bit register.
bpf_insn LoadWord(uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
// A 32-bit compare against `imm` (so majors and minors up to 2^32-1 compare
// right); the jump target is filled in once the rule's block is complete.
bpf_insn Jump32Imm(uint8_t op, uint8_t dst, uint32_t imm) {
  return Insn(BPF_JMP32 | op | BPF_K, dst, 0, 0, static_cast<int32_t>(imm));
}
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

absl::StatusOr<uint32_t> AccessMask(const DeviceRule& rule) {
  uint32_t mask = 0;
  for (char c : rule.access) {
    switch (c) {
      case 'm':
        mask |= BPF_DEVCG_ACC_MKNOD;
        break;
      case 'r':
        mask |= BPF_DEVCG_ACC_READ;
        break;
      case 'w':
        mask |= BPF_DEVCG_ACC_WRITE;
        break;
      default:
        mask = 0;
        break;
    }
    if (mask == 0) break;
  }
  if (mask == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("device rule access `", rule.access, "` is not a combination of r, w and m"));
  }
  return mask;
}

absl::Status CheckNumber(int64_t n, absl::string_view what) {
  if (n == -1 || (n >= 0 && n <= 0xffffffffLL)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("device rule ", what, " ", n, " is neither -1 (any) nor a 32-bit number"));
}

long Bpf(int cmd, bpf_attr* attr) { return ::syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

absl::StatusOr<UniqueFd> Load(const std::vector<bpf_insn>& program) {
  static const char kLicense[] = "Apache-2.0";
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uint64_t>(program.data());
  attr.insn_cnt = static_cast<uint32_t>(program.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  int err = errno;
  if (err == EPERM) {
    return absl::PermissionDeniedError(
        "loading the cgroup v2 device filter (BPF_PROG_LOAD) was refused: it needs CAP_BPF or "
        "CAP_SYS_ADMIN, and before Linux 5.11 room in RLIMIT_MEMLOCK");
  }
  // Load again with the verifier's log, for an error that says why.
  std::string log(16384, '\0');
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));  // it loaded after all
  log.resize(strnlen(log.data(), log.size()));
  return Annotate(ErrnoStatus(err, "BPF_PROG_LOAD of the device filter"),
                  absl::StrCat("verifier: ", absl::StripAsciiWhitespace(log)));
}

absl::StatusOr<std::vector<uint32_t>> Query(int cgroup_fd, const std::string& dir) {
  std::vector<uint32_t> ids(64);
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.query.target_fd = cgroup_fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  if (Bpf(BPF_PROG_QUERY, &attr) != 0) {
    return ErrnoStatus(errno, "BPF_PROG_QUERY (device programs) of", dir);
  }
  ids.resize(std::min<size_t>(attr.query.prog_cnt, ids.size()));
  return ids;
}

}  // namespace

absl::StatusOr<std::vector<bpf_insn>> DeviceFilterProgram(const std::vector<DeviceRule>& given) {
  // Right after a rule that matches everything, rules of its own verdict
  // change nothing (a privileged container's list is "allow all" then
  // hundreds of allows); they are dropped until a rule of the other verdict.
  std::vector<DeviceRule> rules;
  std::optional<bool> redundant;  // the verdict that changes nothing here
  for (const DeviceRule& r : given) {
    const bool all = r.type == 'a' && r.major == -1 && r.minor == -1 &&
                     r.access.find('r') != std::string::npos &&
                     r.access.find('w') != std::string::npos &&
                     r.access.find('m') != std::string::npos;
    if (all) {
      rules.clear();
      redundant = r.allow;
    } else if (redundant == r.allow) {
      continue;
    } else {
      redundant.reset();
    }
    rules.push_back(r);
  }
  constexpr size_t kMaxRules = 16384;
  if (rules.size() > kMaxRules) {
    return absl::InvalidArgumentError(absl::StrCat(rules.size(), " device rules: more than the ",
                                                   kMaxRules,
                                                   " one cgroup v2 device program holds"));
  }
  std::vector<bpf_insn> p = {
      LoadWord(kType, 1, offsetof(bpf_cgroup_dev_ctx, access_type)),
      Mov32Reg(kAccess, kType),
      Alu32Imm(BPF_AND, kType, 0xffff),
      Alu32Imm(BPF_RSH, kAccess, 16),
      LoadWord(kMajor, 1, offsetof(bpf_cgroup_dev_ctx, major)),
      LoadWord(kMinor, 1, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (auto rule = rules.rbegin(); rule != rules.rend(); ++rule) {
    BERTH_ASSIGN_OR_RETURN(uint32_t mask, AccessMask(*rule));
    BERTH_RETURN_IF_ERROR(CheckNumber(rule->major, "major"));
    BERTH_RETURN_IF_ERROR(CheckNumber(rule->minor, "minor"));
    const size_t start = p.size();
    switch (rule->type) {
      case 'a':
        break;
      case 'b':
        p.push_back(Jump32Imm(BPF_JNE, kType, BPF_DEVCG_DEV_BLOCK));
        break;
      case 'c':
        p.push_back(Jump32Imm(BPF_JNE, kType, BPF_DEVCG_DEV_CHAR));
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("device rule type `", std::string(1, rule->type), "` is not a, b or c"));
    }
    if (mask != kAllAccess) {
      p.push_back(Mov32Reg(kScratch, kAccess));
      if (rule->allow) {  // no part of the request outside the rule's access
        p.push_back(Alu32Imm(BPF_AND, kScratch, static_cast<int32_t>(~mask & kAllAccess)));
        p.push_back(Jump32Imm(BPF_JNE, kScratch, 0));
      } else {  // any part of the request inside the rule's access
        p.push_back(Alu32Imm(BPF_AND, kScratch, static_cast<int32_t>(mask)));
        p.push_back(Jump32Imm(BPF_JEQ, kScratch, 0));
      }
    }
    if (rule->major != -1) {
      p.push_back(Jump32Imm(BPF_JNE, kMajor, static_cast<uint32_t>(rule->major)));
    }
    if (rule->minor != -1) {
      p.push_back(Jump32Imm(BPF_JNE, kMinor, static_cast<uint32_t>(rule->minor)));
    }
    p.push_back(Mov64Imm(kR0, rule->allow ? 1 : 0));
    p.push_back(Exit());
    // Every jump in the block skips to the next block (the next rule down).
    bool conditional = false;
    for (size_t i = start; i < p.size(); ++i) {
      if (BPF_CLASS(p[i].code) == BPF_JMP32) {
        p[i].off = static_cast<int16_t>(p.size() - (i + 1));
        conditional = true;
      }
    }
    // A rule that matches every access decides everything; what would follow
    // is unreachable, which the verifier refuses.
    if (!conditional) return p;
  }
  p.push_back(Mov64Imm(kR0, 0));  // the implicit first rule: deny all
  p.push_back(Exit());
  return p;
}

absl::StatusOr<std::vector<uint32_t>> AttachedDevicePrograms(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd cgroup, OpenFile(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return Query(cgroup.get(), dir);
}

absl::Status ApplyDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules) {
  BERTH_ASSIGN_OR_RETURN(std::vector<bpf_insn> program, DeviceFilterProgram(rules));
  BERTH_ASSIGN_OR_RETURN(UniqueFd prog, Load(program));
  BERTH_ASSIGN_OR_RETURN(UniqueFd cgroup, OpenFile(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  BERTH_ASSIGN_OR_RETURN(std::vector<uint32_t> old_ids, Query(cgroup.get(), dir));
  std::vector<UniqueFd> old;
  for (uint32_t id : old_ids) {
    bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.prog_id = id;
    long fd = Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    // Gone since the query: nothing left to detach.
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("BPF_PROG_GET_FD_BY_ID ", id, " of"), dir);
    old.emplace_back(static_cast<int>(fd));
  }
  bpf_attr attach;
  std::memset(&attach, 0, sizeof(attach));
  attach.target_fd = static_cast<uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (old.size() == 1) {
    // One program in, the other out, in one step.
    attach.attach_flags |= BPF_F_REPLACE;
    attach.replace_bpf_fd = static_cast<uint32_t>(old[0].get());
    if (Bpf(BPF_PROG_ATTACH, &attach) == 0) return absl::OkStatus();
    attach.attach_flags = BPF_F_ALLOW_MULTI;  // a kernel before 5.6: the slower way below
    attach.replace_bpf_fd = 0;
  }
  if (Bpf(BPF_PROG_ATTACH, &attach) != 0) {
    return ErrnoStatus(errno, "BPF_PROG_ATTACH of the device filter to", dir);
  }
  // The new program is in force (every attached one must allow): the old ones
  // can go without a moment of wider access.
  for (const UniqueFd& fd : old) {
    bpf_attr detach;
    std::memset(&detach, 0, sizeof(detach));
    detach.target_fd = static_cast<uint32_t>(cgroup.get());
    detach.attach_bpf_fd = static_cast<uint32_t>(fd.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "BPF_PROG_DETACH of the old device filter from", dir);
    }
  }
  return absl::OkStatus();
}

}  // namespace berth
