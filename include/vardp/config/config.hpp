// Typed configuration of a vardp job. The structs hold defaults; `visit_config` lists every key
// with its documentation once, and the CLI (src/app/config_loader.cpp) uses that list to read
// TOML, reject unknown keys, apply --set overrides and print the resolved config. The library
// only ever sees these structs.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vardp::config {

struct ModelConfig {
  std::string vae;            // VQ-VAE checkpoint (.pth or vardp .h5)
  std::string var;            // VAR checkpoint (.pth or vardp .h5); empty: random init
  int64_t depth = 16;         // used when `var` is empty
  int64_t num_classes = 1000; // classes of the base model (random init)
  std::vector<int64_t> patch_nums{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  double cond_drop_rate = 0.1;
  double drop_path_rate = -1.0;  // <0: official default 0.1*depth/24
  bool attn_l2_norm = true;
  bool shared_aln = false;
  std::string dtype = "float32";  // compute dtype: float32 | bfloat16 (CUDA autocast)
  std::string device = "auto";    // auto | cpu | cuda
};

struct DataConfig {
  std::string train;          // dataset HDF5 (datasets/ format)
  std::string test;
  int64_t image_size = 256;   // model resolution
  bool hflip = false;         // random horizontal flip in training views
  std::string token_cache;    // optional pre-tokenised views (vardp tokenize)
  int64_t prefetch = 2;       // micro-batches read ahead
};

struct AdaptConfig {
  std::string method = "full";  // full | lora | lntune
  int64_t lora_rank = 16;
  double lora_alpha = 32.0;
  double lora_dropout = 0.0;
  std::vector<std::string> lora_targets{"attn", "mlp", "adaln"};
  std::string lora_init = "kaiming";  // kaiming | gaussian
  bool lntune_head = false;
  int64_t num_classes = 0;        // downstream classes; 0: keep the base model's
  bool train_class_emb = true;
};

struct TrainConfig {
  int64_t epochs = 0;             // either epochs or steps
  int64_t steps = 0;
  int64_t batch_size = 32;        // logical batch (non-DP) ; DP uses the expected lot size
  int64_t micro_batch = 8;
  std::string optimizer = "adamw";  // adamw | sgd
  double lr = 1e-4;
  double weight_decay = 0.05;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double momentum = 0.0;
  std::string schedule = "constant";  // constant | cosine
  int64_t warmup_steps = 0;
  double grad_clip = 0.0;         // non-DP global-norm clipping; 0: off
  double label_smooth = 0.0;
  int64_t seed = 0;
  int64_t log_every = 10;
  bool dry_run = false;
  double max_hours = 0.0;         // checkpoint and exit 75 before this wall time; 0: off
};

struct DpConfig {
  bool enabled = false;
  std::optional<double> noise_multiplier;
  std::optional<double> target_epsilon;
  std::optional<double> target_delta;  // default 1/N
  double max_grad_norm = 0.5;
  std::optional<double> sample_rate;   // default batch_size / N
  std::string accountant = "rdp";      // rdp | prv
  int64_t augmult = 1;                 // views per example, averaged before clipping
  std::string grad_sample_mode = "bk"; // reference | instantiate | bk
  // The run secret that keys the noise and the Poisson lots (docs/privacy.md). Empty: a fresh
  // 256-bit secret from the OS per run, kept in <output.dir>/secret.key. A path pins it
  // (reproducible DP runs for tests and audits): 64 hex digits in a private file.
  std::string secret_file;
};

struct DistConfig {
  int64_t view_group = 1;           // ranks sharing the views of one example
  std::string backend = "auto";     // auto | mpi | nccl
  bool log_all_ranks = false;
};

struct OutputConfig {
  std::string dir = "runs/default";
  int64_t checkpoint_every = 0;     // steps; 0: only at the end and on signals
  int64_t keep_last = 2;
  bool force_resume = false;
};

struct EvalConfig {
  std::string inception;            // pt_inception-2015-12-05-6726825d.pth
  std::string classifier;           // vardp train-classifier output (small images)
  int64_t per_class = 0;            // 0: as many as the test split has
  double cfg = 1.5;
  int64_t top_k = 900;
  double top_p = 0.96;
  int64_t seed = 0;
  int64_t pr_k = 3;
  std::string reference_cache;      // dir of cached test-split features; "": next to data.test
};

struct Config {
  ModelConfig model;
  DataConfig data;
  AdaptConfig adapt;
  TrainConfig train;
  DpConfig dp;
  DistConfig dist;
  OutputConfig output;
  EvalConfig eval;
};

// Visitor protocol: v.field(name, member, doc) for each key of a table; v.table(name, fn) for
// each table, where fn(v) visits that table's fields. Keys and docs live here and nowhere else.
template <class V>
void visit_model(V& v, ModelConfig& c) {
  v.field("vae", c.vae, "VQ-VAE checkpoint (.pth as published, or vardp .h5)");
  v.field("var", c.var, "VAR checkpoint (.pth or vardp .h5); empty: random initialisation");
  v.field("depth", c.depth, "VAR depth when initialising randomly (width 64*depth, heads=depth)");
  v.field("num_classes", c.num_classes, "classes of a randomly initialised base model");
  v.field("patch_nums", c.patch_nums, "token-pyramid side lengths, coarse to fine");
  v.field("cond_drop_rate", c.cond_drop_rate, "label dropout rate in training (classifier-free guidance)");
  v.field("drop_path_rate", c.drop_path_rate, "stochastic depth; <0 uses the official 0.1*depth/24");
  v.field("attn_l2_norm", c.attn_l2_norm, "L2-normalised q/k with learned scale (official default)");
  v.field("shared_aln", c.shared_aln, "one AdaLN for all blocks (VAR-d30 style)");
  v.field("dtype", c.dtype, "compute dtype: float32 | bfloat16 (autocast on CUDA)");
  v.field("device", c.device, "auto | cpu | cuda");
}
template <class V>
void visit_data(V& v, DataConfig& c) {
  v.field("train", c.train, "training dataset HDF5 (vardp prepare)");
  v.field("test", c.test, "test dataset HDF5");
  v.field("image_size", c.image_size, "model resolution in pixels");
  v.field("hflip", c.hflip, "random horizontal flip in training views");
  v.field("token_cache", c.token_cache, "pre-tokenised view pool (vardp tokenize); empty: tokenise on the fly");
  v.field("prefetch", c.prefetch, "micro-batches read ahead of compute");
}
template <class V>
void visit_adapt(V& v, AdaptConfig& c) {
  v.field("method", c.method, "full | lora | lntune");
  v.field("lora_rank", c.lora_rank, "LoRA rank r");
  v.field("lora_alpha", c.lora_alpha, "LoRA alpha (scaling alpha/r)");
  v.field("lora_dropout", c.lora_dropout, "dropout on the LoRA input");
  v.field("lora_targets", c.lora_targets, "groups: attn (mat_qkv, proj), mlp (fc1, fc2), adaln (ada_lin), head");
  v.field("lora_init", c.lora_init, "initialisation of A: kaiming | gaussian (B starts at zero)");
  v.field("lntune_head", c.lntune_head, "lntune also trains the head's AdaLN");
  v.field("num_classes", c.num_classes, "downstream classes (new class embedding); 0 keeps the base's");
  v.field("train_class_emb", c.train_class_emb, "train the class embedding in every mode");
}
template <class V>
void visit_train(V& v, TrainConfig& c) {
  v.field("epochs", c.epochs, "training length in epochs (or set steps)");
  v.field("steps", c.steps, "training length in optimizer steps (overrides epochs)");
  v.field("batch_size", c.batch_size, "logical batch size (non-DP); DP uses sample_rate*N");
  v.field("micro_batch", c.micro_batch, "examples x views per forward/backward pass");
  v.field("optimizer", c.optimizer, "adamw | sgd");
  v.field("lr", c.lr, "peak learning rate");
  v.field("weight_decay", c.weight_decay, "decoupled weight decay (no decay on biases, norms, embeddings)");
  v.field("beta1", c.beta1, "AdamW beta1");
  v.field("beta2", c.beta2, "AdamW beta2");
  v.field("momentum", c.momentum, "SGD momentum");
  v.field("schedule", c.schedule, "constant | cosine (after warm-up)");
  v.field("warmup_steps", c.warmup_steps, "linear warm-up steps");
  v.field("grad_clip", c.grad_clip, "global gradient-norm clipping for non-DP runs; 0 off");
  v.field("label_smooth", c.label_smooth, "label smoothing of the cross-entropy");
  v.field("seed", c.seed, "root seed of the public random streams (init, crops, flips, label dropout, "
                         "drop-path); never of the DP noise or lots");
  v.field("log_every", c.log_every, "steps between progress lines");
  v.field("dry_run", c.dry_run, "build everything, print parameter counts, do not train");
  v.field("max_hours", c.max_hours, "checkpoint and exit 75 before this many hours; 0 off");
}
template <class V>
void visit_dp(V& v, DpConfig& c) {
  v.field("enabled", c.enabled, "differentially private training (DP-SGD)");
  v.field("noise_multiplier", c.noise_multiplier, "sigma; or give target_epsilon");
  v.field("target_epsilon", c.target_epsilon, "calibrate sigma for this epsilon over the planned steps");
  v.field("target_delta", c.target_delta, "delta; default 1/N");
  v.field("max_grad_norm", c.max_grad_norm, "per-example clipping norm C");
  v.field("sample_rate", c.sample_rate, "Poisson sampling rate q; default batch_size/N");
  v.field("accountant", c.accountant, "rdp | prv");
  v.field("augmult", c.augmult, "augmentation multiplicity k (views per example)");
  v.field("grad_sample_mode", c.grad_sample_mode, "reference | instantiate | bk");
  v.field("secret_file", c.secret_file,
          "file with the 256-bit run secret (64 hex digits) that keys noise and lots; empty: a fresh secret "
          "per run in <output.dir>/secret.key (docs/privacy.md). Pinning it makes DP runs reproducible: "
          "for tests and audits only");
}
template <class V>
void visit_dist(V& v, DistConfig& c) {
  v.field("view_group", c.view_group, "ranks that split the views of one example");
  v.field("backend", c.backend, "auto | mpi | nccl (CUDA tensors)");
  v.field("log_all_ranks", c.log_all_ranks, "every rank writes log lines, prefixed [rank N]");
}
template <class V>
void visit_output(V& v, OutputConfig& c) {
  v.field("dir", c.dir, "run directory");
  v.field("checkpoint_every", c.checkpoint_every, "steps between checkpoints; 0 only at the end and on signals");
  v.field("keep_last", c.keep_last, "checkpoints kept");
  v.field("force_resume", c.force_resume, "resume even if the config or world size changed");
}
template <class V>
void visit_eval(V& v, EvalConfig& c) {
  v.field("inception", c.inception, "FID Inception weights (pt_inception-2015-12-05-6726825d.pth)");
  v.field("classifier", c.classifier, "feature classifier for small images (vardp train-classifier)");
  v.field("per_class", c.per_class, "samples per class; 0 as many as the test split");
  v.field("cfg", c.cfg, "classifier-free guidance scale");
  v.field("top_k", c.top_k, "top-k sampling (0 off)");
  v.field("top_p", c.top_p, "top-p sampling (0 off)");
  v.field("seed", c.seed, "sampling seed");
  v.field("pr_k", c.pr_k, "k of improved precision/recall");
  v.field("reference_cache", c.reference_cache,
          "directory of the cached test-split features of vardp eval --run; empty: next to data.test "
          "(the run directory when that is read-only)");
}

template <class V>
void visit_config(V& v, Config& c) {
  v.table("model", [&](V& x) { visit_model(x, c.model); });
  v.table("data", [&](V& x) { visit_data(x, c.data); });
  v.table("adapt", [&](V& x) { visit_adapt(x, c.adapt); });
  v.table("train", [&](V& x) { visit_train(x, c.train); });
  v.table("dp", [&](V& x) { visit_dp(x, c.dp); });
  v.table("dist", [&](V& x) { visit_dist(x, c.dist); });
  v.table("output", [&](V& x) { visit_output(x, c.output); });
  v.table("eval", [&](V& x) { visit_eval(x, c.eval); });
}

// Semantic checks that need no file system (ranges, enumerations). Throws UsageError.
void validate(const Config& c);

}  // namespace vardp::config
