#include "shim/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth {
namespace {

constexpr int kOpenFlags = O_WRONLY | O_APPEND | O_CREAT;  // OpenFile() adds O_CLOEXEC.
constexpr int kOpenMode = 0640;
// "\n" (after a torn record) + timestamp + " stdout P " ... content ... "\n".
constexpr size_t kRecordOverhead = 1 + kCriTimestampLength + 1 + 6 + 1 + 1 + 1 + 1;

void KeepFirstError(absl::Status& first, absl::Status status) {
  if (first.ok()) first = std::move(status);
}

// Writes `value` as exactly `width` decimal digits at `out`.
char* PutDigits(char* out, uint32_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

}  // namespace

absl::string_view CriStreamName(CriStream stream) {
  return stream == CriStream::kStdout ? "stdout" : "stderr";
}

size_t FormatCriTimestamp(const timespec& ts, absl::Span<char> out) {
  if (out.size() < kCriTimestampLength) return 0;
  if (ts.tv_nsec < 0 || ts.tv_nsec >= 1'000'000'000) return 0;
  struct tm tm;
  if (gmtime_r(&ts.tv_sec, &tm) == nullptr) return 0;
  const int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) return 0;
  char* p = out.data();
  p = PutDigits(p, year, 4);
  *p++ = '-';
  p = PutDigits(p, tm.tm_mon + 1, 2);
  *p++ = '-';
  p = PutDigits(p, tm.tm_mday, 2);
  *p++ = 'T';
  p = PutDigits(p, tm.tm_hour, 2);
  *p++ = ':';
  p = PutDigits(p, tm.tm_min, 2);
  *p++ = ':';
  p = PutDigits(p, tm.tm_sec, 2);
  *p++ = '.';
  p = PutDigits(p, static_cast<uint32_t>(ts.tv_nsec), 9);
  *p++ = 'Z';
  return static_cast<size_t>(p - out.data());
}

CriLogWriter::CriLogWriter(std::string path, UniqueFd fd, size_t max_line_size)
    : path_(std::move(path)), fd_(std::move(fd)), max_line_size_(max_line_size) {
  for (Pending& p : pending_) p.bytes.resize(max_line_size_ + 1);
  record_.resize(kRecordOverhead + max_line_size_);
}

absl::StatusOr<CriLogWriter> CriLogWriter::Open(std::string path, size_t max_line_size) {
  if (max_line_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cri log `", path, "`: max line size is 0"));
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, kOpenFlags, kOpenMode));
  return CriLogWriter(std::move(path), std::move(fd), max_line_size);
}

absl::Status CriLogWriter::Reopen() {
  // Open first, then replace: if the open fails we still hold a descriptor.
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path_, kOpenFlags, kOpenMode));
  // A torn record only needs ending in the file it was torn in.
  struct stat st;
  if (torn_ && fstat(fd.get(), &st) == 0 && st.st_size == 0) torn_ = false;
  fd_ = std::move(fd);
  return absl::OkStatus();
}

absl::Status CriLogWriter::Write(CriStream stream, absl::string_view data) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);  // Cannot fail for CLOCK_REALTIME and a valid pointer.
  return Write(stream, data, now);
}

absl::Status CriLogWriter::Write(CriStream stream, absl::string_view data, const timespec& now) {
  absl::Status status;
  while (!data.empty()) {
    const void* nl = std::memchr(data.data(), '\n', data.size());
    if (nl == nullptr) {
      AppendPartial(stream, data, now, status);
      break;
    }
    const size_t len = static_cast<const char*>(nl) - data.data();
    AppendPartial(stream, data.substr(0, len), now, status);
    // The line is complete: everything waiting is its content, less a "\r"
    // that came right before the "\n" (containerd readLine()).
    Pending& p = PendingFor(stream);
    size_t content = p.size;
    if (content > 0 && p.bytes[content - 1] == '\r') --content;
    KeepFirstError(status, WriteRecord(stream, /*partial=*/false,
                                       absl::string_view(p.bytes.data(), content), now));
    p.size = 0;
    data.remove_prefix(len + 1);
  }
  return status;
}

void CriLogWriter::AppendPartial(CriStream stream, absl::string_view chunk, const timespec& now,
                                 absl::Status& status) {
  Pending& p = PendingFor(stream);
  const size_t capacity = max_line_size_ + 1;
  while (!chunk.empty()) {
    if (p.size == capacity) {
      // The held "\r" is followed by more of the line, not by "\n": it is content.
      EmitPending(stream, max_line_size_, /*partial=*/true, now, status);
    }
    const size_t n = std::min(chunk.size(), capacity - p.size);
    std::memcpy(p.bytes.data() + p.size, chunk.data(), n);
    p.size += n;
    chunk.remove_prefix(n);
    // More than max_line_size_ bytes wait, so the first max_line_size_ are
    // certainly not the whole line. A "\r" in the extra byte is held back until
    // we know whether "\n" follows it.
    if (p.size == capacity && p.bytes[max_line_size_] != '\r') {
      EmitPending(stream, max_line_size_, /*partial=*/true, now, status);
    }
  }
}

absl::Status CriLogWriter::Flush(CriStream stream) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return Flush(stream, now);
}

absl::Status CriLogWriter::Flush(CriStream stream, const timespec& now) {
  absl::Status status;
  Pending& p = PendingFor(stream);
  // At most two records: max_line_size_ bytes, then a held "\r".
  while (p.size > 0) {
    EmitPending(stream, std::min(p.size, max_line_size_), /*partial=*/true, now, status);
  }
  return status;
}

void CriLogWriter::EmitPending(CriStream stream, size_t n, bool partial, const timespec& now,
                               absl::Status& status) {
  Pending& p = PendingFor(stream);
  KeepFirstError(status, WriteRecord(stream, partial, absl::string_view(p.bytes.data(), n), now));
  std::memmove(p.bytes.data(), p.bytes.data() + n, p.size - n);
  p.size -= n;
}

absl::Status CriLogWriter::WriteRecord(CriStream stream, bool partial, absl::string_view content,
                                       const timespec& now) {
  char* const out = record_.data();
  size_t len = 0;
  if (torn_) out[len++] = '\n';
  const size_t ts = FormatCriTimestamp(now, absl::MakeSpan(out + len, record_.size() - len));
  if (ts == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cri log `", path_, "`: time ", now.tv_sec, ".",
                                                   now.tv_nsec, " cannot be formatted"));
  }
  len += ts;
  out[len++] = ' ';
  const absl::string_view name = CriStreamName(stream);
  std::memcpy(out + len, name.data(), name.size());
  len += name.size();
  out[len++] = ' ';
  out[len++] = partial ? 'P' : 'F';
  out[len++] = ' ';
  std::memcpy(out + len, content.data(), content.size());
  len += content.size();
  out[len++] = '\n';

  // One write(2) per record. It comes back short only when the file cannot
  // grow (ENOSPC, EFBIG, quota); then we try to finish the record, and if that
  // fails too, remember to start the next record on a new line.
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::write(fd_.get(), out + done, len - done);
    if (n < 0 && errno == EINTR) continue;  // Nothing was written.
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      if (done > 0) torn_ = true;
      return ErrnoStatus(err, "write", path_);
    }
    done += static_cast<size_t>(n);
  }
  torn_ = false;
  return absl::OkStatus();
}

namespace {

// The field for an error message: backquoted, cut short if long.
std::string Quote(absl::string_view field) {
  constexpr size_t kMax = 40;
  if (field.size() <= kMax) return absl::StrCat("`", field, "`");
  return absl::StrCat("`", field.substr(0, kMax), "...`");
}

// Reads exactly `width` digits from the front of `s`.
bool TakeDigits(absl::string_view& s, int width, int& value) {
  if (s.size() < static_cast<size_t>(width)) return false;
  value = 0;
  for (int i = 0; i < width; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  s.remove_prefix(width);
  return true;
}

bool TakeChar(absl::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-
// Compatible Low-Level Date Algorithms", days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// RFC 3339 as kubelet's RFC3339NanoLenient reads it:
// YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM|-HH:MM).
absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view text) {
  auto bad = [text](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("timestamp ", Quote(text), ": ", what));
  };
  absl::string_view s = text;
  int year, month, day, hour, minute, second;
  if (!TakeDigits(s, 4, year) || !TakeChar(s, '-') || !TakeDigits(s, 2, month) ||
      !TakeChar(s, '-') || !TakeDigits(s, 2, day) || !TakeChar(s, 'T') || !TakeDigits(s, 2, hour) ||
      !TakeChar(s, ':') || !TakeDigits(s, 2, minute) || !TakeChar(s, ':') ||
      !TakeDigits(s, 2, second)) {
    return bad("not YYYY-MM-DDTHH:MM:SS");
  }
  if (month < 1 || month > 12) return bad("month out of range");
  if (day < 1 || day > DaysInMonth(year, month)) return bad("day out of range");
  if (hour > 23 || minute > 59 || second > 59) return bad("time of day out of range");
  int64_t nanos = 0;
  if (TakeChar(s, '.')) {
    int digits = 0;
    while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
      if (++digits > 9) return bad("more than 9 fractional digits");
      nanos = nanos * 10 + (s.front() - '0');
      s.remove_prefix(1);
    }
    if (digits == 0) return bad("no digits after `.`");
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int offset_seconds = 0;
  if (!TakeChar(s, 'Z')) {
    const bool east = TakeChar(s, '+');
    int oh, om;
    if ((!east && !TakeChar(s, '-')) || !TakeDigits(s, 2, oh) || !TakeChar(s, ':') ||
        !TakeDigits(s, 2, om) || oh > 23 || om > 59) {
      return bad("no `Z` or +HH:MM offset");
    }
    offset_seconds = (east ? 1 : -1) * (oh * 3600 + om * 60);
  }
  if (!s.empty()) return bad("trailing characters");
  const int64_t seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

}  // namespace

absl::StatusOr<CriLogRecord> ParseCriLogLine(absl::string_view line) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("cri log line: ", what));
  };
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (line.find('\n') != absl::string_view::npos) return bad("more than one line");
  CriLogRecord record;

  size_t space = line.find(' ');
  if (space == absl::string_view::npos) return bad("no space after the timestamp");
  absl::StatusOr<absl::Time> time = ParseTimestamp(line.substr(0, space));
  if (!time.ok()) return Annotate(time.status(), "cri log line");
  record.time = *time;
  line.remove_prefix(space + 1);

  space = line.find(' ');
  if (space == absl::string_view::npos) return bad("no space after the stream");
  const absl::string_view stream = line.substr(0, space);
  if (stream == "stdout") {
    record.stream = CriStream::kStdout;
  } else if (stream == "stderr") {
    record.stream = CriStream::kStderr;
  } else {
    return bad(absl::StrCat("stream ", Quote(stream), " is not stdout or stderr"));
  }
  line.remove_prefix(space + 1);

  space = line.find(' ');
  if (space == absl::string_view::npos) return bad("no space after the tag");
  const absl::string_view tags = line.substr(0, space);
  // Tags are `:`-separated and only the first is defined (kubelet keeps this
  // forward compatible: runtimeapi.LogTagDelimiter).
  const absl::string_view tag = tags.substr(0, tags.find(':'));
  if (tag != "P" && tag != "F") return bad(absl::StrCat("tag ", Quote(tags), " is not P or F"));
  record.partial = tag == "P";
  record.content = line.substr(space + 1);
  return record;
}

}  // namespace berth
