// Stop signals by name, number and CRI enum.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runtime/container_spec.h"
#include "agent/runtime/container_spec_internal.h"
#include "tests/support/status_matchers.h"

namespace berth::lifecycle {
namespace {

namespace v1 = ::runtime::v1;
using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;

TEST(ParseSignalNameTest, Names) {
  const std::pair<const char*, int> cases[] = {
      {"SIGTERM", SIGTERM},
      {"term", SIGTERM},
      {"SigQuit", SIGQUIT},
      {"KILL", SIGKILL},
      {"9", 9},
      {" SIGHUP ", SIGHUP},
      {"SIGIOT", SIGABRT},
      {"SIGCLD", SIGCHLD},
      {"SIGPOLL", SIGIO},
      {"SIGWINCH", SIGWINCH},
      {"SIGRTMIN", 34},
      {"SIGRTMIN+3", 37},
      {"RTMAX-2", 62},
      {"SIGRTMINPLUS15", 49},
      {"SIGRTMAXMINUS1", 63},
      {"SIGRTMAX", 64},
      {"64", 64},
  };
  for (const auto& [name, want] : cases) {
    absl::StatusOr<int> got = ParseSignalName(name);
    ASSERT_THAT(got, IsOk()) << name;
    EXPECT_EQ(*got, want) << name;
  }
}

TEST(ParseSignalNameTest, Errors) {
  for (const char* bad : {"", "SIG", "SIGFOO", "0", "65", "-1", "RTMIN+31", "RTMAX+1", "RTMIN-1",
                          "RTMINPLUS", "TERM2"}) {
    EXPECT_THAT(ParseSignalName(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(CriSignalTest, EveryEnumValueIsASignalAndRoundTrips) {
  for (int v = 1; v1::Signal_IsValid(v); ++v) {
    absl::StatusOr<int> signal = internal::SignalFromCri(v);
    ASSERT_THAT(signal, IsOk()) << v;
    // The name CRI gives back names the same signal (aliases map to the first).
    absl::StatusOr<int> again = internal::SignalFromCri(ToCriSignal(*signal));
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(*again, *signal) << v1::Signal_Name(static_cast<v1::Signal>(v));
  }
  EXPECT_EQ(*internal::SignalFromCri(0), 0);
  EXPECT_THAT(internal::SignalFromCri(999), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CriSignalTest, EnumNumbersAreNotSignalNumbers) {
  v1::Signal term = v1::RUNTIME_DEFAULT;
  ASSERT_TRUE(v1::Signal_Parse("SIGTERM", &term));
  EXPECT_EQ(*internal::SignalFromCri(term), SIGTERM);
  EXPECT_EQ(ToCriSignal(SIGTERM), term);
  EXPECT_EQ(v1::Signal_Name(ToCriSignal(SIGABRT)), "SIGABRT");
  EXPECT_EQ(v1::Signal_Name(ToCriSignal(37)), "SIGRTMINPLUS3");
  EXPECT_EQ(ToCriSignal(32), v1::RUNTIME_DEFAULT);  // glibc's own: no CRI name
}

}  // namespace
}  // namespace berth::lifecycle
