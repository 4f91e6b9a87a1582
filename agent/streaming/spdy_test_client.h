// Just enough of a SPDY/3.1 streaming client for tests and bench/: the HTTP
// upgrade, streams opened with headers, data sent, frames read until a stream
// is half-closed. Blocking, one thread; each read waits at most 10 s.
//
//   SpdyTestClient c;
//   c.Upgrade(url, {"v4.channel.k8s.io"});        // "HTTP/1.1 101 ..."
//   uint32_t error = c.Open({{"streamType", "error"}});
//   uint32_t out = c.Open({{"streamType", "stdout"}});
//   c.WaitFin(error);  // c.data[out] holds what came
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/streaming/spdy.h"
#include "os/unique_fd.h"

namespace berth::streaming {

class SpdyTestClient {
 public:
  // Connects to the URL's 127.0.0.1:port and asks for `upgrade` offering
  // `protocols`. The answer's head (and body when it is not a 101); "" when
  // the connection failed.
  std::string Upgrade(const std::string& url, const std::vector<std::string>& protocols,
                      const std::string& upgrade = "SPDY/3.1");
  // Opens a stream (odd ids, increasing); does not wait for the reply.
  uint32_t Open(const SpdyHeaders& headers);
  bool Send(uint32_t id, const std::string& bytes, bool fin);
  // Reads frames until the server half-closes `id`; false when the connection
  // ends or 10 s pass with nothing.
  bool WaitFin(uint32_t id);
  // One frame; false as WaitFin.
  bool ReadOne();

  std::map<uint32_t, std::string> data;  // by stream
  std::set<uint32_t> replied, fins;

 private:
  bool Fill();

  UniqueFd fd_;
  std::string in_;
  uint32_t next_ = 1;
  HeaderEncoder enc_;
  HeaderDecoder dec_;
};

}  // namespace berth::streaming
