// Start-up after berthd was killed, or after a reboot (DESIGN.md, Agent
// restart, Host reboot): every record is loaded and made true again.
//
//   sandbox / container CREATING   a create cut in half: rolled back
//   REMOVING                       a remove cut in half: finished
//   container CREATED / RUNNING    the shim is asked over its socket: alive,
//                                  it is watched again (re-adopted); gone, its
//                                  exit file tells how init ended; neither
//                                  (a reboot emptied /run): exited, 255, Unknown;
//                                  not answering in 1 s: kept and watched
//                                  (all shims are asked at once)
//   sandbox RUNNING                its pinned network namespace must still be
//                                  there; after a reboot it is not: NOTREADY
// Leftovers without a record (a container dir whose create never got to save
// its record) are removed too.
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "agent/rootfs/overlay.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"
#include "shim/exit_file.h"

namespace berth {
namespace {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

// Shims asked at once at start-up, and how long each may take to answer.
constexpr size_t kRecoverParallel = 32;
constexpr absl::Duration kRecoverShimTimeout = absl::Seconds(1);

bool Exists(const std::string& path) {
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::Status CriService::Recover() {
  BERTH_ASSIGN_OR_RETURN(lifecycle::RuntimeStore::Loaded loaded, store_->Load());
  std::set<std::string> container_ids, sandbox_ids;
  for (st::Sandbox& r : loaded.sandboxes) {
    sandbox_ids.insert(r.id());
    (void)registry_.Reserve(r.name(), r.id());
    registry_.Add(std::make_shared<lifecycle::SandboxObject>(std::move(r)));
  }
  // Rows that do not parse are left as they are and said in Status; their
  // containers' directories are theirs still (not leftovers).
  for (const std::string& u : loaded.unreadable) BERTH_LOG(ERROR) << "state: " << u << ", skipped";
  for (const std::string& id : loaded.unreadable_container_ids) container_ids.insert(id);
  {
    absl::MutexLock lock(&unreadable_mu_);
    unreadable_ = loaded.unreadable;
  }
  std::vector<std::shared_ptr<lifecycle::ContainerObject>> containers;
  for (st::Container& r : loaded.containers) {
    container_ids.insert(r.id());
    (void)registry_.Reserve(r.name(), r.id());
    auto c = std::make_shared<lifecycle::ContainerObject>(std::move(r));
    registry_.Add(c);
    containers.push_back(std::move(c));
  }
  int adopted = 0, exited = 0, undone = 0;
  // Every live shim is asked for its state at once, each with a short
  // deadline (a shim stuck on a child a hostile container stopped must not
  // hold up the node's start-up), a few dozen at a time.
  std::vector<std::optional<absl::StatusOr<shim::v1::Response>>> states(containers.size());
  for (size_t base = 0; base < containers.size(); base += kRecoverParallel) {
    std::vector<std::future<void>> jobs;
    for (size_t i = base; i < std::min(containers.size(), base + kRecoverParallel); ++i) {
      st::Container r = Snapshot(*containers[i]);
      if (r.phase() != st::CREATED && r.phase() != st::RUNNING) continue;
      jobs.push_back(std::async(std::launch::async, [&states, i, bundle = r.bundle()] {
        states[i] =
            shim::CallShim(bundle + "/shim.sock", shim::StateRequest(), kRecoverShimTimeout);
      }));
    }
    for (std::future<void>& j : jobs) j.get();
  }
  for (size_t i = 0; i < containers.size(); ++i) {
    const auto& c = containers[i];
    absl::MutexLock op(&c->op_mu);
    st::Container r = Snapshot(*c);
    if (r.phase() == st::CREATING || r.phase() == st::REMOVING) {
      absl::Status s = DestroyContainer(*c);
      if (!s.ok()) BERTH_LOG(ERROR) << "recover container " << r.id() << ": " << s;
      ++undone;
      continue;
    }
    if (r.phase() != st::CREATED && r.phase() != st::RUNNING) continue;
    const absl::StatusOr<shim::v1::Response>& st = *states[i];
    // Alive but not answering: kept as it was and watched like a live one;
    // its exit is recorded when the shim gets to it.
    const bool unresponsive = !st.ok() && st.status().code() == absl::StatusCode::kDeadlineExceeded;
    if (unresponsive) {
      BERTH_LOG(WARNING) << "container " << r.id() << ": shim unresponsive at start-up ("
                         << st.status() << "); kept " << st::Phase_Name(r.phase())
                         << " and watched";
      absl::MutexLock lock(&c->mu);
      c->unresponsive = std::string(st.status().message());
    }
    if (unresponsive || (st.ok() && st->state().state() != shim::v1::STOPPED)) {
      if (st.ok() && st->state().state() == shim::v1::RUNNING && r.phase() == st::CREATED) {
        // Started, but berthd died before it saved so.
        (void)Update(*c, [&](st::Container& rec) {
          rec.set_phase(st::RUNNING);
          rec.set_started_at_ns(st->state().started_at_ns());
        });
      }
      absl::Status watched = WatchExit(c);
      if (watched.ok()) {
        ++adopted;
        continue;
      }
      OnExit(*c, watched);
    } else if (st.ok()) {
      OnExit(*c, st->state().exit());
    } else {
      OnExit(*c, st.status());
    }
    ++exited;
  }
  for (const auto& s : registry_.Sandboxes()) {
    absl::MutexLock op(&s->op_mu);
    st::Sandbox r = Snapshot(*s);
    if (r.phase() == st::CREATING || r.phase() == st::REMOVING) {
      absl::Status st = DestroySandbox(*s);
      if (!st.ok()) BERTH_LOG(ERROR) << "recover sandbox " << r.id() << ": " << st;
      ++undone;
      continue;
    }
    if (r.phase() != st::RUNNING) continue;
    bool alive = r.net_ns().empty() || Exists(r.net_ns());
    if (alive && !r.pause_bundle().empty()) {
      absl::StatusOr<shim::v1::Response> pause = shim::CallShim(
          r.pause_bundle() + "/shim.sock", shim::StateRequest(), kRecoverShimTimeout);
      // A pause shim that does not answer is alive: only a gone one tears the pod down.
      alive = pause.ok() || pause.status().code() == absl::StatusCode::kDeadlineExceeded;
    }
    if (!alive) {
      absl::Status st = TeardownSandbox(*s);
      if (!st.ok()) BERTH_LOG(WARNING) << "recover sandbox " << r.id() << ": " << st;
      (void)Update(*s, [](st::Sandbox& rec) { rec.set_phase(st::STOPPED); });
    }
  }
  // Directories no record names: a create that died before its record was
  // saved cannot have made them (the record comes first), so these are from
  // a database that lost its last writes; nothing else can own them.
  for (const std::string& dir :
       {options_.root_dir + "/containers", options_.state_dir + "/containers"}) {
    absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
    if (!names.ok()) continue;
    for (const std::string& id : *names) {
      if (container_ids.count(id)) continue;
      std::string path = absl::StrCat(dir, "/", id);
      BERTH_LOG(WARNING) << "removing `" << path << "`: no container record names it";
      (void)shim::CallShim(path + "/shim.sock", shim::DeleteRequest(), kRecoverShimTimeout);
      (void)rootfs::RemoveContainerRootfs(path);
      (void)RemoveTree(path);
    }
  }
  BERTH_LOG(INFO) << "recovered " << loaded.sandboxes.size() << " sandboxes and "
                  << loaded.containers.size() << " containers: " << adopted << " shims re-adopted, "
                  << exited << " exited while berthd was away, " << undone
                  << " half-done operations finished or undone";
  return absl::OkStatus();
}

}  // namespace berth
