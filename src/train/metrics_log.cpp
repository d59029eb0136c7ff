// metrics.h5: in-memory series written atomically.
#include "vardp/train/metrics_log.hpp"

#include <algorithm>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/profile/profile_file.hpp"
#include "vardp/train/optimizer.hpp"
#include "vardp/train/release.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {

void MetricsLog::add(const std::string& name, int64_t step, double value) { series_[name].emplace_back(step, value); }

void MetricsLog::truncate_after(int64_t step) {
  for (auto& [name, rows] : series_)
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const auto& r) { return r.first > step; }), rows.end());
}

void MetricsLog::write(const std::string& path, const io::Provenance& provenance,
                       const std::map<std::string, int64_t>& attrs_int,
                       const std::map<std::string, double>& attrs_double,
                       const std::map<std::string, std::string>& attrs_string,
                       const std::map<std::string, std::vector<std::string>>& attrs_strings,
                       const dp::PrivacyLedger* ledger) const {
  io::AtomicH5File file(path);
  io::Provenance p = provenance;
  p.format = kMetricsFormat;
  p.format_version = 1;
  io::write_provenance(file.id(), p);
  for (const auto& [k, v] : attrs_int) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : attrs_double) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : attrs_string) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : attrs_strings) io::h5_write_attr(file.id(), k, v);
  if (ledger) ledger->save(file.id(), "privacy");
  io::h5_require_group(file.id(), "metrics");
  for (const auto& [name, rows] : series_) {
    if (rows.empty()) continue;
    std::vector<int64_t> steps;
    std::vector<double> values;
    for (const auto& r : rows) {
      steps.push_back(r.first);
      values.push_back(r.second);
    }
    const std::vector<hsize_t> dims{static_cast<hsize_t>(rows.size())};
    io::h5_write(file.id(), "metrics/" + name + "/step", steps, dims);
    io::h5_write(file.id(), "metrics/" + name + "/value", values, dims);
    // Invariant 5: in a DP run every series computed from the private data is marked, one by one
    // (lr and epsilon follow from the public plan).
    if (ledger && name != "lr" && name != "epsilon")
      io::h5_write_attr(io::h5_open_group(file.id(), "metrics/" + name).id(), "non_private", int64_t{1});
  }
  file.commit();
}

MetricsLog MetricsLog::read(const std::string& path) {
  io::H5File file = io::H5File::open(path);
  io::check_format(file.id(), path, kMetricsFormat, 1);
  MetricsLog log;
  if (!io::h5_exists(file.id(), "metrics")) return log;
  for (const auto& name : io::h5_list(file.id(), "metrics")) {
    const auto steps = io::h5_read<int64_t>(file.id(), "metrics/" + name + "/step");
    const auto values = io::h5_read<double>(file.id(), "metrics/" + name + "/value");
    VARDP_CHECK(steps.size() == values.size(), path, ": series ", name, " has ", steps.size(), " steps but ",
                values.size(), " values");
    for (size_t i = 0; i < steps.size(); ++i) log.add(name, steps[i], values[i]);
  }
  return log;
}

void FlopsTally::add_step(int64_t step, const profile::StepFlops& f) {
  total_flops += f.total();
  steps.push_back(Step{step, f.rows, f.tokenize, f.forward, f.backward, f.dp_extra, f.optimizer});
  last = f;
}

void FlopsTally::restore_steps(const std::vector<Step>& previous, int64_t step) {
  steps.clear();
  for (const auto& s : previous)
    if (s.step <= step) steps.push_back(s);
}

namespace {

// Per-step series of flops.h5: /steps/<name>/{step, value}, the layout of io::TimeSeriesWriter.
// "flops" is the paper's count of each step.
const std::vector<std::pair<const char*, double FlopsTally::Step::*>>& step_series() {
  static const std::vector<std::pair<const char*, double FlopsTally::Step::*>> s{
      {"rows", &FlopsTally::Step::rows},
      {"tokenize_flops", &FlopsTally::Step::tokenize},
      {"forward_flops", &FlopsTally::Step::forward},
      {"backward_flops", &FlopsTally::Step::backward},
      {"dp_extra_flops", &FlopsTally::Step::dp_extra},
      {"optimizer_flops", &FlopsTally::Step::optimizer}};
  return s;
}

}  // namespace

std::vector<FlopsTally::Step> read_flops_steps(const std::string& path) {
  io::H5File file = io::H5File::open(path);
  io::check_format(file.id(), path, "vardp.flops", 1);
  std::vector<FlopsTally::Step> rows;
  if (!io::h5_exists(file.id(), "steps/flops/step")) return rows;
  const auto steps = io::h5_read<int64_t>(file.id(), "steps/flops/step");
  rows.resize(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) rows[i].step = steps[i];
  for (const auto& [name, field] : step_series()) {
    const std::string at = std::string("steps/") + name + "/value";
    if (!io::h5_exists(file.id(), at)) continue;  // a file written before the breakdown existed
    const auto values = io::h5_read<double>(file.id(), at);
    VARDP_CHECK(values.size() == rows.size(), path, ": ", at, " has ", values.size(), " rows, steps/flops ",
                rows.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i].*field = values[i];
  }
  return rows;
}

void write_flops(const std::string& path, const io::Provenance& provenance, const FlopsTally& t,
                 const std::map<std::string, int64_t>& attrs_int,
                 const std::map<std::string, std::string>& attrs_string, const dp::PrivacyLedger* ledger) {
  const bool private_run = ledger != nullptr;
  // A DP run without its ledger would be stamped non-private AND get its times: refuse.
  if (const auto it = attrs_int.find("dp_enabled"); it != attrs_int.end() && (it->second != 0) != private_run)
    throw Error(str("write_flops: dp_enabled = ", it->second, " but ", private_run ? "a" : "no",
                    " privacy ledger was given"),
                path);
  io::AtomicH5File file(path);
  io::Provenance p = provenance;
  p.format = "vardp.flops";
  p.format_version = 1;
  io::write_provenance(file.id(), p);
  io::h5_write_attr(file.id(), "flop_counter", "analytic");
  for (const auto& [k, v] : attrs_int) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : attrs_string) io::h5_write_attr(file.id(), k, v);
  auto scalar = [&](const std::string& name, double v) { io::h5_write<double>(file.id(), name, &v, {}); };
  FlopsTally::Step sum;
  for (const auto& s : t.steps)
    for (const auto& [name, field] : step_series()) sum.*field += s.*field;
  const double executed = t.total_flops + sum.dp_extra + sum.optimizer;
  scalar("total_flops", t.total_flops);
  scalar("total_pflops", t.total_flops / 1e15);
  scalar("tokenize_flops", sum.tokenize);
  scalar("forward_flops", sum.forward);
  scalar("backward_flops", sum.backward);
  scalar("dp_extra_flops", sum.dp_extra);
  scalar("dp_extra_pflops", sum.dp_extra / 1e15);
  scalar("optimizer_flops", sum.optimizer);
  scalar("executed_flops", executed);
  if (!private_run) {
    // Times only for non-private runs: a DP step's time grows with its realised Poisson lot, a
    // data-dependent quantity outside the ledger (invariant 5); metrics.h5 (private) keeps them.
    scalar("wall_seconds", t.wall_seconds);
    scalar("achieved_tflops", t.wall_seconds > 0 ? executed / t.wall_seconds / 1e12 : 0.0);
    for (const auto& [phase, sec] : t.phase_seconds) scalar("phase_seconds/" + phase, sec);
  }
  if (!t.steps.empty()) {
    std::vector<int64_t> steps;
    std::vector<double> values;
    for (const auto& r : t.steps) {
      steps.push_back(r.step);
      values.push_back(r.total());
    }
    const std::vector<hsize_t> dims{static_cast<hsize_t>(steps.size())};
    io::h5_write(file.id(), "steps/flops/step", steps, dims);
    io::h5_write(file.id(), "steps/flops/value", values, dims);
    for (const auto& [name, field] : step_series()) {
      values.clear();
      for (const auto& r : t.steps) values.push_back(r.*field);
      io::h5_write(file.id(), std::string("steps/") + name + "/step", steps, dims);
      io::h5_write(file.id(), std::string("steps/") + name + "/value", values, dims);
    }
  }
  if (!t.steps.empty() && !t.last.modules.empty()) {  // the module breakdown of the latest step
    profile::write_step_totals(file.id(), "last_step", t.last);
    io::h5_write_attr(io::h5_open_group(file.id(), "last_step").id(), "step", t.steps.back().step);
    profile::write_module_table(file.id(), "last_step/modules", t.last.modules);
  }
  // Last, so that the stamp's dp_enabled / accountant win over same-named run attributes.
  write_release_privacy(file.id(), ReleasePrivacy::of_run(ledger ? std::optional<dp::PrivacyLedger>(*ledger)
                                                                  : std::nullopt));
  file.commit();
}

profile::TrainingFlopModel training_flop_model(const config::Config& cfg, const model::VARImpl& var,
                                               const model::VQVAEConfig& vae) {
  std::optional<profile::DpCostOptions> dp_cost;
  if (cfg.dp.enabled)
    dp_cost = profile::DpCostOptions{dp::parse_grad_strategy(cfg.dp.grad_sample_mode), dp::NormRule::cost};
  return profile::TrainingFlopModel(profile::describe_training(var, no_weight_decay), profile::tokenizer_flops(vae),
                                    !cfg.data.token_cache.empty(), cfg.train, dp_cost);
}

profile::StepShape step_shape(int64_t examples, int64_t views, bool dp, const RankLayout& layout, int64_t micro_batch) {
  std::vector<int64_t> ids(static_cast<size_t>(std::max<int64_t>(0, examples)));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  std::vector<std::vector<int64_t>> per_rank;
  for (int r = 0; r < layout.size; ++r) {
    RankLayout at = layout;
    at.rank = r;
    std::vector<int64_t> units;
    for (const auto& u : dp ? dp_units(ids, views, at) : plain_units(ids, at)) units.push_back(u.example);
    per_rank.push_back(std::move(units));
  }
  return profile::shape_from_units(per_rank, micro_batch, dp ? views : 1);
}

}  // namespace vardp::train
