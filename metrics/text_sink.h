// TextSink: container_* samples written straight into Prometheus' text
// exposition format (version 0.0.4), one buffer per family, so a scrape of
// 500 containers (~40 000 series with 250-byte label sets) is a few memcpys
// rather than 40 000 prometheus::ClientMetric objects serialized a character
// at a time. (prometheus-cpp's TextSerializer writes every label value char by
// char into an ostream: 433 ms for 45 000 series here, against ~10 ms this way.)
//
//   TextSink sink;
//   sink.SetTarget(labels);
//   EmitSamples(sample, now, sink);
//   std::string page = std::move(sink).Finish(/*scrape_error=*/false);
#pragma once

#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "metrics/families.h"

namespace berth::metrics {

// A page of text in pieces, sent as they are (writev) rather than joined into
// one buffer: at 500 pods the container families are ~11 MB, most of it
// already in the targets' sinks kept from the last read.
struct TextPage {
  TextPage() = default;
  TextPage(std::string text) { Add(std::move(text)); }         // NOLINT: implicit
  TextPage(const char* text) : TextPage(std::string(text)) {}  // NOLINT: implicit
  // Moves keep the pieces valid (a deque's elements stay put); a copy would
  // point into the original's strings.
  TextPage(TextPage&&) = default;
  TextPage& operator=(TextPage&&) = default;
  TextPage(const TextPage&) = delete;
  TextPage& operator=(const TextPage&) = delete;
  void Add(std::string text) {
    owned.push_back(std::move(text));
    pieces.push_back(owned.back());
  }
  size_t size() const;
  std::string Join() const;

  std::vector<std::shared_ptr<const void>> keep;  // owners of pieces not in `owned`
  std::deque<std::string> owned;                  // a deque: pieces stay where they are
  std::vector<absl::string_view> pieces;
};

class TextSink : public SampleSink {
 public:
  TextSink();
  // The identity labels of the samples that follow.
  void SetTarget(const TargetLabels& labels);
  void Add(Family family, double value, std::initializer_list<absl::string_view> extra) override;
  // Every family with samples, with its HELP and TYPE lines, then
  // container_scrape_error (cAdvisor's: 1 when a read failed).
  std::string Finish(bool scrape_error) &&;
  // The page of several sinks: `head`, then each family's HELP and TYPE once
  // with every sink's samples of it in order, then container_scrape_error,
  // then `tail`. The sinks' text is referred to, not copied: they must outlive
  // the page (or be in its `keep`).
  static TextPage Compose(TextPage head, const std::vector<const TextSink*>& sinks,
                          bool scrape_error, std::string tail = "");

 private:
  std::vector<std::string> families_;
  std::string base_;  // `container="...",id="...",...` escaped
};

// Appends `value` escaped for a label value (\\, \", \n).
void AppendLabelValue(absl::string_view value, std::string& out);
// Appends a sample value: integers as integers, others in the shortest form
// that reads back exactly.
void AppendValue(double value, std::string& out);

}  // namespace berth::metrics
