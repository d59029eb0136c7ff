#include "vardp/io/module_state.hpp"

#include "vardp/util/error.hpp"

namespace vardp::io {

namespace {

std::vector<int64_t> shape_of(const torch::Tensor& t) { return {t.sizes().begin(), t.sizes().end()}; }

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> module_shapes(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), shape_of(p.value()));
  for (const auto& b : m.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), shape_of(b.value()));
  return out;
}

StateDict state_dict_of(const torch::nn::Module& m) {
  StateDict sd;
  for (const auto& p : m.named_parameters(/*recurse=*/true))
    sd.insert(p.key(), p.value().detach().to(torch::kCPU).contiguous());
  for (const auto& b : m.named_buffers(/*recurse=*/true))
    sd.insert(b.key(), b.value().detach().to(torch::kCPU).contiguous());
  return sd;
}

void load_module_state(torch::nn::Module& m, const StateDict& sd, const std::string& what) {
  const auto expected = module_shapes(m);
  check_keys_and_shapes(sd, expected, what);
  auto params = m.named_parameters(/*recurse=*/true);
  auto buffers = m.named_buffers(/*recurse=*/true);
  auto target = [&](const std::string& key) {
    torch::Tensor* dst = params.find(key);
    return dst ? dst : buffers.find(key);
  };
  std::vector<std::string> wrong_kind;
  for (const auto& [key, shape] : expected) {
    const torch::Tensor& src = sd.at(key);
    const torch::Tensor* dst = target(key);
    if (dst->is_floating_point() != src.is_floating_point())
      wrong_kind.push_back(str(key, " (", src.scalar_type(), ", expected ", dst->scalar_type(), ")"));
  }
  if (!wrong_kind.empty()) {
    std::string msg = str(wrong_kind.size(), " tensor(s) of the wrong dtype:");
    for (const auto& w : wrong_kind) msg += " " + w;
    throw Error(msg, what);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [key, shape] : expected) target(key)->copy_(sd.at(key).to(target(key)->scalar_type()));
}

}  // namespace vardp::io
