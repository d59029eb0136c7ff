// vardp inspect FILE: what a checkpoint holds (tensors, shapes, dtypes), which model it is, the
// hyperparameters inferred from it and its parameter counts. Builds no model unless --check is
// given, so a full-size checkpoint is inspected with about its own size in memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/io/pickle.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

constexpr const char* kInspectUsage = "vardp inspect FILE [--no-tensors] [--check]";

std::string grouped(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream os;
  os << "[";
  for (int64_t d = 0; d < t.dim(); ++d) os << (d ? ", " : "") << t.size(d);
  os << "]";
  return os.str();
}

// Top-level group of a key: "blocks.3.attn.q_bias" -> "blocks", "encoder.down.0..." -> "encoder".
std::string group_of(const std::string& key) { return key.substr(0, key.find('.')); }

int run_inspect(const std::vector<std::string>& args) {
  po::options_description options(kInspectUsage);
  options.add_options()
      ("file", po::value<std::string>()->required(), "checkpoint: torch.save .pth or vardp HDF5 state dict")
      ("no-tensors", po::bool_switch(), "do not list the tensors")
      ("check", po::bool_switch(), "also build the inferred model and load the file strictly");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!parse_command_line(args, kInspectUsage, options, vm, &pos)) return 0;
  const std::string path = vm["file"].as<std::string>();

  const auto t0 = std::chrono::steady_clock::now();
  const io::CheckpointFormat format = io::detect_checkpoint_format(path);
  const io::StateDict sd = io::load_state_dict(path);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cout << "file: " << path << "\n";
  std::cout << "format: " << (format == io::CheckpointFormat::pth_zip ? "torch.save zip (.pth)" : "vardp HDF5 state dict")
            << "\n";
  std::cout << "tensors: " << sd.size() << ", elements: " << grouped(sd.num_elements())
            << ", bytes: " << grouped(sd.num_bytes()) << ", load time: " << load_s << " s\n";

  int64_t params = 0, buffers = 0;
  std::map<std::string, int64_t> dtype_count;
  std::vector<std::pair<std::string, int64_t>> groups;  // first-seen order
  for (const auto& key : sd.keys()) {
    const torch::Tensor& t = sd.at(key);
    const bool buffer = model::is_buffer_key(key);
    (buffer ? buffers : params) += t.numel();
    dtype_count[io::dtype_name(io::from_scalar_type(t.scalar_type()))] += 1;
    if (buffer) continue;
    const std::string g = group_of(key);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == g; });
    if (it == groups.end()) groups.emplace_back(g, t.numel()); else it->second += t.numel();
  }
  std::cout << "dtypes:";
  for (const auto& [name, n] : dtype_count) std::cout << " " << name << " x" << n;
  std::cout << "\n";

  const model::CheckpointKind kind = model::detect_checkpoint_kind(sd);
  std::cout << "model: " << model::to_string(kind) << "\n";
  std::cout << "parameters: " << grouped(params) << "\n";
  // Buffer names, per-block ones collapsed: blocks.*.attn.zero_k_bias.
  std::vector<std::string> buffer_names;
  for (const auto& key : sd.keys()) {
    if (!model::is_buffer_key(key)) continue;
    std::string name = key;
    if (name.rfind("blocks.", 0) == 0) {
      const size_t end = name.find('.', 7);
      if (end != std::string::npos) name = "blocks.*" + name.substr(end);
    }
    if (std::find(buffer_names.begin(), buffer_names.end(), name) == buffer_names.end()) buffer_names.push_back(name);
  }
  std::cout << "buffers: " << grouped(buffers) << " elements (";
  for (size_t i = 0; i < buffer_names.size(); ++i) std::cout << (i ? ", " : "") << buffer_names[i];
  std::cout << ")\n";
  std::cout << "parameters by group:";
  for (const auto& [g, n] : groups) std::cout << " " << g << "=" << grouped(n);
  std::cout << "\n";

  int rc = 0;
  if (kind == model::CheckpointKind::var) {
    try {
      const model::VARConfig c = model::infer_var_config(sd);
      std::cout << "config: " << c.describe() << "\n";
      std::cout << "  head_dim=" << c.embed_dim / c.num_heads << ", ffn_hidden=" << c.ffn_hidden()
                << ", first_l=" << c.first_l() << ", scales=" << c.num_scales()
                << ", forward GFLOP/example=" << model::forward_flops(c, 1) / 1e9 << "\n";
      if (vm["check"].as<bool>()) {
        model::VAR m(c);
        model::load_strict(*m, sd, path);
        std::cout << "strict load: OK (" << grouped(model::count_parameters(*m)) << " parameters)\n";
      }
    } catch (const Error& e) {
      std::cout << "config: cannot infer: " << e.what() << "\n";
      rc = 1;
    }
  } else if (kind == model::CheckpointKind::vqvae) {
    try {
      model::VQVAEConfig c = model::infer_vqvae_config(sd);
      std::cout << "config: " << c.describe() << "\n";
      if (c.v_patch_nums.empty())
        std::cout << "  patch numbers: not stored in a VQ-VAE checkpoint ("
                  << sd.at("quantize.ema_vocab_hit_SV").size(0) << " scales); they come from the VAR checkpoint\n";
      if (vm["check"].as<bool>()) {
        // Any list of the right length builds the same tensors.
        if (c.v_patch_nums.empty())
          for (int64_t i = 1; i <= sd.at("quantize.ema_vocab_hit_SV").size(0); ++i) c.v_patch_nums.push_back(i);
        model::VQVAE m(c);
        model::load_strict(*m, sd, path);
        std::cout << "strict load: OK (" << grouped(model::count_parameters(*m)) << " parameters)\n";
      }
    } catch (const Error& e) {
      std::cout << "config: cannot infer: " << e.what() << "\n";
      rc = 1;
    }
  }

  if (!vm["no-tensors"].as<bool>()) {
    size_t width = 4;
    for (const auto& key : sd.keys()) width = std::max(width, key.size());
    std::cout << "tensors:\n";
    for (const auto& key : sd.keys()) {
      const torch::Tensor& t = sd.at(key);
      std::printf("  %-*s  %-20s  %-8s  %14s%s\n", static_cast<int>(width), key.c_str(), shape_text(t).c_str(),
                  io::dtype_name(io::from_scalar_type(t.scalar_type())), grouped(t.numel()).c_str(),
                  model::is_buffer_key(key) ? "  (buffer)" : "");
    }
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace
VARDP_COMMAND("inspect", "list a checkpoint's tensors, the model and hyperparameters inferred from it, parameter counts",
              run_inspect);
}  // namespace vardp::app
