// AdamW / SGD with checkpointable state, and the learning-rate schedule.
#include "vardp/train/optimizer.hpp"

#include <torch/torch.h>

#include <cmath>

#include "vardp/util/error.hpp"

namespace vardp::train {

bool no_weight_decay(const std::string& name, const torch::Tensor& p) {
  if (p.dim() <= 1) return true;
  for (const char* key : {"bias", "pos_1LC", "pos_start", "lvl_embed", "scale_mul", "ada_gss"})
    if (name.find(key) != std::string::npos) return true;
  return false;
}

Optimizer::Optimizer(const config::TrainConfig& cfg, std::vector<std::pair<std::string, torch::Tensor>> params)
    : kind_(cfg.optimizer),
      beta1_(cfg.beta1),
      beta2_(cfg.beta2),
      weight_decay_(cfg.weight_decay),
      momentum_(cfg.momentum) {
  if (kind_ != "adamw" && kind_ != "sgd")
    throw UsageError(str("unknown optimizer '", kind_, "' (adamw | sgd)"), "train.optimizer");
  for (auto& [name, p] : params) {
    names_.push_back(name);
    params_.push_back(p);
    decay_.push_back(!no_weight_decay(name, p));
    m_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    v_.push_back(kind_ == "adamw" ? torch::zeros_like(p, torch::MemoryFormat::Contiguous) : torch::Tensor());
  }
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    torch::Tensor g = p.grad().defined() ? p.grad() : torch::zeros_like(p);
    const double wd = decay_[i] ? weight_decay_ : 0.0;
    if (kind_ == "adamw") {
      if (wd != 0.0) p.mul_(1.0 - lr * wd);
      m_[i].mul_(beta1_).add_(g, 1.0 - beta1_);
      v_[i].mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
      torch::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(eps_);
      p.addcdiv_(m_[i], denom, -lr / bc1);
    } else {
      torch::Tensor d = wd != 0.0 ? g.add(p, wd) : g;
      if (momentum_ != 0.0) {
        // PyTorch initialises the buffer with the first gradient.
        if (t_ == 1)
          m_[i].copy_(d);
        else
          m_[i].mul_(momentum_).add_(d);
        d = m_[i];
      }
      p.add_(d, -lr);
    }
  }
}

std::map<std::string, io::StateDict> Optimizer::state() const {
  std::map<std::string, io::StateDict> st;
  const std::string first = kind_ == "adamw" ? "exp_avg" : "momentum";
  for (size_t i = 0; i < names_.size(); ++i) {
    st[first].insert(names_[i], m_[i].detach().cpu());
    if (v_[i].defined()) st["exp_avg_sq"].insert(names_[i], v_[i].detach().cpu());
  }
  return st;
}

void Optimizer::load_state(const std::map<std::string, io::StateDict>& state, int64_t steps_taken) {
  torch::NoGradGuard no_grad;
  auto restore = [&](const std::string& moment, std::vector<torch::Tensor>& dst) {
    auto it = state.find(moment);
    VARDP_CHECK(it != state.end(), "optimizer state has no '", moment, "' (another optimizer?)");
    VARDP_CHECK(it->second.size() == names_.size(), "optimizer state '", moment, "' holds ", it->second.size(),
                " tensors, this run trains ", names_.size());
    for (size_t i = 0; i < names_.size(); ++i) {
      VARDP_CHECK(it->second.contains(names_[i]), "optimizer state '", moment, "' has no '", names_[i], "'");
      const torch::Tensor& src = it->second.at(names_[i]);
      VARDP_CHECK(src.sizes() == dst[i].sizes(), "optimizer state '", moment, "/", names_[i], "' has shape ",
                  src.sizes(), ", expected ", dst[i].sizes());
      dst[i].copy_(src);
    }
  };
  restore(kind_ == "adamw" ? "exp_avg" : "momentum", m_);
  if (kind_ == "adamw") restore("exp_avg_sq", v_);
  t_ = steps_taken;
}

double learning_rate(const config::TrainConfig& cfg, int64_t step, int64_t total) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps)
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  if (cfg.schedule == "constant") return cfg.lr;
  if (cfg.schedule == "cosine") {
    const double span = static_cast<double>(std::max<int64_t>(1, total - cfg.warmup_steps));
    const double progress = std::min(1.0, static_cast<double>(step - cfg.warmup_steps) / span);
    return cfg.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  throw UsageError(str("unknown schedule '", cfg.schedule, "' (constant | cosine)"), "train.schedule");
}

}  // namespace vardp::train
