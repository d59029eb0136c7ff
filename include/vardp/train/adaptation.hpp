// Adaptations of a pre-trained VAR to a new dataset ([adapt]): full fine-tuning, LoRA and
// "LayerNorm tuning" (VAR's LayerNorms have no parameters, so, as in the paper, lntune trains the
// AdaLN `ada_lin` linears that produce the LayerNorms' scale and shift). The VQ-VAE is never
// adapted (it is frozen and public: ARCHITECTURE invariant 5).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vardp/config/config.hpp"
#include "vardp/model/var.hpp"

namespace vardp::train {

struct AdaptationReport {
  std::string method;
  std::vector<std::string> trainable;    // state-dict names, registration order
  int64_t base_params = 0;               // VAR parameters before adaptation (LoRA factors excluded)
  int64_t adapter_params = 0;            // trained by the method itself (LoRA factors, ada_lin, all)
  int64_t class_emb_params = 0;          // the class embedding, when trained on top
  int64_t trainable_params = 0;          // adapter + class embedding
  std::vector<std::string> lora_layers;  // layers that got LoRA factors
  std::string summary() const;           // one line for the log
};

// Names of the linear layers each LoRA target group covers, for a model of `depth` blocks:
// attn -> blocks.N.attn.mat_qkv, blocks.N.attn.proj; mlp -> blocks.N.ffn.fc1, blocks.N.ffn.fc2;
// adaln -> blocks.N.ada_lin.1 (or shared_ada_lin.1); head -> head, head_nm.ada_lin.1.
// Throws UsageError for an unknown group.
std::vector<std::string> lora_target_layers(const model::VARConfig& cfg, const std::vector<std::string>& groups);

// Applies `cfg` to `var` in place: a new class embedding when cfg.num_classes > 0 differs from
// the model's (or always with `fresh_class_emb`), LoRA factors on the target layers, and
// requires_grad on exactly the trained tensors. Initialisation randomness comes from counter-based
// streams keyed by `seed` (purpose init), so every rank builds the same model.
AdaptationReport adapt_var(model::VARImpl& var, const config::AdaptConfig& cfg, uint64_t seed,
                           bool fresh_class_emb = false);

// The trained tensors, by state-dict name (what a PEFT checkpoint stores).
std::vector<std::pair<std::string, torch::Tensor>> trainable_tensors(torch::nn::Module& m);

}  // namespace vardp::train
