#include "os/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace berth {
namespace {

std::atomic<int> min_severity{static_cast<int>(LogSeverity::kINFO)};

char Letter(LogSeverity s) {
  switch (s) {
    case LogSeverity::kDEBUG:
      return 'D';
    case LogSeverity::kINFO:
      return 'I';
    case LogSeverity::kWARNING:
      return 'W';
    case LogSeverity::kERROR:
      return 'E';
  }
  return '?';
}

// Paths are logged relative to the source tree: "agent/main.cc", not "/work/.../agent/main.cc".
absl::string_view ShortFile(absl::string_view file) {
  for (absl::string_view top : {"/agent/", "/os/", "/shim/", "/metrics/", "/tests/", "/bench/"}) {
    size_t pos = file.rfind(top);
    if (pos != absl::string_view::npos) return file.substr(pos + 1);
  }
  size_t slash = file.rfind('/');
  return slash == absl::string_view::npos ? file : file.substr(slash + 1);
}

}  // namespace

void SetMinLogSeverity(LogSeverity min) { min_severity.store(static_cast<int>(min)); }

bool ParseLogSeverity(absl::string_view text, LogSeverity* out) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "debug")
    *out = LogSeverity::kDEBUG;
  else if (t == "info")
    *out = LogSeverity::kINFO;
  else if (t == "warning" || t == "warn")
    *out = LogSeverity::kWARNING;
  else if (t == "error")
    *out = LogSeverity::kERROR;
  else
    return false;
  return true;
}

std::string FormatLogLine(LogSeverity severity, absl::string_view file, int line,
                          absl::string_view message) {
  std::string stamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  return absl::StrFormat("%s %c %s:%d] %s\n", stamp, Letter(severity), ShortFile(file), line,
                         message);
}

void EmitLog(LogSeverity severity, absl::string_view file, int line, absl::string_view message) {
  if (static_cast<int>(severity) < min_severity.load(std::memory_order_relaxed)) return;
  std::string text = FormatLogLine(severity, file, line, message);
  // One write: stderr is unbuffered and shared with other threads and libraries.
  ssize_t unused = ::write(STDERR_FILENO, text.data(), text.size());
  (void)unused;
}

}  // namespace berth
