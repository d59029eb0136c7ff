// Paths for tests: the shared fixtures, the source tree, a scratch directory per test.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace vardp::test {

inline std::string shared_dir() {
  const char* env = std::getenv("VARDP_SHARED_DIR");
  return env ? env : VARDP_SHARED_DIR;
}
inline std::string fixture(const std::string& rel) { return shared_dir() + "/fixtures/" + rel; }
inline std::string source_dir() {
  const char* env = std::getenv("VARDP_SOURCE_DIR");
  return env ? env : VARDP_SOURCE_DIR;
}

// A fresh directory for the running test, removed when the object dies (kept if
// VARDP_KEEP_TEST_TMP is set).
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
    const char* base = std::getenv("VARDP_TEST_TMP");
    path_ = std::filesystem::path(base ? base : std::filesystem::temp_directory_path().string()) /
            (name + "." + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    if (!std::getenv("VARDP_KEEP_TEST_TMP")) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace vardp::test
