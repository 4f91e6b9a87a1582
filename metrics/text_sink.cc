#include "metrics/text_sink.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace berth::metrics {

void AppendLabelValue(absl::string_view value, std::string& out) {
  if (value.find_first_of("\\\"\n") == absl::string_view::npos) {
    out.append(value.data(), value.size());
    return;
  }
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
}

void AppendValue(double value, std::string& out) {
  if (std::isnan(value)) {
    out.append("NaN");
  } else if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    absl::StrAppend(&out, static_cast<int64_t>(value));
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    out.append(buf, end);
  }
}

TextSink::TextSink() : families_(kFamilyCount) {}

void TextSink::SetTarget(const TargetLabels& labels) {
  base_.clear();
  auto values = labels.Values();
  for (int i = 0; i < kBaseLabelCount; ++i) {
    if (i > 0) base_.push_back(',');
    base_.append(kBaseLabels[i]);
    base_.append("=\"");
    AppendLabelValue(values[i], base_);
    base_.push_back('"');
  }
}

void TextSink::Add(Family family, double value, std::initializer_list<absl::string_view> extra) {
  const FamilySpec& spec = Spec(family);
  std::string& out = families_[static_cast<int>(family)];
  out.append(spec.name);
  out.push_back('{');
  out.append(base_);
  size_t i = 0;
  for (absl::string_view v : extra) {
    if (i >= spec.extra_labels.size()) break;
    out.push_back(',');
    out.append(spec.extra_labels[i++]);
    out.append("=\"");
    AppendLabelValue(v, out);
    out.push_back('"');
  }
  out.append("} ");
  AppendValue(value, out);
  out.push_back('\n');
}

std::string TextSink::Finish(bool scrape_error) && {
  return Compose(TextPage(), {this}, scrape_error).Join();
}

size_t TextPage::size() const {
  size_t n = 0;
  for (absl::string_view p : pieces) n += p.size();
  return n;
}

std::string TextPage::Join() const {
  std::string out;
  out.reserve(size());
  for (absl::string_view p : pieces) out.append(p.data(), p.size());
  return out;
}

TextPage TextSink::Compose(TextPage head, const std::vector<const TextSink*>& sinks,
                           bool scrape_error, std::string tail) {
  TextPage page = std::move(head);
  for (int i = 0; i < kFamilyCount; ++i) {
    bool any = false;
    for (const TextSink* sink : sinks) any = any || !sink->families_[i].empty();
    if (!any) continue;
    const FamilySpec& spec = Spec(static_cast<Family>(i));
    page.Add(absl::StrCat("# HELP ", spec.name, " ", spec.help, "\n# TYPE ", spec.name,
                          spec.type == MetricType::kCounter ? " counter\n" : " gauge\n"));
    for (const TextSink* sink : sinks) {
      if (!sink->families_[i].empty()) page.pieces.push_back(sink->families_[i]);
    }
  }
  page.Add(
      absl::StrCat("# HELP container_scrape_error 1 if there was an error while getting container "
                   "metrics, 0 otherwise\n# TYPE container_scrape_error gauge\n"
                   "container_scrape_error ",
                   scrape_error ? 1 : 0, "\n", tail));
  return page;
}

}  // namespace berth::metrics
