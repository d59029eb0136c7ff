// TF1 bilinear resize (no half-pixel centres): hand-checkable tiny cases, numpy references of the
// documented formula (tests/python/make_tf_resize_reference.py), and the difference from
// LibTorch's half-pixel bilinear interpolation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/eval/tf_resize.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

torch::Tensor row(std::vector<float> v) {
  return torch::tensor(v, torch::kFloat32).view({1, 1, 1, static_cast<int64_t>(v.size())});
}

void expect_values(const torch::Tensor& got, const std::vector<float>& want) {
  const torch::Tensor flat = got.contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_FLOAT_EQ(flat[static_cast<int64_t>(i)].item<float>(), want[i]) << "index " << i;
}

TEST(EvalTfResize, UpscaleTwoToFourClampsAtTheFarEdge) {
  // scale 0.5: samples at 0, 0.5, 1, 1.5 -> the last is clamped to pixel 1.
  const float a = 10.f, b = 30.f;
  expect_values(tf1_resize_bilinear(row({a, b}), 1, 4), {a, (a + b) / 2, b, b});
  // The same along the height.
  const torch::Tensor col = torch::tensor({a, b}).view({1, 1, 2, 1});
  expect_values(tf1_resize_bilinear(col, 4, 1), {a, (a + b) / 2, b, b});
}

TEST(EvalTfResize, DownscaleThreeToTwo) {
  // scale 1.5: samples at 0 and 1.5.
  expect_values(tf1_resize_bilinear(row({2.f, 4.f, 8.f}), 1, 2), {2.f, 6.f});
}

TEST(EvalTfResize, TwoByTwoToFourByFour) {
  // [[a, b], [c, d]]: rows at 0, .5, 1, 1 and columns at 0, .5, 1, 1.
  const float a = 0.f, b = 8.f, c = 16.f, d = 40.f;
  const torch::Tensor x = torch::tensor({a, b, c, d}).view({1, 1, 2, 2});
  const float ab = (a + b) / 2, cd = (c + d) / 2, mid = (ab + cd) / 2;
  expect_values(tf1_resize_bilinear(x, 4, 4), {a, ab, b, b,                                 //
                                               (a + c) / 2, mid, (b + d) / 2, (b + d) / 2,  //
                                               c, cd, d, d,                                 //
                                               c, cd, d, d});
}

TEST(EvalTfResize, SameSizeIsIdentityAndSinglePixelBroadcasts) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::rand({2, 3, 7, 5}) * 255;
  EXPECT_TRUE(torch::equal(tf1_resize_bilinear(x, 7, 5), x));
  const torch::Tensor one = torch::full({1, 2, 1, 1}, 42.f);
  const torch::Tensor up = tf1_resize_bilinear(one, 3, 4);
  EXPECT_EQ(up.sizes(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(torch::equal(up, torch::full({1, 2, 3, 4}, 42.f)));
}

TEST(EvalTfResize, TapsOfFiveToTwoHundredNinetyNine) {
  const ResizeTaps t = tf1_resize_taps(5, 299);
  ASSERT_EQ(t.lo.size(), 299u);
  EXPECT_EQ(t.lo[0], 0);
  EXPECT_EQ(t.hi[0], 0);
  EXPECT_FLOAT_EQ(t.weight[0], 0.f);
  // 298 * 5/299 = 4.983...: lower 4, upper clamped to 4.
  EXPECT_EQ(t.lo[298], 4);
  EXPECT_EQ(t.hi[298], 4);
  EXPECT_NEAR(t.weight[298], 298.0 * 5.0 / 299.0 - 4.0, 1e-5);
  for (size_t i = 0; i < t.lo.size(); ++i) {
    EXPECT_LE(t.lo[i], t.hi[i]);
    EXPECT_LE(t.hi[i], 4);
    EXPECT_GE(t.weight[i], 0.f);
    EXPECT_LT(t.weight[i], 1.f);
  }
}

TEST(EvalTfResize, MatchesNumpyReferenceOfTheDocumentedFormula) {
  test::ScratchDir dir;
  const std::string ref = dir / "tf_resize_reference.h5";
  ASSERT_TRUE(test::run_python("make_tf_resize_reference.py", {ref}));
  io::H5File f = io::H5File::open(ref);
  const auto cases = io::h5_read_attr_strings(f.id(), "cases");
  ASSERT_EQ(cases.size(), 5u);
  for (const auto& name : cases) {
    std::vector<hsize_t> in_dims, out_dims;
    auto in = io::h5_read<float>(f.id(), name + "/input", &in_dims);
    auto want = io::h5_read<float>(f.id(), name + "/output", &out_dims);
    const std::vector<int64_t> in_shape(in_dims.begin(), in_dims.end());
    const std::vector<int64_t> out_shape(out_dims.begin(), out_dims.end());
    const torch::Tensor x = torch::from_blob(in.data(), in_shape, torch::kFloat32);
    const torch::Tensor w = torch::from_blob(want.data(), out_shape, torch::kFloat32);
    const torch::Tensor got = tf1_resize_bilinear(x, out_shape[2], out_shape[3]);
    ASSERT_EQ(got.sizes(), w.sizes()) << name;
    // Same float32 operations in the same order: equal up to contraction into FMAs.
    EXPECT_LT((got - w).abs().max().item<float>(), 1e-4f) << name;
  }
}

TEST(EvalTfResize, DiffersFromHalfPixelBilinear) {
  // LibTorch's bilinear (align_corners=false) samples at (i + .5) * scale - .5.
  const float a = 10.f, b = 30.f;
  namespace F = torch::nn::functional;
  const auto half_pixel = [](const torch::Tensor& x, int64_t h, int64_t w) {
    return F::interpolate(
        x, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
  };
  expect_values(half_pixel(row({a, b}), 1, 4), {a, 0.75f * a + 0.25f * b, 0.25f * a + 0.75f * b, b});

  // On image-like content the two conventions differ by whole grey levels, far beyond rounding:
  // a 64 -> 299 upscale shifts the image by about 1.8 output pixels.
  torch::manual_seed(11);
  const torch::Tensor img = torch::randint(0, 256, {1, 3, 64, 64}).to(torch::kFloat32);
  const torch::Tensor tf = tf1_resize_bilinear(img, 299, 299);
  const torch::Tensor th = half_pixel(img, 299, 299);
  EXPECT_GT((tf - th).abs().max().item<float>(), 50.f);
  EXPECT_GT((tf - th).abs().mean().item<float>(), 5.f);
}

TEST(EvalTfResize, DoubleInputGivesTheSameValues) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::rand({1, 2, 9, 11}) * 255;
  const torch::Tensor f32 = tf1_resize_bilinear(x, 20, 7);
  const torch::Tensor f64 = tf1_resize_bilinear(x.to(torch::kFloat64), 20, 7);
  EXPECT_EQ(f64.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(f64.to(torch::kFloat32), f32, 1e-5, 1e-4));
}

TEST(EvalTfResize, RejectsBadInput) {
  test::expect_error([] { tf1_resize_bilinear(torch::zeros({3, 4, 4}), 2, 2); }, {"(N, C, H, W)"});
  test::expect_error([] { tf1_resize_bilinear(torch::zeros({1, 3, 4, 4}, torch::kUInt8), 2, 2); }, {"floating"});
  test::expect_error([] { tf1_resize_bilinear(torch::zeros({1, 3, 4, 4}), 0, 2); }, {"empty"});
}

}  // namespace
}  // namespace vardp::eval
