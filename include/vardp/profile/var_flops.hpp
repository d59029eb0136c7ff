// Analytic FLOPs of one VAR training example-view (one view of one example through forward and
// backward), per layer and per module: the model behind `vardp profile` and the trainer's flops.h5.
//
// Counting convention (that of PyTorch's profiler `with_flops`, which the paper's Figures 1 and 3
// used): a multiply-add of a matrix product or a convolution is 2 FLOPs; elementwise work around
// them (norms, softmax, activations, the loss) is not counted in forward and backward. What is
// counted is what src/model/ executes:
//  * every linear layer on the rows it sees per example-view: L tokens (mat_qkv, proj, fc1, fc2,
//    head), L - first_l (word_embed: the teacher-forcing input has no first scale), or ONE row per
//    example for the AdaLN linears (ada_lin acts on the class condition, not on tokens);
//  * attention as var_blocks.cpp computes it: the full L x L score matrix q k^T and its product
//    with v over all heads (2 L^2 C each), under an additive block-causal mask - masked entries
//    cost as much as the others;
//  * backward: the input gradient of every layer whose input carries a gradient (something
//    trained lies upstream of it); the weight gradient of TRAINED weights only. A LoRA layer's
//    frozen base weight gets none: its factors A and B get theirs, the base only passes the input
//    gradient on. Attention's backward products where q, k or v carry a gradient: dq and dk from
//    the scores (2 L^2 C each), d(probabilities) and dv from the value product.
// The structure is read from a real (adapted) model: trained = requires_grad, LoRA factors where
// enable_lora put them, shapes from the layers. The per-step view (DP extras, optimizer, micro-
// batches) is in training_flops.hpp, the VQ-VAE tokeniser in tokenizer_flops.hpp.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vardp::model {
class VARImpl;
}

namespace vardp::profile {

// One linear layer (LoRA factors are layers of their own) as training runs it.
struct LinearSite {
  std::string path;    // module path: "blocks.3.attn.mat_qkv", "blocks.3.attn.mat_qkv.lora_A"
  std::string module;  // table row: "blocks.attn.mat_qkv", "blocks.attn.mat_qkv.lora"
  int64_t in = 0, out = 0;
  int64_t tokens = 0;  // rows per example-view
  bool has_bias = false;
  bool weight_trained = false, bias_trained = false;
  bool input_grad = false;  // the backward computes the gradient of its input

  double forward() const { return 2.0 * static_cast<double>(tokens * in) * static_cast<double>(out); }
  double backward_input() const { return input_grad ? forward() : 0.0; }
  double backward_weight() const { return weight_trained ? forward() : 0.0; }
};

// The attention products of one block.
struct AttentionSite {
  std::string path;               // "blocks.3.attn"
  int64_t tokens = 0, width = 0;  // L, C
  bool q_grad = false, k_grad = false, v_grad = false;

  // One of q k^T or probabilities x v over all heads.
  double product() const { return 2.0 * static_cast<double>(tokens * tokens) * static_cast<double>(width); }
  double forward() const { return 2.0 * product(); }
  double backward() const {
    return product() * ((q_grad ? 1 : 0) + (k_grad ? 1 : 0) + (q_grad || k_grad ? 1 : 0) + (v_grad ? 1 : 0));
  }
};

// A trained tensor (the flat vector DP clips, noises and the optimizer updates).
struct TrainedTensor {
  std::string name;  // state-dict key
  int64_t numel = 0;
  bool decayed = false;  // the optimizer applies weight decay to it
  bool linear = false;   // weight or bias of a LinearSite (else a "small" tensor: positions, embeddings, q/v biases)
};

struct VarTrainingGraph {
  int64_t L = 0, first_l = 0, width = 0, depth = 0;
  std::vector<LinearSite> linears;  // in execution order
  std::vector<AttentionSite> attention;
  std::vector<TrainedTensor> trained;  // registration order
  int64_t trained_numel() const;
};

// Which trained tensors the optimizer decays (train::no_weight_decay negated); empty: dim >= 2.
using DecayRule = std::function<bool(const std::string& name, const torch::Tensor& tensor)>;

// Reads the training graph of `var` (after adaptation: requires_grad marks what is trained).
// Throws vardp::Error when the model has a linear layer this FLOP model does not place, so the
// count cannot silently miss a layer the code runs.
VarTrainingGraph describe_training(const model::VARImpl& var, const DecayRule& decayed = {});

// FLOPs per example-view of one table row (all its instances: depth blocks for a block module).
struct ModuleFlops {
  std::string name;
  int64_t instances = 0;
  bool tokenizer = false;  // a VQ-VAE row (forward only, not part of the VAR's forward)
  double forward = 0, backward_input = 0, backward_weight = 0;  // per example-view
  double dp_extra = 0;                                          // per step (filled by TrainingFlopModel::step)
  double optimizer = 0;                                         // per step (ditto)
  double backward() const { return backward_input + backward_weight; }
};

// Rows in execution order: word_embed, [shared_ada_lin], blocks.ada_lin, blocks.attn.mat_qkv[.lora],
// blocks.attn.scores (q k^T), blocks.attn.values (x v), blocks.attn.proj, blocks.ffn.fc1, blocks.ffn.fc2,
// head_nm.ada_lin, head (each LoRA'd layer followed by its ".lora" row).
std::vector<ModuleFlops> module_flops(const VarTrainingGraph& graph);

}  // namespace vardp::profile
