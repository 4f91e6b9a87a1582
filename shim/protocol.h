// Framing for the shim's messages (proto/shim/v1/shim.proto): a 4-byte
// little-endian length, then the serialized message. Used on the ready fd and
// on shim.sock, by the shim and by its clients.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "google/protobuf/message_lite.h"

namespace berth::shim {

// Larger frames are refused: an exec answer holds at most 2 x 16 MiB of output.
inline constexpr uint32_t kMaxFrame = 40u << 20;

std::string EncodeFrame(const google::protobuf::MessageLite& message);

// If `buffer` holds a whole frame, parses it into `message`, removes it from
// the buffer and sets *done. INVALID_ARGUMENT for an oversized or bad frame.
absl::Status TakeFrame(std::string& buffer, google::protobuf::MessageLite& message, bool* done);

// Blocking helpers for clients and the ready fd.
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message);
// The same on a unix socket, with `fds` passed (SCM_RIGHTS) alongside the
// frame's first bytes.
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message,
                        absl::Span<const int> fds);
// NOT_FOUND-free: UNAVAILABLE when the peer closed before a whole frame.
absl::Status ReadFrame(int fd, google::protobuf::MessageLite& message);

}  // namespace berth::shim
