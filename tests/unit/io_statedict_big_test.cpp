// Full-size loads (skipped unless VARDP_BIG_TESTS=1: they write GBs to VARDP_TEST_TMP):
//  * a VAR-d16-shaped torch.save file (official_shapes.json, 220 keys, ~1.24 GB) must load in
//    under 10 s with peak RSS under twice the file size; also timed: HDF5 write and read back;
//  * a > 4 GiB file (zip64 records) with a tensor stored beyond the 4 GiB offset.
// Both print their measurements (time, peak RSS from /proc VmHWM and getrusage).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/io/state_dict.hpp"

namespace vardp::test {
namespace {

bool big_tests() {
  const char* v = std::getenv("VARDP_BIG_TESTS");
  return v && std::string(v) == "1";
}

// kB value of a /proc/self/status line ("VmHWM:", "VmRSS:").
int64_t proc_status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size()));
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so the next reading is this load's peak.
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

int64_t rusage_maxrss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(IoStateDictBig, VarD16LoadsUnderTenSecondsAndTwiceTheFileSize) {
  if (!big_tests()) GTEST_SKIP() << "set VARDP_BIG_TESTS=1 to run (writes ~2.5 GB)";
  ScratchDir dir;
  const std::string pth = dir / "var_d16.pth";
  ASSERT_TRUE(run_python("make_pth_big.py", {pth, "var_d16"}));
  const double file_mb = static_cast<double>(std::filesystem::file_size(pth)) / 1e6;

  reset_peak_rss();
  const int64_t rss_before = proc_status_kb("VmRSS:");
  auto t0 = std::chrono::steady_clock::now();
  io::StateDict sd = io::load_state_dict(pth);
  const double load_s = seconds_since(t0);
  const int64_t hwm = proc_status_kb("VmHWM:");
  const double peak_mb = static_cast<double>(hwm) * 1024 / 1e6;
  std::printf("var_d16.pth: %.1f MB, %zu tensors, %lld elements: load %.2f s, peak RSS %.1f MB "
              "(%.2fx file; %.1f MB before; getrusage maxrss %.1f MB)\n",
              file_mb, sd.size(), static_cast<long long>(sd.num_elements()), load_s, peak_mb,
              peak_mb / file_mb, static_cast<double>(rss_before) * 1024 / 1e6,
              static_cast<double>(rusage_maxrss_kb()) * 1024 / 1e6);
  EXPECT_EQ(sd.size(), 220u);
  EXPECT_LT(load_s, 10.0);
  EXPECT_LT(peak_mb, 2 * file_mb);

  // Every tensor at its place: element 0 holds its index, the last element minus the index.
  for (size_t k = 0; k < sd.keys().size(); ++k) {
    const auto flat = sd.at(sd.keys()[k]).reshape({-1}).to(torch::kFloat64);
    if (flat.numel() == 0) continue;
    const double idx = static_cast<double>(k);
    if (flat.numel() > 1) EXPECT_EQ(flat[0].item<double>(), idx) << sd.keys()[k];
    EXPECT_EQ(flat[-1].item<double>(), -idx) << sd.keys()[k];
  }

  // The HDF5 form of the same state dict, for comparison.
  t0 = std::chrono::steady_clock::now();
  io::save_state_dict_h5(sd, dir / "var_d16.h5", {});
  const double write_s = seconds_since(t0);
  sd = io::StateDict();
  reset_peak_rss();
  t0 = std::chrono::steady_clock::now();
  const io::StateDict back = io::load_state_dict(dir / "var_d16.h5");
  const double h5_load_s = seconds_since(t0);
  std::printf("var_d16.h5: write %.2f s, load %.2f s, peak RSS %.1f MB\n", write_s, h5_load_s,
              static_cast<double>(proc_status_kb("VmHWM:")) * 1024 / 1e6);
  EXPECT_EQ(back.size(), 220u);
}

TEST(IoStateDictBig, Zip64FileOver4GiB) {
  if (!big_tests()) GTEST_SKIP() << "set VARDP_BIG_TESTS=1 to run (writes ~4.3 GB)";
  ScratchDir dir;
  const std::string pth = dir / "zip64.pth";
  ASSERT_TRUE(run_python("make_pth_big.py", {pth, "zip64"}));
  ASSERT_GT(std::filesystem::file_size(pth), uint64_t{1} << 32);
  const auto t0 = std::chrono::steady_clock::now();
  const io::StateDict sd = io::load_state_dict(pth);
  std::printf("zip64.pth: %.1f MB loaded in %.2f s\n",
              static_cast<double>(std::filesystem::file_size(pth)) / 1e6, seconds_since(t0));
  ASSERT_EQ(sd.keys(), (std::vector<std::string>{"head", "big", "tail"}));
  EXPECT_TRUE(torch::equal(sd.at("head"), torch::arange(8, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(sd.at("tail"), torch::arange(10, torch::kInt64)));  // after 4 GiB
  const auto& big = sd.at("big");
  EXPECT_EQ(big.numel(), (int64_t{1} << 32) + 64);
  EXPECT_EQ(big[0].item<uint8_t>(), 11);
  EXPECT_EQ(big[-1].item<uint8_t>(), 22);
}

}  // namespace
}  // namespace vardp::test
