// The remote listener: mutual TLS with certificates made here by the openssl
// command line. A client with a certificate signed by --tls-client-ca gets
// answers; one with no certificate, or one signed by another CA, is refused at
// the handshake. Plain TCP only on loopback, and only when asked for.
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include "agent/cri/api.h"
#include "os/files.h"
#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::BerthdProcess;
using ::berth::testing::IsOk;
using ::berth::testing::Shell;
using ::berth::testing::TempDir;
using ::testing::HasSubstr;

// Makes CA `ca` and, signed by it, a certificate `name` (key name.key, cert name.crt).
void MakeCa(const TempDir& dir, const std::string& ca) {
  ASSERT_EQ(Shell("cd " + dir.path() + " && openssl req -x509 -newkey ec -pkeyopt " +
                  "ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=" + ca + " -keyout " + ca +
                  ".key -out " + ca + ".crt 2>/dev/null"),
            0);
}

void MakeCert(const TempDir& dir, const std::string& ca, const std::string& name,
              const std::string& ext) {
  std::string cmd = "cd " + dir.path() + " && printf '" + ext + "' > " + name + ".ext" +
                    " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes " +
                    "-subj /CN=" + name + " -keyout " + name + ".key -out " + name +
                    ".csr 2>/dev/null && openssl x509 -req -in " + name + ".csr -CA " + ca +
                    ".crt -CAkey " + ca + ".key -CAcreateserial -days 1 -extfile " + name +
                    ".ext -out " + name + ".crt 2>/dev/null";
  ASSERT_EQ(Shell(cmd), 0) << cmd;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCa(certs_, "ca");
    MakeCa(certs_, "otherca");
    MakeCert(certs_, "ca", "server",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n");
    MakeCert(certs_, "ca", "client", "extendedKeyUsage=clientAuth\\n");
    MakeCert(certs_, "otherca", "intruder", "extendedKeyUsage=clientAuth\\n");
    port_ = ::berth::testing::PickFreePort();
    ASSERT_THAT(berthd_.Start({"--listen=127.0.0.1:" + std::to_string(port_),
                               "--tls-cert=" + certs_.Join("server.crt"),
                               "--tls-key=" + certs_.Join("server.key"),
                               "--tls-client-ca=" + certs_.Join("ca.crt")}),
                IsOk());
  }

  std::string Pem(const std::string& name) { return *ReadFile(certs_.Join(name)); }

  // Version over TLS, trusting our CA, presenting `client` (none when empty).
  grpc::Status Version(const std::string& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Pem("ca.crt");
    if (!client.empty()) {
      ssl.pem_private_key = Pem(client + ".key");
      ssl.pem_cert_chain = Pem(client + ".crt");
    }
    auto channel =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::SslCredentials(ssl));
    auto stub = runtime::v1::RuntimeService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    runtime::v1::VersionResponse response;
    grpc::Status s = stub->Version(&ctx, runtime::v1::VersionRequest(), &response);
    if (s.ok()) {
      EXPECT_EQ(response.runtime_name(), "berth");
    }
    return s;
  }

  TempDir certs_;
  TempDir dir_;
  BerthdProcess berthd_{dir_};
  int port_ = 0;
};

TEST_F(TlsTest, ClientWithCertificateFromTheCaGetsVersion) {
  grpc::Status s = Version("client");
  EXPECT_TRUE(s.ok()) << s.error_message() << "\n" << berthd_.Log();
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  grpc::Status s = Version("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, ClientWithCertificateFromAnotherCaIsRefused) {
  grpc::Status s = Version("intruder");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  auto stub = runtime::v1::RuntimeService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  runtime::v1::VersionResponse response;
  EXPECT_FALSE(stub->Version(&ctx, runtime::v1::VersionRequest(), &response).ok());
}

TEST(ListenFlagsTest, ListenWithoutTlsFilesIsRefused) {
  TempDir dir;
  BerthdProcess berthd(dir);
  absl::StatusOr<int> code = berthd.RunToExit({"--listen=127.0.0.1:0"});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(berthd.Log(), HasSubstr("--listen needs --tls-cert, --tls-key and --tls-client-ca"));
}

TEST(ListenFlagsTest, InsecureListenRefusedOffLoopback) {
  TempDir dir;
  BerthdProcess berthd(dir);
  absl::StatusOr<int> code = berthd.RunToExit({"--insecure-listen=0.0.0.0:0"});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(berthd.Log(), HasSubstr("plain TCP is allowed on loopback addresses only"));
  // Nothing half-made is left: the socket is gone, a new berthd starts at once.
  EXPECT_NE(::access(berthd.socket_path().c_str(), F_OK), 0);
}

TEST(ListenFlagsTest, InsecureListenOnLoopbackServesAndWarns) {
  TempDir dir;
  BerthdProcess berthd(dir);
  int port = ::berth::testing::PickFreePort();
  ASSERT_THAT(berthd.Start({"--insecure-listen=127.0.0.1:" + std::to_string(port)}), IsOk());
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = runtime::v1::RuntimeService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  runtime::v1::VersionResponse response;
  EXPECT_TRUE(stub->Version(&ctx, runtime::v1::VersionRequest(), &response).ok());
  EXPECT_THAT(berthd.Log(), HasSubstr(" W "));
  EXPECT_THAT(berthd.Log(), HasSubstr("PLAIN TCP without authentication"));
}

}  // namespace
}  // namespace berth
