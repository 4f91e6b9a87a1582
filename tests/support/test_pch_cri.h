// Precompiled for the test targets that speak CRI or build shim specs
// (berth_cc_test PCH cri): test_pch.h plus the generated CRI and shim headers
// and gRPC's, ~10 s of each such file's compile when parsed per file.
#pragma once

#include "tests/support/test_pch.h"

#include <grpcpp/grpcpp.h>

#include "agent/cri/api.h"
#include "shim/v1/shim.pb.h"
#include "tests/support/berthd_process.h"
