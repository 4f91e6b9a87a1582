// Parsing seccomp profiles: OCI runtime-spec `linux.seccomp`
// (config-linux.md#seccomp) and Docker's format (moby profiles/seccomp), which
// adds archMap, includes/excludes, "name" and "comment".
//
// nlohmann::json throws; this file keeps it from doing so: values are
// type-checked before they are read, and the one parse_error is caught here.
#include <linux/seccomp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/seccomp/arch.h"
#include "os/seccomp/seccomp.h"
#include "os/status.h"

namespace berth::seccomp {
namespace {

using Json = nlohmann::json;

struct ActionName {
  absl::string_view name;
  Action action;
};
constexpr ActionName kActions[] = {
    {"SCMP_ACT_KILL", Action::kKillThread},
    {"SCMP_ACT_KILL_THREAD", Action::kKillThread},
    {"SCMP_ACT_KILL_PROCESS", Action::kKillProcess},
    {"SCMP_ACT_TRAP", Action::kTrap},
    {"SCMP_ACT_ERRNO", Action::kErrno},
    {"SCMP_ACT_TRACE", Action::kTrace},
    {"SCMP_ACT_ALLOW", Action::kAllow},
    {"SCMP_ACT_LOG", Action::kLog},
};

struct OpName {
  absl::string_view name;
  ArgOp op;
};
constexpr OpName kOps[] = {
    {"SCMP_CMP_NE", ArgOp::kNotEqual},           {"SCMP_CMP_LT", ArgOp::kLessThan},
    {"SCMP_CMP_LE", ArgOp::kLessEqual},          {"SCMP_CMP_EQ", ArgOp::kEqual},
    {"SCMP_CMP_GE", ArgOp::kGreaterEqual},       {"SCMP_CMP_GT", ArgOp::kGreaterThan},
    {"SCMP_CMP_MASKED_EQ", ArgOp::kMaskedEqual},
};

struct FlagName {
  absl::string_view name;
  unsigned bits;
};
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    // Only means something with a notify listener (SCMP_ACT_NOTIFY, refused);
    // the kernel rejects it without one, so it is accepted and not passed on.
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 0},
};

// The kernel clamps SECCOMP_RET_ERRNO data to MAX_ERRNO (seccomp(2)).
constexpr uint64_t kMaxErrno = 4095;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The member `key` of `obj`, or nullptr when it is absent or null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

absl::Status GetString(const Json& obj, const char* key, absl::string_view path,
                       std::optional<std::string>* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return Invalid(absl::StrCat(path, key), "must be a string");
  *out = v->get_ref<const std::string&>();
  return absl::OkStatus();
}

absl::Status GetUint(const Json& obj, const char* key, absl::string_view path, uint64_t max,
                     std::optional<uint64_t>* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
    return Invalid(absl::StrCat(path, key), absl::StrCat("must be an integer from 0 to ", max));
  }
  *out = v->get<uint64_t>();
  return absl::OkStatus();
}

absl::Status GetStrings(const Json& obj, const char* key, absl::string_view path,
                        std::vector<std::string>* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_array()) return Invalid(absl::StrCat(path, key), "must be an array of strings");
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& item = (*v)[i];
    if (!item.is_string()) return Invalid(absl::StrCat(path, key, "[", i, "]"), "must be a string");
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status GetArray(const Json& obj, const char* key, absl::string_view path, const Json** out) {
  *out = Member(obj, key);
  if (*out != nullptr && !(*out)->is_array()) {
    return Invalid(absl::StrCat(path, key), "must be an array");
  }
  return absl::OkStatus();
}

absl::Status GetErrno(const Json& obj, const char* key, absl::string_view path,
                      std::optional<uint32_t>* out) {
  std::optional<uint64_t> v;
  BERTH_RETURN_IF_ERROR(GetUint(obj, key, path, kMaxErrno, &v));
  if (v) *out = static_cast<uint32_t>(*v);
  return absl::OkStatus();
}

absl::Status GetAction(const Json& obj, const char* key, absl::string_view path, Action* out) {
  std::optional<std::string> name;
  BERTH_RETURN_IF_ERROR(GetString(obj, key, path, &name));
  std::string field = absl::StrCat(path, key);
  if (!name) return Invalid(field, "missing");
  for (const ActionName& a : kActions) {
    if (a.name == *name) {
      *out = a.action;
      return absl::OkStatus();
    }
  }
  if (*name == "SCMP_ACT_NOTIFY") {
    return absl::UnimplementedError(
        absl::StrCat(field, ": SCMP_ACT_NOTIFY is not supported (Berth has no seccomp agent)"));
  }
  return Invalid(field, absl::StrCat("unknown action \"", *name, "\""));
}

absl::Status CheckArch(const std::string& name, absl::string_view field) {
  if (internal::ArchToken(name) == 0) {
    return Invalid(field, absl::StrCat("unknown architecture \"", name, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<ArgRule> ParseArg(const Json& j, absl::string_view path) {
  if (!j.is_object()) return Invalid(path, "must be an object");
  std::string prefix = absl::StrCat(path, ".");
  std::optional<uint64_t> index, value, value_two;
  std::optional<std::string> op;
  BERTH_RETURN_IF_ERROR(GetUint(j, "index", prefix, 5, &index));
  BERTH_RETURN_IF_ERROR(GetUint(j, "value", prefix, UINT64_MAX, &value));
  BERTH_RETURN_IF_ERROR(GetUint(j, "valueTwo", prefix, UINT64_MAX, &value_two));
  BERTH_RETURN_IF_ERROR(GetString(j, "op", prefix, &op));
  if (!index) return Invalid(absl::StrCat(prefix, "index"), "missing");
  if (!op) return Invalid(absl::StrCat(prefix, "op"), "missing");
  ArgRule arg{static_cast<unsigned>(*index), ArgOp::kEqual, value.value_or(0),
              value_two.value_or(0)};
  for (const OpName& o : kOps) {
    if (o.name == *op) {
      arg.op = o.op;
      return arg;
    }
  }
  return Invalid(absl::StrCat(prefix, "op"), absl::StrCat("unknown operator \"", *op, "\""));
}

absl::StatusOr<RuleFilter> ParseFilter(const Json& obj, const char* key, absl::string_view path) {
  RuleFilter filter;
  const Json* j = Member(obj, key);
  if (j == nullptr) return filter;
  std::string prefix = absl::StrCat(path, key, ".");
  if (!j->is_object()) return Invalid(absl::StrCat(path, key), "must be an object");
  BERTH_RETURN_IF_ERROR(GetStrings(*j, "caps", prefix, &filter.caps));
  BERTH_RETURN_IF_ERROR(GetStrings(*j, "arches", prefix, &filter.arches));
  std::optional<std::string> min_kernel;
  BERTH_RETURN_IF_ERROR(GetString(*j, "minKernel", prefix, &min_kernel));
  if (min_kernel && !min_kernel->empty()) {
    absl::StatusOr<KernelVersion> v = ParseKernelVersion(*min_kernel);
    if (!v.ok()) return Invalid(absl::StrCat(prefix, "minKernel"), v.status().message());
    filter.min_kernel = *v;
  }
  return filter;
}

absl::StatusOr<SyscallRule> ParseRule(const Json& j, absl::string_view path) {
  if (!j.is_object()) return Invalid(path, "must be an object");
  std::string prefix = absl::StrCat(path, ".");
  SyscallRule rule;
  std::optional<std::string> name;
  BERTH_RETURN_IF_ERROR(GetString(j, "name", prefix, &name));
  BERTH_RETURN_IF_ERROR(GetStrings(j, "names", prefix, &rule.names));
  if (name && !name->empty()) {
    if (!rule.names.empty()) return Invalid(path, "has both \"name\" and \"names\"; use one");
    rule.names.push_back(*name);
  } else if (Member(j, "names") == nullptr) {
    return Invalid(absl::StrCat(prefix, "names"), "missing");
  }
  BERTH_RETURN_IF_ERROR(GetAction(j, "action", prefix, &rule.action));
  BERTH_RETURN_IF_ERROR(GetErrno(j, "errnoRet", prefix, &rule.errno_ret));
  const Json* args;
  BERTH_RETURN_IF_ERROR(GetArray(j, "args", prefix, &args));
  for (size_t i = 0; args != nullptr && i < args->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(ArgRule arg,
                           ParseArg((*args)[i], absl::StrCat(prefix, "args[", i, "]")));
    rule.args.push_back(arg);
  }
  BERTH_ASSIGN_OR_RETURN(rule.includes, ParseFilter(j, "includes", prefix));
  BERTH_ASSIGN_OR_RETURN(rule.excludes, ParseFilter(j, "excludes", prefix));
  return rule;
}

absl::Status ParseArches(const Json& j, Profile* profile) {
  BERTH_RETURN_IF_ERROR(GetStrings(j, "architectures", "", &profile->architectures));
  for (size_t i = 0; i < profile->architectures.size(); ++i) {
    BERTH_RETURN_IF_ERROR(
        CheckArch(profile->architectures[i], absl::StrCat("architectures[", i, "]")));
  }
  const Json* map;
  BERTH_RETURN_IF_ERROR(GetArray(j, "archMap", "", &map));
  for (size_t i = 0; map != nullptr && i < map->size(); ++i) {
    std::string path = absl::StrCat("archMap[", i, "]");
    if (!(*map)[i].is_object()) return Invalid(path, "must be an object");
    std::string prefix = path + ".";
    std::optional<std::string> arch;
    ArchMapEntry entry;
    BERTH_RETURN_IF_ERROR(GetString((*map)[i], "architecture", prefix, &arch));
    if (!arch) return Invalid(prefix + "architecture", "missing");
    BERTH_RETURN_IF_ERROR(CheckArch(*arch, prefix + "architecture"));
    entry.architecture = *arch;
    BERTH_RETURN_IF_ERROR(
        GetStrings((*map)[i], "subArchitectures", prefix, &entry.sub_architectures));
    for (size_t k = 0; k < entry.sub_architectures.size(); ++k) {
      BERTH_RETURN_IF_ERROR(
          CheckArch(entry.sub_architectures[k], absl::StrCat(prefix, "subArchitectures[", k, "]")));
    }
    profile->arch_map.push_back(std::move(entry));
  }
  if (!profile->architectures.empty() && !profile->arch_map.empty()) {
    return Invalid("architectures", "both \"architectures\" and \"archMap\" given; use one");
  }
  return absl::OkStatus();
}

absl::Status ParseFlags(const Json& j, Profile* profile) {
  BERTH_RETURN_IF_ERROR(GetStrings(j, "flags", "", &profile->flags));
  for (size_t i = 0; i < profile->flags.size(); ++i) {
    bool known = false;
    for (const FlagName& f : kFlags) known = known || f.name == profile->flags[i];
    if (!known) {
      return Invalid(absl::StrCat("flags[", i, "]"),
                     absl::StrCat("unknown flag \"", profile->flags[i], "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KernelVersion> ParseKernelVersion(absl::string_view release) {
  // Like moby's Sscanf("%d.%d"): the leading "major.minor", the rest ignored.
  absl::string_view rest = release;
  auto number = [&rest](int* out) {
    size_t n = 0;
    while (n < rest.size() && absl::ascii_isdigit(rest[n])) ++n;
    bool ok = n > 0 && absl::SimpleAtoi(rest.substr(0, n), out);
    rest.remove_prefix(n);
    return ok;
  };
  KernelVersion v;
  if (!number(&v.major) || !absl::ConsumePrefix(&rest, ".") || !number(&v.minor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid kernel version \"", release, "\", expected <major>.<minor>"));
  }
  return v;
}

absl::StatusOr<Profile> ParseProfile(absl::string_view json) {
  Json j;
  try {
    j = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (406), and escaped from here to std::terminate (tests/fuzz found it).
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("profile: must be a JSON object");
  Profile profile;
  BERTH_RETURN_IF_ERROR(GetAction(j, "defaultAction", "", &profile.default_action));
  BERTH_RETURN_IF_ERROR(GetErrno(j, "defaultErrnoRet", "", &profile.default_errno_ret));
  BERTH_RETURN_IF_ERROR(ParseArches(j, &profile));
  BERTH_RETURN_IF_ERROR(ParseFlags(j, &profile));
  const Json* syscalls;
  BERTH_RETURN_IF_ERROR(GetArray(j, "syscalls", "", &syscalls));
  for (size_t i = 0; syscalls != nullptr && i < syscalls->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(SyscallRule rule,
                           ParseRule((*syscalls)[i], absl::StrCat("syscalls[", i, "]")));
    profile.syscalls.push_back(std::move(rule));
  }
  return profile;
}

unsigned FilterFlags(const Profile& profile) {
  unsigned bits = 0;
  for (const std::string& name : profile.flags) {
    for (const FlagName& f : kFlags) {
      if (f.name == name) bits |= f.bits;
    }
  }
  return bits;
}

}  // namespace berth::seccomp
