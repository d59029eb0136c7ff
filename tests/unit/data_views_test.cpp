// Training/evaluation views (VAR's random crop + flip, centre crop, x/255*2-1) and the dataset
// reader/prefetcher. Invariant 6: view v of example i at step t depends only on
// (seed, t, i, v) - not on the batch it is computed in, the reader instance or the thread.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "test_paths.hpp"
#include "vardp/data/batch_tensor.hpp"
#include "vardp/data/image.hpp"
#include "vardp/data/prepare.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/data/transforms.hpp"
#include "vardp/dist/comm.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {
namespace fs = std::filesystem;

TEST(DataViews, SameKeySameViewDifferentKeysDiffer) {
  std::set<std::tuple<int, int, bool>> seen;
  int flips = 0;
  for (int v = 0; v < 200; ++v) {
    const ViewParams a = draw_train_view(42, 7, 123, v, 288, 256, true);
    const ViewParams b = draw_train_view(42, 7, 123, v, 288, 256, true);
    EXPECT_EQ(a.top, b.top);
    EXPECT_EQ(a.left, b.left);
    EXPECT_EQ(a.flip, b.flip);
    EXPECT_GE(a.top, 0);
    EXPECT_LE(a.top, 32);
    EXPECT_GE(a.left, 0);
    EXPECT_LE(a.left, 32);
    flips += a.flip;
    seen.insert({a.top, a.left, a.flip});
  }
  EXPECT_GT(seen.size(), 150u);  // 33*33*2 possibilities
  EXPECT_GT(flips, 60);
  EXPECT_LT(flips, 140);
  // Every key component matters.
  auto key = [](uint64_t s, int64_t t, int64_t i, int64_t v) {
    const ViewParams p = draw_train_view(s, t, i, v, 288, 256, true);
    return std::tuple{p.top, p.left, p.flip};
  };
  int differ = 0;
  for (int k = 0; k < 20; ++k) {
    const auto base = key(1, k, 5, 0);
    differ += base != key(2, k, 5, 0);
    differ += base != key(1, k + 100, 5, 0);
    differ += base != key(1, k, 6, 0);
    differ += base != key(1, k, 5, 1);
  }
  EXPECT_GT(differ, 70);
  // No flip without hflip; the crop draws are unchanged by it.
  for (int v = 0; v < 50; ++v) {
    const ViewParams a = draw_train_view(3, 1, 2, v, 36, 32, false);
    const ViewParams b = draw_train_view(3, 1, 2, v, 36, 32, true);
    EXPECT_FALSE(a.flip);
    EXPECT_EQ(a.top, b.top);
    EXPECT_EQ(a.left, b.left);
  }
}

TEST(DataViews, RenderCropsFlipsAndNormalisesLikeToTensor) {
  const int s = 6, r = 4;
  std::vector<uint8_t> img(size_t(s) * s * 3);
  for (size_t i = 0; i < img.size(); ++i) img[i] = uint8_t(i * 7);
  ViewParams p;
  p.top = 1;
  p.left = 2;
  std::vector<float> out(size_t(3) * r * r);
  render_view(img.data(), s, p, r, out.data());
  auto expect_px = [&](int c, int y, int x, int sy, int sx) {
    const float u = float(img[(size_t(sy) * s + size_t(sx)) * 3 + size_t(c)]) / 255.0f;
    EXPECT_EQ(out[(size_t(c) * r + size_t(y)) * r + size_t(x)], u + u - 1.0f);
  };
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < r; ++y)
      for (int x = 0; x < r; ++x) expect_px(c, y, x, 1 + y, 2 + x);
  p.flip = true;
  render_view(img.data(), s, p, r, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < r; ++y)
      for (int x = 0; x < r; ++x) expect_px(c, y, x, 1 + y, 2 + (r - 1 - x));
  const ViewParams cv = center_view(288, 256);
  EXPECT_EQ(cv.top, 16);
  EXPECT_EQ(cv.left, 16);
  EXPECT_FALSE(cv.flip);
  // Extremes map to exactly -1 and 1.
  std::vector<uint8_t> ext = {0, 255, 0};
  std::vector<float> e(3);
  render_view(ext.data(), 1, ViewParams{}, 1, e.data());
  EXPECT_EQ(e[0], -1.0f);
  EXPECT_EQ(e[1], 1.0f);
}

// A small dataset file: 7 distinct noise images in two classes.
std::string make_dataset(const test::ScratchDir& dir) {
  uint32_t state = 1;
  for (int i = 0; i < 7; ++i) {
    Image img(30 + i, 24, 3);
    for (auto& v : img.pixels) {
      state = state * 1664525u + 1013904223u;
      v = uint8_t(state >> 24);
    }
    const std::string cls = i % 2 ? "b" : "a";
    fs::create_directories(dir / ("src/train/" + cls));
    write_png(dir / str("src/train/", cls, "/", i, ".png"), img);
  }
  PrepareOptions o;
  o.format = "imagefolder";
  o.root = dir / "src";
  o.out_dir = dir / "ds";
  o.image_size = 16;
  auto comm = dist::make_single_comm();
  prepare_dataset(o, *comm);
  return dir / "ds/train.h5";
}

TEST(DataViews, ReaderServesViewsIndependentlyOfBatchAndReader) {
  test::ScratchDir dir;
  const std::string path = make_dataset(dir);
  DatasetReader a(path), b(path);
  ASSERT_EQ(a.size(), 7);
  EXPECT_EQ(a.resolution(), 18);
  EXPECT_EQ(a.labels(), (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1}));
  ViewSpec spec;
  spec.image_size = 16;
  spec.hflip = true;
  spec.seed = 9;
  spec.step = 3;
  // "Rank 0" computes (4, 0..2) among others; "rank 1" computes (4, 1) alone.
  const Batch big = a.make_batch({{0, 0}, {4, 0}, {4, 1}, {4, 2}, {6, 5}}, spec);
  const Batch one = b.make_batch({{4, 1}}, spec);
  const size_t plane = size_t(3) * 16 * 16;
  ASSERT_EQ(big.pixels.size(), 5 * plane);
  EXPECT_TRUE(std::equal(one.pixels.begin(), one.pixels.end(), big.pixels.begin() + 2 * plane));
  EXPECT_EQ(big.labels, (std::vector<int64_t>{0, 1, 1, 1, 1}));
  // Views of one example differ (k = 3 draws of 3 x 3 x 2 crops: at least two distinct).
  const bool v01 = std::equal(big.pixels.begin() + plane, big.pixels.begin() + 2 * plane,
                              big.pixels.begin() + 2 * plane);
  const bool v12 = std::equal(big.pixels.begin() + 2 * plane, big.pixels.begin() + 3 * plane,
                              big.pixels.begin() + 3 * plane);
  EXPECT_FALSE(v01 && v12);
  // The pixels are the stored row cropped as drawn.
  const std::vector<uint8_t> row = a.read_rows({4});
  std::vector<float> expect(plane);
  render_view(row.data(), 18, draw_train_view(9, 3, 4, 1, 18, 16, true), 16, expect.data());
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), one.pixels.begin()));
  // Evaluation views are centre crops, identical for every view index.
  spec.train = false;
  const Batch ev = a.make_batch({{2, 0}, {2, 5}}, spec);
  EXPECT_TRUE(std::equal(ev.pixels.begin(), ev.pixels.begin() + long(plane),
                         ev.pixels.begin() + long(plane)));
  // Tensors.
  const torch::Tensor t = batch_images(big);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{5, 3, 16, 16}));
  EXPECT_EQ(t[2].sum().item<float>(), batch_images(one)[0].sum().item<float>());
  EXPECT_EQ(batch_labels(big)[1].item<int64_t>(), 1);
  EXPECT_THROW(a.make_batch({{7, 0}}, spec), Error);
}

TEST(DataViews, PrefetcherIsFifoBoundedAndPropagatesErrors) {
  test::ScratchDir dir;
  const std::string path = make_dataset(dir);
  auto reader = std::make_shared<const DatasetReader>(path);
  Prefetcher pf(reader, 2);
  EXPECT_EQ(pf.background(), hdf5_threadsafe());
  ViewSpec spec;
  spec.image_size = 16;
  std::vector<std::vector<Unit>> requests;
  for (int step = 0; step < 6; ++step) {
    requests.push_back({{int64_t(step % 7), 0}, {int64_t((step + 3) % 7), 1}});
    spec.step = step;
    pf.submit(requests.back(), spec);
  }
  spec.step = 99;
  pf.submit({{100, 0}}, spec);  // out of range
  EXPECT_EQ(pf.outstanding(), 7u);
  for (int step = 0; step < 6; ++step) {
    spec.step = step;
    const Batch got = pf.next();
    const Batch want = reader->make_batch(requests[size_t(step)], spec);
    EXPECT_EQ(got.pixels, want.pixels) << "step " << step;
    EXPECT_EQ(got.labels, want.labels);
  }
  EXPECT_THROW(pf.next(), Error);
  EXPECT_EQ(pf.outstanding(), 0u);
  EXPECT_THROW(pf.next(), Error);  // nothing submitted
}

}  // namespace
}  // namespace vardp::data
