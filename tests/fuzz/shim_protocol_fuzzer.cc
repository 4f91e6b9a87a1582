// The shim's socket protocol (length-prefixed protobuf frames), both ways: a
// shim decodes requests, berthd decodes replies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "shim/protocol.h"
#include "shim/v1/shim.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int kind = 0; kind < 2; ++kind) {
    std::string buffer(reinterpret_cast<const char*>(data), size);
    berth::shim::v1::Request request;
    berth::shim::v1::Response response;
    google::protobuf::MessageLite& m =
        kind == 0 ? static_cast<google::protobuf::MessageLite&>(request) : response;
    for (int frames = 0; frames < 64; ++frames) {
      bool done = false;
      if (!berth::shim::TakeFrame(buffer, m, &done).ok() || !done) break;
    }
  }
  return 0;
}
