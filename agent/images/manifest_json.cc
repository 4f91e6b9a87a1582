#include "agent/images/manifest_json.h"

#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace berth::images::internal {
namespace {

// A SAX consumer that only records why parsing stopped: nlohmann's non-throwing
// parse() says that the text is invalid but not where.
class ErrorRecorder : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    absl::string_view what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..."
    if (size_t end = what.find("] "); absl::StartsWith(what, "[json.") && end != what.npos) {
      what.remove_prefix(end + 2);
    }
    message = absl::StrCat("invalid JSON at byte ", position, ": ", what);
    return false;
  }

  std::string message = "invalid JSON";
};

const char* TypeName(const Json& j) { return j.type_name(); }

}  // namespace

absl::StatusOr<Json> ParseJsonObject(absl::string_view text) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    ErrorRecorder recorder;
    Json::sax_parse(text.begin(), text.end(), &recorder);
    return absl::InvalidArgumentError(recorder.message);
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("want a JSON object, got ", TypeName(doc)));
  }
  return doc;
}

std::string FieldPath(absl::string_view prefix, absl::string_view key) {
  return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", key);
}

std::string ElementPath(absl::string_view prefix, size_t i) {
  return absl::StrCat(prefix, "[", i, "]");
}

absl::Status FieldError(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

const Json* Member(const Json& object, absl::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> RequiredString(const Json& object, absl::string_view key,
                                           absl::string_view prefix) {
  const Json* v = Member(object, key);
  if (v == nullptr) return FieldError(FieldPath(prefix, key), "missing");
  if (!v->is_string()) {
    return FieldError(FieldPath(prefix, key), absl::StrCat("want a string, got ", TypeName(*v)));
  }
  return v->get<std::string>();
}

absl::StatusOr<std::string> OptionalString(const Json& object, absl::string_view key,
                                           absl::string_view prefix) {
  if (Member(object, key) == nullptr) return std::string();
  return RequiredString(object, key, prefix);
}

absl::StatusOr<int64_t> RequiredInt64(const Json& object, absl::string_view key,
                                      absl::string_view prefix, int64_t min) {
  const Json* v = Member(object, key);
  std::string path = FieldPath(prefix, key);
  if (v == nullptr) return FieldError(path, "missing");
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    auto u = v->get<Json::number_unsigned_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(path, absl::StrCat(u, " does not fit in int64"));
    }
    n = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<Json::number_integer_t>();
  } else {
    return FieldError(path, absl::StrCat("want an integer, got ", TypeName(*v)));
  }
  if (n < min) return FieldError(path, absl::StrCat(n, " is less than ", min));
  return n;
}

absl::StatusOr<Digest> RequiredDigest(const Json& object, absl::string_view key,
                                      absl::string_view prefix) {
  absl::StatusOr<std::string> text = RequiredString(object, key, prefix);
  if (!text.ok()) return text.status();
  absl::StatusOr<Digest> digest = Digest::Parse(*text);
  if (!digest.ok()) {
    // Keep INVALID_ARGUMENT even for an unknown algorithm: the document is bad.
    return FieldError(FieldPath(prefix, key), digest.status().message());
  }
  return digest;
}

absl::StatusOr<std::vector<std::string>> OptionalStringArray(const Json& object,
                                                             absl::string_view key,
                                                             absl::string_view prefix) {
  std::vector<std::string> out;
  const Json* v = Member(object, key);
  if (v == nullptr) return out;
  std::string path = FieldPath(prefix, key);
  if (!v->is_array()) return FieldError(path, absl::StrCat("want an array, got ", TypeName(*v)));
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) {
      return FieldError(ElementPath(path, i), absl::StrCat("want a string, got ", TypeName(e)));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> OptionalStringMap(const Json& object,
                                                                     absl::string_view key,
                                                                     absl::string_view prefix) {
  std::map<std::string, std::string> out;
  const Json* v = Member(object, key);
  if (v == nullptr) return out;
  std::string path = FieldPath(prefix, key);
  if (!v->is_object()) return FieldError(path, absl::StrCat("want an object, got ", TypeName(*v)));
  for (const auto& [k, value] : v->items()) {
    if (!value.is_string()) {
      return FieldError(absl::StrCat(path, "[\"", absl::CHexEscape(k), "\"]"),
                        absl::StrCat("want a string, got ", TypeName(value)));
    }
    out.emplace(k, value.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> OptionalObjectKeys(const Json& object,
                                                            absl::string_view key,
                                                            absl::string_view prefix) {
  std::vector<std::string> out;
  const Json* v = Member(object, key);
  if (v == nullptr) return out;
  if (!v->is_object()) {
    return FieldError(FieldPath(prefix, key), absl::StrCat("want an object, got ", TypeName(*v)));
  }
  for (const auto& [k, value] : v->items()) out.push_back(k);
  return out;
}

absl::StatusOr<const Json*> OptionalObject(const Json& object, absl::string_view key,
                                           absl::string_view prefix) {
  const Json* v = Member(object, key);
  if (v != nullptr && !v->is_object()) {
    return FieldError(FieldPath(prefix, key), absl::StrCat("want an object, got ", TypeName(*v)));
  }
  return v;
}

}  // namespace berth::images::internal
