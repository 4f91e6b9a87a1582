// Logging to stderr with a UTC timestamp, a level and the source line:
//
//   2026-11-29T13:45:01.123456Z I agent/main.cc:42] serving on unix:/run/berth/berth.sock
//
//   BERTH_LOG(INFO) << "serving on " << address;
//   BERTH_LOG(WARNING) << "insecure listener on " << addr;
//
// Each message is one write(2), so lines from different threads do not interleave.
// Safe to use from any thread; never from a child between fork and exec.
#pragma once

#include <sstream>

#include "absl/strings/string_view.h"

namespace berth {

enum class LogSeverity { kDEBUG = 0, kINFO = 1, kWARNING = 2, kERROR = 3 };

// Messages below `min` are dropped. Default kINFO.
void SetMinLogSeverity(LogSeverity min);
bool ParseLogSeverity(absl::string_view text, LogSeverity* out);

// Formats one line; exposed for tests and for routing other libraries' logs.
std::string FormatLogLine(LogSeverity severity, absl::string_view file, int line,
                          absl::string_view message);
void EmitLog(LogSeverity severity, absl::string_view file, int line, absl::string_view message);

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line)
      : severity_(severity), file_(file), line_(line) {}
  ~LogMessage() { EmitLog(severity_, file_, line_, stream_.str()); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

}  // namespace berth

#define BERTH_LOG(severity) \
  ::berth::LogMessage(::berth::LogSeverity::k##severity, __FILE__, __LINE__).stream()
