// The training graph of a VAR read from the model, and its FLOPs per example-view.
#include "vardp/profile/var_flops.hpp"

#include <map>
#include <set>

#include "vardp/model/var.hpp"
#include "vardp/util/error.hpp"

namespace vardp::profile {

int64_t VarTrainingGraph::trained_numel() const {
  int64_t n = 0;
  for (const auto& t : trained) n += t.numel;
  return n;
}

namespace {

// The table row of a layer: "blocks.3.attn.mat_qkv" -> "blocks.attn.mat_qkv"; the AdaLN linears
// (index 1 of their (SiLU, Linear) Sequential) drop the index: "blocks.3.ada_lin.1" -> "blocks.ada_lin".
std::string module_of(std::string path) {
  const std::string prefix = "blocks.";
  if (path.rfind(prefix, 0) == 0) {
    const size_t dot = path.find('.', prefix.size());
    if (dot != std::string::npos) path = prefix + path.substr(dot + 1);
  }
  const std::string ada = "ada_lin.1";
  if (path.size() >= ada.size() && path.compare(path.size() - ada.size(), ada.size(), ada) == 0)
    path.resize(path.size() - 2);
  return path;
}

// Walks the layers in the order VARImpl::forward runs them, propagating "carries a gradient"
// from the trained tensors downstream.
class GraphBuilder {
 public:
  explicit GraphBuilder(const model::VARImpl& var) : var_(var) {
    for (const auto& item : var.named_modules("", /*include_self=*/false))
      if (auto* lin = dynamic_cast<const model::LinearImpl*>(item.value().get())) layers_[item.key()] = lin;
    for (const auto& item : var.named_parameters(/*recurse=*/true))
      if (item.value().requires_grad()) trained_.insert(item.key());
  }

  bool trained(const std::string& name) const { return trained_.count(name) != 0; }

  // Adds the layer at `path` (and its LoRA factors); returns whether its output carries a gradient.
  bool linear(const std::string& path, int64_t tokens, bool input_grad) {
    auto it = layers_.find(path);
    if (it == layers_.end()) throw Error("the model has no linear layer '" + path + "'", "profile::describe_training");
    const model::LinearImpl& l = *it->second;
    placed_.insert(path);
    LinearSite s;
    s.path = path;
    s.module = module_of(path);
    s.in = l.in_features();
    s.out = l.out_features();
    s.tokens = tokens;
    s.has_bias = l.has_bias();
    s.weight_trained = trained(path + ".weight");
    s.bias_trained = s.has_bias && trained(path + ".bias");
    s.input_grad = input_grad;
    graph_.linears.push_back(s);
    bool out_grad = input_grad || s.weight_trained || s.bias_trained;
    if (l.has_lora()) {
      // y = base(x) + scale * B(A(x)): A sees the layer's input, B sees A's output.
      const bool a_out = linear(path + ".lora_A", tokens, input_grad);
      const bool b_out = linear(path + ".lora_B", tokens, a_out);
      graph_.linears[graph_.linears.size() - 2].module = s.module + ".lora";
      graph_.linears.back().module = s.module + ".lora";
      out_grad = out_grad || b_out;
    }
    return out_grad;
  }

  VarTrainingGraph build(const DecayRule& decayed) {
    const model::VARConfig& c = var_.config();
    const int64_t L = c.L();
    graph_.L = L;
    graph_.first_l = c.first_l();
    graph_.width = c.embed_dim;
    graph_.depth = c.depth;

    // The teacher-forcing input comes from the frozen VQ-VAE: it never carries a gradient.
    const bool embedded = linear("word_embed", L - c.first_l(), false);
    const bool cond = trained("class_emb.weight");
    bool x = cond || embedded || trained("pos_start") || trained("pos_1LC") || trained("lvl_embed.weight");
    bool shared = false;
    if (c.shared_aln) shared = linear("shared_ada_lin.1", 1, cond);  // input silu(cond)
    for (int64_t i = 0; i < c.depth; ++i) {
      const std::string b = str("blocks.", i, ".");
      const bool ada = c.shared_aln ? (shared || cond || trained(b + "ada_gss")) : linear(b + "ada_lin.1", 1, cond);
      const bool h = x || ada;  // LayerNorm(x) modulated by the AdaLN scale and shift
      const bool qkv = linear(b + "attn.mat_qkv", L, h);
      AttentionSite a;
      a.path = b + "attn";
      a.tokens = L;
      a.width = c.embed_dim;
      a.q_grad = qkv || trained(b + "attn.q_bias") || trained(b + "attn.scale_mul_1H11");
      a.k_grad = qkv;  // k's bias is the zero buffer
      a.v_grad = qkv || trained(b + "attn.v_bias");
      graph_.attention.push_back(a);
      const bool attn_out = linear(b + "attn.proj", L, a.q_grad || a.k_grad || a.v_grad);
      x = x || attn_out || ada;
      const bool fc1 = linear(b + "ffn.fc1", L, x);
      const bool fc2 = linear(b + "ffn.fc2", L, fc1);
      x = x || fc2;
    }
    const bool head_ada = linear("head_nm.ada_lin.1", 1, cond);
    linear("head", L, x || head_ada);

    for (const auto& [path, layer] : layers_)
      if (!placed_.count(path))
        throw Error("linear layer '" + path + "' is not placed by the FLOP model (src/profile/var_flops.cpp)",
                    "profile::describe_training");

    for (const auto& item : var_.named_parameters(/*recurse=*/true)) {
      if (!item.value().requires_grad()) continue;
      TrainedTensor t;
      t.name = item.key();
      t.numel = item.value().numel();
      t.decayed = decayed ? decayed(t.name, item.value()) : item.value().dim() >= 2;
      const size_t dot = t.name.rfind('.');
      t.linear = dot != std::string::npos && layers_.count(t.name.substr(0, dot)) != 0;
      graph_.trained.push_back(t);
    }
    return graph_;
  }

 private:
  const model::VARImpl& var_;
  std::map<std::string, const model::LinearImpl*> layers_;
  std::set<std::string> trained_, placed_;
  VarTrainingGraph graph_;
};

}  // namespace

VarTrainingGraph describe_training(const model::VARImpl& var, const DecayRule& decayed) {
  return GraphBuilder(var).build(decayed);
}

std::vector<ModuleFlops> module_flops(const VarTrainingGraph& graph) {
  std::vector<ModuleFlops> rows;
  std::map<std::string, size_t> index;
  // An index, not a reference: adding a row may move the others.
  auto row = [&](const std::string& name) -> size_t {
    auto it = index.find(name);
    if (it == index.end()) {
      it = index.emplace(name, rows.size()).first;
      rows.push_back(ModuleFlops{name});
    }
    return it->second;
  };
  size_t block = 0;
  for (const auto& s : graph.linears) {
    // The attention products run between mat_qkv (and its LoRA) and proj of the same block.
    if (s.module == "blocks.attn.proj" && block < graph.attention.size()) {
      const AttentionSite& a = graph.attention[block++];
      const size_t scores_row = row("blocks.attn.scores"), values_row = row("blocks.attn.values");
      ModuleFlops& scores = rows[scores_row];
      ModuleFlops& values = rows[values_row];
      ++scores.instances;
      ++values.instances;
      scores.forward += a.product();
      values.forward += a.product();
      scores.backward_input += a.product() * ((a.q_grad ? 1 : 0) + (a.k_grad ? 1 : 0));
      values.backward_input += a.product() * ((a.q_grad || a.k_grad ? 1 : 0) + (a.v_grad ? 1 : 0));
    }
    ModuleFlops& r = rows[row(s.module)];
    const bool lora_b = s.path.size() > 7 && s.path.compare(s.path.size() - 7, 7, ".lora_B") == 0;
    if (!lora_b) ++r.instances;  // a ".lora" row counts each adapted layer once (A and B together)
    r.forward += s.forward();
    r.backward_input += s.backward_input();
    r.backward_weight += s.backward_weight();
  }
  return rows;
}

}  // namespace vardp::profile
