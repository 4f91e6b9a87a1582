// cri_bench: how fast berthd answers over its unix socket, and how fast it starts.
//
//   build/bench/cri_bench [--n=2000] [--starts=20] [--json=FILE]
//
// Prints n, p50, p90, p99 and max for: berthd start-up (spawn until the socket
// accepts), CRI Version and Status round trips on one connection, and - as the
// floor measured in the same run, alternating with berthd - the same Version
// call against a bare in-process gRPC server with an empty handler. The ratio
// berthd/floor is what to compare across machines; absolute times are not.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/cri/api.h"
#include "tests/support/berthd_process.h"

ABSL_FLAG(int, n, 2000, "round trips per RPC");
ABSL_FLAG(int, starts, 20, "berthd start-ups to time");
ABSL_FLAG(std::string, json, "", "also write the figures as JSON to this file");

namespace berth {
namespace {

namespace v1 = runtime::v1;

struct Figures {
  std::string name;
  std::vector<double> ms;
  double Pct(double p) const {
    std::vector<double> s = ms;
    std::sort(s.begin(), s.end());
    return s[std::min(s.size() - 1, static_cast<size_t>(p * s.size()))];
  }
};

// The floor: a gRPC server that answers Version with nothing else around it.
class BareRuntime final : public v1::RuntimeService::Service {
  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse* response) override {
    response->set_runtime_name("bare");
    return grpc::Status::OK;
  }
};

double TimeMs(const std::function<void()>& f) {
  absl::Time t0 = absl::Now();
  f();
  return absl::ToDoubleMilliseconds(absl::Now() - t0);
}

void Check(const grpc::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s failed: %s\n", what, s.error_message().c_str());
    std::exit(1);
  }
}

int Main() {
  const int n = absl::GetFlag(FLAGS_n);
  std::vector<Figures> all;

  Figures starts{"berthd start (spawn -> socket serves)"};
  for (int i = 0; i < absl::GetFlag(FLAGS_starts); ++i) {
    testing::TempDir dir;
    testing::BerthdProcess berthd(dir);
    starts.ms.push_back(TimeMs([&] {
      if (!berthd.Start().ok()) std::exit(1);
    }));
    (void)berthd.Stop(SIGTERM);
  }
  all.push_back(starts);

  testing::TempDir dir;
  testing::BerthdProcess berthd(dir);
  if (absl::Status s = berthd.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto stub = v1::RuntimeService::NewStub(berthd.Channel());

  BareRuntime bare;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + dir.Join("bare.sock"), grpc::InsecureServerCredentials());
  builder.RegisterService(&bare);
  std::unique_ptr<grpc::Server> floor = builder.BuildAndStart();
  auto floor_stub = v1::RuntimeService::NewStub(
      grpc::CreateChannel("unix:" + dir.Join("bare.sock"), grpc::InsecureChannelCredentials()));

  Figures version{"berthd Version"}, status{"berthd Status"},
      bare_version{"floor: bare gRPC Version"};
  auto version_call = [](v1::RuntimeService::Stub& s) {
    grpc::ClientContext ctx;
    v1::VersionResponse r;
    Check(s.Version(&ctx, v1::VersionRequest(), &r), "Version");
  };
  for (int i = 0; i < 50; ++i) {  // warm up both connections
    version_call(*stub);
    version_call(*floor_stub);
  }
  for (int i = 0; i < n; ++i) {  // alternate, so both see the same machine
    version.ms.push_back(TimeMs([&] { version_call(*stub); }));
    bare_version.ms.push_back(TimeMs([&] { version_call(*floor_stub); }));
    status.ms.push_back(TimeMs([&] {
      grpc::ClientContext ctx;
      v1::StatusResponse r;
      Check(stub->Status(&ctx, v1::StatusRequest(), &r), "Status");
    }));
  }
  all.push_back(version);
  all.push_back(status);
  all.push_back(bare_version);
  floor->Shutdown();

  std::printf("%-40s %6s %9s %9s %9s %9s\n", "ms", "n", "p50", "p90", "p99", "max");
  std::string json = "[";
  for (const Figures& f : all) {
    std::printf("%-40s %6zu %9.3f %9.3f %9.3f %9.3f\n", f.name.c_str(), f.ms.size(), f.Pct(0.5),
                f.Pct(0.9), f.Pct(0.99), f.Pct(1.0));
    json += absl::StrFormat(
        "%s{\"name\":\"%s\",\"n\":%d,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
        "\"max_ms\":%.4f}",
        json.size() > 1 ? "," : "", f.name, f.ms.size(), f.Pct(0.5), f.Pct(0.9), f.Pct(0.99),
        f.Pct(1.0));
  }
  json += "]\n";
  std::printf("ratio berthd Version / floor, p50: %.2f\n",
              version.Pct(0.5) / bare_version.Pct(0.5));
  if (!absl::GetFlag(FLAGS_json).empty()) std::ofstream(absl::GetFlag(FLAGS_json)) << json;
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return berth::Main();
}
