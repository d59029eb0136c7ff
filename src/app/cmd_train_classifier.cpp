// vardp train-classifier: the small CNN classifier / feature network of `vardp eval` for small
// images (include/vardp/eval/classifier.hpp, docs/formats/classifier.md), trained on a dataset
// file with random crops, evaluated on the test split's centre crops. One process: the training
// set is held in memory as stored (N * S * S * 3 bytes; 233 MB for Fashion-MNIST at S = 36).
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/data/dataset_file.hpp"
#include "vardp/eval/classifier.hpp"
#include "vardp/eval/classifier_train.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kTrainClassifierUsage =
    "vardp train-classifier --train T.h5 [--test E.h5] --out C.h5 [--epochs N --batch B --lr LR --seed S "
    "--threads T ...]";

struct LoadedSplit {
  data::DatasetInfo info;
  eval::LabelledImages set;
};

LoadedSplit load_split(const std::string& path) {
  LoadedSplit s;
  auto file = io::H5File::open(path);
  s.info = data::read_dataset_info(file.id(), path);
  const auto n = s.info.num_examples, side = s.info.resolution;
  log::info("train-classifier: reading ", path, ": ", n, " images ", side, "x", side, " (",
            static_cast<double>(n * side * side * 3) / (1 << 20), " MiB), ", s.info.num_classes, " classes");
  s.set.images = torch::empty({n, side, side, 3}, torch::kUInt8);
  const int64_t block = std::max<int64_t>(1, (int64_t{64} << 20) / (side * side * 3));
  for (int64_t r0 = 0; r0 < n; r0 += block) {
    const int64_t k = std::min(block, n - r0);
    const auto rows = io::h5_read_rows<uint8_t>(file.id(), "images", static_cast<hsize_t>(r0), static_cast<hsize_t>(k));
    VARDP_CHECK(static_cast<int64_t>(rows.size()) == k * side * side * 3, path, ": short read of /images");
    std::memcpy(s.set.images.data_ptr<uint8_t>() + r0 * side * side * 3, rows.data(), rows.size());
  }
  const auto labels = io::h5_read<int64_t>(file.id(), "labels");
  VARDP_CHECK(static_cast<int64_t>(labels.size()) == n, path, ": /labels has ", labels.size(), " entries for ", n,
              " images");
  s.set.labels = torch::tensor(labels, torch::kInt64);
  return s;
}

int run_train_classifier(const std::vector<std::string>& args) {
  po::options_description options(kTrainClassifierUsage);
  eval::ClassifierConfig arch;
  eval::ClassifierTrainOptions opt;
  options.add_options()("train", po::value<std::string>()->required(), "training dataset file (vardp prepare)")(
      "test", po::value<std::string>(), "test dataset file: accuracy after every epoch, stored in the output")(
      "out", po::value<std::string>()->required(), "classifier file to write (format vardp.classifier)")(
      "image-size", po::value<int64_t>()->default_value(0),
      "input side R (random R x R crops of the stored images); 0: the dataset's image_size")(
      "epochs", po::value<int64_t>()->default_value(opt.epochs), "passes over the training set")(
      "batch", po::value<int64_t>()->default_value(opt.batch), "images per optimizer step")(
      "lr", po::value<double>()->default_value(opt.lr, "0.002"),
      "AdamW peak learning rate (warm-up, then cosine decay)")(
      "weight-decay", po::value<double>()->default_value(opt.weight_decay, "0.05"), "AdamW weight decay")(
      "warmup", po::value<double>()->default_value(opt.warmup_fraction, "0.03"), "share of steps with linear warm-up")(
      "hflip", po::bool_switch(), "random horizontal flips besides the random crops")(
      "seed", po::value<uint64_t>()->default_value(0), "initialisation, order and crops")(
      "width", po::value<int64_t>()->default_value(arch.width), "channels of the first stage (doubled per stage)")(
      "stages", po::value<int64_t>()->default_value(arch.stages), "conv stages, each ending in 2x2 max pooling")(
      "convs-per-stage", po::value<int64_t>()->default_value(arch.convs_per_stage), "conv-BN-ReLU units per stage")(
      "feature-dim", po::value<int64_t>()->default_value(arch.feature_dim), "width of the feature layer")(
      "threads", po::value<int>()->default_value(0), "LibTorch intra-op threads (0: OMP_NUM_THREADS or all CPUs)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu, cuda, cuda:N or auto")(
      "log-every", po::value<int64_t>()->default_value(100), "steps between progress lines (0: epochs only)");
  po::variables_map vm;
  if (!parse_command_line(args, kTrainClassifierUsage, options, vm)) return 0;
  dist::Comm& comm = world();
  log::configure(comm.rank(), false);
  if (comm.size() > 1) {
    throw UsageError(str("runs in one process (started with ", comm.size(), " ranks); run it without mpirun/srun -n"),
                     "vardp train-classifier");
  }
  const int threads = vm["threads"].as<int>();
  if (threads < 0) throw UsageError("--threads must be >= 0", "vardp train-classifier");
  if (threads > 0) torch::set_num_threads(threads);
  const torch::Device device = model::resolve_device(vm["device"].as<std::string>());

  const std::string train_path = vm["train"].as<std::string>(), out_path = vm["out"].as<std::string>();
  LoadedSplit train = load_split(train_path);
  std::optional<LoadedSplit> test;
  if (vm.count("test")) {
    test = load_split(vm["test"].as<std::string>());
    const auto& a = train.info;
    const auto& b = test->info;
    if (a.num_classes != b.num_classes || a.original_class_ids != b.original_class_ids)
      throw UsageError("the test split has other classes than the training split (num_classes / original_class_ids)",
                       b.path);
    if (a.image_size != b.image_size)
      throw UsageError(
          str("the test split was prepared for ", b.image_size, " px, the training split for ", a.image_size), b.path);
  }

  arch.image_size = vm["image-size"].as<int64_t>() > 0 ? vm["image-size"].as<int64_t>() : train.info.image_size;
  arch.width = vm["width"].as<int64_t>();
  arch.stages = vm["stages"].as<int64_t>();
  arch.convs_per_stage = vm["convs-per-stage"].as<int64_t>();
  arch.feature_dim = vm["feature-dim"].as<int64_t>();
  arch.num_classes = train.info.num_classes;
  eval::check_classifier_config(arch);
  opt.epochs = vm["epochs"].as<int64_t>();
  opt.batch = vm["batch"].as<int64_t>();
  opt.lr = vm["lr"].as<double>();
  opt.weight_decay = vm["weight-decay"].as<double>();
  opt.warmup_fraction = vm["warmup"].as<double>();
  opt.hflip = vm["hflip"].as<bool>();
  opt.seed = vm["seed"].as<uint64_t>();
  opt.log_every = vm["log-every"].as<int64_t>();
  if (opt.warmup_fraction < 0 || opt.warmup_fraction >= 1)
    throw UsageError("--warmup must be in [0, 1)", "vardp train-classifier");

  torch::manual_seed(opt.seed);
  eval::SmallCnnClassifier net(arch);
  net->to(device);
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  log::info("train-classifier: ", eval::kClassifierArch, " R=", arch.image_size, " width=", arch.width,
            " stages=", arch.stages, " features=", arch.feature_dim, " classes=", arch.num_classes, " (", params,
            " parameters) on ", device.str(), ", ", torch::get_num_threads(), " threads; ", opt.epochs, " epochs of ",
            train.info.num_examples, " images, batch ", opt.batch);

  const eval::ClassifierTrainResult r = eval::train_classifier(*net, train.set, test ? &test->set : nullptr, opt);
  log::info("train-classifier: ", r.steps, " steps in ", r.seconds, " s (", r.images_per_second, " images/s)",
            test ? str(", test accuracy ", r.test_accuracy) : std::string());

  eval::ClassifierInfo info;
  info.config = arch;
  info.class_names = train.info.class_names;
  info.original_class_ids = train.info.original_class_ids;
  info.train_file = train_path;
  info.train_images_sha256 = train.info.images_sha256;
  info.source = train.info.source;
  info.test_accuracy = test ? r.test_accuracy : -1.0;
  info.test_examples = test ? test->info.num_examples : 0;

  std::ostringstream toml;
  toml << "[train_classifier]\nepochs = " << opt.epochs << "\nbatch = " << opt.batch << "\nlr = " << opt.lr
       << "\nweight_decay = " << opt.weight_decay << "\nwarmup = " << opt.warmup_fraction
       << "\nhflip = " << (opt.hflip ? "true" : "false") << "\nseed = " << opt.seed << "\n";
  io::Provenance prov;
  prov.config_toml = toml.str();
  prov.world_size = comm.size();
  std::ostringstream cmd;
  cmd << "vardp train-classifier";
  for (const auto& a : args) cmd << " " << a;
  eval::save_classifier(out_path, *net, info, prov, [&](hid_t f) {
    io::h5_write_attr(f, "command_line", cmd.str());
    io::h5_write_attr(f, "test_file", test ? test->info.path : std::string());
    io::h5_write_attr(f, "test_images_sha256", test ? test->info.images_sha256 : std::string());
    io::h5_write_attr(f, "train_examples", train.info.num_examples);
    io::h5_write_attr(f, "epochs", opt.epochs);
    io::h5_write_attr(f, "steps", r.steps);
    io::h5_write_attr(f, "train_seconds", r.seconds);
    io::h5_write_attr(f, "images_per_second", r.images_per_second);
    io::h5_write_attr(f, "threads", static_cast<int64_t>(torch::get_num_threads()));
    io::h5_write_attr(
        f, "augmentation",
        str("random ", arch.image_size, "x", arch.image_size, " crop", opt.hflip ? " + horizontal flip" : ""));
    std::vector<int64_t> epoch, step;
    std::vector<double> loss, train_acc, test_acc, secs;
    for (const auto& h : r.history) {
      epoch.push_back(h.epoch);
      step.push_back(h.step);
      loss.push_back(h.train_loss);
      train_acc.push_back(h.train_accuracy);
      test_acc.push_back(h.test_accuracy);
      secs.push_back(h.seconds);
    }
    const std::vector<hsize_t> dims{static_cast<hsize_t>(epoch.size())};
    io::h5_write<int64_t>(f, "/history/epoch", epoch, dims);
    io::h5_write<int64_t>(f, "/history/step", step, dims);
    io::h5_write<double>(f, "/history/train_loss", loss, dims);
    io::h5_write<double>(f, "/history/train_accuracy", train_acc, dims);
    io::h5_write<double>(f, "/history/test_accuracy", test_acc, dims);
    io::h5_write<double>(f, "/history/seconds", secs, dims);
  });
  if (test) std::cout << "test_accuracy " << r.test_accuracy << "\n" << std::flush;
  log::info("train-classifier: wrote ", out_path);
  return 0;
}

}  // namespace
VARDP_COMMAND("train-classifier", "small CNN classifier / feature network for small images (vardp eval)",
              run_train_classifier);
}  // namespace vardp::app
