#include "shim/protocol.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth::shim {

std::string EncodeFrame(const google::protobuf::MessageLite& message) {
  std::string body = message.SerializeAsString();
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string frame(4, '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  frame += body;
  return frame;
}

absl::Status TakeFrame(std::string& buffer, google::protobuf::MessageLite& message, bool* done) {
  *done = false;
  if (buffer.size() < 4) return absl::OkStatus();
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= uint32_t{static_cast<uint8_t>(buffer[i])} << (8 * i);
  if (n > kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrCat("frame of ", n, " bytes is too large"));
  }
  if (buffer.size() < 4 + size_t{n}) return absl::OkStatus();
  if (!message.ParseFromArray(buffer.data() + 4, static_cast<int>(n))) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse a ", message.GetTypeName(), " message"));
  }
  buffer.erase(0, 4 + size_t{n});
  *done = true;
  return absl::OkStatus();
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message) {
  return WriteFrame(fd, message, {});
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message,
                        absl::Span<const int> fds) {
  std::string frame = EncodeFrame(message);
  size_t off = 0;
  if (!fds.empty()) {
    struct iovec iov = {frame.data(), frame.size()};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(h), fds.data(), sizeof(int) * fds.size());
    ssize_t n;
    do {
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus(errno, "sendmsg frame");
    off = static_cast<size_t>(n);
  }
  while (off < frame.size()) {
    ssize_t n = send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd, frame.data() + off, frame.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write frame");
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ReadFrame(int fd, google::protobuf::MessageLite& message) {
  std::string buffer;
  char chunk[65536];
  while (true) {
    bool done = false;
    BERTH_RETURN_IF_ERROR(TakeFrame(buffer, message, &done));
    if (done) return absl::OkStatus();
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read frame");
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("peer closed after ", buffer.size(), " bytes of a ", message.GetTypeName()));
    }
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace berth::shim
