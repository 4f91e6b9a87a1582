#include "metrics/collector.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "os/log.h"

namespace berth::metrics {
namespace {

// Fewer targets than this are read on the calling thread alone.
constexpr size_t kTargetsPerThread = 32;

std::string Key(const ContainerTarget& t) {
  return absl::StrCat(t.sample.cgroup_path, "\n", t.labels.id, "\n", t.labels.name);
}

std::vector<std::string> Keys(const std::vector<ContainerTarget>& targets) {
  std::vector<std::string> keys;
  keys.reserve(targets.size());
  for (const ContainerTarget& t : targets) keys.push_back(Key(t));
  return keys;
}

}  // namespace

ContainerCollector::~ContainerCollector() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (behind_.joinable()) behind_.join();
}

void ContainerCollector::AwaitReadBehind() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](bool* reading) { return !*reading; }, &reading_));
}

void ContainerCollector::LogError(const std::string& id, const absl::Status& error) const {
  {
    absl::MutexLock l(&log_mu_);
    const absl::Time now = absl::Now();
    if (now - last_log_ < absl::Minutes(1)) return;
    last_log_ = now;
  }
  BERTH_LOG(WARNING) << "metrics of " << id << ": " << error
                     << " (further read errors within a minute are not logged)";
}

ContainerCollector::Entries ContainerCollector::Read(const std::vector<ContainerTarget>& targets,
                                                     const std::vector<size_t>& which) {
  const size_t n = which.size();
  Entries out(n);
  const size_t threads = std::max<size_t>(
      1,
      std::min<size_t>(static_cast<size_t>(std::max(1, options_.threads)), n / kTargetsPerThread));
  // Thread t takes a contiguous share.
  auto work = [&](size_t t) {
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
      const ContainerTarget& target = targets[which[i]];
      auto entry = std::make_shared<Entry>();
      entry->at = absl::Now();  // before the read: its values are no older
      absl::StatusOr<ContainerSample> sample = sampler_.Sample(target.sample);
      if (!sample.ok()) {
        // Gone between listing and reading: the container exited and was cleaned up.
        if (sample.status().code() == absl::StatusCode::kNotFound) continue;
        LogError(target.labels.id, sample.status());
        entry->error = true;
        out[i] = std::move(entry);
        continue;
      }
      for (const absl::Status& e : sample->cgroup.errors) {
        LogError(target.labels.id, e);
        entry->error = true;
      }
      entry->sink.SetTarget(target.labels);
      EmitSamples(*sample, entry->at, entry->sink);
      out[i] = std::move(entry);
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work, t);
  work(0);
  for (std::thread& h : helpers) h.join();
  return out;
}

void ContainerCollector::Store(const std::vector<std::string>& keys,
                               const std::vector<size_t>& which, const Entries& read, bool add) {
  for (size_t i = 0; i < which.size(); ++i) {
    auto it = entries_.find(keys[which[i]]);
    // A read behind adds no target (a later scrape may have dropped it); and
    // no read replaces a newer one: a scrape's reads and a read behind may
    // finish in either order.
    if (read[i] == nullptr) {
      if (it != entries_.end()) entries_.erase(it);
    } else if (it == entries_.end()) {
      if (add) entries_.emplace(keys[which[i]], read[i]);
    } else if (it->second->at < read[i]->at) {
      it->second = read[i];
    }
  }
}

void ContainerCollector::ReadBehind(std::vector<ContainerTarget> targets) {
  const absl::Time start = absl::Now();
  const std::vector<std::string> keys = Keys(targets);
  std::vector<size_t> all;
  {
    // Not a target a later scrape dropped: its files would be opened again.
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (entries_.count(keys[i]) > 0) all.push_back(i);
    }
  }
  Entries read = Read(targets, all);
  absl::MutexLock l(&mu_);
  last_read_ = absl::Now() - start;
  // Only targets the latest scrape still listed: one removed meanwhile stays gone.
  Store(keys, all, read, /*add=*/false);
  reading_ = false;
}

TextPage ContainerCollector::Scrape(TextPage head) {
  const std::vector<ContainerTarget> targets = lister_();
  const std::vector<std::string> keys = Keys(targets);
  const absl::Time start = absl::Now();
  Entries use(targets.size());
  std::vector<size_t> missing;
  {
    absl::MutexLock l(&mu_);
    // Values read at or after the previous scrape began are at most one
    // scrape interval old.
    const absl::Time fresh_after =
        options_.max_age > absl::ZeroDuration() && start - last_scrape_ <= options_.max_age
            ? last_scrape_
            : absl::InfiniteFuture();
    last_scrape_ = start;
    for (size_t i = 0; i < targets.size(); ++i) {
      auto it = entries_.find(keys[i]);
      if (it != entries_.end() && it->second->at >= fresh_after) {
        use[i] = it->second;
      } else {
        missing.push_back(i);
      }
    }
  }
  Entries read = Read(targets, missing);
  for (size_t i = 0; i < missing.size(); ++i) use[missing[i]] = read[i];

  std::vector<const TextSink*> sinks;
  sinks.reserve(use.size());
  bool error = false;
  for (const std::shared_ptr<const Entry>& e : use) {
    if (e == nullptr) continue;
    sinks.push_back(&e->sink);
    error = error || e->error;
  }
  // Cached file handles of targets that are gone are closed.
  std::set<std::string> live;
  for (const ContainerTarget& t : targets) live.insert(t.sample.cgroup_path);
  sampler_.Retain(live);

  absl::Duration last_read;
  {
    absl::MutexLock l(&mu_);
    // Entries of targets no longer listed go; this scrape's reads are kept.
    const std::set<absl::string_view> listed(keys.begin(), keys.end());
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = listed.count(it->first) > 0 ? std::next(it) : entries_.erase(it);
    }
    Store(keys, missing, read, /*add=*/true);
    if (missing.size() == targets.size()) last_read_ = absl::Now() - start;
    // Served earlier values: read everything again for the next scrape.
    if (missing.size() < targets.size() && !reading_ && !stopping_) {
      if (behind_.joinable()) behind_.join();  // finished: reading_ is false
      reading_ = true;
      behind_ = std::thread(&ContainerCollector::ReadBehind, this, targets);
    }
    last_read = last_read_;
  }
  std::string tail =
      "# HELP berth_container_metrics_read_seconds Time the last read of every container's "
      "and pod's cgroup and /proc files took.\n"
      "# TYPE berth_container_metrics_read_seconds gauge\n"
      "berth_container_metrics_read_seconds ";
  AppendValue(absl::ToDoubleSeconds(last_read), tail);
  tail.push_back('\n');
  TextPage out = TextSink::Compose(std::move(head), sinks, error, std::move(tail));
  for (std::shared_ptr<const Entry>& e : use) {
    if (e != nullptr) out.keep.push_back(std::move(e));
  }
  return out;
}

}  // namespace berth::metrics
