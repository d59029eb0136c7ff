// Training the small CNN classifier (classifier.hpp) on labelled images held in memory as stored
// (uint8 (N, S, S, 3), S >= R): each epoch visits the examples in a seeded random order; an
// example is seen through a random R x R crop (+ optional horizontal flip) drawn exactly as the
// VAR training views (data::draw_train_view keyed by (seed, epoch, example)); the test split
// through its centre crop (the evaluation view). AdamW, linear warm-up then cosine decay of the
// learning rate, cross-entropy. Progress lines every log_every steps; per-epoch history returned.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "vardp/eval/classifier.hpp"

namespace vardp::eval {

struct LabelledImages {
  torch::Tensor images;  // uint8 (N, S, S, 3), CPU, contiguous
  torch::Tensor labels;  // int64 (N), CPU
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

struct ClassifierTrainOptions {
  int64_t epochs = 5;
  int64_t batch = 128;
  double lr = 2e-3;
  double weight_decay = 0.05;
  double warmup_fraction = 0.03;    // share of the steps with a linearly rising learning rate
  double final_lr_fraction = 0.01;  // the cosine decays to lr * this
  bool hflip = false;
  uint64_t seed = 0;
  int64_t log_every = 100;  // steps; 0: no progress lines
  int64_t eval_batch = 500;
};

struct ClassifierEpoch {
  int64_t epoch = 0;          // 1-based
  int64_t step = 0;           // optimizer steps done
  double train_loss = 0;      // mean over the epoch's batches
  double train_accuracy = 0;  // on the augmented training views
  double test_accuracy = -1;  // < 0 without a test split
  double seconds = 0;         // wall time since the start of training
};

struct ClassifierTrainResult {
  std::vector<ClassifierEpoch> history;
  int64_t steps = 0;
  double seconds = 0;            // training wall time (test evaluations included)
  double images_per_second = 0;  // training images / pure training time
  double test_accuracy = -1;     // after the last epoch; < 0 without a test split
};

// Learning rate at optimizer step `step` (0-based) of `total`.
double classifier_lr(const ClassifierTrainOptions& o, int64_t step, int64_t total);

// Trains `net` in place (on its device). `test` may be null. Throws UsageError for labels outside
// [0, num_classes) or images smaller than the network's input.
ClassifierTrainResult train_classifier(SmallCnnClassifierImpl& net, const LabelledImages& train,
                                       const LabelledImages* test, const ClassifierTrainOptions& options);

// Share of `set` whose centre-crop view the network classifies as its label.
double classifier_accuracy(SmallCnnClassifierImpl& net, const LabelledImages& set, int64_t batch = 500);

}  // namespace vardp::eval
