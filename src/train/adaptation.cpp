// Full fine-tuning, LoRA and LayerNorm (AdaLN) tuning of a VAR.
#include "vardp/train/adaptation.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "vardp/dp/per_example.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::train {
namespace {

// A CPU generator seeded from the counter-based stream (seed, init, what): every rank draws the
// same initial values.
at::Generator init_generator(uint64_t seed, uint64_t what) {
  rng::Stream s(seed, rng::Purpose::init, what);
  return at::make_generator<at::CPUGeneratorImpl>(s.derive_seed());
}

bool is_lntune_tensor(const std::string& name, bool with_head) {
  if (!dp::is_ada_lin(name)) return false;
  return with_head || name.rfind("head_nm.", 0) != 0;
}

}  // namespace

std::string AdaptationReport::summary() const {
  std::ostringstream os;
  os << "adaptation " << method << ": " << trainable_params << " trainable parameters (" << adapter_params << " "
     << (method == "lora"     ? "LoRA"
         : method == "lntune" ? "ada_lin"
                              : "model")
     << " + " << class_emb_params << " class embedding) of " << base_params << " in the base VAR";
  if (!lora_layers.empty()) os << "; LoRA on " << lora_layers.size() << " layers";
  return os.str();
}

std::vector<std::string> lora_target_layers(const model::VARConfig& cfg, const std::vector<std::string>& groups) {
  std::set<std::string> want;
  for (const auto& g : groups) {
    if (g != "attn" && g != "mlp" && g != "adaln" && g != "head")
      throw UsageError(str("unknown LoRA target group '", g, "' (attn | mlp | adaln | head)"), "adapt.lora_targets");
    want.insert(g);
  }
  std::vector<std::string> layers;
  for (int64_t i = 0; i < cfg.depth; ++i) {
    const std::string b = str("blocks.", i, ".");
    if (want.count("attn")) layers.insert(layers.end(), {b + "attn.mat_qkv", b + "attn.proj"});
    if (want.count("mlp")) layers.insert(layers.end(), {b + "ffn.fc1", b + "ffn.fc2"});
    if (want.count("adaln") && !cfg.shared_aln) layers.push_back(b + "ada_lin.1");
  }
  if (want.count("adaln") && cfg.shared_aln) layers.push_back("shared_ada_lin.1");
  if (want.count("head")) layers.insert(layers.end(), {"head_nm.ada_lin.1", "head"});
  return layers;
}

AdaptationReport adapt_var(model::VARImpl& var, const config::AdaptConfig& cfg, uint64_t seed, bool fresh_class_emb) {
  AdaptationReport rep;
  rep.method = cfg.method;
  rep.base_params = model::count_parameters(var);
  if (cfg.method != "full" && cfg.method != "lora" && cfg.method != "lntune")
    throw UsageError(str("unknown adaptation method '", cfg.method, "' (full | lora | lntune)"), "adapt.method");

  if (fresh_class_emb || (cfg.num_classes > 0 && cfg.num_classes != var.config().num_classes)) {
    var.reset_classes(cfg.num_classes > 0 ? cfg.num_classes : var.config().num_classes, init_generator(seed, 1));
    rep.base_params = model::count_parameters(var);
  }

  std::set<std::string> lora_paths;
  if (cfg.method == "lora") {
    VARDP_CHECK(cfg.lora_rank > 0, "adapt.lora_rank must be > 0");
    const auto layers = lora_target_layers(var.config(), cfg.lora_targets);
    std::map<std::string, model::LinearImpl*> by_path;
    for (const auto& item : var.named_modules("", /*include_self=*/false))
      if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get())) by_path[item.key()] = lin;
    at::Generator gen = init_generator(seed, 2);  // one generator, layers in a fixed order
    for (const auto& path : layers) {
      auto it = by_path.find(path);
      VARDP_CHECK(it != by_path.end(), "LoRA target layer '", path, "' is not in the model");
      it->second->enable_lora(cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_init, gen);
      lora_paths.insert(path);
      rep.lora_layers.push_back(path);
    }
  }

  auto adapter_tensor = [&](const std::string& name) {
    if (cfg.method == "full") return true;
    if (cfg.method == "lntune") return is_lntune_tensor(name, cfg.lntune_head);
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
  };
  for (auto& item : var.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    const bool is_class_emb = name == "class_emb.weight";
    const bool adapter = adapter_tensor(name);
    const bool train = adapter || (is_class_emb && cfg.train_class_emb);
    item.value().set_requires_grad(train);
    if (!train) continue;
    rep.trainable.push_back(name);
    // In full fine-tuning the class embedding is part of the model; elsewhere it comes on top.
    if (is_class_emb && !adapter)
      rep.class_emb_params += item.value().numel();
    else
      rep.adapter_params += item.value().numel();
  }
  rep.trainable_params = rep.adapter_params + rep.class_emb_params;
  VARDP_CHECK(!rep.trainable.empty(), "adaptation '", cfg.method, "' leaves nothing to train");
  return rep;
}

std::vector<std::pair<std::string, torch::Tensor>> trainable_tensors(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : m.named_parameters(true))
    if (item.value().requires_grad()) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace vardp::train
