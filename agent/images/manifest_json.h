// Checked access to JSON documents for the manifest and config parsers
// (internal to agent/images). nlohmann::json is used with exceptions off:
// parse() with allow_exceptions=false, and every field is type-checked before it
// is read, so no accessor can throw. Each error names the field by its path in
// the document, `layers[2].digest: must be a string`; a JSON `null` counts as
// absent, as Docker writes `"Cmd": null` for an unset field.
//
//   BERTH_ASSIGN_OR_RETURN(Json doc, ParseJsonObject(text));
//   BERTH_ASSIGN_OR_RETURN(std::string os, RequiredString(doc, "os", ""));
//   BERTH_ASSIGN_OR_RETURN(int64_t size, RequiredInt64(doc["config"], "size", "config"));
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/images/digest.h"
#include "nlohmann/json.hpp"

namespace berth::images::internal {

using Json = nlohmann::json;

// Parses `text`, which must hold one JSON object. Malformed JSON is
// INVALID_ARGUMENT with the byte offset and the parser's complaint.
absl::StatusOr<Json> ParseJsonObject(absl::string_view text);

// "prefix.key", or "key" at the top (prefix "").
std::string FieldPath(absl::string_view prefix, absl::string_view key);
// "prefix[i]".
std::string ElementPath(absl::string_view prefix, size_t i);
// INVALID_ARGUMENT "path: why".
absl::Status FieldError(absl::string_view path, absl::string_view why);

// The member `key` of `object`, or nullptr when it is absent or null.
const Json* Member(const Json& object, absl::string_view key);

absl::StatusOr<std::string> RequiredString(const Json& object, absl::string_view key,
                                           absl::string_view prefix);
// "" when absent.
absl::StatusOr<std::string> OptionalString(const Json& object, absl::string_view key,
                                           absl::string_view prefix);
// An integer in [min, INT64_MAX]; 1.0 or "1" is not one.
absl::StatusOr<int64_t> RequiredInt64(const Json& object, absl::string_view key,
                                      absl::string_view prefix, int64_t min);
absl::StatusOr<Digest> RequiredDigest(const Json& object, absl::string_view key,
                                      absl::string_view prefix);
// Empty when absent.
absl::StatusOr<std::vector<std::string>> OptionalStringArray(const Json& object,
                                                             absl::string_view key,
                                                             absl::string_view prefix);
absl::StatusOr<std::map<std::string, std::string>> OptionalStringMap(const Json& object,
                                                                     absl::string_view key,
                                                                     absl::string_view prefix);
// The keys of an object whose values carry no data (`"ExposedPorts": {"80/tcp": {}}`).
absl::StatusOr<std::vector<std::string>> OptionalObjectKeys(const Json& object,
                                                            absl::string_view key,
                                                            absl::string_view prefix);
// The member as an object (nullptr when absent); an error when it is another type.
absl::StatusOr<const Json*> OptionalObject(const Json& object, absl::string_view key,
                                           absl::string_view prefix);

}  // namespace berth::images::internal
