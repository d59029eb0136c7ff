// VAR transformer: embeddings, teacher-forcing forward, loss, initialisation (official
// models/var.py).
#include "vardp/model/var.hpp"

#include <cmath>
#include <sstream>

#include "vardp/util/error.hpp"

namespace vardp::model {

namespace F = torch::nn::functional;

namespace {

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

}  // namespace

// ---- config --------------------------------------------------------------------------------

VARConfig VARConfig::for_depth(int64_t depth, int64_t num_classes, int64_t vocab_size,
                               int64_t Cvae, std::vector<int64_t> patch_nums) {
  VARConfig c;
  c.depth = depth;
  c.embed_dim = 64 * depth;
  c.num_heads = depth;
  c.drop_path_rate = 0.1 * static_cast<double>(depth) / 24.0;
  c.num_classes = num_classes;
  c.vocab_size = vocab_size;
  c.Cvae = Cvae;
  c.patch_nums = std::move(patch_nums);
  c.attn_l2_norm = true;
  c.shared_aln = false;
  c.cond_drop_rate = 0.1;
  return c;
}

int64_t VARConfig::L() const {
  int64_t l = 0;
  for (int64_t pn : patch_nums) l += pn * pn;
  return l;
}

int64_t VARConfig::first_l() const { return patch_nums.empty() ? 0 : patch_nums[0] * patch_nums[0]; }

std::vector<std::pair<int64_t, int64_t>> VARConfig::begin_ends() const {
  std::vector<std::pair<int64_t, int64_t>> be;
  int64_t cur = 0;
  for (int64_t pn : patch_nums) {
    be.emplace_back(cur, cur + pn * pn);
    cur += pn * pn;
  }
  return be;
}

int64_t VARConfig::ffn_hidden() const {
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(embed_dim) * mlp_ratio));
}

void VARConfig::validate() const {
  const std::string ctx = "VARConfig";
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(what, ctx);
  };
  need(vocab_size > 0, str("vocab_size must be > 0, got ", vocab_size));
  need(Cvae > 0, str("Cvae must be > 0, got ", Cvae));
  need(num_classes > 0, str("num_classes must be > 0, got ", num_classes));
  need(depth >= 1, str("depth must be >= 1, got ", depth));
  need(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0,
       str("embed_dim ", embed_dim, " must be a positive multiple of num_heads ", num_heads));
  need(mlp_ratio > 0, str("mlp_ratio must be > 0, got ", mlp_ratio));
  need(drop_path_rate >= 0 && drop_path_rate < 1,
       str("drop_path_rate must be in [0, 1), got ", drop_path_rate));
  need(cond_drop_rate >= 0 && cond_drop_rate <= 1,
       str("cond_drop_rate must be in [0, 1], got ", cond_drop_rate));
  need(!patch_nums.empty(), "patch_nums is empty");
  for (int64_t pn : patch_nums) need(pn >= 1, str("patch_nums must be >= 1: ", join(patch_nums)));
}

std::string VARConfig::describe() const {
  std::ostringstream os;
  os << "VAR(depth=" << depth << ", embed_dim=" << embed_dim << ", num_heads=" << num_heads
     << ", mlp_ratio=" << mlp_ratio << ", vocab_size=" << vocab_size << ", Cvae=" << Cvae
     << ", num_classes=" << num_classes << ", shared_aln=" << shared_aln
     << ", attn_l2_norm=" << attn_l2_norm << ", norm_eps=" << norm_eps
     << ", drop_path_rate=" << drop_path_rate << ", cond_drop_rate=" << cond_drop_rate
     << ", patch_nums=(" << join(patch_nums) << "), L=" << L() << ")";
  return os.str();
}

// ---- VAR -----------------------------------------------------------------------------------

VARImpl::VARImpl(VARConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  const int64_t C = cfg_.embed_dim, D = cfg_.embed_dim;
  const int64_t L = cfg_.L(), SN = cfg_.num_scales();
  const double init_std = std::sqrt(1.0 / static_cast<double>(C) / 3.0);

  word_embed = register_module("word_embed", Linear(cfg_.Cvae, C));
  class_emb = register_module(
      "class_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(cfg_.num_classes + 1, C)));
  trunc_normal_(class_emb->weight, 0, init_std);
  pos_start = register_parameter("pos_start", torch::empty({1, cfg_.first_l(), C}));
  trunc_normal_(pos_start, 0, init_std);
  std::vector<torch::Tensor> pes;
  for (int64_t pn : cfg_.patch_nums) {
    torch::Tensor pe = torch::empty({1, pn * pn, C});
    trunc_normal_(pe, 0, init_std);
    pes.push_back(pe);
  }
  pos_1LC = register_parameter("pos_1LC", torch::cat(pes, 1));
  lvl_embed = register_module("lvl_embed", torch::nn::Embedding(torch::nn::EmbeddingOptions(SN, C)));
  trunc_normal_(lvl_embed->weight, 0, init_std);

  if (cfg_.shared_aln) {
    shared_ada_lin_linear = Linear(D, 6 * C);
    shared_ada_lin = register_module(
        "shared_ada_lin", torch::nn::Sequential(torch::nn::SiLU(), shared_ada_lin_linear));
  }

  // Stochastic depth decay rule of the official code, computed in float32 like torch.linspace.
  torch::Tensor dpr = torch::linspace(0, cfg_.drop_path_rate, cfg_.depth);
  for (int64_t i = 0; i < cfg_.depth; ++i) dpr_.push_back(dpr[i].item<float>());
  torch::nn::ModuleList block_list;
  for (int64_t i = 0; i < cfg_.depth; ++i) {
    AdaLNSelfAttn b(i, C, D, cfg_.shared_aln, cfg_.norm_eps, cfg_.num_heads, cfg_.mlp_ratio,
                    cfg_.drop_rate, cfg_.attn_drop_rate, dpr_[i], cfg_.attn_l2_norm);
    block_list->push_back(b);
    blocks.push_back(b);
  }
  register_module("blocks", block_list);

  // Block-causal mask: token i may attend to token j iff scale(i) >= scale(j).
  std::vector<torch::Tensor> lv;
  for (int64_t i = 0; i < SN; ++i)
    lv.push_back(torch::full({cfg_.patch_nums[i] * cfg_.patch_nums[i]}, i, torch::kLong));
  torch::Tensor d = torch::cat(lv).view({1, L, 1});
  torch::Tensor dT = d.transpose(1, 2);
  lvl_1L = register_buffer("lvl_1L", dT.select(1, 0).contiguous());
  attn_bias_for_masking = register_buffer(
      "attn_bias_for_masking",
      torch::where(d >= dT, torch::zeros({}), torch::full({}, -INFINITY)).reshape({1, 1, L, L}).contiguous());

  head_nm = register_module("head_nm", AdaLNBeforeHead(C, D, cfg_.norm_eps));
  head = register_module("head", Linear(C, cfg_.vocab_size));
}

void VARImpl::reset_classes(int64_t num_classes, at::Generator generator) {
  VARDP_CHECK(num_classes > 0, "num_classes must be > 0, got ", num_classes);
  const int64_t C = cfg_.embed_dim;
  const double init_std = std::sqrt(1.0 / static_cast<double>(C) / 3.0);
  torch::Tensor w = torch::empty({num_classes + 1, C});
  {
    torch::NoGradGuard no_grad;
    w.normal_(0.0, init_std, generator).clamp_(-2.0, 2.0);
  }
  auto emb = torch::nn::Embedding(torch::nn::EmbeddingOptions(num_classes + 1, C));
  emb->weight.set_data(w.to(class_emb->weight.options()));
  class_emb = replace_module("class_emb", emb);
  cfg_.num_classes = num_classes;
}

torch::Tensor VARImpl::class_embedding(const torch::Tensor& labels) {
  const int64_t B = labels.size(0);
  // Hook site: class_emb.weight (a replica is (B, num_classes + 1, C)).
  torch::Tensor w = use_param("class_emb.weight", class_emb->weight, B);
  if (is_replica(w, class_emb->weight))
    return w.gather(1, labels.view({B, 1, 1}).expand({B, 1, w.size(2)})).squeeze(1);
  return torch::embedding(w, labels);
}

torch::Tensor VARImpl::level_position(int64_t ed, int64_t batch) {
  const int64_t C = cfg_.embed_dim;
  torch::Tensor lvl = lvl_1L.slice(1, 0, ed);
  // Hook site: lvl_embed.weight (a replica is (B, SN, C)).
  torch::Tensor lw = use_param("lvl_embed.weight", lvl_embed->weight, batch);
  torch::Tensor lv = is_replica(lw, lvl_embed->weight)
                         ? lw.gather(1, lvl.expand({batch, ed}).unsqueeze(-1).expand({batch, ed, C}))
                         : torch::embedding(lw, lvl);
  // Hook site: pos_1LC (a replica (B, 1, L, C) becomes (B, L, C)).
  torch::Tensor pos = use_param("pos_1LC", pos_1LC, batch);
  if (is_replica(pos, pos_1LC)) pos = pos.squeeze(1);
  return lv + pos.slice(1, 0, ed);
}

torch::Tensor VARImpl::start_position(int64_t batch) {
  // Hook site: pos_start (a replica (B, 1, first_l, C) becomes (B, first_l, C)).
  torch::Tensor ps = use_param("pos_start", pos_start, batch);
  if (is_replica(ps, pos_start)) return ps.squeeze(1);
  return ps.expand({batch, cfg_.first_l(), cfg_.embed_dim});
}

torch::Tensor VARImpl::block_condition(const torch::Tensor& cond_BD) {
  if (!cfg_.shared_aln) return cond_BD;
  return shared_ada_lin_linear->forward(torch::silu(cond_BD)).view({-1, 1, 6, cfg_.embed_dim});
}

torch::Tensor VARImpl::get_logits(const torch::Tensor& h, const torch::Tensor& cond_BD) {
  return head->forward(head_nm->forward(h.to(torch::kFloat), cond_BD).to(torch::kFloat))
      .to(torch::kFloat);
}

void VARImpl::kv_caching(bool enable) {
  for (auto& b : blocks) b->attn->kv_caching(enable);
}

torch::Tensor VARImpl::forward(const torch::Tensor& labels_in, const torch::Tensor& x_BLCv,
                               const ForwardOptions& opt) {
  const int64_t B = x_BLCv.size(0);
  const int64_t L = cfg_.L(), first_l = cfg_.first_l(), C = cfg_.embed_dim;
  VARDP_CHECK(x_BLCv.dim() == 3 && x_BLCv.size(1) == L - first_l && x_BLCv.size(2) == cfg_.Cvae,
              "VAR.forward: teacher-forcing input must be (B, ", L - first_l, ", ", cfg_.Cvae,
              "), got ", x_BLCv.sizes());
  VARDP_CHECK(labels_in.dim() == 1 && labels_in.size(0) == B, "VAR.forward: labels must be (",
              B, "), got ", labels_in.sizes());
  torch::Tensor labels = labels_in.to(torch::kLong);

  // Label dropout only when asked (the official code always drops with cond_drop_rate > 0).
  torch::Tensor drop = opt.label_drop_mask;
  if (!drop.defined() && opt.cond_drop_rate > 0) {
    drop = torch::rand({B}, opt.generator, torch::TensorOptions().device(labels.device())) <
           opt.cond_drop_rate;
  }
  if (drop.defined()) {
    labels = torch::where(drop.to(labels.device()).to(torch::kBool),
                          torch::full({}, cfg_.num_classes, labels.options()), labels);
  }

  torch::Tensor cond_BD = class_embedding(labels);
  torch::Tensor sos = cond_BD.unsqueeze(1).expand({B, first_l, C}) + start_position(B);
  torch::Tensor x = torch::cat({sos, word_embed->forward(x_BLCv.to(torch::kFloat))}, 1);
  x = x + level_position(L, B);

  torch::Tensor attn_bias = attn_bias_for_masking.slice(2, 0, L).slice(3, 0, L);
  torch::Tensor cond = block_condition(cond_BD);

  const bool drop_path = is_training() && cfg_.drop_path_rate > 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    BlockNoise noise;
    const double p = dpr_[i];
    if (drop_path && p > 0) {
      const double keep = 1.0 - p;
      torch::Tensor k;
      if (opt.drop_path_keep.defined()) {
        k = opt.drop_path_keep[static_cast<int64_t>(i)].to(x.device()).to(torch::kFloat);
      } else {
        k = torch::empty({B}, x.options()).bernoulli_(keep, opt.generator);
      }
      noise.drop_path_scale = k.div(keep);
    }
    x = blocks[i]->forward(x, cond, attn_bias, noise);
  }
  return get_logits(x, cond_BD);
}

void VARImpl::init_weights(double init_adaln, double init_adaln_gamma, double init_head,
                           double init_std) {
  torch::NoGradGuard no_grad;
  const int64_t C = cfg_.embed_dim;
  if (init_std < 0) init_std = std::sqrt(1.0 / static_cast<double>(C) / 3.0);
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) {
      trunc_normal_(lin->weight, 0, init_std);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = dynamic_cast<torch::nn::EmbeddingImpl*>(m.get())) {
      trunc_normal_(emb->weight, 0, init_std);
    }
  }
  if (init_head >= 0) {
    head->weight.mul_(init_head);
    head->bias.zero_();
  }
  head_nm->ada_lin_linear->weight.mul_(init_adaln);
  head_nm->ada_lin_linear->bias.zero_();
  const double depth_scale = std::sqrt(2.0 * static_cast<double>(blocks.size()));
  for (auto& b : blocks) {
    b->attn->proj->weight.div_(depth_scale);
    b->ffn->fc2->weight.div_(depth_scale);
    if (!b->ada_lin_linear.is_empty()) {
      b->ada_lin_linear->weight.slice(0, 2 * C).mul_(init_adaln);
      b->ada_lin_linear->weight.slice(0, 0, 2 * C).mul_(init_adaln_gamma);
      b->ada_lin_linear->bias.zero_();
    } else if (b->ada_gss.defined()) {
      b->ada_gss.slice(2, 2).mul_(init_adaln);
      b->ada_gss.slice(2, 0, 2).mul_(init_adaln_gamma);
    }
  }
}

// ---- loss, FLOPs, counts -------------------------------------------------------------------

TokenLoss cross_entropy_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                             double label_smoothing) {
  VARDP_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                  logits.size(1) == targets.size(1),
              "cross_entropy_loss: logits ", logits.sizes(), " and targets ", targets.sizes(),
              " do not match");
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2);
  TokenLoss out;
  out.per_token = F::cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}).to(torch::kLong),
                                   F::CrossEntropyFuncOptions()
                                       .reduction(torch::kNone)
                                       .label_smoothing(label_smoothing))
                      .view({B, L});
  // The official trainer weights every token by 1/L and sums: loss.mul(lw).sum(-1).mean().
  torch::Tensor lw = torch::ones({1, L}, out.per_token.options()) / static_cast<double>(L);
  out.per_example = out.per_token.mul(lw).sum(-1);
  out.mean = out.per_example.mean();
  return out;
}

double forward_flops(const VARConfig& cfg, int64_t batch) {
  const double C = static_cast<double>(cfg.embed_dim), D = C;
  const double L = static_cast<double>(cfg.L());
  const double Lw = static_cast<double>(cfg.L() - cfg.first_l());
  const double Hf = static_cast<double>(cfg.ffn_hidden());
  const double V = static_cast<double>(cfg.vocab_size);
  double per_example = 2 * Lw * static_cast<double>(cfg.Cvae) * C;  // word_embed
  if (cfg.shared_aln) per_example += 2 * D * 6 * C;
  const double per_block = L * 2 * (C * 3 * C + C * C + 2 * C * Hf)  // qkv, proj, fc1, fc2
                           + 2 * 2 * L * L * C                        // q k^T and attn v
                           + (cfg.shared_aln ? 0 : 2 * D * 6 * C);    // ada_lin
  per_example += static_cast<double>(cfg.depth) * per_block;
  per_example += 2 * D * 2 * C + L * 2 * C * V;  // head_nm.ada_lin, head
  return per_example * static_cast<double>(batch);
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

}  // namespace vardp::model
