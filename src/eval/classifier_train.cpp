#include "vardp/eval/classifier_train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "vardp/data/transforms.hpp"
#include "vardp/eval/image_features.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::eval {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void check_set(const LabelledImages& s, int64_t crop, int64_t classes, const char* what) {
  const torch::Tensor& x = s.images;
  if (!x.defined() || x.dim() != 4 || x.size(0) < 1 || x.size(1) != x.size(2) || x.size(3) != 3 ||
      x.scalar_type() != torch::kUInt8 || !x.is_contiguous() || !x.device().is_cpu()) {
    throw UsageError("images must be a non-empty contiguous CPU uint8 tensor (N, S, S, 3)", what);
  }
  if (x.size(1) < crop)
    throw UsageError(str("stored side ", x.size(1), " is smaller than the classifier's input ", crop), what);
  const torch::Tensor& y = s.labels;
  if (!y.defined() || y.dim() != 1 || y.size(0) != x.size(0) || y.scalar_type() != torch::kInt64)
    throw UsageError(str("labels must be int64 (", x.size(0), ")"), what);
  const int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  if (lo < 0 || hi >= classes)
    throw UsageError(str("labels span ", lo, "..", hi, "; the classifier has classes 0..", classes - 1), what);
}

// The random training views of `examples` (uint8 (B, R, R, 3)): data::draw_train_view keyed by
// (seed, epoch, example, view 0), the draws VAR's training views use.
torch::Tensor train_views(const torch::Tensor& images, const std::vector<int64_t>& examples, int64_t crop,
                          uint64_t seed, int64_t epoch, bool hflip) {
  const int64_t s = images.size(1);
  torch::Tensor out = torch::empty({static_cast<int64_t>(examples.size()), crop, crop, 3}, torch::kUInt8);
  const uint8_t* src = images.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const size_t row = static_cast<size_t>(crop) * 3;
  for (size_t k = 0; k < examples.size(); ++k) {
    const int64_t e = examples[k];
    const data::ViewParams p =
        data::draw_train_view(seed, epoch, e, 0, static_cast<int>(s), static_cast<int>(crop), hflip);
    for (int64_t y = 0; y < crop; ++y) {
      const uint8_t* in = src + ((e * s + p.top + y) * s + p.left) * 3;
      uint8_t* o = dst + (static_cast<int64_t>(k) * crop + y) * static_cast<int64_t>(row);
      if (!p.flip) {
        std::memcpy(o, in, row);
      } else {
        for (int64_t x = 0; x < crop; ++x) std::memcpy(o + x * 3, in + (crop - 1 - x) * 3, 3);
      }
    }
  }
  return out;
}

// A seeded permutation of 0..n-1 (Fisher-Yates on the stream (seed, shuffle, epoch)).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  rng::Stream stream(seed, rng::Purpose::shuffle, static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(stream.below(static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

std::string format_duration(double s) {
  const auto t = static_cast<int64_t>(std::max(0.0, s));
  return t >= 60 ? str(t / 60, "m", t % 60, "s") : str(t, "s");
}

}  // namespace

double classifier_lr(const ClassifierTrainOptions& o, int64_t step, int64_t total) {
  const auto warmup = static_cast<int64_t>(std::ceil(o.warmup_fraction * static_cast<double>(total)));
  if (step < warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  const double t = std::min(1.0, static_cast<double>(step - warmup) / span);
  const double floor = o.lr * o.final_lr_fraction;
  return floor + (o.lr - floor) * 0.5 * (1.0 + std::cos(M_PI * t));
}

double classifier_accuracy(SmallCnnClassifierImpl& net, const LabelledImages& set, int64_t batch) {
  const int64_t crop = net.config().image_size;
  check_set(set, crop, net.config().num_classes, "classifier_accuracy");
  int64_t correct = 0;
  for (int64_t i = 0; i < set.size(); i += batch) {
    const int64_t j = std::min(set.size(), i + batch);
    const ClassifierOutput out = net.classify(center_crop(set.images.slice(0, i, j), crop), batch);
    correct += out.logits.argmax(1).eq(set.labels.slice(0, i, j)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(set.size());
}

ClassifierTrainResult train_classifier(SmallCnnClassifierImpl& net, const LabelledImages& train,
                                       const LabelledImages* test, const ClassifierTrainOptions& o) {
  const ClassifierConfig& c = net.config();
  check_set(train, c.image_size, c.num_classes, "training set");
  if (test) check_set(*test, c.image_size, c.num_classes, "test set");
  if (o.epochs < 1 || o.batch < 1) throw UsageError("epochs and batch must be >= 1", "train_classifier");
  if (!(o.lr > 0) || o.weight_decay < 0) throw UsageError("lr must be > 0 and weight decay >= 0", "train_classifier");

  const torch::Device device = net.feature->weight.device();
  const int64_t n = train.size();
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total = steps_per_epoch * o.epochs;
  torch::optim::AdamW optimizer(net.parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));

  ClassifierTrainResult result;
  const auto t_start = Clock::now();
  double train_seconds = 0;  // pure training time (no test evaluations)
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> order = epoch_order(n, o.seed, epoch);
    net.train();
    double loss_sum = 0, window_loss = 0;
    int64_t seen = 0, correct = 0, window_seen = 0, window_correct = 0;
    auto t_window = Clock::now();
    auto t_epoch = Clock::now();
    for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
      const std::vector<int64_t> examples(order.begin() + b * o.batch, order.begin() + std::min(n, (b + 1) * o.batch));
      const auto bsz = static_cast<int64_t>(examples.size());
      const torch::Tensor views = train_views(train.images, examples, c.image_size, o.seed, epoch, o.hflip);
      const torch::Tensor index = torch::tensor(examples, torch::kInt64);
      const torch::Tensor y = train.labels.index_select(0, index).to(device);
      const double lr = classifier_lr(o, step, total);
      for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

      const ClassifierOutput out = net.forward(net.normalize(views));
      torch::Tensor loss = torch::nn::functional::cross_entropy(out.logits, y);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();

      const double l = loss.item<double>();
      const int64_t ok = out.logits.argmax(1).eq(y).sum().item<int64_t>();
      loss_sum += l * static_cast<double>(bsz);
      window_loss += l * static_cast<double>(bsz);
      seen += bsz;
      correct += ok;
      window_seen += bsz;
      window_correct += ok;
      if (o.log_every > 0 && ((step + 1) % o.log_every == 0 || step + 1 == total)) {
        const double dt = seconds_since(t_window);
        const double done_s = train_seconds + seconds_since(t_epoch);
        const double eta = done_s / static_cast<double>(step + 1) * static_cast<double>(total - step - 1);
        log::info("train-classifier: epoch ", epoch, "/", o.epochs, " step ", step + 1, "/", total, " loss ",
                  window_loss / static_cast<double>(window_seen), " acc ",
                  static_cast<double>(window_correct) / static_cast<double>(window_seen), " lr ", lr, " ",
                  static_cast<int64_t>(static_cast<double>(window_seen) / std::max(dt, 1e-9)), " images/s ETA ",
                  format_duration(eta));
        window_loss = 0;
        window_seen = window_correct = 0;
        t_window = Clock::now();
      }
    }
    train_seconds += seconds_since(t_epoch);
    ClassifierEpoch rec;
    rec.epoch = epoch;
    rec.step = step;
    rec.train_loss = loss_sum / static_cast<double>(seen);
    rec.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    if (test) rec.test_accuracy = classifier_accuracy(net, *test, o.eval_batch);
    rec.seconds = seconds_since(t_start);
    log::info("train-classifier: epoch ", epoch, " done: train loss ", rec.train_loss, " train acc ",
              rec.train_accuracy, test ? str(" test acc ", rec.test_accuracy) : std::string(), " (",
              format_duration(rec.seconds), ")");
    result.history.push_back(rec);
  }
  net.eval();
  result.steps = step;
  result.seconds = seconds_since(t_start);
  result.images_per_second = static_cast<double>(n * o.epochs) / std::max(train_seconds, 1e-9);
  result.test_accuracy = result.history.back().test_accuracy;
  return result;
}

}  // namespace vardp::eval
