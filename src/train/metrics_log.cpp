// metrics.h5: in-memory series written atomically.
#include "vardp/train/metrics_log.hpp"

#include <algorithm>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
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

void write_flops(const std::string& path, const io::Provenance& provenance, const FlopsTally& t,
                 const std::map<std::string, int64_t>& attrs_int,
                 const std::map<std::string, std::string>& attrs_string) {
  io::AtomicH5File file(path);
  io::Provenance p = provenance;
  p.format = "vardp.flops";
  p.format_version = 1;
  io::write_provenance(file.id(), p);
  io::h5_write_attr(file.id(), "flop_counter", "analytic");
  for (const auto& [k, v] : attrs_int) io::h5_write_attr(file.id(), k, v);
  for (const auto& [k, v] : attrs_string) io::h5_write_attr(file.id(), k, v);
  const double pflops = t.total_flops / 1e15;
  io::h5_write<double>(file.id(), "total_flops", &t.total_flops, {});
  io::h5_write<double>(file.id(), "total_pflops", &pflops, {});
  io::h5_write<double>(file.id(), "wall_seconds", &t.wall_seconds, {});
  for (const auto& [phase, sec] : t.phase_seconds) io::h5_write<double>(file.id(), "phase_seconds/" + phase, &sec, {});
  if (!t.step_flops.empty()) {
    std::vector<int64_t> steps;
    std::vector<double> values;
    for (const auto& r : t.step_flops) {
      steps.push_back(r.first);
      values.push_back(r.second);
    }
    const std::vector<hsize_t> dims{static_cast<hsize_t>(steps.size())};
    io::h5_write(file.id(), "steps/flops/step", steps, dims);
    io::h5_write(file.id(), "steps/flops/value", values, dims);
  }
  file.commit();
}

}  // namespace vardp::train
