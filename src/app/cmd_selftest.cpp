// vardp selftest: checks the job's communication set-up (MPI, and NCCL on CUDA builds) and the
// HDF5 output path, as a first job on a new cluster. --fail-rank shows that an error on one rank
// ends the whole job instead of leaving the others waiting in a collective.
#include <torch/torch.h>

#include <cmath>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  if (!torch::allclose(got.cpu().to(torch::kDouble), want.cpu().to(torch::kDouble), 1e-6, 1e-6))
    throw Error("wrong result", "selftest " + what);
}

void check_collectives(dist::TensorComm& tc, torch::Device device) {
  dist::Comm& c = tc.host();
  const int r = c.rank(), n = c.size();
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  torch::Tensor x = torch::arange(1000, opts) + r;
  tc.all_reduce(x);
  expect_close(x, torch::arange(1000, opts) * n + n * (n - 1) / 2.0, "all_reduce(sum)");
  torch::Tensor m = torch::full({7}, static_cast<double>(r), opts);
  tc.all_reduce(m, dist::ReduceOp::max);
  expect_close(m, torch::full({7}, static_cast<double>(n - 1), opts), "all_reduce(max)");
  torch::Tensor b = r == 0 ? torch::linspace(0, 1, 33, opts) : torch::zeros({33}, opts);
  tc.broadcast(b, 0);
  expect_close(b, torch::linspace(0, 1, 33, opts), "broadcast");
  torch::Tensor g = tc.all_gather(torch::full({2, 3}, static_cast<double>(r), opts));
  torch::Tensor want = torch::arange(n, opts).view({n, 1, 1}).expand({n, 2, 3});
  expect_close(g, want, "all_gather");
}

int run_selftest(const std::vector<std::string>& args) {
  po::options_description options("vardp selftest [options]");
  add_config_options(options);
  options.add_options()
    ("out", po::value<std::string>()->default_value(""), "write an HDF5 file with the results here")
    ("fail-rank", po::value<int>()->default_value(-1), "make this rank throw while the others are in a collective");
  po::variables_map vm;
  if (!parse_command_line(args, "vardp selftest [--out FILE] [--fail-rank R]", options, vm)) return 0;
  Job job = start_job(vm, "selftest");
  dist::Comm& comm = *job.comm;
  int fail_rank = vm["fail-rank"].as<int>();

  if (comm.rank() == fail_rank) throw Error("failure requested by --fail-rank", "selftest");
  // The other ranks enter a collective that the failed rank never joins; the job must still end.
  comm.barrier();

  dist::TensorComm tc(comm, job.config.dist.backend != "mpi");
  check_collectives(tc, torch::kCPU);
  log::info("selftest: MPI collectives on CPU tensors OK (", comm.size(), " ranks)");
  if (torch::cuda::is_available()) {
    check_collectives(tc, torch::Device(torch::kCUDA, comm.local_rank() % static_cast<int>(torch::cuda::device_count())));
    log::info("selftest: collectives on CUDA tensors OK (", tc.has_nccl() ? "NCCL" : "MPI via host", ")");
  }
  int64_t total = comm.all_reduce(static_cast<int64_t>(comm.rank()), dist::ReduceOp::sum);
  std::vector<int64_t> ranks = comm.all_gather(static_cast<int64_t>(comm.rank()));

  std::string out = vm["out"].as<std::string>();
  if (!out.empty() && comm.is_root()) {
    io::AtomicH5File f(out);
    io::write_provenance(f.id(), {"vardp.selftest", 1, job.resolved_toml, comm.size()});
    io::h5_write<int64_t>(f.id(), "ranks", ranks, {ranks.size()});
    io::h5_write<int64_t>(f.id(), "rank_sum", &total, {});
    f.commit();
    log::info("selftest: wrote ", out);
  }
  comm.barrier();
  return 0;
}
}  // namespace
VARDP_COMMAND("selftest", "check MPI/NCCL collectives and HDF5 output on this machine or cluster", run_selftest);
}  // namespace vardp::app
