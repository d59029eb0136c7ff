// vardp bench-noise: speed of the DP noise (the secure Gaussian sampler of
// include/vardp/dp/secure_noise.hpp on the secret ChaCha20 stream) and of the Poisson lot draw,
// in coordinates (examples) per second. Privacy argument: none here - this only times the
// samplers with a throw-away secret. The noise of a step depends on no data, so the trainer draws
// it ahead in a background thread; this says how many threads keep up with a step.
// With --out: HDF5 (format "vardp.bench.noise", version 1): root attributes threads,
// repeats, lot_examples, lot_seconds; datasets /coordinates (int64), /seconds (best of
// --repeats), /coords_per_second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "app/job.hpp"
#include "vardp/dp/lot_sampler.hpp"
#include "vardp/dp/secure_noise.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

using Clock = std::chrono::steady_clock;

template <class F>
double best_seconds(int repeats, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f(r);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

int run_bench_noise(const std::vector<std::string>& args) {
  po::options_description options("vardp bench-noise [--coords 6000000,310000000] [--threads T] [--out FILE]");
  options.add_options()("coords", po::value<std::string>()->default_value("6000000,310000000"),
                        "noise vector lengths: 6.0M ~ VAR-d16 LoRA, 310M ~ VAR-d16 full fine-tuning")(
      "threads", po::value<int>()->default_value(0), "sampler threads (0: half the hardware threads)")(
      "repeats", po::value<int>()->default_value(2), "timings per size; the best is reported")(
      "lot-examples", po::value<int64_t>()->default_value(1000000), "dataset size for the Poisson lot draw")(
      "out", po::value<std::string>(), "HDF5 file for the numbers");
  po::variables_map vm;
  if (!parse_command_line(args, "vardp bench-noise [--coords N,...] [--threads T] [--out FILE]", options, vm))
    return 0;
  const std::vector<int64_t> coords = parse_int_list(vm["coords"].as<std::string>(), "--coords");
  const int threads_opt = vm["threads"].as<int>();
  const int threads = threads_opt > 0 ? threads_opt
                                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  const int repeats = std::max(1, vm["repeats"].as<int>());
  const dp::RunSecret key = dp::RunSecret::generate();

  std::vector<double> secs, rate;
  for (int64_t n : coords) {
    if (n <= 0) throw UsageError("--coords must be positive", "--coords");
    std::vector<float> noise(static_cast<size_t>(n));
    const double s = best_seconds(repeats, [&](int r) {
      dp::secure_gaussian_noise(noise.data(), static_cast<uint64_t>(n), 1.0, key, static_cast<uint64_t>(r), threads);
    });
    secs.push_back(s);
    rate.push_back(static_cast<double>(n) / s);
    std::printf("noise %12lld coordinates  %8.3f s  %8.2f M coords/s  (%d threads)\n", static_cast<long long>(n), s,
                rate.back() / 1e6, threads);
  }
  const int64_t N = vm["lot-examples"].as<int64_t>();
  const double lot_s = best_seconds(repeats, [&](int r) { dp::poisson_lot(key, r, N, 0.01); });
  std::printf("lot   %12lld examples     %8.3f s  %8.2f M examples/s\n", static_cast<long long>(N), lot_s,
              static_cast<double>(N) / lot_s / 1e6);
  std::fflush(stdout);

  if (vm.count("out")) {
    io::AtomicH5File out(vm["out"].as<std::string>());
    io::Provenance prov;
    prov.format = "vardp.bench.noise";
    prov.format_version = 1;
    io::write_provenance(out.id(), prov);
    io::h5_write_attr(out.id(), "threads", static_cast<int64_t>(threads));
    io::h5_write_attr(out.id(), "repeats", static_cast<int64_t>(repeats));
    const std::vector<hsize_t> dims{static_cast<hsize_t>(coords.size())};
    io::h5_write<int64_t>(out.id(), "coordinates", coords, dims);
    io::h5_write<double>(out.id(), "seconds", secs, dims);
    io::h5_write<double>(out.id(), "coords_per_second", rate, dims);
    io::h5_write_attr(out.id(), "lot_examples", N);
    io::h5_write_attr(out.id(), "lot_seconds", lot_s);
    out.commit();
  }
  return 0;
}

}  // namespace
VARDP_COMMAND("bench-noise", "speed of the secure DP noise sampler and the secret Poisson lot draw", run_bench_noise);

}  // namespace vardp::app
