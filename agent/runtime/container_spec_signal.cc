// Stop signals: an image's StopSignal string, a CRI Signal, a signal number.
//
// CRI's `enum Signal` numbers its values in its own order (SIGABRT = 1,
// SIGTERM = 23): they are not signal numbers. We go through the value's name
// (Signal_Name) and parse that, as the image's StopSignal is parsed. Names
// follow moby/sys/signal ParseSignal (signal_linux.go): case-insensitive, with
// or without "SIG", a decimal number, RTMIN+n and RTMAX-n with glibc's
// SIGRTMIN of 34 (glibc keeps 32 and 33 for itself); CRI spells those
// SIGRTMINPLUSn and SIGRTMAXMINUSn.
//
// The signal macros of <signal.h> are used by name here; agent/cri/api.h keeps
// them from colliding with the CRI enum (never write runtime::v1::SIGTERM).
#include <signal.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/runtime/container_spec.h"
#include "agent/runtime/container_spec_internal.h"

namespace berth::lifecycle {
namespace {

constexpr int kRtMin = 34;
constexpr int kRtMax = 64;

constexpr struct {
  const char* name;
  int signal;
} kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},   {"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},  {"CONT", SIGCONT},
    {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},     {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

// "RTMIN", "RTMIN+3", "RTMINPLUS3", "RTMAX-2", "RTMAXMINUS2" -> the number.
bool ParseRealtime(absl::string_view s, int* signal) {
  int base = 0, sign = 1;
  if (absl::ConsumePrefix(&s, "RTMIN")) {
    base = kRtMin;
  } else if (absl::ConsumePrefix(&s, "RTMAX")) {
    base = kRtMax;
    sign = -1;
  } else {
    return false;
  }
  if (s.empty()) {
    *signal = base;
    return true;
  }
  const bool ok = sign > 0 ? (absl::ConsumePrefix(&s, "+") || absl::ConsumePrefix(&s, "PLUS"))
                           : (absl::ConsumePrefix(&s, "-") || absl::ConsumePrefix(&s, "MINUS"));
  int n = 0;
  if (!ok || s.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(s[0])) ||
      !absl::SimpleAtoi(s, &n)) {
    return false;
  }
  *signal = base + sign * n;
  return *signal >= kRtMin && *signal <= kRtMax;
}

}  // namespace

absl::StatusOr<int> ParseSignalName(absl::string_view name) {
  const absl::string_view raw = name;
  name = absl::StripAsciiWhitespace(name);
  int n = 0;
  if (!name.empty() && absl::ascii_isdigit(static_cast<unsigned char>(name[0])) &&
      absl::SimpleAtoi(name, &n)) {
    if (n >= 1 && n <= kRtMax) return n;
    return absl::InvalidArgumentError(absl::StrCat("signal `", raw, "`: out of range"));
  }
  std::string upper = absl::AsciiStrToUpper(name);
  absl::string_view s = upper;
  absl::ConsumePrefix(&s, "SIG");
  for (const auto& sig : kSignals) {
    if (s == sig.name) return sig.signal;
  }
  if (ParseRealtime(s, &n)) return n;
  return absl::InvalidArgumentError(absl::StrCat("signal `", raw, "`: unknown"));
}

runtime::v1::Signal ToCriSignal(int signal) {
  // Enum order puts SIGABRT before SIGIOT, SIGCHLD before SIGCLD and SIGIO
  // before SIGPOLL: the first match is the usual name.
  for (int v = 1; runtime::v1::Signal_IsValid(v); ++v) {
    absl::StatusOr<int> s =
        ParseSignalName(runtime::v1::Signal_Name(static_cast<runtime::v1::Signal>(v)));
    if (s.ok() && *s == signal) return static_cast<runtime::v1::Signal>(v);
  }
  return runtime::v1::RUNTIME_DEFAULT;
}

namespace internal {

absl::StatusOr<int> SignalFromCri(int cri_signal) {
  if (cri_signal == runtime::v1::RUNTIME_DEFAULT) return 0;
  if (!runtime::v1::Signal_IsValid(cri_signal)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown CRI signal ", cri_signal));
  }
  return ParseSignalName(runtime::v1::Signal_Name(static_cast<runtime::v1::Signal>(cri_signal)));
}

}  // namespace internal
}  // namespace berth::lifecycle
