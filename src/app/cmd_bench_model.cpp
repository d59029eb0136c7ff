// vardp bench-model: forward+backward throughput of a VAR model of a given size on CPU or CUDA:
// samples/s and achieved TFLOP/s. FLOPs are analytic (model::forward_flops: every linear layer
// and the full L x L attention products; a training step counts 3x the forward).
// With --out, the numbers also go to an HDF5 file (format "vardp.bench.model", version 1):
// root attributes config, device, threads, batch, iters, and datasets /step_seconds (iters),
// /samples_per_second, /tflops (scalars).
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "vardp/compat/torch_compat.hpp"
#include "app/job.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

constexpr const char* kBenchModelUsage =
    "vardp bench-model [--depth 4] [--batch 8] [--patch-nums 1,2,3,4,5,6,8,10,13,16] [--device auto]";

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

int run_bench_model(const std::vector<std::string>& args) {
  po::options_description options(kBenchModelUsage);
  options.add_options()
      ("depth", po::value<int64_t>()->default_value(4), "transformer blocks (width 64*depth, heads depth)")
      ("embed-dim", po::value<int64_t>()->default_value(0), "width (0: 64*depth)")
      ("heads", po::value<int64_t>()->default_value(0), "attention heads (0: depth, or width/64 with --embed-dim)")
      ("batch", po::value<int64_t>()->default_value(8), "examples per step")
      ("patch-nums", po::value<std::string>()->default_value("1,2,3,4,5,6,8,10,13,16"), "token pyramid")
      ("vocab", po::value<int64_t>()->default_value(4096), "codebook size V")
      ("cvae", po::value<int64_t>()->default_value(32), "VQ-VAE latent channels")
      ("classes", po::value<int64_t>()->default_value(1000), "number of classes")
      ("iters", po::value<int>()->default_value(5), "timed steps")
      ("warmup", po::value<int>()->default_value(1), "untimed steps first")
      ("forward-only", po::bool_switch(), "time the forward pass only (no_grad)")
      ("device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")
      ("dtype", po::value<std::string>()->default_value("float32"), "float32 | bfloat16 (CUDA autocast)")
      ("threads", po::value<int>()->default_value(0), "intra-op CPU threads (0: LibTorch's default)")
      ("seed", po::value<uint64_t>()->default_value(0), "seed of the random weights and inputs")
      ("out", po::value<std::string>(), "also write the numbers to this HDF5 file");
  po::variables_map vm;
  if (!parse_command_line(args, kBenchModelUsage, options, vm)) return 0;
  const int64_t depth = vm["depth"].as<int64_t>();
  const int64_t batch = vm["batch"].as<int64_t>();
  const int iters = vm["iters"].as<int>(), warmup = vm["warmup"].as<int>();
  const bool forward_only = vm["forward-only"].as<bool>();
  if (depth < 1 || batch < 1 || iters < 1 || warmup < 0)
    throw UsageError("--depth, --batch, --iters must be >= 1 and --warmup >= 0", "vardp bench-model");
  if (vm["threads"].as<int>() > 0) torch::set_num_threads(vm["threads"].as<int>());
  const torch::Device device = model::resolve_device(vm["device"].as<std::string>());
  const std::string dtype = vm["dtype"].as<std::string>();
  if (dtype != "float32" && dtype != "bfloat16") throw UsageError("--dtype must be float32 or bfloat16", "--dtype");
  if (dtype == "bfloat16" && !device.is_cuda())
    throw UsageError("--dtype bfloat16 is CUDA autocast; use a CUDA device", "--dtype");

  model::VARConfig c = model::VARConfig::for_depth(depth, vm["classes"].as<int64_t>(), vm["vocab"].as<int64_t>(),
                                                   vm["cvae"].as<int64_t>(),
                                                   parse_int_list(vm["patch-nums"].as<std::string>(), "--patch-nums"));
  if (vm["embed-dim"].as<int64_t>() > 0) {
    c.embed_dim = vm["embed-dim"].as<int64_t>();
    c.num_heads = std::max<int64_t>(1, c.embed_dim / 64);
  }
  if (vm["heads"].as<int64_t>() > 0) c.num_heads = vm["heads"].as<int64_t>();
  c.validate();

  torch::manual_seed(vm["seed"].as<uint64_t>());
  model::VAR var(c);
  var->init_weights();
  var->to(device);
  var->train();
  const int64_t L = c.L(), V = c.vocab_size;
  auto opts = torch::TensorOptions().device(device);
  torch::Tensor x = torch::randn({batch, L - c.first_l(), c.Cvae}, opts);
  torch::Tensor labels = torch::randint(0, c.num_classes, {batch}, opts.dtype(torch::kLong));
  torch::Tensor targets = torch::randint(0, V, {batch, L}, opts.dtype(torch::kLong));

  auto step = [&]() {
    compat::CudaAutocastScope autocast(dtype == "bfloat16");
    if (forward_only) {
      torch::NoGradGuard no_grad;
      (void)var->forward(labels, x);
    } else {
      var->zero_grad();
      model::cross_entropy_loss(var->forward(labels, x), targets).mean.backward();
    }
    sync(device);
  };
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double flops = model::forward_flops(c, batch) * (forward_only ? 1.0 : 3.0);
  const double samples_per_s = static_cast<double>(batch) / median;
  const double tflops = flops / median / 1e12;

  std::printf("bench-model: %s\n", c.describe().c_str());
  std::printf("  device %s, %s, threads %d, batch %lld, %s, params %lld\n", device.str().c_str(), dtype.c_str(),
              torch::get_num_threads(), static_cast<long long>(batch),
              forward_only ? "forward only" : "forward+backward",
              static_cast<long long>(model::count_parameters(*var)));
  std::printf("  step median %.4f s (min %.4f, max %.4f, %d iters)\n", median, sorted.front(), sorted.back(),
              iters);
  std::printf("  samples/s %.3f\n", samples_per_s);
  std::printf("  GFLOP/step %.3f (analytic%s)\n", flops / 1e9, forward_only ? "" : ", 3x forward");
  std::printf("  TFLOP/s %.4f\n", tflops);
  std::fflush(stdout);

  if (vm.count("out")) {
    io::AtomicH5File out(vm["out"].as<std::string>());
    io::Provenance prov;
    prov.format = "vardp.bench.model";
    prov.format_version = 1;
    io::write_provenance(out.id(), prov);
    io::h5_write_attr(out.id(), "config", c.describe());
    io::h5_write_attr(out.id(), "device", device.str());
    io::h5_write_attr(out.id(), "dtype", dtype);
    io::h5_write_attr(out.id(), "threads", static_cast<int64_t>(torch::get_num_threads()));
    io::h5_write_attr(out.id(), "batch", batch);
    io::h5_write_attr(out.id(), "iters", static_cast<int64_t>(iters));
    io::h5_write_attr(out.id(), "mode", forward_only ? "forward" : "forward+backward");
    io::h5_write<double>(out.id(), "step_seconds", times, {static_cast<hsize_t>(times.size())});
    io::h5_write<double>(out.id(), "samples_per_second", &samples_per_s, {});
    io::h5_write<double>(out.id(), "tflops", &tflops, {});
    io::h5_write<double>(out.id(), "flops_per_step", &flops, {});
    out.commit();
  }
  return 0;
}

}  // namespace
VARDP_COMMAND("bench-model", "forward+backward throughput (samples/s, TFLOP/s) of a VAR model size",
              run_bench_model);
}  // namespace vardp::app
