#include <algorithm>

#include "vardp/config/config.hpp"
#include "vardp/util/error.hpp"

namespace vardp::config {
namespace {
void one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  throw UsageError(str("'", value, "' is not one of: ", list), key);
}
void positive(const std::string& key, double v) {
  if (!(v > 0)) throw UsageError(str("must be > 0, got ", v), key);
}
void non_negative(const std::string& key, double v) {
  if (!(v >= 0)) throw UsageError(str("must be >= 0, got ", v), key);
}
}  // namespace

void validate(const Config& c) {
  one_of("model.dtype", c.model.dtype, {"float32", "bfloat16"});
  one_of("model.device", c.model.device, {"auto", "cpu", "cuda"});
  if (c.model.patch_nums.empty()) throw UsageError("must not be empty", "model.patch_nums");
  for (size_t i = 0; i < c.model.patch_nums.size(); ++i) {
    if (c.model.patch_nums[i] <= 0 || (i > 0 && c.model.patch_nums[i] <= c.model.patch_nums[i - 1]))
      throw UsageError("must be positive and strictly increasing", "model.patch_nums");
  }
  one_of("adapt.method", c.adapt.method, {"full", "lora", "lntune"});
  one_of("adapt.lora_init", c.adapt.lora_init, {"kaiming", "gaussian"});
  for (const auto& t : c.adapt.lora_targets) one_of("adapt.lora_targets", t, {"attn", "mlp", "adaln", "head"});
  positive("adapt.lora_rank", static_cast<double>(c.adapt.lora_rank));
  one_of("train.optimizer", c.train.optimizer, {"adamw", "sgd"});
  one_of("train.schedule", c.train.schedule, {"constant", "cosine"});
  positive("train.micro_batch", static_cast<double>(c.train.micro_batch));
  positive("train.batch_size", static_cast<double>(c.train.batch_size));
  non_negative("train.lr", c.train.lr);
  non_negative("train.max_hours", c.train.max_hours);
  one_of("dp.accountant", c.dp.accountant, {"rdp", "prv"});
  one_of("dp.grad_sample_mode", c.dp.grad_sample_mode, {"reference", "instantiate", "bk"});
  positive("dp.augmult", static_cast<double>(c.dp.augmult));
  positive("dp.max_grad_norm", c.dp.max_grad_norm);
  if (c.dp.noise_multiplier && c.dp.target_epsilon)
    throw UsageError("give either noise_multiplier or target_epsilon, not both", "dp");
  if (c.dp.noise_multiplier) non_negative("dp.noise_multiplier", *c.dp.noise_multiplier);
  if (c.dp.target_epsilon) positive("dp.target_epsilon", *c.dp.target_epsilon);
  if (c.dp.target_delta && !(*c.dp.target_delta > 0 && *c.dp.target_delta < 1))
    throw UsageError("must be in (0, 1)", "dp.target_delta");
  if (c.dp.sample_rate && !(*c.dp.sample_rate > 0 && *c.dp.sample_rate <= 1))
    throw UsageError("must be in (0, 1]", "dp.sample_rate");
  positive("dist.view_group", static_cast<double>(c.dist.view_group));
  one_of("dist.backend", c.dist.backend, {"auto", "mpi", "nccl"});
  positive("output.keep_last", static_cast<double>(c.output.keep_last));
}

}  // namespace vardp::config
