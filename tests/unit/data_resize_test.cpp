// PIL-compatible Lanczos resize against PIL 9.4's Image.resize(..., LANCZOS) and VAR's
// Resize(S)+CenterCrop(S) geometry (tests/data/image_ref from make_lanczos_reference.py).
// Acceptance: mean absolute error <= 1.0 grey level; the implementation reproduces PIL's integer
// arithmetic, so the observed error is 0.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_paths.hpp"
#include "vardp/data/image.hpp"
#include "vardp/data/resize.hpp"

namespace vardp::data {
namespace {

std::string ref_path(const std::string& name) {
  return test::source_dir() + "/tests/data/image_ref/" + name;
}

nlohmann::json manifest() {
  std::ifstream in(ref_path("manifest.json"));
  EXPECT_TRUE(in.good()) << "missing " << ref_path("manifest.json");
  return nlohmann::json::parse(in);
}

int max_abs_diff(const Image& a, const Image& b) {
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i)
    m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

TEST(DataResize, LanczosMatchesPil) {
  int n = 0;
  double worst = 0.0;
  const nlohmann::json m = manifest();
  for (const auto& c : m["cases"]) {
    if (c["kind"] != "resize") continue;
    ++n;
    const Image src = decode_image_file(ref_path(c["source"].get<std::string>()));
    const Image pil = decode_image_file(ref_path(c["expected"].get<std::string>()));
    const Image ours = resize_lanczos(src, c["width"].get<int>(), c["height"].get<int>());
    ASSERT_EQ(ours.width, pil.width);
    ASSERT_EQ(ours.height, pil.height);
    const double mae = mean_abs_diff(ours, pil);
    worst = std::max(worst, mae);
    std::printf("resize %s %dx%d -> %dx%d: MAE %.4f max %d\n", std::string(c["source"]).c_str(),
                src.width, src.height, ours.width, ours.height, mae, max_abs_diff(ours, pil));
    EXPECT_LE(mae, 1.0) << c["expected"];
    EXPECT_LE(max_abs_diff(ours, pil), 1) << c["expected"];
  }
  EXPECT_GE(n, 5);
  RecordProperty("worst_mae", std::to_string(worst));
}

TEST(DataResize, StoredSquareMatchesVarPipeline) {
  int n = 0;
  const nlohmann::json m = manifest();
  for (const auto& c : m["cases"]) {
    if (c["kind"] != "stored_square") continue;
    ++n;
    const Image src = decode_image_file(ref_path(c["source"].get<std::string>()));
    const Image pil = decode_image_file(ref_path(c["expected"].get<std::string>()));
    const Image ours = resize_to_stored_square(src, c["size"].get<int>());
    ASSERT_EQ(ours.width, int(c["size"]));
    ASSERT_EQ(ours.height, int(c["size"]));
    const double mae = mean_abs_diff(ours, pil);
    std::printf("stored %s -> %d: MAE %.4f max %d\n", std::string(c["source"]).c_str(),
                int(c["size"]), mae, max_abs_diff(ours, pil));
    EXPECT_LE(mae, 1.0) << c["expected"];
  }
  EXPECT_GE(n, 4);
}

Image noise(int w, int h, uint32_t seed) {
  Image img(w, h, 3);
  for (auto& v : img.pixels) {
    seed = seed * 1664525u + 1013904223u;
    v = uint8_t(seed >> 24);
  }
  return img;
}

TEST(DataResize, WindowEqualsCropOfFullResize) {
  const Image src = noise(97, 61, 7);
  for (auto [ow, oh] : {std::pair{40, 30}, std::pair{150, 90}, std::pair{97, 20}}) {
    const Image full = resize_lanczos(src, ow, oh);
    const Image win = resize_lanczos_window(src, ow, oh, 5, 3, ow - 9, oh - 7);
    EXPECT_EQ(win.pixels, crop(full, 5, 3, ow - 9, oh - 7).pixels) << ow << "x" << oh;
  }
}

TEST(DataResize, IdentityAndConstantImages) {
  const Image src = noise(33, 21, 3);
  EXPECT_EQ(resize_lanczos(src, 33, 21).pixels, src.pixels);
  Image flat(50, 37, 3);
  std::fill(flat.pixels.begin(), flat.pixels.end(), 77);
  for (auto [w, h] : {std::pair{13, 9}, std::pair{120, 80}}) {
    const Image r = resize_lanczos(flat, w, h);
    for (uint8_t v : r.pixels) ASSERT_EQ(v, 77);  // normalised weights: no drift
  }
  Image gray(20, 20, 1);  // any channel count works
  std::fill(gray.pixels.begin(), gray.pixels.end(), 5);
  EXPECT_EQ(resize_lanczos(gray, 7, 7).pixels, std::vector<uint8_t>(49, 5));
}

TEST(DataResize, TorchvisionGeometry) {
  int w = 0, h = 0;
  shorter_side_size(500, 375, 288, &w, &h);
  EXPECT_EQ(w, 384);
  EXPECT_EQ(h, 288);
  shorter_side_size(333, 500, 288, &w, &h);  // 288*500/333 = 432.4 -> 432 (truncation)
  EXPECT_EQ(w, 288);
  EXPECT_EQ(h, 432);
  shorter_side_size(300, 300, 288, &w, &h);
  EXPECT_EQ(w, 288);
  EXPECT_EQ(h, 288);
  EXPECT_EQ(center_crop_offset(288, 256), 16);
  EXPECT_EQ(center_crop_offset(289, 256), 16);  // round(16.5) = 16 (half to even)
  EXPECT_EQ(center_crop_offset(291, 256), 18);  // round(17.5) = 18
  EXPECT_EQ(mid_resolution(256), 288);
  EXPECT_EQ(mid_resolution(32), 36);
  EXPECT_EQ(mid_resolution(28), 32);  // round(31.5) = 32
  EXPECT_EQ(mid_resolution(20), 22);  // round(22.5) = 22
}

TEST(DataResize, PadCenter) {
  Image img(28, 28, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), 200);
  const Image p = pad_center(img, 32, 32);
  EXPECT_EQ(p.row(0)[0], 0);
  EXPECT_EQ(p.row(2)[2 * 3], 200);
  EXPECT_EQ(p.row(29)[29 * 3], 200);
  EXPECT_EQ(p.row(30)[30 * 3], 0);
}

}  // namespace
}  // namespace vardp::data
