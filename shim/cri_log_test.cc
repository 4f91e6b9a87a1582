#include "shim/cri_log.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

// Counts heap allocations, to show that the writer does none once open.
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  ++g_allocations;
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) std::abort();
  return p;
}
// Kept out of line: inlined, GCC sees free() of memory from operator new and
// reports -Wmismatched-new-delete.
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr CriStream kOut = CriStream::kStdout;
constexpr CriStream kErr = CriStream::kStderr;

timespec At(int64_t sec, long nsec = 0) {
  timespec ts;
  ts.tv_sec = sec;
  ts.tv_nsec = nsec;
  return ts;
}
const timespec kNow = At(1475713029, 669794202);  // 2016-10-06T00:17:09.669794202Z

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Format(const timespec& ts) {
  char buf[40];
  size_t n = FormatCriTimestamp(ts, absl::MakeSpan(buf));
  return std::string(buf, n);
}

// The records of a log file as "stdout F content", checking on the way that
// every line parses back and that the file ends at a line boundary.
std::vector<std::string> Records(const std::string& path) {
  std::string text = ReadFile(path);
  std::vector<std::string> out;
  if (text.empty()) return out;
  EXPECT_EQ(text.back(), '\n') << "log does not end in a newline";
  text.pop_back();
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::StatusOr<CriLogRecord> r = ParseCriLogLine(line);
    EXPECT_THAT(r, IsOk()) << "line: " << line;
    if (!r.ok()) continue;
    out.push_back(absl::StrCat(CriStreamName(r->stream), r->partial ? " P " : " F ", r->content));
  }
  return out;
}

CriLogWriter OpenOrDie(const std::string& path, size_t max = CriLogWriter::kDefaultMaxLineSize) {
  absl::StatusOr<CriLogWriter> w = CriLogWriter::Open(path, max);
  EXPECT_THAT(w, IsOk());
  if (!w.ok()) std::abort();
  return std::move(*w);
}

TEST(FormatCriTimestampTest, ExactForFixedTimes) {
  EXPECT_EQ(Format(kNow), "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(Format(At(0, 5)), "1970-01-01T00:00:00.000000005Z");
  EXPECT_EQ(Format(At(-1, 999999999)), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(Format(At(951782400)), "2000-02-29T00:00:00.000000000Z");
  EXPECT_EQ(Format(At(253402300799)), "9999-12-31T23:59:59.000000000Z");
  EXPECT_EQ(Format(kNow).size(), kCriTimestampLength);
}

TEST(FormatCriTimestampTest, RefusesWhatItCannotWrite) {
  char buf[40];
  EXPECT_EQ(FormatCriTimestamp(At(253402300800), absl::MakeSpan(buf)), 0u);  // Year 10000.
  EXPECT_EQ(FormatCriTimestamp(At(0, 1000000000), absl::MakeSpan(buf)), 0u);
  EXPECT_EQ(FormatCriTimestamp(At(0, -1), absl::MakeSpan(buf)), 0u);
  EXPECT_EQ(FormatCriTimestamp(kNow, absl::MakeSpan(buf, kCriTimestampLength - 1)), 0u);
}

TEST(FormatCriTimestampTest, AgreesWithAbslAndRoundTrips) {
  uint64_t x = 88172645463325252ull;  // xorshift64: a fixed spread of times.
  for (int i = 0; i < 5000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const timespec ts =
        At(static_cast<int64_t>(x % 253402300800ull), static_cast<long>(x % 1000000000));
    const absl::Time t = absl::TimeFromTimespec(ts);
    const std::string text = Format(ts);
    ASSERT_EQ(text, absl::FormatTime("%Y-%m-%d%ET%H:%M:%E9SZ", t, absl::UTCTimeZone()));
    absl::StatusOr<CriLogRecord> r = ParseCriLogLine(text + " stdout F x");
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->time, t) << text;
  }
}

TEST(CriLogWriterTest, WritesTheExactFormat) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  ASSERT_THAT(w.Write(kOut, "hello world\n", kNow), IsOk());
  ASSERT_THAT(w.Write(kErr, "oops\n", kNow), IsOk());
  EXPECT_EQ(ReadFile(dir.Join("log")),
            "2016-10-06T00:17:09.669794202Z stdout F hello world\n"
            "2016-10-06T00:17:09.669794202Z stderr F oops\n");
  absl::StatusOr<CriLogRecord> r =
      ParseCriLogLine("2016-10-06T00:17:09.669794202Z stdout F hello world\n");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->time, absl::TimeFromTimespec(kNow));
}

TEST(CriLogWriterTest, SeveralLinesInOneWrite) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  ASSERT_THAT(w.Write(kOut, "one\ntwo\n\nthree\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")),
              ElementsAre("stdout F one", "stdout F two", "stdout F ", "stdout F three"));
}

TEST(CriLogWriterTest, EmptyLineIsAnEmptyFullRecord) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  ASSERT_THAT(w.Write(kOut, "\n", kNow), IsOk());
  EXPECT_EQ(ReadFile(dir.Join("log")), "2016-10-06T00:17:09.669794202Z stdout F \n");
  EXPECT_THAT(Records(dir.Join("log")), ElementsAre("stdout F "));
}

TEST(CriLogWriterTest, LineSplitAcrossWritesWaitsForItsNewline) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  ASSERT_THAT(w.Write(kOut, "hel", kNow), IsOk());
  EXPECT_EQ(ReadFile(dir.Join("log")), "");
  ASSERT_THAT(w.Write(kOut, "lo\nwor", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "ld", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")), ElementsAre("stdout F hello", "stdout F world"));
}

TEST(CriLogWriterTest, StreamsKeepTheirPartialLinesApart) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  ASSERT_THAT(w.Write(kOut, "out-a", kNow), IsOk());
  ASSERT_THAT(w.Write(kErr, "err-a", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "-b\nout-c", kNow), IsOk());
  ASSERT_THAT(w.Write(kErr, "-b\n", kNow), IsOk());
  ASSERT_THAT(w.Flush(kErr, kNow), IsOk());  // Nothing waits on stderr.
  ASSERT_THAT(w.Write(kOut, "\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")),
              ElementsAre("stdout F out-a-b", "stderr F err-a-b", "stdout F out-c"));
}

TEST(CriLogWriterTest, LongLineBecomesPartialsThenFull) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"), 4);
  ASSERT_THAT(w.Write(kOut, "abcdefghij\n", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "wxyz\n", kNow), IsOk());  // Exactly the max: one F.
  ASSERT_THAT(w.Write(kOut, "ab", kNow), IsOk());      // Across writes.
  ASSERT_THAT(w.Write(kOut, "cdef", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "gh", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")),
              ElementsAre("stdout P abcd", "stdout P efgh", "stdout F ij", "stdout F wxyz",
                          "stdout P abcd", "stdout F efgh"));
}

TEST(CriLogWriterTest, DefaultMaxIs16KiB) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  EXPECT_EQ(w.max_line_size(), 16384u);
  std::string line(16384 * 2 + 10, 'x');
  ASSERT_THAT(w.Write(kOut, line + "\n", kNow), IsOk());
  std::vector<std::string> records = Records(dir.Join("log"));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0], "stdout P " + std::string(16384, 'x'));
  EXPECT_EQ(records[1], "stdout P " + std::string(16384, 'x'));
  EXPECT_EQ(records[2], "stdout F " + std::string(10, 'x'));
}

TEST(CriLogWriterTest, CarriageReturnBeforeNewlineIsDropped) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"), 4);
  ASSERT_THAT(w.Write(kOut, "ab\r\n", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "a\rb\n", kNow), IsOk());    // Not before "\n": content.
  ASSERT_THAT(w.Write(kOut, "abcd\r\n", kNow), IsOk());  // Max bytes + CRLF: one F.
  ASSERT_THAT(w.Write(kOut, "abcd\r", kNow), IsOk());    // The "\n" comes later.
  ASSERT_THAT(w.Write(kOut, "\n", kNow), IsOk());
  ASSERT_THAT(w.Write(kOut, "abcd\rx\n", kNow), IsOk());  // A held "\r" that was content.
  ASSERT_THAT(w.Write(kOut, "\r\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")),
              ElementsAre("stdout F ab", "stdout F a\rb", "stdout F abcd", "stdout F abcd",
                          "stdout P abcd", "stdout F \rx", "stdout F "));
}

TEST(CriLogWriterTest, FlushAtEofWritesWhatWaitsAsPartial) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"), 4);
  ASSERT_THAT(w.Flush(kOut, kNow), IsOk());  // Nothing waits: nothing written.
  EXPECT_EQ(ReadFile(dir.Join("log")), "");
  ASSERT_THAT(w.Write(kOut, "done\nno newline", kNow), IsOk());
  ASSERT_THAT(w.Write(kErr, "abcd\r", kNow), IsOk());
  ASSERT_THAT(w.Flush(kOut, kNow), IsOk());
  ASSERT_THAT(w.Flush(kOut, kNow), IsOk());
  ASSERT_THAT(w.Flush(kErr, kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("log")),
              ElementsAre("stdout F done", "stdout P no n", "stdout P ewli", "stdout P ne",
                          "stderr P abcd", "stderr P \r"));
}

TEST(CriLogWriterTest, ReopenAfterRenameWritesToANewFile) {
  TempDir dir;
  const std::string path = dir.Join("0.log");
  CriLogWriter w = OpenOrDie(path);
  ASSERT_THAT(w.Write(kOut, "before\npart", kNow), IsOk());
  ASSERT_EQ(std::rename(path.c_str(), dir.Join("0.log.1").c_str()), 0);
  ASSERT_THAT(w.Write(kOut, "ial", kNow), IsOk());
  ASSERT_THAT(w.Reopen(), IsOk());
  ASSERT_THAT(w.Write(kOut, "\nafter\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("0.log.1")), ElementsAre("stdout F before"));
  EXPECT_THAT(Records(path), ElementsAre("stdout F partial", "stdout F after"));
}

TEST(CriLogWriterTest, FailedReopenKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.Join("pod/0.log");
  ASSERT_EQ(mkdir(dir.Join("pod").c_str(), 0700), 0);
  CriLogWriter w = OpenOrDie(path);
  ASSERT_EQ(std::rename(dir.Join("pod").c_str(), dir.Join("gone").c_str()), 0);
  EXPECT_THAT(w.Reopen(), StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  ASSERT_THAT(w.Write(kOut, "still here\n", kNow), IsOk());
  EXPECT_THAT(Records(dir.Join("gone/0.log")), ElementsAre("stdout F still here"));
}

TEST(CriLogWriterTest, OpenErrors) {
  TempDir dir;
  EXPECT_THAT(CriLogWriter::Open(dir.Join("none/0.log")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("open `" + dir.Join("none/0.log"))));
  EXPECT_THAT(CriLogWriter::Open(dir.Join("0.log"), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max line size")));
}

TEST(CriLogWriterTest, DiskFullIsAnErrorAndTheWriterGoesOn) {
  CriLogWriter w = OpenOrDie("/dev/full", 4);
  EXPECT_THAT(w.Write(kOut, "a\nb\n", kNow),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("write `/dev/full`")));
  EXPECT_THAT(w.Write(kOut, "abc", kNow), IsOk());  // Waits: nothing to write yet.
  EXPECT_THAT(w.Write(kOut, "defgh", kNow), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(w.Flush(kOut, kNow), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(w.Flush(kOut, kNow), IsOk());  // The failed bytes were consumed.
}

// RLIMIT_FSIZE makes write(2) stop partway through a record, as a full disk does.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_;
  sighandler_t old_handler_;
};

TEST(CriLogWriterTest, TornRecordIsEndedBeforeTheNextOne) {
  TempDir dir;
  const std::string path = dir.Join("log");
  CriLogWriter w = OpenOrDie(path);
  ASSERT_THAT(w.Write(kOut, "first\n", kNow), IsOk());
  const size_t first_size = ReadFile(path).size();
  {
    FileSizeLimit limit(first_size + 20);
    EXPECT_THAT(w.Write(kOut, "second\n", kNow),
                StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("File too large")));
  }
  ASSERT_THAT(w.Write(kOut, "third\n", kNow), IsOk());
  std::vector<std::string> lines = absl::StrSplit(ReadFile(path), '\n');
  ASSERT_EQ(lines.size(), 4u);  // Three lines and the empty rest after the last "\n".
  EXPECT_EQ(lines[1], "2016-10-06T00:17:09.");
  EXPECT_THAT(ParseCriLogLine(lines[1]), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(ParseCriLogLine(lines[2]), IsOk());
  EXPECT_EQ(ParseCriLogLine(lines[2])->content, "third");
}

TEST(CriLogWriterTest, WriteWithoutATimeUsesTheClock) {
  TempDir dir;
  CriLogWriter w = OpenOrDie(dir.Join("log"));
  const absl::Time before = absl::Now();
  ASSERT_THAT(w.Write(kOut, "now\n"), IsOk());
  ASSERT_THAT(w.Write(kOut, "eof"), IsOk());
  ASSERT_THAT(w.Flush(kOut), IsOk());
  const absl::Time after = absl::Now();
  std::vector<std::string> lines = absl::StrSplit(ReadFile(dir.Join("log")), '\n');
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<CriLogRecord> r = ParseCriLogLine(lines[i]);
    ASSERT_THAT(r, IsOk());
    EXPECT_GE(r->time, before);
    EXPECT_LE(r->time, after);
  }
}

TEST(CriLogWriterTest, SteadyStateDoesNotAllocate) {
  TempDir dir;
  const int64_t at_open = g_allocations.load();
  CriLogWriter w = OpenOrDie(dir.Join("log"), 64);
  ASSERT_GT(g_allocations.load(), at_open);  // The counter is live: Open allocates its buffers.
  const std::string chunk = "a line\nanother line\npartial " + std::string(100, 'y');
  const int64_t before = g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(w.Write(i % 2 ? kOut : kErr, chunk, kNow).ok());
    ASSERT_TRUE(w.Write(kOut, "\n", kNow).ok());
  }
  ASSERT_TRUE(w.Flush(kErr, kNow).ok());
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(Records(dir.Join("log")).size(), 100u * 4 + 1);
}

TEST(ParseCriLogLineTest, ReadsEveryField) {
  absl::StatusOr<CriLogRecord> r =
      ParseCriLogLine("2016-10-06T02:17:09.5+02:00 stderr P:future  two spaces \n");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->time, absl::FromUnixSeconds(1475713029) + absl::Milliseconds(500));
  EXPECT_EQ(r->stream, kErr);
  EXPECT_TRUE(r->partial);
  EXPECT_EQ(r->content, " two spaces ");

  r = ParseCriLogLine("1969-12-31T19:00:00-05:00 stdout F ");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->time, absl::UnixEpoch());
  EXPECT_FALSE(r->partial);
  EXPECT_THAT(r->content, IsEmpty());
}

TEST(ParseCriLogLineTest, ErrorsNameWhatIsWrong) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const std::string ts = "2016-10-06T00:17:09.669794202Z";
  EXPECT_THAT(ParseCriLogLine(""), StatusIs(kInvalid, HasSubstr("no space after the timestamp")));
  EXPECT_THAT(ParseCriLogLine(ts), StatusIs(kInvalid, HasSubstr("no space after the timestamp")));
  EXPECT_THAT(ParseCriLogLine(ts + " stdout"),
              StatusIs(kInvalid, HasSubstr("no space after the stream")));
  EXPECT_THAT(ParseCriLogLine(ts + " stdout F"),
              StatusIs(kInvalid, HasSubstr("no space after the tag")));
  EXPECT_THAT(ParseCriLogLine(ts + " stdin F x"),
              StatusIs(kInvalid, HasSubstr("stream `stdin` is not stdout or stderr")));
  EXPECT_THAT(ParseCriLogLine(ts + " stdout X:P x"),
              StatusIs(kInvalid, HasSubstr("tag `X:P` is not P or F")));
  EXPECT_THAT(ParseCriLogLine(ts + " stdout F a\nb"),
              StatusIs(kInvalid, HasSubstr("more than one line")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06 00:17:09Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("timestamp `2016-10-06`: not YYYY-MM-DDTHH:MM:SS")));
  EXPECT_THAT(ParseCriLogLine("2016-13-06T00:17:09Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("month out of range")));
  EXPECT_THAT(ParseCriLogLine("2015-02-29T00:17:09Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("day out of range")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06T24:17:09Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("time of day out of range")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06T00:17:09.1234567891Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("more than 9 fractional digits")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06T00:17:09.Z stdout F x"),
              StatusIs(kInvalid, HasSubstr("no digits after `.`")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06T00:17:09+0200 stdout F x"),
              StatusIs(kInvalid, HasSubstr("no `Z` or +HH:MM offset")));
  EXPECT_THAT(ParseCriLogLine("2016-10-06T00:17:09Zjunk stdout F x"),
              StatusIs(kInvalid, HasSubstr("trailing characters")));
}

}  // namespace
}  // namespace berth
