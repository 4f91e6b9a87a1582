#include "tests/support/temp_dir.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace berth::testing {

TempDir::TempDir() {
  char templ[] = "/tmp/berth-test-XXXXXX";
  if (::mkdtemp(templ) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void WriteFileOrDie(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out.good()) {
    std::perror(path.c_str());
    std::abort();
  }
}

}  // namespace berth::testing
