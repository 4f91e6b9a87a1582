// Berth's records as CRI shows them (PodSandbox, PodSandboxStatus, Container,
// ContainerStatus) and the filters of the List calls. Pure functions of a
// record snapshot: no locks, no I/O.
#pragma once

#include "agent/cri/api.h"
#include "agent/runtime/store.h"

namespace berth {

runtime::v1::PodSandbox ToCriSandbox(const lifecycle::state::Sandbox& record);
runtime::v1::PodSandboxStatus ToCriSandboxStatus(const lifecycle::state::Sandbox& record);
runtime::v1::Container ToCriContainer(const lifecycle::state::Container& record);
runtime::v1::ContainerStatus ToCriContainerStatus(const lifecycle::state::Container& record);

runtime::v1::PodSandboxState CriState(const lifecycle::state::Sandbox& record);
runtime::v1::ContainerState CriState(const lifecycle::state::Container& record);

// CRI's label selector: every key present with exactly that value.
bool MatchesLabels(const google::protobuf::Map<std::string, std::string>& labels,
                   const google::protobuf::Map<std::string, std::string>& selector);

// A CRI timeout in seconds (StopContainer, ExecSync), clamped to ten years so
// that it converts to milliseconds or an absl::Duration without overflow.
inline int64_t ClampTimeoutSeconds(int64_t seconds) {
  return seconds < int64_t{315360000} ? seconds : int64_t{315360000};
}

// What an ExecSync with timeout 0 ("none" in CRI) gets: an hour.
inline constexpr int64_t kExecSyncNoTimeoutSeconds = 3600;

// The time now in nanoseconds since the epoch (CRI timestamps).
int64_t NowNs();

// The pod's own /dev/shm (a tmpfs its containers share): <files_dir>/shm.
// "" for a pod with the host's IPC namespace, whose containers get the host's
// /dev/shm instead, and for a record without files_dir.
std::string PodShmDir(const lifecycle::state::Sandbox& record);
bool HostIpc(const lifecycle::state::Sandbox& record);

}  // namespace berth
