#include "agent/runtime/systemd_units.h"

#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "os/status.h"

namespace berth::lifecycle {
namespace {

constexpr uint64_t kCallTimeoutUs = 10'000'000;        // one D-Bus call
constexpr absl::Duration kSettle = absl::Seconds(10);  // a unit's cgroup to appear or go

struct BusCloser {
  void operator()(sd_bus* b) const { sd_bus_close_unref(b); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Bus = std::unique_ptr<sd_bus, BusCloser>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

absl::Status BusError(int r, absl::string_view what, const sd_bus_error* e = nullptr) {
  std::string detail = e != nullptr && e->message != nullptr ? e->message : std::strerror(-r);
  std::string name = e != nullptr && e->name != nullptr ? absl::StrCat(" (", e->name, ")") : "";
  return absl::UnavailableError(absl::StrCat("systemd: ", what, ": ", detail, name));
}

// A connection of its own per operation (sd-bus connections are not shared
// between threads): systemd's private socket, which needs no D-Bus daemon,
// else the system bus.
absl::StatusOr<Bus> Connect() {
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  if (r < 0) return BusError(r, "sd_bus_new");
  Bus bus(raw);
  if (::access("/run/systemd/private", F_OK) == 0 &&
      sd_bus_set_address(bus.get(), "unix:path=/run/systemd/private") >= 0 &&
      sd_bus_start(bus.get()) >= 0) {
    return bus;
  }
  raw = nullptr;
  r = sd_bus_open_system(&raw);
  if (r < 0) return BusError(r, "connect to the system bus");
  return Bus(raw);
}

absl::StatusOr<Message> NewCall(sd_bus* bus, const char* method) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus, &raw, "org.freedesktop.systemd1",
                                         "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", method);
  if (r < 0) return BusError(r, method);
  return Message(raw);
}

absl::Status Call(sd_bus* bus, sd_bus_message* m, absl::string_view what,
                  bool no_such_unit_ok = false) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call(bus, m, kCallTimeoutUs, &error, &reply);
  sd_bus_message_unref(reply);
  absl::Status s = absl::OkStatus();
  if (r < 0 &&
      !(no_such_unit_ok && sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))) {
    s = BusError(r, what, &error);
  }
  sd_bus_error_free(&error);
  return s;
}

absl::Status WaitFor(const std::string& dir, bool present, absl::string_view unit) {
  const absl::Time deadline = absl::Now() + kSettle;
  while ((::access(dir.c_str(), F_OK) == 0) != present) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "systemd: the cgroup of ", unit, " (", dir, ") is ",
          present ? "not there" : "still there", " after ", absl::FormatDuration(kSettle)));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return absl::OkStatus();
}

// systemd's unit name characters (unit_name_is_valid: [a-zA-Z0-9:_.\-] and
// `\` escapes).
bool UnitChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_' || c == '.' ||
         c == '-' || c == '\\';
}

#define BERTH_BUS(expr, what)                               \
  do {                                                      \
    if (int r_ = (expr); r_ < 0) return BusError(r_, what); \
  } while (0)

// Appends `limits` as (sv) properties to an open a(sv) container.
absl::Status AppendLimits(sd_bus_message* msg, const UnitLimits& limits, const std::string& what) {
  // Accounting on, so that systemd enables the controllers up the tree.
  for (const char* a : {"CPUAccounting", "MemoryAccounting", "TasksAccounting", "IOAccounting"}) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", a, "b", 1), what);
  }
  if (limits.cpu_weight) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "CPUWeight", "t", *limits.cpu_weight), what);
  }
  if (limits.cpu_quota_per_sec_us) {
    BERTH_BUS(
        sd_bus_message_append(msg, "(sv)", "CPUQuotaPerSecUSec", "t", *limits.cpu_quota_per_sec_us),
        what);
  }
  if (limits.memory_max) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "MemoryMax", "t", *limits.memory_max), what);
  }
  if (limits.tasks_max) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "TasksMax", "t", *limits.tasks_max), what);
  }
  if (limits.cpu_quota_period_us) {
    BERTH_BUS(
        sd_bus_message_append(msg, "(sv)", "CPUQuotaPeriodUSec", "t", *limits.cpu_quota_period_us),
        what);
  }
  if (limits.memory_swap_max) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "MemorySwapMax", "t", *limits.memory_swap_max),
              what);
  }
  for (const auto& [key, value] : limits.memory_qos) {
    const char* property = key == "memory.min"   ? "MemoryMin"
                           : key == "memory.low" ? "MemoryLow"
                                                 : "MemoryHigh";
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", property, "t", value), what);
  }
  if (!limits.allowed_cpus.empty()) {
    BERTH_BUS(sd_bus_message_open_container(msg, 'r', "sv"), what);
    BERTH_BUS(sd_bus_message_append(msg, "s", "AllowedCPUs"), what);
    BERTH_BUS(sd_bus_message_open_container(msg, 'v', "ay"), what);
    BERTH_BUS(sd_bus_message_append_array(msg, 'y', limits.allowed_cpus.data(),
                                          limits.allowed_cpus.size()),
              what);
    BERTH_BUS(sd_bus_message_close_container(msg), what);
    BERTH_BUS(sd_bus_message_close_container(msg), what);
  }
  return absl::OkStatus();
}

absl::Status StartTransient(const std::string& name, const std::string& slice, pid_t pid,
                            const UnitLimits* limits, const std::string& cgroup_dir) {
  BERTH_ASSIGN_OR_RETURN(Bus bus, Connect());
  BERTH_ASSIGN_OR_RETURN(Message m, NewCall(bus.get(), "StartTransientUnit"));
  sd_bus_message* msg = m.get();
  const std::string what = absl::StrCat("start ", name);
  BERTH_BUS(sd_bus_message_append(msg, "ss", name.c_str(), "fail"), what);
  BERTH_BUS(sd_bus_message_open_container(msg, 'a', "(sv)"), what);
  const std::string description = absl::StrCat("berth ", name);
  BERTH_BUS(sd_bus_message_append(msg, "(sv)", "Description", "s", description.c_str()), what);
  if (!slice.empty())
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "Slice", "s", slice.c_str()), what);
  // Not ordered before shutdown.target: at shutdown, containers are
  // stopped by their runtime, not by systemd first (as runc's scopes).
  BERTH_BUS(sd_bus_message_append(msg, "(sv)", "DefaultDependencies", "b", 0), what);
  // A unit that failed (systemd < 253 fails a scope on an OOM kill) is
  // unloaded as soon as it stops, not left in PID 1.
  BERTH_BUS(sd_bus_message_append(msg, "(sv)", "CollectMode", "s", "inactive-or-failed"), what);
  if (pid > 0) {
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(pid)),
              what);
    BERTH_BUS(sd_bus_message_append(msg, "(sv)", "Delegate", "b", 1), what);
  }
  if (limits != nullptr) BERTH_RETURN_IF_ERROR(AppendLimits(msg, *limits, what));
  BERTH_BUS(sd_bus_message_close_container(msg), what);
  BERTH_BUS(sd_bus_message_append(msg, "a(sa(sv))", 0), what);
  BERTH_RETURN_IF_ERROR(Call(bus.get(), msg, what));
  return WaitFor(cgroup_dir, true, name);
}

}  // namespace

bool SystemdBooted() { return ::access("/run/systemd/system", F_OK) == 0; }

absl::StatusOr<std::string> SliceCgroupPath(absl::string_view name) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("slice `", name, "`: ", why));
  };
  if (name == "-.slice") return std::string("/");
  absl::string_view base = name;
  if (!absl::ConsumeSuffix(&base, ".slice") || base.empty()) return bad("not a <name>.slice");
  if (name.size() > 255) return bad("longer than a unit name may be (255)");
  for (char c : base) {
    if (!UnitChar(c)) return bad("has a character systemd does not allow in a unit name");
  }
  std::string path;
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(base, '-')) {
    if (part.empty()) return bad("a leading, trailing or doubled `-`");
    absl::StrAppend(&prefix, prefix.empty() ? "" : "-", part);
    // systemd escapes a cgroup name that could be taken for a control file
    // (cg_escape: a leading `_` or `.`, `cgroup.`, `<controller>.`); berth
    // does not, and refuses such a name rather than guess its directory.
    const std::string level = absl::StrCat(prefix, ".slice");
    static constexpr const char* kControllers[] = {
        "cpu",  "cpuacct", "cpuset",  "io",      "blkio",   "memory",   "devices",    "pids",
        "rdma", "misc",    "hugetlb", "freezer", "net_cls", "net_prio", "perf_event", "cgroup"};
    bool escaped = level[0] == '_' || level[0] == '.';
    for (const char* c : kControllers) {
      escaped = escaped || absl::StartsWith(level, absl::StrCat(c, "."));
    }
    if (escaped) {
      return bad(absl::StrCat("its level `", level,
                              "` needs systemd's cgroup-name escaping, which berth does not do"));
    }
    absl::StrAppend(&path, "/", level);
  }
  return path;
}

std::string SliceOfPath(absl::string_view path) {
  const size_t slash = path.rfind('/');
  absl::string_view last = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  return last.empty() ? "-.slice" : std::string(last);
}

absl::StatusOr<std::vector<uint8_t>> CpuListMask(absl::string_view list) {
  std::vector<uint8_t> mask;
  for (absl::string_view range :
       absl::StrSplit(absl::StripAsciiWhitespace(list), ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(range, '-');
    uint32_t lo = 0, hi = 0;
    if (!absl::SimpleAtoi(ends.first, &lo) ||
        !absl::SimpleAtoi(ends.second.empty() ? ends.first : ends.second, &hi) || hi < lo ||
        hi >= 8192) {
      return absl::InvalidArgumentError(
          absl::StrCat("cpu list `", list, "`: bad range `", range, "`"));
    }
    if (mask.size() < hi / 8 + 1) mask.resize(hi / 8 + 1);
    for (uint32_t c = lo; c <= hi; ++c) mask[c / 8] |= static_cast<uint8_t>(1u << (c % 8));
  }
  return mask;
}

absl::Status StartScope(const std::string& name, const std::string& slice, pid_t pid,
                        const UnitLimits& limits, const std::string& cgroup_dir) {
  return StartTransient(name, slice, pid, &limits, cgroup_dir);
}

absl::Status StartSlice(const std::string& name, const std::string& cgroup_dir) {
  return StartTransient(name, "", 0, nullptr, cgroup_dir);
}

absl::Status SetUnitLimits(const std::string& name, const UnitLimits& limits) {
  BERTH_ASSIGN_OR_RETURN(Bus bus, Connect());
  BERTH_ASSIGN_OR_RETURN(Message m, NewCall(bus.get(), "SetUnitProperties"));
  const std::string what = absl::StrCat("set the limits of ", name);
  // runtime: not written to /etc (a transient unit has no file there).
  BERTH_BUS(sd_bus_message_append(m.get(), "sb", name.c_str(), 1), what);
  BERTH_BUS(sd_bus_message_open_container(m.get(), 'a', "(sv)"), what);
  BERTH_RETURN_IF_ERROR(AppendLimits(m.get(), limits, what));
  BERTH_BUS(sd_bus_message_close_container(m.get()), what);
  return Call(bus.get(), m.get(), what);
}

absl::Status StopUnit(const std::string& name, const std::string& cgroup_dir) {
  BERTH_ASSIGN_OR_RETURN(Bus bus, Connect());
  BERTH_ASSIGN_OR_RETURN(Message m, NewCall(bus.get(), "StopUnit"));
  const std::string what = absl::StrCat("stop ", name);
  BERTH_BUS(sd_bus_message_append(m.get(), "ss", name.c_str(), "fail"), what);
  BERTH_RETURN_IF_ERROR(Call(bus.get(), m.get(), what, /*no_such_unit_ok=*/true));
  return WaitFor(cgroup_dir, false, name);
}

}  // namespace berth::lifecycle
