// Per-layer per-example gradient math (privacy argument: exact per-example norms for the clipping
// of invariant 1; see grad_sample.hpp).
#include "vardp/dp/grad_sample.hpp"

#include <algorithm>
#include <map>

#include "vardp/util/error.hpp"

namespace vardp::dp {

torch::Tensor index_tensor(const std::vector<int64_t>& rows, const torch::Device& device) {
  return torch::tensor(rows, torch::TensorOptions().dtype(torch::kLong)).to(device);
}

namespace {

// Gram or instantiated blocks of at most this many elements per chunk of groups, so that a large
// micro-batch does not hold all (E, T, T) or (E, out, in) blocks at once.
constexpr int64_t kChunkElements = int64_t{1} << 25;

bool is_identity(const std::vector<int64_t>& rows, int64_t n) {
  if (static_cast<int64_t>(rows.size()) != n) return false;
  for (int64_t i = 0; i < n; ++i)
    if (rows[static_cast<size_t>(i)] != i) return false;
  return true;
}

// x (R, T, d) -> the listed rows stacked per group: (E, c*T, d).
torch::Tensor stack_groups(const torch::Tensor& x, const std::vector<int64_t>& rows, int64_t per_group) {
  torch::Tensor sel = is_identity(rows, x.size(0)) ? x : x.index_select(0, index_tensor(rows, x.device()));
  const int64_t E = static_cast<int64_t>(rows.size()) / per_group;
  return sel.reshape({E, per_group * x.size(1), x.size(2)});
}

void check_pair(const torch::Tensor& a, const torch::Tensor& g) {
  VARDP_CHECK(a.dim() == 3 && g.dim() == 3 && a.size(0) == g.size(0) && a.size(1) == g.size(1),
              "per-example gradients: layer inputs ", a.sizes(), " and output gradients ", g.sizes(),
              " must be (R, T, in) and (R, T, out)");
}

// Calls fn(first, count) for chunks of a bucket's groups holding about kChunkElements each.
template <class Fn>
void for_chunks(int64_t groups, int64_t elements_per_group, Fn fn) {
  const int64_t chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, elements_per_group));
  for (int64_t first = 0; first < groups; first += chunk) fn(first, std::min(chunk, groups - first));
}

}  // namespace

const char* norm_rule_name(NormRule r) {
  switch (r) {
    case NormRule::cost: return "cost";
    case NormRule::ghost: return "ghost";
    case NormRule::instantiate: return "instantiate";
  }
  return "?";
}

NormRule parse_norm_rule(const std::string& name) {
  if (name == "cost") return NormRule::cost;
  if (name == "ghost") return NormRule::ghost;
  if (name == "instantiate") return NormRule::instantiate;
  throw Error(str("unknown norm rule '", name, "' (cost, ghost, instantiate)"));
}

bool use_ghost_norm(NormRule rule, int64_t tokens, int64_t in_features, int64_t out_features) {
  switch (rule) {
    case NormRule::ghost: return true;
    case NormRule::instantiate: return false;
    case NormRule::cost: break;
  }
  // Both ways read a and g once; the ghost norm then costs ~2 T^2 (in + out) multiply-adds and
  // T^2 memory per example, the instantiation ~2 T in out and in*out memory: fastDP compares
  // 2 T^2 with in*out.
  return 2 * tokens * tokens < in_features * out_features;
}

// ---- RowGroups -------------------------------------------------------------------------------

RowGroups::RowGroups(const std::vector<int64_t>& example_of_row) {
  std::map<int64_t, int64_t> group_of;
  group_of_row_.reserve(example_of_row.size());
  for (size_t r = 0; r < example_of_row.size(); ++r) {
    const int64_t id = example_of_row[r];
    auto it = group_of.find(id);
    if (it == group_of.end()) {
      it = group_of.emplace(id, static_cast<int64_t>(ids_.size())).first;
      ids_.push_back(id);
      rows_.emplace_back();
    }
    group_of_row_.push_back(it->second);
    rows_[static_cast<size_t>(it->second)].push_back(static_cast<int64_t>(r));
  }
}

torch::Tensor RowGroups::group_of_row(const torch::Device& device) const {
  return index_tensor(group_of_row_, device);
}

torch::Tensor RowGroups::rows_of(const std::vector<int64_t>& groups, const torch::Device& device) const {
  std::vector<int64_t> rows;
  for (int64_t e : groups) {
    const auto& r = rows_.at(static_cast<size_t>(e));
    rows.insert(rows.end(), r.begin(), r.end());
  }
  return index_tensor(rows, device);
}

std::vector<RowGroups::Bucket> RowGroups::buckets(const std::vector<int64_t>& subset) const {
  std::map<int64_t, Bucket> by_count;
  for (size_t i = 0; i < subset.size(); ++i) {
    const auto& r = rows_.at(static_cast<size_t>(subset[i]));
    Bucket& b = by_count[static_cast<int64_t>(r.size())];
    b.rows_per_group = static_cast<int64_t>(r.size());
    b.groups.push_back(static_cast<int64_t>(i));
    b.rows.insert(b.rows.end(), r.begin(), r.end());
  }
  std::vector<Bucket> out;
  for (auto& kv : by_count) out.push_back(std::move(kv.second));
  return out;
}

// ---- linear layers ---------------------------------------------------------------------------

torch::Tensor group_weight_grads(const torch::Tensor& a, const torch::Tensor& g, const RowGroups& groups,
                                 const std::vector<int64_t>& subset) {
  check_pair(a, g);
  const int64_t E = static_cast<int64_t>(subset.size());
  torch::Tensor out = torch::zeros({E, g.size(2), a.size(2)}, g.options());
  for (const auto& b : groups.buckets(subset)) {
    torch::Tensor A = stack_groups(a, b.rows, b.rows_per_group);  // (E_c, cT, in)
    torch::Tensor G = stack_groups(g, b.rows, b.rows_per_group);  // (E_c, cT, out)
    torch::Tensor pos = index_tensor(b.groups, a.device());
    const int64_t n = A.size(0);
    for_chunks(n, g.size(2) * a.size(2), [&](int64_t first, int64_t count) {
      torch::Tensor dw = torch::bmm(G.narrow(0, first, count).transpose(1, 2), A.narrow(0, first, count));
      out.index_copy_(0, pos.narrow(0, first, count), dw);
    });
  }
  return out;
}

torch::Tensor group_weight_sqnorms(const torch::Tensor& a, const torch::Tensor& g, const RowGroups& groups,
                                   const std::vector<int64_t>& subset, NormRule rule, int64_t* ghost_count,
                                   int64_t* instantiated_count) {
  check_pair(a, g);
  const int64_t E = static_cast<int64_t>(subset.size());
  const int64_t in = a.size(2), out_f = g.size(2);
  torch::Tensor sq = torch::zeros({E}, g.options().dtype(torch::kFloat64));
  for (const auto& b : groups.buckets(subset)) {
    torch::Tensor A = stack_groups(a, b.rows, b.rows_per_group);
    torch::Tensor G = stack_groups(g, b.rows, b.rows_per_group);
    torch::Tensor pos = index_tensor(b.groups, a.device());
    const int64_t n = A.size(0), tokens = A.size(1);
    // The views of one example are one sequence of c*T tokens here: the norm of the example's
    // gradient (a sum over views) needs the cross terms between its views.
    const bool ghost = use_ghost_norm(rule, tokens, in, out_f);
    if (ghost) {
      if (ghost_count) ++*ghost_count;
      for_chunks(n, 2 * tokens * tokens, [&](int64_t first, int64_t count) {
        torch::Tensor Ac = A.narrow(0, first, count), Gc = G.narrow(0, first, count);
        torch::Tensor gram_a = torch::bmm(Ac, Ac.transpose(1, 2));
        torch::Tensor gram_g = torch::bmm(Gc, Gc.transpose(1, 2));
        sq.index_copy_(0, pos.narrow(0, first, count), gram_a.mul_(gram_g).sum({1, 2}, false, torch::kFloat64));
      });
    } else {
      if (instantiated_count) ++*instantiated_count;
      for_chunks(n, in * out_f, [&](int64_t first, int64_t count) {
        torch::Tensor dw = torch::bmm(G.narrow(0, first, count).transpose(1, 2), A.narrow(0, first, count));
        sq.index_copy_(0, pos.narrow(0, first, count), dw.mul_(dw).sum({1, 2}, false, torch::kFloat64));
      });
    }
  }
  return sq;
}

torch::Tensor weighted_weight_sum(const torch::Tensor& a, const torch::Tensor& g, const torch::Tensor& w) {
  check_pair(a, g);
  VARDP_CHECK(w.dim() == 1 && w.size(0) == a.size(0), "row weights ", w.sizes(), " for ", a.size(0), " rows");
  torch::Tensor gw = g * w.to(g.scalar_type()).view({-1, 1, 1});
  return torch::mm(gw.reshape({-1, g.size(2)}).t(), a.reshape({-1, a.size(2)}));
}

torch::Tensor group_sum(const torch::Tensor& x, const RowGroups& groups, const std::vector<int64_t>& subset) {
  VARDP_CHECK(x.dim() >= 1 && x.size(0) == groups.num_rows(), "per-row tensor ", x.sizes(), " for ",
              groups.num_rows(), " rows");
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[0] = static_cast<int64_t>(subset.size());
  torch::Tensor out = torch::zeros(shape, x.options());
  std::vector<int64_t> rows, pos;
  for (size_t i = 0; i < subset.size(); ++i)
    for (int64_t r : groups.rows(subset[i])) {
      rows.push_back(r);
      pos.push_back(static_cast<int64_t>(i));
    }
  if (rows.empty()) return out;
  if (is_identity(rows, x.size(0)) && is_identity(pos, x.size(0))) return x.clone();
  out.index_add_(0, index_tensor(pos, x.device()), x.index_select(0, index_tensor(rows, x.device())));
  return out;
}

}  // namespace vardp::dp
