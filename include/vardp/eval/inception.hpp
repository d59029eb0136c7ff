// The FID Inception-v3: the 2015 TensorFlow Inception graph behind FID, sFID and improved
// precision/recall in OpenAI's ADM evaluator (guided-diffusion evaluations/evaluator.py), as
// pytorch-fid lays it out (`fid_inception_v3`: torchvision's Inception-v3 without aux logits,
// 1008-way fc, and its FIDInceptionA/C/E_1/E_2 blocks). Module names equal pytorch-fid's, so
// `pt_inception-2015-12-05-6726825d.pth` (566 tensors incl. BatchNorm statistics) loads
// strictly. docs/eval_features.md describes weights, preprocessing and outputs.
//
// Per image the evaluator's graph does, and features() does the same:
//   uint8 (H, W, 3) -> float -> TF1 resize_bilinear to 299x299 (tf_resize.hpp) -> (x - 128) / 128
//   -> the network -> pool_3 (2048) and mixed_6/conv[..., :7] flattened in (h, w, c) order (2023).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vardp/io/state_dict.hpp"

namespace vardp::eval {

inline constexpr int64_t kInceptionInputSize = 299;
inline constexpr int64_t kPoolFeatureDim = 2048;
inline constexpr int64_t kSpatialChannels = 7;  // channels of mixed_6/conv the evaluator keeps
inline constexpr int64_t kSpatialSide = 17;
inline constexpr int64_t kSpatialFeatureDim = kSpatialSide * kSpatialSide * kSpatialChannels;  // 2023
inline constexpr int64_t kInceptionClasses = 1008;

struct InceptionFeatures {
  torch::Tensor pool3;    // (N, 2048) float32 CPU: pool_3, the global average after Mixed_7c
  torch::Tensor spatial;  // (N, 2023) float32 CPU: mixed_6/conv, first 7 channels, (h, w, c) order
};

// Conv (no bias) -> BatchNorm(eps 0.001, running statistics) -> ReLU: one "conv" of the TF graph.
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride = {1, 1},
                  std::vector<int64_t> padding = {0, 0});
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// Mixed_5b/c/d: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool 3x3 -> 1x1 (pytorch-fid's
// FIDInceptionA: the average ignores the padding, as TF's SAME pooling does).
class FidInceptionAImpl : public torch::nn::Module {
 public:
  FidInceptionAImpl(int64_t in, int64_t pool_features);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr}, branch3x3dbl_1{nullptr},
      branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(FidInceptionA);

// Mixed_6a (torchvision InceptionB): stride-2 3x3 | 1x1 -> 3x3 -> stride-2 3x3 | max pool.
class InceptionBImpl : public torch::nn::Module {
 public:
  explicit InceptionBImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// Mixed_6b..6e (FIDInceptionC): 1x1 | 1x7, 7x1 factorised towers | avg pool (padding excluded).
class FidInceptionCImpl : public torch::nn::Module {
 public:
  FidInceptionCImpl(int64_t in, int64_t channels_7x7);
  torch::Tensor forward(const torch::Tensor& x);
  // The block output and its branch1x1 output (the TF graph's mixed_N/conv tensor).
  std::pair<torch::Tensor, torch::Tensor> forward_with_branch1x1(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr},
      branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
      branch7x7dbl_5{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(FidInceptionC);

// Mixed_7a (torchvision InceptionD): 1x1 -> stride-2 3x3 | 1x1, 1x7, 7x1, stride-2 3x3 | max pool.
class InceptionDImpl : public torch::nn::Module {
 public:
  explicit InceptionDImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr},
      branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// Mixed_7b / Mixed_7c: pytorch-fid's FIDInceptionE_1 (average pool, padding excluded) and
// FIDInceptionE_2 (max pool in branch_pool: what the 2015 graph does in its last block).
enum class InceptionEPool { average, max };
class FidInceptionEImpl : public torch::nn::Module {
 public:
  FidInceptionEImpl(int64_t in, InceptionEPool pool);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr},
      branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr},
      branch_pool{nullptr};

 private:
  InceptionEPool pool_;
};
TORCH_MODULE(FidInceptionE);

class FidInceptionV3Impl : public torch::nn::Module {
 public:
  // Default (LibTorch) initialisation; load weights with load_fid_inception. Starts in eval mode.
  FidInceptionV3Impl();

  // images: uint8 (N, H, W, 3) on any device; returns features for all N, processed `batch` at a
  // time on the module's device (bounded memory), without gradients and in eval mode (BatchNorm
  // uses its running statistics; the module is switched to eval()).
  InceptionFeatures features(const torch::Tensor& images_nhwc_u8, int64_t batch = 50);

  // The network alone on preprocessed input (N, 3, 299, 299) in [-1, 1] (see
  // preprocess_inception) on the module's device: pool3 and spatial there, without gradients.
  // Throws in training mode (BatchNorm would use batch statistics).
  InceptionFeatures forward(const torch::Tensor& x_nchw);

  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
      Conv2d_4a_3x3{nullptr};
  FidInceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  FidInceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  FidInceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
  torch::nn::Linear fc{nullptr};  // 1008-way classifier: in the weight file, unused by FID
};
TORCH_MODULE(FidInceptionV3);

// The evaluator's preprocessing: uint8 (N, H, W, 3) -> float32 (N, 3, 299, 299) on the images'
// device: TF1 bilinear resize (skipped when already 299x299: it is the identity there), then
// (x - 128) / 128. Throws vardp::Error for another dtype or shape.
torch::Tensor preprocess_inception(const torch::Tensor& images_nhwc_u8);

// Copies `sd` into the module after checking that the keys and shapes are exactly those of
// pytorch-fid's state dict; otherwise throws one vardp::Error prefixed by `what` naming every
// missing, unexpected and mis-shaped key, and the module is unchanged.
void load_fid_inception_state(FidInceptionV3Impl& m, const io::StateDict& sd, const std::string& what);

// Loads pt_inception-2015-12-05-6726825d.pth (or the same tensors in vardp's HDF5 state-dict
// format, e.g. after `vardp convert`) strictly; errors name the file and the keys. Returns the
// module in eval mode on the CPU.
FidInceptionV3 load_fid_inception(const std::string& path);

}  // namespace vardp::eval
