// The cAdvisor-compatible container_* families of every running container and
// pod, as Prometheus text: the targets (from the agent) are sampled
// (sampler.h) and written out (families.h, text_sink.h).
//
//   ContainerCollector collector(sampler, [&] { return Targets(); });
//   TextPage page = collector.Scrape();  // pieces; page.Join() for one string
//
// Read behind the scrape: a scrape answers with each target's values as read
// at or after the previous scrape began, so no value is older than one scrape
// interval, then reads every target again on a background thread for the next
// scrape. A target with no such values (new, or the first scrape, or a scrape
// more than `max_age` after the previous one) is read before answering. So a
// scrape of 500 containers costs the scraper the page's assembly, not 1000
// cgroups' worth of seq_file reads; and there is no housekeeping loop: an agent
// nobody scrapes reads nothing. `max_age` zero reads everything at scrape time.
// Targets are split across `threads` threads. A target whose cgroup is gone is
// skipped; a file that fails costs its series and sets container_scrape_error.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/families.h"
#include "metrics/sampler.h"
#include "metrics/text_sink.h"

namespace berth::metrics {

struct ContainerTarget {
  SampleTarget sample;
  TargetLabels labels;
};

using TargetLister = std::function<std::vector<ContainerTarget>()>;

struct CollectorOptions {
  int threads = 2;
  // Values read since the previous scrape began are served if that scrape was
  // at most this long ago; zero: every scrape reads everything first.
  absl::Duration max_age = absl::Minutes(1);
};

class ContainerCollector {
 public:
  ContainerCollector(Sampler& sampler, TargetLister lister, CollectorOptions options = {})
      : sampler_(sampler), lister_(std::move(lister)), options_(options) {}
  // Waits for a background read in progress.
  ~ContainerCollector();

  // The page, after `head` (the agent's own families); it holds on to the
  // targets' text it refers to.
  TextPage Scrape(TextPage head = {});
  // Returns once no read behind a scrape is running (tests).
  void AwaitReadBehind();

 private:
  // One target's series as last read.
  struct Entry {
    TextSink sink;
    absl::Time at;
    bool error = false;
  };
  using Entries = std::vector<std::shared_ptr<const Entry>>;
  // Samples targets[i] for every i in `which` on up to options_.threads
  // threads; null for a target that is gone.
  Entries Read(const std::vector<ContainerTarget>& targets, const std::vector<size_t>& which);
  // The background read after a scrape that served earlier values.
  void ReadBehind(std::vector<ContainerTarget> targets);
  // keys[which[i]] gets read[i] (keys: Key() of each listed target).
  void Store(const std::vector<std::string>& keys, const std::vector<size_t>& which,
             const Entries& read, bool add) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs the first read error of a scrape, at most once a minute: a file that
  // keeps failing must not flood the log at every scrape.
  void LogError(const std::string& id, const absl::Status& error) const;

  Sampler& sampler_;
  TargetLister lister_;
  const CollectorOptions options_;
  absl::Mutex mu_;
  // By target key (cgroup path, id, name).
  std::map<std::string, std::shared_ptr<const Entry>> entries_ ABSL_GUARDED_BY(mu_);
  absl::Time last_scrape_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration last_read_ ABSL_GUARDED_BY(mu_);  // all targets, the last time
  bool reading_ ABSL_GUARDED_BY(mu_) = false;      // a ReadBehind is running
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread behind_;
  mutable absl::Mutex log_mu_;
  mutable absl::Time last_log_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
};

}  // namespace berth::metrics
