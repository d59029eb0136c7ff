// vardp prepare --format F --root DIR --out OUT: a dataset in its official layout -> OUT/train.h5
// and OUT/test.h5 (docs/formats/dataset.md, docs/datasets.md). Under mpirun the ranks split the
// decoding and rank 0 writes.
#include <iostream>
#include <sstream>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/data/prepare.hpp"
#include "vardp/data/resize.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

// "0-4,7,9" -> {0,1,2,3,4,7,9} (order kept: it defines the new labels).
std::vector<int64_t> parse_class_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string part;
  auto num = [&](const std::string& s) {
    try {
      size_t pos = 0;
      const int64_t v = std::stoll(s, &pos);
      if (pos == s.size() && v >= 0) return v;
    } catch (const std::exception&) {
    }
    throw UsageError("expected class indices such as 0-4,7 (got '" + text + "')", "--classes");
  };
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    const auto dash = part.find('-');
    if (dash == std::string::npos) {
      out.push_back(num(part));
    } else {
      const int64_t a = num(part.substr(0, dash)), b = num(part.substr(dash + 1));
      if (b < a) throw UsageError("empty range '" + part + "'", "--classes");
      for (int64_t c = a; c <= b; ++c) out.push_back(c);
    }
  }
  if (out.empty()) throw UsageError("no classes given", "--classes");
  return out;
}

std::vector<std::string> parse_splits(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}

int run_prepare(const std::vector<std::string>& args) {
  const std::string usage = "vardp prepare --format F --root DIR --out OUT [options]";
  po::options_description options("vardp prepare --format F --root DIR --out OUT [options]");
  options.add_options()
    ("format", po::value<std::string>()->required(),
     "flowers102 | cub200 | food101 | stanford_cars | oxford_pets | imagefolder | fashion_mnist")
    ("root", po::value<std::string>()->default_value(""),
     "dataset root in its official layout (fashion_mnist: default /usr/share/datasets/fashion-mnist)")
    ("out", po::value<std::string>()->required(), "output directory (train.h5, test.h5)")
    ("image-size", po::value<int>()->default_value(0),
     "model resolution R (default 256; fashion_mnist 32)")
    ("resolution", po::value<int>()->default_value(0),
     "stored side S (default round(1.125*R), VAR's mid_reso)")
    ("skip-bad", po::bool_switch(), "skip unreadable images and bad labels, count and report them")
    ("classes", po::value<std::string>()->default_value(""),
     "keep only these original class indices (0-based), e.g. 0-4 or 5-9; labels become 0..K-1")
    ("per-class-train", po::value<int64_t>()->default_value(0),
     "keep at most N training images per class (seeded draw; 0: all)")
    ("per-class-test", po::value<int64_t>()->default_value(0), "same for the test split")
    ("subset-seed", po::value<uint64_t>()->default_value(0), "seed of the per-class draw")
    ("splits", po::value<std::string>()->default_value(""), "train,test (default: both)")
    ("flowers-valid", po::value<std::string>()->default_value("none"),
     "flowers102: put setid.mat's valid ids into none | train | test")
    ("fmnist-fit", po::value<std::string>()->default_value("pad"),
     "fashion_mnist 28x28 -> 32x32: pad (zeros) | resize (Lanczos)")
    ("fmnist-size", po::value<int>()->default_value(32), "fashion_mnist canvas side")
    ("threads", po::value<int>()->default_value(0), "decoding threads per rank (0: cores/ranks)")
    ("block", po::value<int>()->default_value(256), "images per exchange between ranks")
    ("compression", po::value<int>()->default_value(0), "gzip level of /images (0: none)")
    ("log-level", po::value<std::string>()->default_value("info"), "debug | info | warn | error");
  po::variables_map vm;
  if (!parse_command_line(args, usage, options, vm)) return 0;

  data::PrepareOptions o;
  o.format = vm["format"].as<std::string>();
  o.root = vm["root"].as<std::string>();
  o.out_dir = vm["out"].as<std::string>();
  o.image_size = vm["image-size"].as<int>();
  if (o.image_size == 0) o.image_size = o.format == "fashion_mnist" ? 32 : 256;
  if (o.image_size < 0) throw UsageError("must be positive", "--image-size");
  o.resolution = vm["resolution"].as<int>();
  if (o.resolution < 0) throw UsageError("must be positive", "--resolution");
  o.skip_bad = vm["skip-bad"].as<bool>();
  if (!vm["classes"].as<std::string>().empty())
    o.classes = parse_class_list(vm["classes"].as<std::string>());
  o.per_class_train = vm["per-class-train"].as<int64_t>();
  o.per_class_test = vm["per-class-test"].as<int64_t>();
  if (o.per_class_train < 0 || o.per_class_test < 0)
    throw UsageError("per-class counts must be >= 0", "--per-class-train/--per-class-test");
  o.subset_seed = vm["subset-seed"].as<uint64_t>();
  o.splits = parse_splits(vm["splits"].as<std::string>());
  o.source.flowers_valid = vm["flowers-valid"].as<std::string>();
  o.source.fmnist_fit = vm["fmnist-fit"].as<std::string>();
  o.source.fmnist_size = vm["fmnist-size"].as<int>();
  o.threads = vm["threads"].as<int>();
  o.block = vm["block"].as<int>();
  o.compression = vm["compression"].as<int>();
  if (o.compression < 0 || o.compression > 9) throw UsageError("must be 0..9", "--compression");
  o.command_line = "vardp prepare";
  for (const auto& a : args) o.command_line += " " + a;

  dist::Comm& comm = world();
  log::configure(comm.rank(), false, log::level_from_string(vm["log-level"].as<std::string>()));
  const data::PrepareReport report = data::prepare_dataset(o, comm);
  if (comm.is_root()) {
    std::cout << "prepared " << report.format << ": " << report.num_classes << " classes, "
              << report.resolution << "x" << report.resolution << " px\n";
    for (const auto& s : report.splits) {
      std::cout << "  " << s.name << ": " << s.written << " images, " << s.skipped
                << " skipped, " << s.seconds << " s -> " << s.path << " (sha256 " << s.sha256
                << ")\n";
      for (const auto& b : s.skipped_items) std::cout << "    skipped " << b.path << ": " << b.reason << "\n";
    }
    std::cout << std::flush;
  }
  return 0;
}

}  // namespace
VARDP_COMMAND("prepare", "turn a dataset in its official layout into vardp's HDF5 dataset files",
              run_prepare);

}  // namespace vardp::app
