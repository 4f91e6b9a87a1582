// The CRI container log format: what berth-shim writes from a container's
// stdout and stderr pipes, and what kubelet reads back for `kubectl logs`.
//
// One record per line of the log file:
//
//   <timestamp> <stream> <tag> <content>\n
//   2016-10-06T00:17:09.669794202Z stdout P log content 1
//   2016-10-06T00:17:09.669794203Z stdout F log content 2
//
// timestamp is RFC 3339 in UTC with exactly 9 fractional digits (kubelet's
// RFC3339NanoFixed, so records sort as text); stream is `stdout` or `stderr`; tag
// is `F` (the record ends a line of the container's output) or `P` (partial: the
// line goes on in the stream's next record). Readers: kubelet
// pkg/kubelet/kuberuntime/logs/logs.go parseCRILog(); writers we follow:
// containerd internal/cri/io/logger.go redirectLogs(), CRI-O conmon
// src/ctr_logging.c write_k8s_log().
//
// How container output becomes records (each choice matches containerd):
// - A line ending in "\n" is one F record without the "\n". A "\r" just before
//   the "\n" is dropped too (containerd readLine(): `drop = 2` on "\r\n"), so a
//   TTY's CRLF and a plain LF log the same content.
// - Bytes after the last "\n" wait, per stream, for the rest of their line. Once
//   more than `max_line_size` of them wait, the first `max_line_size` go out as a
//   P record (containerd: `if maxLen > 0 && length > maxLen`): a long line becomes
//   P...P F, every P exactly `max_line_size` bytes, and a line of exactly
//   `max_line_size` bytes stays a single F.
// - At EOF, Flush() writes what still waits as a P record and adds no F
//   (containerd: "readLine only returns error when the message doesn't end with a
//   newline, in that case it should be treated as a partial line"). kubelet prints
//   a P record's content without a newline and an F record's with one, so
//   `kubectl logs` shows exactly the bytes the container wrote; the empty F that
//   conmon has appended since containers/conmon#592 would add a "\n" it never
//   wrote.
//
// Each record goes to the file in one write(2) on an O_APPEND descriptor, so a
// reader never sees part of one of our records unless the disk fills. A failed
// write is returned as a Status and the writer carries on with the next record,
// so the container's pipes keep draining. The shim is single-threaded: the
// writer is not thread-safe, and once open it allocates nothing while writes
// succeed (an error Status carries a message).
//
//   BERTH_ASSIGN_OR_RETURN(CriLogWriter log, CriLogWriter::Open(log_path));
//   ssize_t n = read(stdout_pipe, buf, sizeof(buf));
//   if (n > 0) status = log.Write(CriStream::kStdout, absl::string_view(buf, n));
//   if (n == 0) status = log.Flush(CriStream::kStdout);  // EOF
//   ...
//   status = log.Reopen();  // after the log rotator renamed the file
#pragma once

#include <time.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "os/unique_fd.h"

namespace berth {

enum class CriStream { kStdout, kStderr };

// "stdout" or "stderr".
absl::string_view CriStreamName(CriStream stream);

// Length of "2016-10-06T00:17:09.669794202Z".
inline constexpr size_t kCriTimestampLength = 30;

// Writes `ts` (a CLOCK_REALTIME reading) as RFC 3339 in UTC with 9 fractional
// digits to the start of `out`. Returns kCriTimestampLength, or 0 when `out` is
// too short, tv_nsec is outside [0, 1e9) or the year is outside 0000-9999.
// Allocates nothing: safe on the shim's hot path.
size_t FormatCriTimestamp(const timespec& ts, absl::Span<char> out);

// The container's log file and the partial line waiting on each stream.
class CriLogWriter {
 public:
  // containerd's default max_container_log_line_size.
  static constexpr size_t kDefaultMaxLineSize = 16 * 1024;

  // Opens (creating, mode 0640 before umask) `path` for appending. The parent
  // directory must exist. `max_line_size` must be at least 1.
  static absl::StatusOr<CriLogWriter> Open(std::string path,
                                           size_t max_line_size = kDefaultMaxLineSize);

  CriLogWriter(CriLogWriter&&) = default;
  CriLogWriter& operator=(CriLogWriter&&) = default;

  // Appends `data`, read from `stream`, as records stamped `now` (one
  // clock_gettime(CLOCK_REALTIME) for the overload without it). Every byte is
  // consumed even when a write fails; the first failure is returned.
  absl::Status Write(CriStream stream, absl::string_view data);
  absl::Status Write(CriStream stream, absl::string_view data, const timespec& now);

  // EOF on `stream`: writes its waiting bytes, if any, as P records.
  absl::Status Flush(CriStream stream);
  absl::Status Flush(CriStream stream, const timespec& now);

  // Log rotation (CRI ReopenContainerLog): opens the path again, so records go
  // to the new file once the rotator has renamed the old one. Waiting partial
  // lines carry over. If the open fails, the old descriptor is kept (records land
  // in the rotated file rather than nowhere) and the error is returned.
  absl::Status Reopen();

  const std::string& path() const { return path_; }
  size_t max_line_size() const { return max_line_size_; }

 private:
  // Bytes after the last "\n" of one stream. Holds at most max_line_size_
  // bytes, or max_line_size_ + 1 when the last is a "\r" that may yet be
  // followed by "\n".
  struct Pending {
    std::vector<char> bytes;  // Sized once, max_line_size_ + 1.
    size_t size = 0;
  };

  CriLogWriter(std::string path, UniqueFd fd, size_t max_line_size);

  Pending& PendingFor(CriStream stream) { return pending_[stream == CriStream::kStdout ? 0 : 1]; }
  // Adds line bytes without a "\n", writing a P record each time more than
  // max_line_size_ of them wait.
  void AppendPartial(CriStream stream, absl::string_view chunk, const timespec& now,
                     absl::Status& status);
  // Writes the first `n` waiting bytes of `stream` as one record and keeps the rest.
  void EmitPending(CriStream stream, size_t n, bool partial, const timespec& now,
                   absl::Status& status);
  // Formats one record into record_ and writes it with one write(2).
  absl::Status WriteRecord(CriStream stream, bool partial, absl::string_view content,
                           const timespec& now);

  std::string path_;
  UniqueFd fd_;
  size_t max_line_size_;
  Pending pending_[2];
  std::vector<char> record_;  // Sized once to hold the largest record.
  // A write stopped partway through a record: the next record starts with "\n"
  // so that it begins a line of its own.
  bool torn_ = false;
};

// One record of a CRI log file, as ParseCriLogLine() reads it.
struct CriLogRecord {
  absl::Time time;
  CriStream stream = CriStream::kStdout;
  bool partial = false;       // Tag P: the line continues in the next record.
  absl::string_view content;  // Points into the parsed line; no "\n".
};

// Parses one line of a CRI log file (with or without its "\n"). Accepts what
// kubelet accepts: any number of fractional digits, `Z` or a numeric offset, and
// tags after the first one (`P:x`). Errors name the field that is wrong.
absl::StatusOr<CriLogRecord> ParseCriLogLine(absl::string_view line);

}  // namespace berth
