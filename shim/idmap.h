// uid_map / gid_map of a new user namespace (user_namespaces(7), "User and group
// ID mappings"). Written once, by the parent, after clone() and before the
// child goes on. /proc/<pid>/setgroups gets "deny" only when the writer lacks
// CAP_SETGID in the parent namespace (an unprivileged shim): then the kernel
// requires it, and the container cannot use setgroups(2).
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

// "0 100000 65536\n" lines; INVALID_ARGUMENT for an empty or zero-sized map.
absl::StatusOr<std::string> FormatIdMap(
    const google::protobuf::RepeatedPtrField<v1::IdMapping>& mappings, absl::string_view field);

absl::Status WriteIdMaps(pid_t pid, const google::protobuf::RepeatedPtrField<v1::IdMapping>& uids,
                         const google::protobuf::RepeatedPtrField<v1::IdMapping>& gids);

}  // namespace berth::shim
