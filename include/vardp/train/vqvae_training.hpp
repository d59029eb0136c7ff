// Training a multi-scale VQ-VAE from scratch (vardp train-vqvae): the tokenizer of the embedded
// demo's own small model. Loss: mean squared reconstruction error + the quantiser's loss
// (beta-weighted commitment + codebook term, averaged over scales; VectorQuantizer2::forward),
// with a straight-through estimator. No perceptual or adversarial loss: at 32 x 32 they are not
// needed. Unused codes are re-drawn from encoder outputs now and then (a codebook reset), which
// keeps a small codebook in use on a small dataset. Output: a vardp HDF5 state dict that
// `model.vae` accepts (the architecture is inferred from its keys and shapes).
#pragma once
#include <cstdint>
#include <string>

#include "vardp/model/vqvae.hpp"

namespace vardp::data {
class DatasetReader;
}

namespace vardp::train {

struct VqvaeTrainOptions {
  std::string train_path;   // dataset file (vardp prepare)
  std::string test_path;    // optional: reconstruction error of its centre views at the end
  std::string out_path;     // state dict to write; "<out>.resume.h5" holds the training state
  model::VQVAEConfig model; // architecture (test_mode is switched off for training)
  int64_t steps = 3000;
  int64_t batch = 32;
  double lr = 3e-4;
  double weight_decay = 0.0;
  int64_t warmup_steps = 100;
  double vq_weight = 1.0;          // weight of the quantiser loss
  int64_t reset_dead_every = 200;  // steps between codebook resets (0: off)
  bool hflip = false;
  uint64_t seed = 0;
  int64_t log_every = 50;
  int64_t checkpoint_every = 500;  // steps between resume files (0: only at the end)
  int64_t stop_after_step = 0;     // > 0: save the state and stop after this step (time slices)
  std::string device = "auto";
  std::string description;         // the command line, stored with the result
};

struct ReconstructionQuality {
  int64_t images = 0;
  double mse = 0;        // per pixel, images in [-1, 1]
  double psnr_db = 0;    // 10 log10(4 / mse) for the [-1, 1] range
  double code_usage = 0; // share of the codebook used at least once
};

// Reconstruction error of `vae` on the centre views of a dataset file (all rows, `batch` at a time).
ReconstructionQuality evaluate_reconstruction(model::VQVAEImpl& vae, const data::DatasetReader& reader,
                                              int64_t batch, const torch::Device& device);

struct VqvaeTrainResult {
  bool stopped = false;          // SIGUSR1/SIGTERM: training state saved, run again to resume
  int64_t steps_done = 0;
  ReconstructionQuality test;    // images = 0 without a test split (or when stopped)
};

// Trains (resuming from "<out>.resume.h5" when it exists), writes out_path atomically, removes
// the resume file. A stop signal saves the training state at the next step boundary and returns.
VqvaeTrainResult train_vqvae(const VqvaeTrainOptions& options);

}  // namespace vardp::train
