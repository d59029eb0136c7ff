// Writing FLOP profiles (docs/formats/profile.md).
#include "vardp/profile/profile_file.hpp"

#include "vardp/io/atomic_file.hpp"

namespace vardp::profile {

namespace {

void scalar(hid_t loc, const std::string& path, double v) { io::h5_write<double>(loc, path, &v, {}); }

}  // namespace

void write_module_table(hid_t loc, const std::string& group, const std::vector<ModuleFlops>& rows) {
  io::H5Handle g = io::h5_require_group(loc, group);
  std::vector<std::string> names;
  std::vector<int64_t> instances;
  std::vector<double> fwd, bwd_in, bwd_w, dp, opt;
  for (const auto& r : rows) {
    names.push_back(r.name);
    instances.push_back(r.instances);
    fwd.push_back(r.forward);
    bwd_in.push_back(r.backward_input);
    bwd_w.push_back(r.backward_weight);
    dp.push_back(r.dp_extra);
    opt.push_back(r.optimizer);
  }
  io::h5_write_attr(g.id(), "names", names);
  const std::vector<hsize_t> dims{static_cast<hsize_t>(rows.size())};
  io::h5_write(g.id(), "instances", instances, dims);
  io::h5_write(g.id(), "forward_flops", fwd, dims);
  io::h5_write(g.id(), "backward_input_flops", bwd_in, dims);
  io::h5_write(g.id(), "backward_weight_flops", bwd_w, dims);
  io::h5_write(g.id(), "dp_extra_flops", dp, dims);
  io::h5_write(g.id(), "optimizer_flops", opt, dims);
}

void write_step_totals(hid_t loc, const std::string& group, const StepFlops& f) {
  io::H5Handle g = io::h5_require_group(loc, group);
  scalar(g.id(), "rows", f.rows);
  scalar(g.id(), "examples", f.examples);
  scalar(g.id(), "tokenize_flops", f.tokenize);
  scalar(g.id(), "forward_flops", f.forward);
  scalar(g.id(), "backward_flops", f.backward);
  scalar(g.id(), "total_flops", f.total());
  scalar(g.id(), "dp_extra_flops", f.dp_extra);
  scalar(g.id(), "dp_extra_matmul_flops", f.dp_extra_matmul);
  scalar(g.id(), "optimizer_flops", f.optimizer);
  scalar(g.id(), "executed_flops", f.executed());
}

void write_profile(const std::string& path, const io::Provenance& provenance, const TrainingFlopModel& model,
                   const RunProfile& p) {
  io::AtomicH5File file(path);
  io::Provenance prov = provenance;
  prov.format = kProfileFormat;
  prov.format_version = 1;
  io::write_provenance(file.id(), prov);
  io::h5_write_attr(file.id(), "flop_counter", "analytic");
  io::h5_write_attr(file.id(), "steps", p.steps);
  for (const auto& [k, v] : p.attrs_int) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : p.attrs_double) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : p.attrs_string) io::h5_write_attr(file.id(), k, v);

  io::H5Handle pv = io::h5_require_group(file.id(), "per_view");
  scalar(pv.id(), "tokenize_flops", model.tokenize_per_view());
  scalar(pv.id(), "forward_flops", model.forward_per_view());
  scalar(pv.id(), "backward_flops", model.backward_per_view());
  scalar(pv.id(), "dp_extra_flops", p.step.rows > 0 ? p.step.dp_extra / p.step.rows : 0.0);
  write_step_totals(file.id(), "step", p.step);
  write_step_totals(file.id(), "run", p.run);
  const double pflops = p.run.total() / 1e15, dp_pflops = p.run.dp_extra / 1e15;
  scalar(file.id(), "total_pflops", pflops);
  scalar(file.id(), "dp_extra_pflops", dp_pflops);
  write_module_table(file.id(), "modules", p.step.modules);
  file.commit();
}

}  // namespace vardp::profile
