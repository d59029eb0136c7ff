#include "vardp/eval/inception.hpp"

#include <algorithm>

#include "vardp/eval/tf_resize.hpp"
#include "vardp/io/module_state.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

// TF's SAME average pooling divides by the number of real (unpadded) pixels: pytorch-fid's
// patch of torchvision, count_include_pad=False.
torch::Tensor avg_pool_3x3_same(const torch::Tensor& x) {
  return torch::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false,
                           /*count_include_pad=*/false);
}

torch::Tensor max_pool_3x3_stride2(const torch::Tensor& x) { return torch::max_pool2d(x, {3, 3}, {2, 2}); }

}  // namespace

// ---- blocks ---------------------------------------------------------------------------------

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                 std::vector<int64_t> padding) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, torch::ExpandingArray<2>(kernel))
                                                       .stride(torch::ExpandingArray<2>(stride))
                                                       .padding(torch::ExpandingArray<2>(padding))
                                                       .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)));
}

torch::Tensor BasicConv2dImpl::forward(const torch::Tensor& x) {
  if (is_training() || torch::GradMode::is_enabled()) return torch::relu(bn->forward(conv->forward(x)));
  // Inference: BatchNorm as ATen's CPU kernel computes it in eval mode, x * a + b with
  // a = gamma / sqrt(var + eps) and b = beta - mean * a, but in place, ReLU too: each fresh
  // multi-megabyte buffer costs page faults (a batch of 50 at 147x147x64 is 276 MB), and the
  // conv output has no other user.
  torch::Tensor y = conv->forward(x);
  const torch::Tensor a = bn->weight * torch::rsqrt(bn->running_var + bn->options.eps());
  const torch::Tensor b = bn->bias - bn->running_mean * a;
  return y.mul_(a.view({1, -1, 1, 1})).add_(b.view({1, -1, 1, 1})).relu_();
}

FidInceptionAImpl::FidInceptionAImpl(int64_t in, int64_t pool_features) {
  const std::vector<int64_t> k1{1, 1}, k3{3, 3}, k5{5, 5}, s1{1, 1}, p1{1, 1}, p2{2, 2};
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 64, k1));
  branch5x5_1 = register_module("branch5x5_1", BasicConv2d(in, 48, k1));
  branch5x5_2 = register_module("branch5x5_2", BasicConv2d(48, 64, k5, s1, p2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, k1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, k3, s1, p1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, k3, s1, p1));
  branch_pool = register_module("branch_pool", BasicConv2d(in, pool_features, k1));
}

torch::Tensor FidInceptionAImpl::forward(const torch::Tensor& x) {
  return torch::cat({branch1x1(x), branch5x5_2(branch5x5_1(x)), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))),
                     branch_pool(avg_pool_3x3_same(x))},
                    1);
}

InceptionBImpl::InceptionBImpl(int64_t in) {
  const std::vector<int64_t> k1{1, 1}, k3{3, 3}, s1{1, 1}, s2{2, 2}, p1{1, 1};
  branch3x3 = register_module("branch3x3", BasicConv2d(in, 384, k3, s2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, k1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, k3, s1, p1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, k3, s2));
}

torch::Tensor InceptionBImpl::forward(const torch::Tensor& x) {
  return torch::cat({branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), max_pool_3x3_stride2(x)}, 1);
}

FidInceptionCImpl::FidInceptionCImpl(int64_t in, int64_t c7) {
  const std::vector<int64_t> k1{1, 1}, k17{1, 7}, k71{7, 1}, s1{1, 1}, p17{0, 3}, p71{3, 0};
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 192, k1));
  branch7x7_1 = register_module("branch7x7_1", BasicConv2d(in, c7, k1));
  branch7x7_2 = register_module("branch7x7_2", BasicConv2d(c7, c7, k17, s1, p17));
  branch7x7_3 = register_module("branch7x7_3", BasicConv2d(c7, 192, k71, s1, p71));
  branch7x7dbl_1 = register_module("branch7x7dbl_1", BasicConv2d(in, c7, k1));
  branch7x7dbl_2 = register_module("branch7x7dbl_2", BasicConv2d(c7, c7, k71, s1, p71));
  branch7x7dbl_3 = register_module("branch7x7dbl_3", BasicConv2d(c7, c7, k17, s1, p17));
  branch7x7dbl_4 = register_module("branch7x7dbl_4", BasicConv2d(c7, c7, k71, s1, p71));
  branch7x7dbl_5 = register_module("branch7x7dbl_5", BasicConv2d(c7, 192, k17, s1, p17));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, k1));
}

std::pair<torch::Tensor, torch::Tensor> FidInceptionCImpl::forward_with_branch1x1(const torch::Tensor& x) {
  torch::Tensor b1 = branch1x1(x);
  torch::Tensor b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
  torch::Tensor b7dbl = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
  torch::Tensor bp = branch_pool(avg_pool_3x3_same(x));
  torch::Tensor out = torch::cat({b1, b7, b7dbl, bp}, 1);
  return {out, b1};
}

torch::Tensor FidInceptionCImpl::forward(const torch::Tensor& x) { return forward_with_branch1x1(x).first; }

InceptionDImpl::InceptionDImpl(int64_t in) {
  const std::vector<int64_t> k1{1, 1}, k3{3, 3}, k17{1, 7}, k71{7, 1}, s1{1, 1}, s2{2, 2}, p17{0, 3}, p71{3, 0};
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 192, k1));
  branch3x3_2 = register_module("branch3x3_2", BasicConv2d(192, 320, k3, s2));
  branch7x7x3_1 = register_module("branch7x7x3_1", BasicConv2d(in, 192, k1));
  branch7x7x3_2 = register_module("branch7x7x3_2", BasicConv2d(192, 192, k17, s1, p17));
  branch7x7x3_3 = register_module("branch7x7x3_3", BasicConv2d(192, 192, k71, s1, p71));
  branch7x7x3_4 = register_module("branch7x7x3_4", BasicConv2d(192, 192, k3, s2));
}

torch::Tensor InceptionDImpl::forward(const torch::Tensor& x) {
  return torch::cat({branch3x3_2(branch3x3_1(x)), branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x)))),
                     max_pool_3x3_stride2(x)},
                    1);
}

FidInceptionEImpl::FidInceptionEImpl(int64_t in, InceptionEPool pool) : pool_(pool) {
  const std::vector<int64_t> k1{1, 1}, k3{3, 3}, k13{1, 3}, k31{3, 1}, s1{1, 1}, p1{1, 1}, p13{0, 1}, p31{1, 0};
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 320, k1));
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 384, k1));
  branch3x3_2a = register_module("branch3x3_2a", BasicConv2d(384, 384, k13, s1, p13));
  branch3x3_2b = register_module("branch3x3_2b", BasicConv2d(384, 384, k31, s1, p31));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 448, k1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(448, 384, k3, s1, p1));
  branch3x3dbl_3a = register_module("branch3x3dbl_3a", BasicConv2d(384, 384, k13, s1, p13));
  branch3x3dbl_3b = register_module("branch3x3dbl_3b", BasicConv2d(384, 384, k31, s1, p31));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, k1));
}

torch::Tensor FidInceptionEImpl::forward(const torch::Tensor& x) {
  const torch::Tensor t3 = branch3x3_1(x);
  const torch::Tensor t3dbl = branch3x3dbl_2(branch3x3dbl_1(x));
  // Max pooling pads with -inf, which like TF's SAME max pooling never wins over a real pixel.
  const torch::Tensor pooled =
      pool_ == InceptionEPool::average ? avg_pool_3x3_same(x) : torch::max_pool2d(x, {3, 3}, {1, 1}, {1, 1});
  return torch::cat({branch1x1(x), branch3x3_2a(t3), branch3x3_2b(t3), branch3x3dbl_3a(t3dbl), branch3x3dbl_3b(t3dbl),
                     branch_pool(pooled)},
                    1);
}

// ---- the network ----------------------------------------------------------------------------

FidInceptionV3Impl::FidInceptionV3Impl() {
  const std::vector<int64_t> k1{1, 1}, k3{3, 3}, s1{1, 1}, s2{2, 2}, p1{1, 1};
  Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", BasicConv2d(3, 32, k3, s2));
  Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", BasicConv2d(32, 32, k3));
  Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", BasicConv2d(32, 64, k3, s1, p1));
  Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", BasicConv2d(64, 80, k1));
  Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", BasicConv2d(80, 192, k3));
  Mixed_5b = register_module("Mixed_5b", FidInceptionA(192, 32));
  Mixed_5c = register_module("Mixed_5c", FidInceptionA(256, 64));
  Mixed_5d = register_module("Mixed_5d", FidInceptionA(288, 64));
  Mixed_6a = register_module("Mixed_6a", InceptionB(288));
  Mixed_6b = register_module("Mixed_6b", FidInceptionC(768, 128));
  Mixed_6c = register_module("Mixed_6c", FidInceptionC(768, 160));
  Mixed_6d = register_module("Mixed_6d", FidInceptionC(768, 160));
  Mixed_6e = register_module("Mixed_6e", FidInceptionC(768, 192));
  Mixed_7a = register_module("Mixed_7a", InceptionD(768));
  Mixed_7b = register_module("Mixed_7b", FidInceptionE(1280, InceptionEPool::average));
  Mixed_7c = register_module("Mixed_7c", FidInceptionE(2048, InceptionEPool::max));
  fc = register_module("fc", torch::nn::Linear(kPoolFeatureDim, kInceptionClasses));
  eval();
}

InceptionFeatures FidInceptionV3Impl::forward(const torch::Tensor& x_nchw) {
  VARDP_CHECK(!is_training(),
              "FID Inception-v3: forward in training mode (BatchNorm must use the running "
              "statistics; call eval())");
  VARDP_CHECK(x_nchw.dim() == 4 && x_nchw.size(1) == 3 && x_nchw.size(2) == kInceptionInputSize &&
                  x_nchw.size(3) == kInceptionInputSize,
              "FID Inception-v3: expected preprocessed input (N, 3, 299, 299), got ", x_nchw.sizes());
  torch::NoGradGuard no_grad;
  torch::Tensor x = Conv2d_1a_3x3(x_nchw);  // 149x149
  x = Conv2d_2b_3x3(Conv2d_2a_3x3(x));      // 147x147
  x = max_pool_3x3_stride2(x);              // 73x73
  x = Conv2d_4a_3x3(Conv2d_3b_1x1(x));      // 71x71
  x = max_pool_3x3_stride2(x);              // 35x35
  x = Mixed_5d(Mixed_5c(Mixed_5b(x)));      // 288 x 35x35
  x = Mixed_6a(x);                          // 768 x 17x17
  x = Mixed_6c(Mixed_6b(x));
  // sFID's "mixed_6/conv:0" (ADM evaluator, FID_SPATIAL_NAME). The 2015 graph names its eleven
  // mixed blocks mixed, mixed_1, ..., mixed_10 in order, so mixed_6 is the fourth 17x17 block,
  // Mixed_6d here (mixed_3 = Mixed_6a; the weight converters that match the graph's tensors by
  // shape map mixed_4 -> Mixed_6b with 128-wide towers, mixed_5/mixed_6 -> Mixed_6c/6d with 160,
  // mixed_7 -> Mixed_6e with 192). Inside a block the towers are tower, tower_1, tower_2 and the
  // output is mixed_6/join; the scope `conv` is the 1x1 branch, and the tensor named after the
  // scope is its last op: conv/Conv2D -> conv/batchnorm -> conv (ReLU). So mixed_6/conv:0 is
  // Mixed_6d.branch1x1's output, (N, 192, 17, 17) after BN and ReLU, not a 768-channel block
  // output. The evaluator keeps [..., :7] of that NHWC tensor and flattens it, i.e. in
  // (h, w, c) order: channels 0..6 here, permuted to NHWC before flattening.
  auto [mixed_6, mixed_6_conv] = Mixed_6d->forward_with_branch1x1(x);
  x = Mixed_6e(mixed_6);                // 768 x 17x17
  x = Mixed_7c(Mixed_7b(Mixed_7a(x)));  // 2048 x 8x8
  InceptionFeatures f;
  // pool_3: TF's 8x8 VALID average pool over the 8x8 map = the mean over all positions.
  f.pool3 = x.mean({2, 3});
  f.spatial =
      mixed_6_conv.narrow(1, 0, kSpatialChannels).permute({0, 2, 3, 1}).reshape({x_nchw.size(0), kSpatialFeatureDim});
  return f;
}

torch::Tensor preprocess_inception(const torch::Tensor& images_nhwc_u8) {
  VARDP_CHECK(images_nhwc_u8.scalar_type() == torch::kUInt8, "FID Inception-v3: expected uint8 images, got ",
              images_nhwc_u8.scalar_type());
  VARDP_CHECK(images_nhwc_u8.dim() == 4 && images_nhwc_u8.size(3) == 3 && images_nhwc_u8.size(1) >= 1 &&
                  images_nhwc_u8.size(2) >= 1,
              "FID Inception-v3: expected images (N, H, W, 3), got ", images_nhwc_u8.sizes());
  torch::Tensor x = images_nhwc_u8.to(torch::kFloat32).permute({0, 3, 1, 2}).contiguous();
  if (x.size(2) != kInceptionInputSize || x.size(3) != kInceptionInputSize)
    x = tf1_resize_bilinear(x, kInceptionInputSize, kInceptionInputSize);
  // The graph computes (x - 128) * 0.0078125; dividing by 128 rounds identically (power of two).
  return (x - 128.0) / 128.0;
}

InceptionFeatures FidInceptionV3Impl::features(const torch::Tensor& images_nhwc_u8, int64_t batch) {
  VARDP_CHECK(batch >= 1, "FID Inception-v3: batch must be >= 1, got ", batch);
  VARDP_CHECK(images_nhwc_u8.scalar_type() == torch::kUInt8 && images_nhwc_u8.dim() == 4 && images_nhwc_u8.size(3) == 3,
              "FID Inception-v3: expected uint8 images (N, H, W, 3), got ", images_nhwc_u8.scalar_type(), " ",
              images_nhwc_u8.sizes());
  eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = Conv2d_1a_3x3->conv->weight.device();
  const int64_t n = images_nhwc_u8.size(0);
  InceptionFeatures out;
  out.pool3 = torch::empty({n, kPoolFeatureDim}, torch::kFloat32);
  out.spatial = torch::empty({n, kSpatialFeatureDim}, torch::kFloat32);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min(batch, n - start);
    const torch::Tensor x = preprocess_inception(images_nhwc_u8.narrow(0, start, len).to(device));
    const InceptionFeatures f = forward(x);
    out.pool3.narrow(0, start, len).copy_(f.pool3);
    out.spatial.narrow(0, start, len).copy_(f.spatial);
  }
  return out;
}

// ---- loading --------------------------------------------------------------------------------

void load_fid_inception_state(FidInceptionV3Impl& m, const io::StateDict& sd, const std::string& what) {
  io::load_module_state(m, sd, what);
}

FidInceptionV3 load_fid_inception(const std::string& path) {
  const io::StateDict sd = io::load_state_dict(path);
  FidInceptionV3 m;
  load_fid_inception_state(*m, sd, "FID Inception-v3 weights " + path);
  m->eval();
  return m;
}

}  // namespace vardp::eval
