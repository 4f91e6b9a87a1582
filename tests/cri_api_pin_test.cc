// Pins every name and number our CRI v1 proto declares: services, methods with
// their types and streaming, messages with each field's number, label and type,
// enums with each value. Any change to proto/runtime/v1/api.proto that moves a
// number or renames a thing breaks wire compatibility with kubelet and crictl,
// and fails here.
//
// The pin file was checked line by line against a dump of upstream's
// k8s.io/cri-api api.proto made the same way (see the file's header). To append
// what upstream appends, run with BERTH_UPDATE_PINS=1 and review the diff.
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "agent/cri/api.h"
#include "google/protobuf/descriptor.h"

namespace berth {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

constexpr char kPinFile[] = BERTH_SOURCE_DIR "/tests/fixtures/cri_v1_api.pin";

std::string FieldType(const FieldDescriptor& f) {
  if (f.is_map()) {
    return "map<" + FieldType(*f.message_type()->map_key()) + "," +
           FieldType(*f.message_type()->map_value()) + ">";
  }
  switch (f.type()) {
    case FieldDescriptor::TYPE_MESSAGE:
      return f.message_type()->full_name();
    case FieldDescriptor::TYPE_ENUM:
      return f.enum_type()->full_name();
    default:
      return f.type_name();
  }
}

void DumpEnum(const EnumDescriptor& e, std::set<std::string>& out) {
  for (int i = 0; i < e.value_count(); ++i) {
    out.insert("enum " + e.full_name() + " " + e.value(i)->name() + " = " +
               std::to_string(e.value(i)->number()));
  }
}

void DumpMessage(const Descriptor& m, std::set<std::string>& out) {
  if (m.options().map_entry()) return;  // described by the map field itself
  out.insert("message " + m.full_name());
  for (int i = 0; i < m.field_count(); ++i) {
    const FieldDescriptor& f = *m.field(i);
    std::string label = f.is_map() ? "" : f.is_repeated() ? "repeated " : "";
    std::string oneof =
        f.real_containing_oneof() ? " oneof " + f.real_containing_oneof()->name() : "";
    out.insert("field " + m.full_name() + "." + f.name() + " = " + std::to_string(f.number()) +
               " " + label + FieldType(f) + oneof);
  }
  for (int i = 0; i < m.nested_type_count(); ++i) DumpMessage(*m.nested_type(i), out);
  for (int i = 0; i < m.enum_type_count(); ++i) DumpEnum(*m.enum_type(i), out);
}

std::string Dump(const FileDescriptor& file) {
  std::set<std::string> lines;
  lines.insert("package " + file.package());
  for (int i = 0; i < file.service_count(); ++i) {
    const auto& s = *file.service(i);
    for (int j = 0; j < s.method_count(); ++j) {
      const auto& m = *s.method(j);
      lines.insert("rpc " + s.full_name() + "." + m.name() + "(" +
                   (m.client_streaming() ? "stream " : "") + m.input_type()->full_name() +
                   ") returns (" + (m.server_streaming() ? "stream " : "") +
                   m.output_type()->full_name() + ")");
    }
  }
  for (int i = 0; i < file.message_type_count(); ++i) DumpMessage(*file.message_type(i), lines);
  for (int i = 0; i < file.enum_type_count(); ++i) DumpEnum(*file.enum_type(i), lines);
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

std::string PinBody(const std::string& text) {
  std::istringstream in(text);
  std::string line, body;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') body += line + "\n";
  }
  return body;
}

TEST(CriApiPinTest, EveryNameAndNumberMatchesThePinFile) {
  const FileDescriptor* file = runtime::v1::VersionRequest::descriptor()->file();
  std::string dump = Dump(*file);
  if (std::getenv("BERTH_UPDATE_PINS") != nullptr) {
    std::ofstream out(kPinFile);
    out << "# CRI v1 (runtime.v1) names and numbers, pinned by tests/cri_api_pin_test.cc.\n"
        << "# Checked against upstream k8s.io/cri-api api.proto (kubernetes/kubernetes\n"
        << "# 0268656aec06fe837312d7ec3051e6b7f3dc6cde, the v1.36 line) dumped the same way.\n"
        << dump;
    GTEST_SKIP() << "wrote " << kPinFile;
  }
  std::ifstream in(kPinFile);
  ASSERT_TRUE(in.good()) << "missing " << kPinFile;
  std::stringstream pinned;
  pinned << in.rdbuf();
  std::string want = PinBody(pinned.str());
  // Line by line so a failure names the line that moved.
  std::istringstream a(want), b(dump);
  std::set<std::string> want_lines, got_lines;
  for (std::string l; std::getline(a, l);) want_lines.insert(l);
  for (std::string l; std::getline(b, l);) got_lines.insert(l);
  for (const std::string& l : want_lines) {
    EXPECT_TRUE(got_lines.count(l)) << "pinned but no longer declared: " << l;
  }
  for (const std::string& l : got_lines) {
    EXPECT_TRUE(want_lines.count(l)) << "declared but not pinned: " << l;
  }
}

TEST(CriApiPinTest, BothServicesAreComplete) {
  const FileDescriptor* file = runtime::v1::VersionRequest::descriptor()->file();
  ASSERT_NE(file->FindServiceByName("RuntimeService"), nullptr);
  ASSERT_NE(file->FindServiceByName("ImageService"), nullptr);
  EXPECT_EQ(file->FindServiceByName("RuntimeService")->method_count(), 35);
  EXPECT_EQ(file->FindServiceByName("ImageService")->method_count(), 6);
}

}  // namespace
}  // namespace berth
