#include "vardp/eval/tf_resize.hpp"

#include <algorithm>
#include <cmath>

#include "vardp/util/error.hpp"

namespace vardp::eval {

ResizeTaps tf1_resize_taps(int64_t in_size, int64_t out_size) {
  VARDP_CHECK(in_size >= 1 && out_size >= 1, "tf1_resize_taps: sizes must be >= 1, got ", in_size, " -> ", out_size);
  ResizeTaps t;
  t.lo.resize(out_size);
  t.hi.resize(out_size);
  t.weight.resize(out_size);
  // float32 throughout, as TensorFlow's kernel: the weights then round exactly as there.
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t i = 0; i < out_size; ++i) {
    const float s = static_cast<float>(i) * scale;
    const float s_floor = std::floor(s);
    t.lo[i] = std::max<int64_t>(static_cast<int64_t>(s_floor), 0);
    t.hi[i] = std::min<int64_t>(static_cast<int64_t>(std::ceil(s)), in_size - 1);
    t.weight[i] = s - s_floor;
  }
  return t;
}

namespace {

torch::Tensor index_tensor(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kInt64)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

torch::Tensor weight_tensor(const std::vector<float>& v, const torch::TensorOptions& opts) {
  return torch::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kFloat32)
      .to(opts, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

torch::Tensor tf1_resize_bilinear(const torch::Tensor& images_nchw, int64_t out_h, int64_t out_w) {
  VARDP_CHECK(images_nchw.dim() == 4, "tf1_resize_bilinear: expected (N, C, H, W), got ", images_nchw.sizes());
  VARDP_CHECK(images_nchw.is_floating_point(), "tf1_resize_bilinear: expected a floating tensor, got ",
              images_nchw.scalar_type());
  VARDP_CHECK(images_nchw.size(2) >= 1 && images_nchw.size(3) >= 1 && out_h >= 1 && out_w >= 1,
              "tf1_resize_bilinear: empty image or output size (", images_nchw.sizes(), " -> ", out_h, "x", out_w, ")");
  const auto dev = images_nchw.device();
  const auto opts = images_nchw.options();
  const ResizeTaps ty = tf1_resize_taps(images_nchw.size(2), out_h);
  const ResizeTaps tx = tf1_resize_taps(images_nchw.size(3), out_w);

  // Columns first, at the input height: the horizontal lerp of row r is the same whichever
  // output row uses r, so this computes TensorFlow's `top` and `bottom` values exactly, with
  // less work and memory than gathering four corners at the output size.
  const torch::Tensor wx = weight_tensor(tx.weight, opts).view({1, 1, 1, out_w});
  const torch::Tensor left = images_nchw.index_select(3, index_tensor(tx.lo, dev));
  const torch::Tensor right = images_nchw.index_select(3, index_tensor(tx.hi, dev));
  const torch::Tensor rows = left + (right - left) * wx;  // (N, C, H, out_w)

  const torch::Tensor wy = weight_tensor(ty.weight, opts).view({1, 1, out_h, 1});
  const torch::Tensor top = rows.index_select(2, index_tensor(ty.lo, dev));
  const torch::Tensor bottom = rows.index_select(2, index_tensor(ty.hi, dev));
  return top + (bottom - top) * wy;
}

}  // namespace vardp::eval
