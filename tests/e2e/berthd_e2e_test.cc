// End-to-end: the real berthd binary on a temp socket, driven by real gRPC
// clients (CRI, health, reflection) over that socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "agent/cri/api.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/reflection_v1alpha.grpc.pb.h"
#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::BerthdProcess;
using ::berth::testing::HttpGet;
using ::berth::testing::IsOk;
using ::berth::testing::TempDir;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
namespace v1 = ::runtime::v1;
namespace refl = ::grpc::reflection::v1alpha;

class BerthdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(berthd_.Start(), IsOk()); }

  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  TempDir dir_;
  BerthdProcess berthd_{dir_};
};

TEST_F(BerthdTest, VersionFillsAllFourFields) {
  auto stub = v1::RuntimeService::NewStub(berthd_.Channel());
  v1::VersionRequest request;
  request.set_version("v1");
  v1::VersionResponse response;
  grpc::Status s = stub->Version(Ctx().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.version(), "0.1.0");
  EXPECT_EQ(response.runtime_name(), "berth");
  EXPECT_EQ(response.runtime_version(), BERTH_VERSION);
  EXPECT_EQ(response.runtime_api_version(), "v1");
}

TEST_F(BerthdTest, MakesItsDirectoriesAndA0660Socket) {
  struct stat st;
  ASSERT_EQ(::stat(berthd_.socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660);
  ASSERT_EQ(::stat(berthd_.root_dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(::stat(berthd_.state_dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

std::map<std::string, v1::RuntimeCondition> Conditions(const v1::StatusResponse& r) {
  std::map<std::string, v1::RuntimeCondition> out;
  for (const auto& c : r.status().conditions()) out[c.type()] = c;
  return out;
}

TEST_F(BerthdTest, StatusTellsTheTruth) {
  auto stub = v1::RuntimeService::NewStub(berthd_.Channel());
  v1::StatusRequest request;
  request.set_verbose(true);
  v1::StatusResponse response;
  ASSERT_TRUE(stub->Status(Ctx().get(), request, &response).ok());
  auto conditions = Conditions(response);
  ASSERT_EQ(conditions.size(), 3u);
  EXPECT_TRUE(conditions["BerthStateReadable"].status());
  // Without a berth-shim beside berthd the runtime cannot run containers.
  const v1::RuntimeCondition& runtime = conditions["RuntimeReady"];
  if (::access(
          (std::string(BERTHD_PATH).substr(0, std::string(BERTHD_PATH).rfind('/')) + "/berth-shim")
              .c_str(),
          X_OK) != 0) {
    EXPECT_FALSE(runtime.status());
    EXPECT_EQ(runtime.reason(), "RuntimeNotReady");
    EXPECT_THAT(runtime.message(), HasSubstr("berth-shim"));
  } else {
    EXPECT_TRUE(runtime.status()) << runtime.message();
  }
  const v1::RuntimeCondition& network = conditions["NetworkReady"];
  EXPECT_FALSE(network.status());
  EXPECT_EQ(network.reason(), "NetworkPluginNotReady");
  EXPECT_THAT(network.message(), HasSubstr("CNI"));
  ASSERT_TRUE(response.info().contains("config"));
  EXPECT_THAT(response.info().at("config"), HasSubstr(berthd_.socket_path()));
}

TEST(BerthdStatusTest, RuntimeReadyWhenShimIsThere) {
  TempDir dir;
  BerthdProcess berthd(dir);
  ASSERT_THAT(berthd.Start({"--shim-path=/bin/true"}), IsOk());
  auto stub = v1::RuntimeService::NewStub(berthd.Channel());
  grpc::ClientContext ctx;
  v1::StatusResponse response;
  ASSERT_TRUE(stub->Status(&ctx, v1::StatusRequest(), &response).ok());
  v1::RuntimeCondition runtime = Conditions(response)["RuntimeReady"];
  EXPECT_TRUE(runtime.status()) << runtime.message();
  EXPECT_EQ(runtime.reason(), "");
}

TEST_F(BerthdTest, UnbuiltRpcsAnswerUnimplementedNamingTheMethod) {
  auto runtime = v1::RuntimeService::NewStub(berthd_.Channel());
  v1::CheckpointContainerResponse checkpoint;
  grpc::Status s =
      runtime->CheckpointContainer(Ctx().get(), v1::CheckpointContainerRequest(), &checkpoint);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(s.error_message(), HasSubstr("runtime.v1.RuntimeService/CheckpointContainer"));

  auto images = v1::ImageService::NewStub(berthd_.Channel());
  auto stream_ctx = Ctx();
  auto stream = images->StreamImages(stream_ctx.get(), v1::StreamImagesRequest());
  v1::StreamImagesResponse page;
  EXPECT_FALSE(stream->Read(&page));
  s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(s.error_message(), HasSubstr("runtime.v1.ImageService/StreamImages"));
}

TEST_F(BerthdTest, HealthCheck) {
  auto stub = grpc::health::v1::Health::NewStub(berthd_.Channel());
  for (const char* service : {"", "runtime.v1.RuntimeService", "runtime.v1.ImageService"}) {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status s = stub->Check(Ctx().get(), request, &response);
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << service;
  }
  HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  HealthCheckResponse response;
  grpc::Status s = stub->Check(Ctx().get(), unknown, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

// What `grpcurl list` and `grpcurl describe` do, over grpc.reflection.v1alpha.
TEST_F(BerthdTest, ReflectionListsAndDescribesServices) {
  auto stub = refl::ServerReflection::NewStub(berthd_.Channel());
  auto ctx = Ctx();
  auto stream = stub->ServerReflectionInfo(ctx.get());

  refl::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  refl::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_list_services_response()) << response.DebugString();
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names,
              IsSupersetOf({"runtime.v1.RuntimeService", "runtime.v1.ImageService",
                            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}));

  refl::ServerReflectionRequest describe;
  describe.set_file_containing_symbol("runtime.v1.RuntimeService");
  ASSERT_TRUE(stream->Write(describe));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  bool found = false;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    for (const auto& service : file.service()) {
      if (file.package() == "runtime.v1" && service.name() == "RuntimeService") {
        found = true;
        std::vector<std::string> methods;
        for (const auto& m : service.method()) methods.push_back(m.name());
        EXPECT_THAT(methods, IsSupersetOf({"Version", "Status", "RunPodSandbox", "ExecSync",
                                           "GetContainerEvents"}));
      }
    }
  }
  EXPECT_TRUE(found);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// SIGTERM: open calls see the shutdown (a health Watch gets NOT_SERVING and its
// end), berthd exits 0 and removes its socket.
TEST_F(BerthdTest, SigtermShutsDownGracefully) {
  auto stub = grpc::health::v1::Health::NewStub(berthd_.Channel());
  auto ctx = Ctx();
  auto watch = stub->Watch(ctx.get(), HealthCheckRequest());
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  absl::StatusOr<int> exit_code;
  std::thread stopper([&] { exit_code = berthd_.Stop(SIGTERM); });
  bool got_update = watch->Read(&update);
  bool got_more = got_update && watch->Read(&update);
  grpc::Status finish = watch->Finish();
  stopper.join();
  EXPECT_TRUE(got_update) << berthd_.Log();
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(got_more);
  EXPECT_TRUE(finish.ok()) << finish.error_message();
  ASSERT_THAT(exit_code, IsOk());
  EXPECT_EQ(*exit_code, 0) << berthd_.Log();
  EXPECT_NE(::access(berthd_.socket_path().c_str(), F_OK), 0) << "socket left behind";
  EXPECT_THAT(berthd_.Log(), HasSubstr("shutting down"));
}

TEST(BerthdMetricsTest, CountsCallsOnTheMetricsEndpoint) {
  TempDir dir;
  BerthdProcess berthd(dir);
  int port = ::berth::testing::PickFreePort();
  ASSERT_THAT(berthd.Start({"--metrics-address=127.0.0.1:" + std::to_string(port)}), IsOk());
  auto stub = v1::RuntimeService::NewStub(berthd.Channel());
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::VersionResponse response;
    ASSERT_TRUE(stub->Version(&ctx, v1::VersionRequest(), &response).ok());
  }
  grpc::ClientContext ctx;
  v1::RunPodSandboxResponse run;
  (void)stub->RunPodSandbox(&ctx, v1::RunPodSandboxRequest(), &run);  // no config: refused
  std::string page = HttpGet(port, "/metrics");
  EXPECT_THAT(page, HasSubstr("200 OK"));
  EXPECT_THAT(page, HasSubstr("berth_grpc_requests_total{code=\"OK\",method=\"runtime.v1."
                              "RuntimeService/Version\"} 3"));
  EXPECT_THAT(page, HasSubstr("berth_grpc_requests_total{code=\"INVALID_ARGUMENT\",method="
                              "\"runtime.v1.RuntimeService/RunPodSandbox\"} 1"));
}

}  // namespace
}  // namespace berth
