// Every RPC of both CRI services, in api.proto order. Overriding each one (rather
// than leaving gRPC's default) sends the unbuilt ones through the RpcBoundary
// too: they are logged, counted, and answer UNIMPLEMENTED with the method's name.
#include "agent/cri/grpc_services.h"

#include "absl/time/clock.h"
#include "agent/cri/api.h"

namespace berth {
namespace {

namespace v1 = runtime::v1;

// A unary RPC CriService implements.
#define BERTH_CRI_UNARY(Method)                                                              \
  grpc::Status Method(grpc::ServerContext*, const v1::Method##Request* request,              \
                      v1::Method##Response* response) override {                             \
    return boundary_.Unary(kPrefix + #Method, *request, response,                            \
                           [this](const v1::Method##Request& r) { return cri_.Method(r); }); \
  }

// A unary RPC Berth does not serve yet.
#define BERTH_CRI_UNBUILT(Method)                                                           \
  grpc::Status Method(grpc::ServerContext*, const v1::Method##Request* request,             \
                      v1::Method##Response* response) override {                            \
    const std::string name = kPrefix + #Method;                                             \
    return boundary_.Unary(                                                                 \
        name, *request,                                                                     \
        response, [&](const v1::Method##Request&) -> absl::StatusOr<v1::Method##Response> { \
          return NotImplemented(name);                                                      \
        });                                                                                 \
  }

// A server-streaming RPC Berth does not serve yet.
#define BERTH_CRI_UNBUILT_STREAM(Method, Request, Response)                                        \
  grpc::Status Method(grpc::ServerContext*, const v1::Request*, grpc::ServerWriter<v1::Response>*) \
      override {                                                                                   \
    const std::string name = kPrefix + #Method;                                                    \
    return boundary_.Finish(name, absl::Now(), NotImplemented(name));                              \
  }

class RuntimeService final : public v1::RuntimeService::Service {
 public:
  RuntimeService(CriService& cri, RpcBoundary& boundary) : cri_(cri), boundary_(boundary) {}

  BERTH_CRI_UNARY(Version)
  BERTH_CRI_UNARY(RunPodSandbox)
  BERTH_CRI_UNARY(StopPodSandbox)
  BERTH_CRI_UNARY(RemovePodSandbox)
  BERTH_CRI_UNARY(PodSandboxStatus)
  BERTH_CRI_UNARY(ListPodSandbox)
  BERTH_CRI_UNBUILT_STREAM(StreamPodSandboxes, StreamPodSandboxesRequest,
                           StreamPodSandboxesResponse)
  BERTH_CRI_UNARY(CreateContainer)
  BERTH_CRI_UNARY(StartContainer)
  BERTH_CRI_UNARY(StopContainer)
  BERTH_CRI_UNARY(RemoveContainer)
  BERTH_CRI_UNARY(ListContainers)
  BERTH_CRI_UNBUILT_STREAM(StreamContainers, StreamContainersRequest, StreamContainersResponse)
  BERTH_CRI_UNARY(ContainerStatus)
  BERTH_CRI_UNARY(UpdateContainerResources)
  BERTH_CRI_UNARY(ReopenContainerLog)
  BERTH_CRI_UNARY(ExecSync)
  BERTH_CRI_UNARY(Exec)
  BERTH_CRI_UNARY(Attach)
  BERTH_CRI_UNARY(PortForward)
  BERTH_CRI_UNARY(ContainerStats)
  BERTH_CRI_UNARY(ListContainerStats)
  BERTH_CRI_UNBUILT_STREAM(StreamContainerStats, StreamContainerStatsRequest,
                           StreamContainerStatsResponse)
  BERTH_CRI_UNARY(PodSandboxStats)
  BERTH_CRI_UNARY(ListPodSandboxStats)
  BERTH_CRI_UNBUILT_STREAM(StreamPodSandboxStats, StreamPodSandboxStatsRequest,
                           StreamPodSandboxStatsResponse)
  BERTH_CRI_UNARY(UpdateRuntimeConfig)
  BERTH_CRI_UNARY(Status)
  BERTH_CRI_UNBUILT(CheckpointContainer)
  grpc::Status GetContainerEvents(grpc::ServerContext* context, const v1::GetEventsRequest* request,
                                  grpc::ServerWriter<v1::ContainerEventResponse>* writer) override {
    const std::string name = kPrefix + "GetContainerEvents";
    absl::Time start = absl::Now();
    if (absl::Status admitted = boundary_.Enter(); !admitted.ok()) {
      return boundary_.Finish(name, start, admitted);
    }
    // A long-lived stream: it does not hold up a graceful shutdown's drain.
    boundary_.Exit();
    absl::Status status = cri_.GetContainerEvents(
        *request, [writer](const v1::ContainerEventResponse& e) { return writer->Write(e); },
        [context] { return context->IsCancelled(); });
    return boundary_.Finish(name, start, status);
  }
  BERTH_CRI_UNARY(ListMetricDescriptors)
  BERTH_CRI_UNARY(ListPodSandboxMetrics)
  BERTH_CRI_UNBUILT_STREAM(StreamPodSandboxMetrics, StreamPodSandboxMetricsRequest,
                           StreamPodSandboxMetricsResponse)
  BERTH_CRI_UNARY(RuntimeConfig)
  BERTH_CRI_UNBUILT(UpdatePodSandboxResources)

 private:
  inline static const std::string kPrefix = std::string(kRuntimeServiceName) + "/";
  CriService& cri_;
  RpcBoundary& boundary_;
};

class ImageService final : public v1::ImageService::Service {
 public:
  ImageService(CriService& cri, RpcBoundary& boundary) : cri_(cri), boundary_(boundary) {}

  BERTH_CRI_UNARY(ListImages)
  BERTH_CRI_UNBUILT_STREAM(StreamImages, StreamImagesRequest, StreamImagesResponse)
  BERTH_CRI_UNARY(ImageStatus)
  // A pull ends when its client goes or its deadline passes (and when a
  // shutdown's grace ends: grpc::Server::Shutdown cancels the calls left).
  grpc::Status PullImage(grpc::ServerContext* context, const v1::PullImageRequest* request,
                         v1::PullImageResponse* response) override {
    images::Cancelled cancelled = [context] {
      return context->IsCancelled() || std::chrono::system_clock::now() > context->deadline();
    };
    return boundary_.Unary(
        kPrefix + "PullImage", *request, response,
        [&](const v1::PullImageRequest& r) { return cri_.PullImage(r, cancelled); });
  }
  BERTH_CRI_UNARY(RemoveImage)
  BERTH_CRI_UNARY(ImageFsInfo)

 private:
  inline static const std::string kPrefix = std::string(kImageServiceName) + "/";
  CriService& cri_;
  RpcBoundary& boundary_;
};

#undef BERTH_CRI_UNARY
#undef BERTH_CRI_UNBUILT
#undef BERTH_CRI_UNBUILT_STREAM

}  // namespace

std::unique_ptr<grpc::Service> NewRuntimeService(CriService& cri, RpcBoundary& boundary) {
  return std::make_unique<RuntimeService>(cri, boundary);
}

std::unique_ptr<grpc::Service> NewImageService(CriService& cri, RpcBoundary& boundary) {
  return std::make_unique<ImageService>(cri, boundary);
}

}  // namespace berth
