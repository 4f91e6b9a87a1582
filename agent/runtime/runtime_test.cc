// Unit tests of the runtime's parts: the record store, the registry's names and
// id prefixes, the event hub's queues.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runtime/events.h"
#include "agent/runtime/objects.h"
#include "agent/runtime/store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::lifecycle {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<std::string> Schema() { return {kRuntimeSchemaV1}; }

TEST(RuntimeStoreTest, SavesLoadsAndDeletes) {
  testing::TempDir dir;
  {
    auto store = RuntimeStore::Open(dir.path() + "/db", Schema());
    ASSERT_THAT(store.status(), IsOk());
    state::Sandbox s;
    s.set_id("s1");
    s.set_phase(state::RUNNING);
    s.mutable_config()->mutable_metadata()->set_name("pod");
    ASSERT_THAT((*store)->SaveSandbox(s, 1), IsOk());
    state::Container c;
    c.set_id("c1");
    c.set_sandbox_id("s1");
    c.set_exit_code(3);
    ASSERT_THAT((*store)->SaveContainer(c, 1), IsOk());
    c.set_id("c2");
    ASSERT_THAT((*store)->SaveContainer(c, 1), IsOk());
    ASSERT_THAT((*store)->DeleteContainer("c2"), IsOk());
  }
  auto store = RuntimeStore::Open(dir.path() + "/db", Schema());
  ASSERT_THAT(store.status(), IsOk());
  auto loaded = (*store)->Load();
  ASSERT_THAT(loaded.status(), IsOk());
  ASSERT_THAT(loaded->sandboxes, SizeIs(1));
  EXPECT_EQ(loaded->sandboxes[0].config().metadata().name(), "pod");
  ASSERT_THAT(loaded->containers, SizeIs(1));
  EXPECT_EQ(loaded->containers[0].exit_code(), 3);
}

TEST(RuntimeStoreTest, AnOlderVersionNeverOverwritesANewerOne) {
  testing::TempDir dir;
  auto store = RuntimeStore::Open(dir.path() + "/db", Schema());
  ASSERT_THAT(store.status(), IsOk());
  state::Container c;
  c.set_id("c1");
  c.set_sandbox_id("s1");
  c.set_phase(state::STOPPED);
  ASSERT_THAT((*store)->SaveContainer(c, 5), IsOk());
  c.set_phase(state::RUNNING);
  ASSERT_THAT((*store)->SaveContainer(c, 4), IsOk());
  auto loaded = (*store)->Load();
  ASSERT_THAT(loaded.status(), IsOk());
  EXPECT_EQ(loaded->containers.at(0).phase(), state::STOPPED);
}

std::shared_ptr<SandboxObject> Sandbox(const std::string& id) {
  state::Sandbox s;
  s.set_id(id);
  return std::make_shared<SandboxObject>(s);
}

TEST(RegistryTest, FindsByUniquePrefixAndRefusesAmbiguousOnes) {
  Registry r;
  r.Add(Sandbox("abc123"));
  r.Add(Sandbox("abd456"));
  auto found = r.FindSandbox("abc", "pod_sandbox_id");
  ASSERT_THAT(found.status(), IsOk());
  EXPECT_EQ((*found)->id, "abc123");
  EXPECT_THAT(r.FindSandbox("ab", "pod_sandbox_id").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ambiguous")));
  EXPECT_THAT(r.FindSandbox("zz", "pod_sandbox_id").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("pod_sandbox_id")));
  EXPECT_THAT(r.FindSandbox("", "pod_sandbox_id").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  auto none = r.LookupSandbox("zz");
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_EQ(*none, nullptr);
}

TEST(RegistryTest, NamesAreReservedOnce) {
  Registry r;
  ASSERT_THAT(r.Reserve("pod_ns_uid_0", "a"), IsOk());
  EXPECT_THAT(r.Reserve("pod_ns_uid_0", "b"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("`a`")));
  r.Release("pod_ns_uid_0");
  EXPECT_THAT(r.Reserve("pod_ns_uid_0", "b"), IsOk());
}

TEST(NamesTest, FollowKubeletsShape) {
  ::runtime::v1::PodSandboxMetadata s;
  s.set_name("web");
  s.set_namespace_("default");
  s.set_uid("u1");
  s.set_attempt(2);
  ::runtime::v1::ContainerMetadata c;
  c.set_name("nginx");
  c.set_attempt(1);
  EXPECT_EQ(SandboxName(s), "web_default_u1_2");
  EXPECT_EQ(ContainerName(c, s), "nginx_web_default_u1_1");
  std::string id = NewId();
  EXPECT_EQ(id.size(), 64u);
  EXPECT_NE(id, NewId());
}

TEST(EventHubTest, EachSubscriberGetsEveryEventInOrder) {
  EventHub hub;
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  for (int i = 0; i < 3; ++i) {
    ::runtime::v1::ContainerEventResponse e;
    e.set_container_id(std::to_string(i));
    hub.Publish(e);
  }
  for (auto* sub : {a.get(), b.get()}) {
    for (int i = 0; i < 3; ++i) {
      auto e = sub->Next(absl::Seconds(1));
      ASSERT_THAT(e.status(), IsOk());
      ASSERT_TRUE(e->has_value());
      EXPECT_EQ((*e)->container_id(), std::to_string(i));
    }
    auto none = sub->Next(absl::Milliseconds(1));
    ASSERT_THAT(none.status(), IsOk());
    EXPECT_FALSE(none->has_value());
  }
  b.reset();
  EXPECT_EQ(hub.subscribers(), 1u);
}

TEST(EventHubTest, ASlowSubscriberIsCutOff) {
  EventHub hub;
  auto sub = hub.Subscribe();
  ::runtime::v1::ContainerEventResponse e;
  for (size_t i = 0; i <= EventHub::kMaxBacklog; ++i) hub.Publish(e);
  EXPECT_THAT(sub->Next(absl::Milliseconds(1)).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace berth::lifecycle
