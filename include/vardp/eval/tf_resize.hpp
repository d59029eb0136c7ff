// Bilinear resizing exactly as TensorFlow 1's `tf.image.resize_bilinear` with its defaults
// (align_corners=False, half_pixel_centers=False), the resize inside the 2015 Inception graph
// that the ADM evaluator feeds (docs/eval_features.md).
//
// For an output index i along an axis of input size `in` and output size `out`:
//   scale = in / out                     (float32)
//   s     = i * scale                    (float32; no half-pixel offset)
//   lo    = floor(s), hi = min(ceil(s), in - 1), w = s - floor(s)
// and each output value is, with top/bottom the rows lo/hi and left/right the columns lo/hi,
//   top = tl + (tr - tl) * wx;  bottom = bl + (br - bl) * wx;  out = top + (bottom - top) * wy
// in float32, the operation order of TensorFlow's CPU kernel. Near the far edge the sample
// point runs past the last pixel centre and is clamped (an upscale 2 -> 4 gives a, (a+b)/2, b, b).
//
// This is NOT torch's interpolate(bilinear, align_corners=false), which samples at
// (i + 0.5) * scale - 0.5 (half-pixel centres, 2 -> 4 gives a, .75a+.25b, .25a+.75b, b).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace vardp::eval {

// Interpolation taps along one axis: out_size entries of lower index, upper index, weight of
// the upper one.
struct ResizeTaps {
  std::vector<int64_t> lo, hi;
  std::vector<float> weight;
};
ResizeTaps tf1_resize_taps(int64_t in_size, int64_t out_size);

// images: floating (N, C, H, W) on any device; returns (N, C, out_h, out_w) of the same dtype
// and device. Sizes must be >= 1. The layout is NCHW (the feature network's), not TF's NHWC:
// the resize acts on each channel plane alone, so the layout does not change any value.
torch::Tensor tf1_resize_bilinear(const torch::Tensor& images_nchw, int64_t out_h, int64_t out_w);

}  // namespace vardp::eval
