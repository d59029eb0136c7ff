// vardp tokenize: the token cache of a dataset (include/vardp/data/token_cache.hpp): P training
// views per example (VAR's random crop / flip, drawn under the reserved pool step), tokenised by
// the frozen VQ-VAE. Ranks split the examples; rank 0 merges their parts into one file.
#include <torch/torch.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "app/job.hpp"
#include "vardp/data/batch_tensor.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/data/token_cache.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kTokenizeUsage =
    "vardp tokenize --vae V.pth --data D.h5 --views P --patch-nums 1,2,3,4,5,6,8,10,13,16 [--seed S] "
    "[--hflip] [--out T.h5]";

// Token ids (n*P x L) of examples [lo, hi), P views each.
std::vector<uint16_t> tokenize_block(const data::DatasetReader& reader, model::VQVAEImpl& vae, int64_t lo, int64_t hi,
                                     int64_t P, const data::ViewSpec& spec, int64_t batch, const torch::Device& dev) {
  std::vector<data::Unit> units;
  for (int64_t i = lo; i < hi; ++i)
    for (int64_t p = 0; p < P; ++p) units.push_back({i, p});
  std::vector<uint16_t> out;
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < units.size(); b += static_cast<size_t>(batch)) {
    std::vector<data::Unit> mb(
        units.begin() + static_cast<std::ptrdiff_t>(b),
        units.begin() + static_cast<std::ptrdiff_t>(std::min(units.size(), b + static_cast<size_t>(batch))));
    torch::Tensor img = data::batch_images(reader.make_batch(mb, spec)).to(dev);
    torch::Tensor tok = torch::cat(vae.img_to_idxBl(img), 1).to(torch::kCPU).to(torch::kInt32).contiguous();
    const int32_t* t = tok.data_ptr<int32_t>();
    for (int64_t k = 0; k < tok.numel(); ++k) out.push_back(static_cast<uint16_t>(t[k]));
  }
  return out;
}

int run_tokenize(const std::vector<std::string>& args) {
  po::options_description options(kTokenizeUsage);
  options.add_options()("vae", po::value<std::string>()->required(), "VQ-VAE checkpoint (.pth or vardp HDF5)")(
      "data", po::value<std::string>()->required(), "dataset file (vardp prepare)")(
      "views", po::value<int64_t>()->required(), "pool views per example (P)")(
      "patch-nums", po::value<std::string>()->default_value("1,2,3,4,5,6,8,10,13,16"), "token pyramid of the VAR")(
      "seed", po::value<uint64_t>()->default_value(0), "seed of the view draws (use the run's train.seed)")(
      "hflip", po::bool_switch(), "random horizontal flips (as data.hflip)")(
      "batch", po::value<int64_t>()->default_value(16), "images per VQ-VAE batch")(
      "device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")(
      "out", po::value<std::string>()->required(), "token cache file to write");
  po::variables_map vm;
  if (!parse_command_line(args, kTokenizeUsage, options, vm)) return 0;
  dist::Comm& comm = world();
  const std::string vae_path = vm["vae"].as<std::string>(), data_path = vm["data"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();
  const int64_t P = vm["views"].as<int64_t>(), batch = vm["batch"].as<int64_t>();
  if (P < 1 || batch < 1) throw UsageError("--views and --batch must be >= 1", "vardp tokenize");
  const std::vector<int64_t> patch_nums = parse_int_list(vm["patch-nums"].as<std::string>(), "--patch-nums");
  torch::Device dev = model::resolve_device(vm["device"].as<std::string>());

  const io::StateDict sd = io::load_state_dict(vae_path);
  model::VQVAE vae(model::infer_vqvae_config(sd, patch_nums));
  model::load_strict(*vae, sd, "VQ-VAE checkpoint " + vae_path);
  vae->eval();
  vae->to(dev);
  data::DatasetReader reader(data_path);
  const int64_t R = vae->config().image_size(), N = reader.size();
  int64_t L = 0;
  for (int64_t pn : patch_nums) L += pn * pn;
  VARDP_CHECK(vae->config().vocab_size <= 65536, "vocabulary ", vae->config().vocab_size, " does not fit uint16");
  const data::ViewSpec spec{true, static_cast<int>(R), vm["hflip"].as<bool>(), vm["seed"].as<uint64_t>(),
                            data::kPoolStep};
  const int64_t lo = N * comm.rank() / comm.size(), hi = N * (comm.rank() + 1) / comm.size();
  log::info("tokenize: ", N, " examples x ", P, " views at ", R, " px, L=", L, " on ", comm.size(), " rank(s)");
  const std::vector<uint16_t> mine = tokenize_block(reader, *vae, lo, hi, P, spec, batch, dev);

  const std::string part = out + ".part-" + std::to_string(comm.rank());
  {
    io::AtomicH5File f(part);
    io::write_provenance(f.id(), {"vardp.token_cache.part", 1, "", comm.size()});
    io::h5_write<uint16_t>(f.id(), "tokens", mine, {static_cast<hsize_t>((hi - lo) * P), static_cast<hsize_t>(L)});
    f.commit();
  }
  comm.barrier();
  if (comm.is_root()) {
    std::vector<uint16_t> all;
    all.reserve(static_cast<size_t>(N * P * L));
    for (int r = 0; r < comm.size(); ++r) {
      const std::string p = out + ".part-" + std::to_string(r);
      io::H5File f = io::H5File::open(p);
      const auto t = io::h5_read<uint16_t>(f.id(), "tokens");
      all.insert(all.end(), t.begin(), t.end());
      f.close();
      std::remove(p.c_str());
    }
    io::AtomicH5File f(out);
    io::Provenance prov{data::kTokenCacheFormat, 1, "", comm.size()};
    io::write_provenance(f.id(), prov);
    io::h5_write_attr(f.id(), "pool_views", P);
    io::h5_write_attr(f.id(), "L", L);
    io::h5_write_attr(f.id(), "patch_nums", patch_nums);
    io::h5_write_attr(f.id(), "image_size", R);
    io::h5_write_attr(f.id(), "hflip", static_cast<int64_t>(spec.hflip));
    io::h5_write_attr(f.id(), "seed", static_cast<int64_t>(spec.seed));
    io::h5_write_attr(f.id(), "dataset", data_path);
    io::h5_write_attr(f.id(), "dataset_images_sha256", reader.info().images_sha256);
    io::h5_write_attr(f.id(), "vae", vae_path);
    io::h5_write_attr(f.id(), "vae_sha256", train::file_sha256(vae_path));
    io::h5_write_attr(f.id(), "view_rule",
                      "pool view p of example i = VAR training view drawn from stream (seed, view, step=-1, i, p)");
    io::h5_write<uint16_t>(f.id(), "tokens", all, {static_cast<hsize_t>(N * P), static_cast<hsize_t>(L)});
    io::h5_write<int64_t>(f.id(), "labels", reader.labels(), {static_cast<hsize_t>(N)});
    f.commit();
    log::info("tokenize: wrote ", out, " (", N * P, " views, ", all.size() * 2 / 1048576.0, " MiB of tokens)");
  }
  comm.barrier();
  return 0;
}

}  // namespace

VARDP_COMMAND("tokenize", "pre-tokenise a pool of augmentation views per example with the frozen VQ-VAE", run_tokenize);

}  // namespace vardp::app
