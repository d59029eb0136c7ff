// vardp convert IN OUT: a state dict (.pth from torch.save, or a vardp HDF5 state dict) ->
// vardp's HDF5 state-dict format (docs in include/vardp/io/state_dict.hpp).
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

int run_convert(const std::vector<std::string>& args) {
  const std::string usage = "vardp convert IN OUT [--force]";
  po::options_description options("vardp convert IN OUT [options]");
  options.add_options()("force", po::bool_switch(), "overwrite OUT if it exists");
  po::options_description hidden;
  hidden.add_options()("in", po::value<std::string>()->required(), "input state dict")(
      "out", po::value<std::string>()->required(), "output HDF5 file");
  po::positional_options_description pos;
  pos.add("in", 1).add("out", 1);
  po::options_description all;
  all.add(options).add(hidden);
  po::variables_map vm;
  if (!parse_command_line(args, usage, all, vm, &pos)) return 0;
  const std::string in = vm["in"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();

  std::error_code ec;
  if (std::filesystem::exists(out, ec)) {
    if (std::filesystem::equivalent(in, out, ec))
      throw UsageError("IN and OUT are the same file", "vardp convert");
    if (!vm["force"].as<bool>())
      throw UsageError("'" + out + "' exists (use --force to overwrite it)", "vardp convert");
  }

  const auto t0 = std::chrono::steady_clock::now();
  const io::CheckpointFormat format = io::detect_checkpoint_format(in);
  const io::StateDict sd = io::load_state_dict(in);
  const auto t1 = std::chrono::steady_clock::now();
  io::Provenance p;
  p.format = io::kStateDictFormat;
  io::save_state_dict_h5(sd, out, p);
  const auto t2 = std::chrono::steady_clock::now();

  const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::cout << "converted " << in << " ("
            << (format == io::CheckpointFormat::pth_zip ? "torch.save zip" : "vardp HDF5") << ", "
            << sd.size() << " tensors, " << sd.num_elements() << " elements, " << sd.num_bytes()
            << " bytes) -> " << out << "\n"
            << std::fixed << std::setprecision(2) << "load " << secs(t0, t1) << " s, write "
            << secs(t1, t2) << " s\n";
  return 0;
}

}  // namespace
VARDP_COMMAND("convert", "convert a state dict (.pth or HDF5) to vardp's HDF5 state-dict format",
              run_convert);
}  // namespace vardp::app
