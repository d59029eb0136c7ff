// VAR transformer blocks (official models/basic_var.py), the Linear layer every block routes
// through, and the observer walk of grad_hooks.hpp.
#include "vardp/model/var_blocks.hpp"

#include <algorithm>
#include <cmath>

#include "vardp/compat/torch_compat.hpp"
#include "vardp/model/init_control.hpp"
#include "vardp/util/error.hpp"

namespace vardp::model {

namespace F = torch::nn::functional;

// ---- observer ------------------------------------------------------------------------------

void attach_grad_observer(torch::nn::Module& root, GradObserver* observer,
                          const std::string& prefix) {
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
    auto* observed = dynamic_cast<Observed*>(item.value().get());
    if (!observed) continue;
    const std::string& name = item.key();
    observed->observer_ = observer;
    observed->path_ = prefix.empty() ? name : (name.empty() ? prefix : prefix + "." + name);
  }
}

// ---- Linear --------------------------------------------------------------------------------

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features), with_bias_(with_bias) {
  reset();
}

void LinearImpl::reset() {
  weight = register_parameter("weight", torch::empty({out_features_, in_features_}));
  if (with_bias_) bias = register_parameter("bias", torch::empty({out_features_}));
  reset_parameters();
}

namespace {
thread_local bool skip_init_flag = false;
}  // namespace

SkipInitScope::SkipInitScope() : previous_(skip_init_flag) { skip_init_flag = true; }
SkipInitScope::~SkipInitScope() { skip_init_flag = previous_; }
bool init_skipped() { return skip_init_flag; }

void LinearImpl::reset_parameters() {
  if (init_skipped()) return;
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias_) {
    const double bound = in_features_ > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features_)) : 0;
    bias.uniform_(-bound, bound);
  }
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return notify(x, torch::linear(x, weight, bias));
}

torch::Tensor LinearImpl::forward_with_bias(const torch::Tensor& x, const torch::Tensor& b) {
  if (b.dim() == 1) return notify(x, torch::linear(x, weight, b));
  // Per-example bias (B, out): broadcast over every non-batch, non-feature dimension of x.
  std::vector<int64_t> shape(x.dim(), 1);
  shape.front() = b.size(0);
  shape.back() = b.size(1);
  return notify(x, torch::linear(x, weight).add(b.view(shape)));
}

void LinearImpl::enable_lora(int64_t rank, double alpha, double dropout, const std::string& init,
                             at::Generator generator) {
  VARDP_CHECK(!lora_A, "LoRA is already enabled on this layer");
  VARDP_CHECK(rank > 0 && rank <= std::min(in_features_, out_features_), "LoRA rank ", rank,
              " must be in [1, min(in, out) = ", std::min(in_features_, out_features_), "]");
  VARDP_CHECK(dropout >= 0.0 && dropout < 1.0, "LoRA dropout must be in [0, 1), got ", dropout);
  auto a = std::make_shared<LinearImpl>(in_features_, rank, /*with_bias=*/false);
  auto b = std::make_shared<LinearImpl>(rank, out_features_, /*with_bias=*/false);
  {
    torch::NoGradGuard no_grad;
    // Drawn on the CPU in float32 (the generator is a CPU one), then moved next to W.
    if (init == "kaiming") {
      // kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), drawn from the given generator.
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
      a->weight.uniform_(-bound, bound, generator);
    } else if (init == "gaussian") {
      a->weight.normal_(0.0, 1.0 / static_cast<double>(rank), generator);
    } else {
      throw Error(str("unknown LoRA init '", init, "' (kaiming | gaussian)"));
    }
    b->weight.zero_();
  }
  a->to(weight.device(), weight.scalar_type());
  b->to(weight.device(), weight.scalar_type());
  lora_A = register_module("lora_A", a);
  lora_B = register_module("lora_B", b);
  lora_scale_ = alpha / static_cast<double>(rank);
  lora_dropout_ = dropout;
}

torch::Tensor LinearImpl::lora_delta(const torch::Tensor& x) {
  torch::Tensor h = lora_dropout_ > 0.0 ? torch::dropout(x, lora_dropout_, is_training()) : x;
  return lora_B->forward(lora_A->forward(h)).mul(lora_scale_);
}

void LinearImpl::merge_lora() {
  if (!lora_A) return;
  {
    torch::NoGradGuard no_grad;
    weight.add_(torch::matmul(lora_B->weight, lora_A->weight).mul(lora_scale_).to(weight.dtype()));
  }
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A.reset();
  lora_B.reset();
  lora_scale_ = 0.0;
}

void LinearImpl::pretty_print(std::ostream& stream) const {
  stream << "vardp::model::Linear(in_features=" << in_features_
         << ", out_features=" << out_features_ << ", bias=" << (with_bias_ ? "true" : "false")
         << ")";
}

void trunc_normal_(torch::Tensor t, double mean, double std, double a, double b) {
  if (init_skipped()) return;
  torch::NoGradGuard no_grad;
  auto norm_cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = norm_cdf((a - mean) / std);
  const double u = norm_cdf((b - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.add_(mean);
  t.clamp_(a, b);
}

torch::Tensor layer_norm_wo_affine(const torch::Tensor& x, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, /*weight=*/{}, /*bias=*/{}, eps);
}

// ---- FFN -----------------------------------------------------------------------------------

FFNImpl::FFNImpl(int64_t in_features, int64_t hidden_features, double drop) : drop_(drop) {
  fc1 = register_module("fc1", Linear(in_features, hidden_features));
  fc2 = register_module("fc2", Linear(hidden_features, in_features));
}

torch::Tensor FFNImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = fc2->forward(torch::gelu(fc1->forward(x), "tanh"));
  if (drop_ > 0 && is_training()) y = torch::dropout(y, drop_, true);
  return y;
}

// ---- SelfAttention -------------------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(int64_t block_idx, int64_t embed_dim, int64_t num_heads,
                                     double attn_drop, double proj_drop, bool attn_l2_norm)
    : block_idx_(block_idx),
      num_heads_(num_heads),
      head_dim_(embed_dim / num_heads),
      attn_l2_norm_(attn_l2_norm),
      attn_drop_(attn_drop),
      proj_drop_(proj_drop) {
  VARDP_CHECK(num_heads > 0 && embed_dim % num_heads == 0, "SelfAttention: embed_dim ", embed_dim,
              " is not divisible by num_heads ", num_heads);
  if (attn_l2_norm_) {
    scale_ = 1.0;
    scale_mul_1H11 =
        register_parameter("scale_mul_1H11", torch::full({1, num_heads, 1, 1}, 4.0).log());
    max_scale_mul_ = std::log(100.0);
  } else {
    scale_ = 0.25 / std::sqrt(static_cast<double>(head_dim_));
    max_scale_mul_ = 0;
  }
  mat_qkv = register_module("mat_qkv", Linear(embed_dim, 3 * embed_dim, /*with_bias=*/false));
  q_bias = register_parameter("q_bias", torch::zeros({embed_dim}));
  v_bias = register_parameter("v_bias", torch::zeros({embed_dim}));
  zero_k_bias = register_buffer("zero_k_bias", torch::zeros({embed_dim}));
  proj = register_module("proj", Linear(embed_dim, embed_dim));
}

void SelfAttentionImpl::kv_caching(bool enable) {
  caching_ = enable;
  cached_k_ = torch::Tensor();
  cached_v_ = torch::Tensor();
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_bias) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2);

  // Hook sites: q_bias, v_bias. The qkv bias is cat(q_bias, zero_k_bias, v_bias).
  torch::Tensor qb = use_param("q_bias", q_bias, B);
  torch::Tensor vb = use_param("v_bias", v_bias, B);
  torch::Tensor qkv_bias;
  if (qb.dim() == 1 && vb.dim() == 1) {
    qkv_bias = torch::cat({qb, zero_k_bias, vb});
  } else {
    auto per_example = [&](const torch::Tensor& t) { return t.dim() == 1 ? t.expand({B, C}) : t; };
    qkv_bias = torch::cat({per_example(qb), zero_k_bias.expand({B, C}), per_example(vb)}, 1);
  }
  torch::Tensor qkv = mat_qkv->forward_with_bias(x, qkv_bias).view({B, L, 3, num_heads_, head_dim_});
  auto qkv_parts = qkv.permute({2, 0, 3, 1, 4}).unbind(0);  // each (B, H, L, c)
  torch::Tensor q = qkv_parts[0], k = qkv_parts[1], v = qkv_parts[2];

  if (attn_l2_norm_) {
    // Hook site: scale_mul_1H11 (a replica (B, 1, H, 1, 1) becomes (B, H, 1, 1)).
    torch::Tensor sm = use_param("scale_mul_1H11", scale_mul_1H11, B);
    if (is_replica(sm, scale_mul_1H11)) sm = sm.squeeze(1);
    torch::Tensor scale_mul = sm.clamp_max(max_scale_mul_).exp();
    q = F::normalize(q, F::NormalizeFuncOptions().dim(-1)).mul(scale_mul);
    k = F::normalize(k, F::NormalizeFuncOptions().dim(-1));
  }

  if (caching_) {
    if (!cached_k_.defined()) {
      cached_k_ = k;
      cached_v_ = v;
    } else {
      k = cached_k_ = torch::cat({cached_k_, k}, 2);
      v = cached_v_ = torch::cat({cached_v_, v}, 2);
    }
  }

  const double dropout_p = is_training() ? attn_drop_ : 0.0;
  torch::Tensor oup = compat::scaled_dot_product_attention(q, k, v, attn_bias, scale_, dropout_p)
                          .transpose(1, 2)
                          .reshape({B, L, C});
  torch::Tensor y = proj->forward(oup);
  if (proj_drop_ > 0 && is_training()) y = torch::dropout(y, proj_drop_, true);
  return y;
}

// ---- AdaLNSelfAttn -------------------------------------------------------------------------

AdaLNSelfAttnImpl::AdaLNSelfAttnImpl(int64_t block_idx, int64_t embed_dim, int64_t cond_dim,
                                     bool shared_aln, double norm_eps, int64_t num_heads,
                                     double mlp_ratio, double drop, double attn_drop,
                                     double drop_path, bool attn_l2_norm)
    : C_(embed_dim), shared_aln_(shared_aln), norm_eps_(norm_eps), drop_path_(drop_path) {
  attn = register_module("attn", SelfAttention(block_idx, embed_dim, num_heads, attn_drop, drop,
                                               attn_l2_norm));
  const auto hidden = static_cast<int64_t>(std::nearbyint(static_cast<double>(embed_dim) * mlp_ratio));
  ffn = register_module("ffn", FFN(embed_dim, hidden, drop));
  if (shared_aln_) {
    ada_gss = register_parameter(
        "ada_gss", torch::randn({1, 1, 6, embed_dim}) / std::sqrt(static_cast<double>(embed_dim)));
  } else {
    ada_lin_linear = Linear(cond_dim, 6 * embed_dim);
    ada_lin = register_module("ada_lin", torch::nn::Sequential(torch::nn::SiLU(), ada_lin_linear));
  }
}

torch::Tensor AdaLNSelfAttnImpl::forward(const torch::Tensor& x, const torch::Tensor& cond_BD,
                                         const torch::Tensor& attn_bias, const BlockNoise& noise) {
  const int64_t B = x.size(0);
  std::vector<torch::Tensor> m;  // gamma1, gamma2, scale1, scale2, shift1, shift2: (B, 1, C)
  if (shared_aln_) {
    // Hook site: ada_gss (a replica (B, 1, 1, 6, C) becomes (B, 1, 6, C)).
    torch::Tensor gss = use_param("ada_gss", ada_gss, B);
    if (is_replica(gss, ada_gss)) gss = gss.squeeze(1);
    m = (gss + cond_BD).unbind(2);
  } else {
    m = ada_lin_linear->forward(torch::silu(cond_BD)).view({-1, 1, 6, C_}).unbind(2);
  }
  const bool drop = is_training() && noise.drop_path_scale.defined();
  auto drop_path = [&](const torch::Tensor& t) {
    return drop ? t.mul(noise.drop_path_scale.view({B, 1, 1})) : t;
  };
  torch::Tensor h = layer_norm_wo_affine(x, norm_eps_).mul(m[2].add(1)).add_(m[4]);
  torch::Tensor out = x + drop_path(attn->forward(h, attn_bias).mul(m[0]));
  h = layer_norm_wo_affine(out, norm_eps_).mul(m[3].add(1)).add_(m[5]);
  return out + drop_path(ffn->forward(h).mul(m[1]));
}

// ---- AdaLNBeforeHead -----------------------------------------------------------------------

AdaLNBeforeHeadImpl::AdaLNBeforeHeadImpl(int64_t C, int64_t D, double norm_eps)
    : C_(C), norm_eps_(norm_eps) {
  ada_lin_linear = Linear(D, 2 * C);
  ada_lin = register_module("ada_lin", torch::nn::Sequential(torch::nn::SiLU(), ada_lin_linear));
}

torch::Tensor AdaLNBeforeHeadImpl::forward(const torch::Tensor& x_BLC, const torch::Tensor& cond_BD) {
  auto m = ada_lin_linear->forward(torch::silu(cond_BD)).view({-1, 1, 2, C_}).unbind(2);
  return layer_norm_wo_affine(x_BLC, norm_eps_).mul(m[0].add(1)).add_(m[1]);
}

}  // namespace vardp::model
