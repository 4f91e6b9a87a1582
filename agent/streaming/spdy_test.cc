#include "agent/streaming/spdy.h"

#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth::streaming {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

std::string U32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

TEST(SpdyDictionaryTest, IsTheOneSpdy3Names) {
  // zlib identifies a dictionary by its Adler-32; a peer with another one
  // cannot inflate our headers, nor we theirs.
  const std::string& d = SpdyDictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(HeaderCodecTest, BlocksShareOneContextPerDirection) {
  HeaderEncoder enc;
  HeaderDecoder dec;
  for (int i = 0; i < 3; ++i) {
    SpdyHeaders in = {{"StreamType", "stdout"}, {"port", std::to_string(8000 + i)}, {"port", "9"}};
    absl::StatusOr<std::string> block = enc.Encode(in);
    ASSERT_THAT(block.status(), IsOk());
    absl::StatusOr<SpdyHeaders> out = dec.Decode(*block);
    ASSERT_THAT(out.status(), IsOk());
    // Names go out lower case; repeated names stay.
    EXPECT_THAT(*out, ElementsAre(Pair("streamtype", "stdout"),
                                  Pair("port", std::to_string(8000 + i)), Pair("port", "9")));
  }
  // A fresh decoder cannot read a block that leans on the context so far.
  HeaderDecoder other;
  absl::StatusOr<std::string> block = enc.Encode({{"a", "b"}});
  ASSERT_THAT(block.status(), IsOk());
  EXPECT_THAT(other.Decode(*block).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HeaderDecoder().Decode("not zlib at all").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class SpdyConnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conn_ = std::make_unique<SpdyConn>(UniqueFd(sv[0]), "");
    peer_.reset(sv[1]);
  }
  void Send(const std::string& bytes) {
    ASSERT_EQ(write(peer_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  std::string SynStream(uint32_t id, const SpdyHeaders& headers, uint8_t flags = 0) {
    absl::StatusOr<std::string> block = peer_encoder_.Encode(headers);
    EXPECT_THAT(block.status(), IsOk());
    return SpdySynStreamFrame(id, flags, block.value_or(""));
  }
  std::string ReadPeer(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = read(peer_.get(), out.data() + got, n - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }
  absl::Time Soon() { return absl::Now() + absl::Seconds(5); }

  std::unique_ptr<SpdyConn> conn_;
  UniqueFd peer_;
  HeaderEncoder peer_encoder_;
};

TEST_F(SpdyConnTest, ReadsStreamsDataResetsAndGoAway) {
  // Blocks are encoded in order: they share the compression context.
  std::string first = SynStream(1, {{"streamtype", "error"}});
  std::string second = SynStream(3, {{"streamtype", "stdin"}});
  Send(first + second + SpdyDataFrame(3, 0, "abc") + SpdyDataFrame(3, kSpdyFlagFin, "") +
       SpdyControlFrame(kWindowUpdate, 0, U32(3) + U32(100)) +
       SpdyControlFrame(kRstStream, 0, U32(1) + U32(kSpdyCancel)) +
       SpdyControlFrame(kGoAway, 0, U32(3) + U32(0)));
  absl::StatusOr<SpdyEvent> e = conn_->Next(Soon());
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->kind, SpdyEvent::kStream);
  EXPECT_EQ(e->stream, 1u);
  EXPECT_EQ(HeaderValue(e->headers, "streamtype"), "error");
  e = conn_->Next(Soon());
  EXPECT_EQ(e->kind, SpdyEvent::kStream);
  EXPECT_EQ(HeaderValue(e->headers, "streamtype"), "stdin");
  e = conn_->Next(Soon());
  EXPECT_EQ(e->kind, SpdyEvent::kData);
  EXPECT_EQ(e->data, "abc");
  EXPECT_FALSE(e->fin);
  e = conn_->Next(Soon());
  EXPECT_EQ(e->kind, SpdyEvent::kData);
  EXPECT_TRUE(e->fin);
  e = conn_->Next(Soon());  // the WINDOW_UPDATE is skipped
  EXPECT_EQ(e->kind, SpdyEvent::kReset);
  EXPECT_EQ(e->stream, 1u);
  EXPECT_EQ(e->status, kSpdyCancel);
  e = conn_->Next(Soon());
  EXPECT_EQ(e->kind, SpdyEvent::kClosed);
}

TEST_F(SpdyConnTest, EchoesAClientsPingAndTimesOut) {
  Send(SpdyControlFrame(kPing, 0, U32(7)));
  absl::StatusOr<SpdyEvent> e = conn_->Next(absl::Now() + absl::Milliseconds(50));
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->kind, SpdyEvent::kTimeout);
  EXPECT_EQ(ReadPeer(12), SpdyControlFrame(kPing, 0, U32(7)));
}

TEST_F(SpdyConnTest, RefusesProtocolViolations) {
  // A stream id that does not increase.
  std::string first = SynStream(3, {});
  Send(first + SynStream(1, {}));
  ASSERT_THAT(conn_->Next(Soon()).status(), IsOk());
  EXPECT_THAT(conn_->Next(Soon()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("stream id")));
}

TEST_F(SpdyConnTest, RefusesOtherVersions) {
  std::string frame = SpdyControlFrame(kPing, 0, U32(1));
  frame[1] = 2;  // SPDY/2
  Send(frame);
  EXPECT_THAT(conn_->Next(Soon()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("version 2")));
}

TEST_F(SpdyConnTest, WritesRepliesAndDataInFrames) {
  ASSERT_THAT(conn_->Data(5, std::string(40000, 'x'), /*fin=*/true), IsOk());
  // 32 KiB, then the rest with FIN.
  EXPECT_EQ(ReadPeer(8 + 32768), SpdyDataFrame(5, 0, std::string(32768, 'x')));
  EXPECT_EQ(ReadPeer(8 + 40000 - 32768),
            SpdyDataFrame(5, kSpdyFlagFin, std::string(40000 - 32768, 'x')));
  ASSERT_THAT(conn_->Reply(5, {{"a", "b"}}), IsOk());
  std::string head = ReadPeer(8);
  ASSERT_EQ(head.size(), 8u);
  EXPECT_EQ(head.substr(0, 4), std::string("\x80\x03\x00\x02", 4));  // SYN_REPLY, v3
  size_t length = (static_cast<unsigned char>(head[5]) << 16) |
                  (static_cast<unsigned char>(head[6]) << 8) | static_cast<unsigned char>(head[7]);
  std::string payload = ReadPeer(length);
  EXPECT_EQ(payload.substr(0, 4), U32(5));
  HeaderDecoder dec;
  absl::StatusOr<SpdyHeaders> headers = dec.Decode(payload.substr(4));
  ASSERT_THAT(headers.status(), IsOk());
  EXPECT_THAT(*headers, ElementsAre(Pair("a", "b")));
  // After Shutdown, writes fail and the reader sees the end.
  conn_->Shutdown();
  EXPECT_THAT(conn_->Data(5, "late"), StatusIs(absl::StatusCode::kUnavailable));
  absl::StatusOr<SpdyEvent> e = conn_->Next(Soon());
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->kind, SpdyEvent::kClosed);
}

}  // namespace
}  // namespace berth::streaming
