// checkpoint-<step>.h5 reader and writer.
#include "vardp/train/checkpoint.hpp"

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {

void save_checkpoint(const std::string& path, const CheckpointData& c, const io::Provenance& provenance) {
  io::AtomicH5File file(path);
  io::Provenance p = provenance;
  p.format = kCheckpointFormat;
  p.format_version = kCheckpointFormatVersion;
  io::write_provenance(file.id(), p);
  const hid_t f = file.id();
  io::h5_write_attr(f, "step", c.step);
  io::h5_write_attr(f, "planned_steps", c.planned_steps);
  io::h5_write_attr(f, "seed", c.seed);
  io::h5_write_attr(f, "method", c.method);
  io::h5_write_attr(f, "base_vae", c.base_vae);
  io::h5_write_attr(f, "base_var", c.base_var);
  io::h5_write_attr(f, "base_var_sha256", c.base_var_sha256);
  io::h5_write_attr(f, "num_classes", c.num_classes);
  io::h5_write_attr(f, "noise_multiplier", c.noise_multiplier);
  io::h5_write_attr(f, "sample_rate", c.sample_rate);
  io::h5_write_attr(f, "optimizer_steps", c.optimizer_steps);
  io::h5_write_attr(f, "total_flops", c.total_flops);
  io::h5_write_attr(f, "wall_seconds", c.wall_seconds);
  // Invariant 5: measured from a run on private data (lot sizes drive step times).
  io::h5_write_attr(f, "non_private", std::vector<std::string>{"total_flops", "wall_seconds"});
  io::h5_write_attr(f, "secret_source", c.secret_source);
  io::h5_write_attr(f, "secret_fingerprint", c.secret_fingerprint);
  io::write_state_dict_group(f, "trainable", c.trainable, path);
  io::h5_require_group(f, "optimizer");
  for (const auto& [moment, sd] : c.optimizer) io::write_state_dict_group(f, "optimizer/" + moment, sd, path);
  if (c.ledger) c.ledger->save(f, "privacy");
  file.commit();
}

CheckpointData load_checkpoint(const std::string& path) {
  io::H5File file = io::H5File::open(path);
  const hid_t f = file.id();
  const int64_t version = io::check_format(f, path, kCheckpointFormat, kCheckpointFormatVersion);
  CheckpointData c;
  c.step = io::h5_read_attr_int(f, "step");
  c.planned_steps = io::h5_read_attr_int(f, "planned_steps");
  c.seed = io::h5_read_attr_int(f, "seed");
  c.method = io::h5_read_attr_string(f, "method");
  c.base_vae = io::h5_read_attr_string(f, "base_vae");
  c.base_var = io::h5_read_attr_string(f, "base_var");
  c.base_var_sha256 = io::h5_read_attr_string(f, "base_var_sha256");
  c.num_classes = io::h5_read_attr_int(f, "num_classes");
  c.noise_multiplier = io::h5_read_attr_double(f, "noise_multiplier");
  c.sample_rate = io::h5_read_attr_double(f, "sample_rate");
  c.optimizer_steps = io::h5_read_attr_int(f, "optimizer_steps");
  c.total_flops = io::h5_read_attr_double(f, "total_flops");
  c.wall_seconds = io::h5_read_attr_double(f, "wall_seconds");
  if (version >= 2) {
    c.secret_source = io::h5_read_attr_string(f, "secret_source");
    c.secret_fingerprint = io::h5_read_attr_string(f, "secret_fingerprint");
  }
  c.config_toml = io::h5_read_attr_string(f, "config_toml");
  c.world_size = io::h5_read_attr_int(f, "world_size");
  c.trainable = io::read_state_dict_group(f, "trainable", path);
  for (const auto& moment : io::h5_list(f, "optimizer"))
    c.optimizer[moment] = io::read_state_dict_group(f, "optimizer/" + moment, path);
  if (io::h5_exists(f, "privacy")) c.ledger = dp::PrivacyLedger::load(f, "privacy");
  return c;
}

}  // namespace vardp::train
