// Decoding: JPEG (RGB, grayscale, Adobe CMYK, progressive, 4:2:0) and PNG (palette, alpha, gray)
// against PIL's convert("RGB") of the same files (tests/data/image_ref, made by
// tests/python/make_lanczos_reference.py), writer round trips, and the errors for corrupt,
// truncated, unknown and missing files.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_paths.hpp"
#include "vardp/data/image.hpp"
#include "vardp/util/error.hpp"

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
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

Image pattern(int w, int h, int c) {
  Image img(w, h, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) img.row(y)[x * c + k] = uint8_t((x * 9 + y * 5 + k * 70) & 255);
  return img;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DataImage, DecodersMatchPilConvertRgb) {
  int n = 0;
  const nlohmann::json m = manifest();
  for (const auto& c : m["cases"]) {
    if (c["kind"] != "decode") continue;
    ++n;
    const Image ours = decode_image_file(ref_path(c["source"].get<std::string>()));
    const Image pil = decode_image_file(ref_path(c["expected"].get<std::string>()));
    ASSERT_EQ(ours.channels, 3);
    ASSERT_EQ(ours.width, pil.width) << c["source"];
    ASSERT_EQ(ours.height, pil.height) << c["source"];
    const double mae = mean_abs_diff(ours, pil);
    std::printf("decode %-24s MAE %.4f max %d\n", std::string(c["source"]).c_str(), mae,
                max_abs_diff(ours, pil));
    // Same libjpeg-turbo, same conversions as PIL: identical pixels.
    EXPECT_EQ(max_abs_diff(ours, pil), 0) << c["source"];
  }
  EXPECT_GE(n, 8);
}

TEST(DataImage, PngRoundTripIsExactAndGrayBecomesRgb) {
  test::ScratchDir dir;
  const Image rgb = pattern(17, 9, 3);
  write_png(dir / "a.png", rgb);
  const Image back = decode_image_file(dir / "a.png");
  EXPECT_EQ(back.pixels, rgb.pixels);
  const Image gray = pattern(5, 4, 1);
  write_png(dir / "g.png", gray);
  const Image g = decode_image_file(dir / "g.png");
  ASSERT_EQ(g.channels, 3);
  for (size_t p = 0; p < gray.pixels.size(); ++p) {
    EXPECT_EQ(g.pixels[3 * p], gray.pixels[p]);
    EXPECT_EQ(g.pixels[3 * p + 1], gray.pixels[p]);
    EXPECT_EQ(g.pixels[3 * p + 2], gray.pixels[p]);
  }
}

TEST(DataImage, JpegGrayAndCmykBecomeRgbWithTheRightPolarity) {
  test::ScratchDir dir;
  Image gray(16, 16, 1);
  std::fill(gray.pixels.begin(), gray.pixels.end(), 200);
  write_jpeg(dir / "g.jpg", gray, 95);
  const Image g = decode_image_file(dir / "g.jpg");
  ASSERT_EQ(g.channels, 3);
  for (size_t i = 0; i < g.pixels.size(); ++i) EXPECT_NEAR(g.pixels[i], 200, 1);

  // CMYK (no ink | full cyan | full black), written with the Adobe marker like Photoshop.
  Image cmyk(24, 8, 4);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 24; ++x) {
      uint8_t* p = cmyk.row(y) + x * 4;
      p[0] = x >= 8 && x < 16 ? 255 : 0;
      p[1] = p[2] = 0;
      p[3] = x >= 16 ? 255 : 0;
    }
  write_jpeg(dir / "c.jpg", cmyk, 100);
  const Image c = decode_image_file(dir / "c.jpg");
  ASSERT_EQ(c.channels, 3);
  auto px = [&](int x, int k) { return int(c.row(4)[x * 3 + k]); };
  EXPECT_NEAR(px(3, 0), 255, 3);  // white
  EXPECT_NEAR(px(3, 1), 255, 3);
  EXPECT_NEAR(px(11, 0), 0, 3);  // cyan = no red
  EXPECT_NEAR(px(11, 1), 255, 3);
  EXPECT_NEAR(px(11, 2), 255, 3);
  EXPECT_NEAR(px(20, 0), 0, 3);  // black
  EXPECT_NEAR(px(20, 2), 0, 3);
}

TEST(DataImage, FormatIsSniffedNotTakenFromTheName) {
  test::ScratchDir dir;
  const Image rgb = pattern(6, 5, 3);
  write_png(dir / "really_png.jpg", rgb);
  EXPECT_EQ(decode_image_file(dir / "really_png.jpg").pixels, rgb.pixels);
}

TEST(DataImage, CorruptTruncatedUnknownAndMissingFilesNameTheFile) {
  test::ScratchDir dir;
  write_jpeg(dir / "ok.jpg", pattern(64, 64, 3), 90);
  std::vector<uint8_t> bytes = read_file_bytes(dir / "ok.jpg");

  std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + long(bytes.size() / 2));
  write_bytes(dir / "truncated.jpg", truncated);
  std::string e = error_of([&] { decode_image_file(dir / "truncated.jpg"); });
  EXPECT_NE(e.find(dir / "truncated.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  std::vector<uint8_t> broken = bytes;  // valid SOI, then garbage where the headers were
  for (size_t i = 2; i < std::min<size_t>(broken.size(), 400); ++i) broken[i] = uint8_t(i * 37);
  write_bytes(dir / "corrupt.jpg", broken);
  e = error_of([&] { decode_image_file(dir / "corrupt.jpg"); });
  EXPECT_NE(e.find(dir / "corrupt.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("JPEG"), std::string::npos) << e;

  write_png(dir / "ok.png", pattern(30, 30, 3));
  std::vector<uint8_t> png = read_file_bytes(dir / "ok.png");
  png.resize(png.size() / 2);
  write_bytes(dir / "truncated.png", png);
  e = error_of([&] { decode_image_file(dir / "truncated.png"); });
  EXPECT_NE(e.find(dir / "truncated.png"), std::string::npos) << e;
  EXPECT_NE(e.find("PNG"), std::string::npos) << e;

  write_bytes(dir / "text.jpg", {'h', 'e', 'l', 'l', 'o'});
  e = error_of([&] { decode_image_file(dir / "text.jpg"); });
  EXPECT_NE(e.find("not a JPEG or PNG"), std::string::npos) << e;
  EXPECT_NE(e.find(dir / "text.jpg"), std::string::npos) << e;

  write_bytes(dir / "empty.jpg", {});
  e = error_of([&] { decode_image_file(dir / "empty.jpg"); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;

  e = error_of([&] { decode_image_file(dir / "missing.jpg"); });
  EXPECT_NE(e.find(dir / "missing.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
}

}  // namespace
}  // namespace vardp::data
