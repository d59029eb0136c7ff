#include "vardp/eval/stats_io.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

std::vector<hsize_t> matrix_dims(hid_t file, const std::string& dataset, const std::string& path) {
  const auto dims = io::h5_dims(file, dataset);
  if (dims.size() != 2 || dims[0] == 0 || dims[1] == 0) {
    std::string shape;
    for (auto v : dims) shape += (shape.empty() ? "" : ", ") + std::to_string(v);
    throw Error(str("dataset ", dataset, " must be a non-empty (N, d) matrix, has shape (", shape,
                    ")"),
                path);
  }
  return dims;
}

FeatureSet read_set(hid_t file, const std::string& prefix, const std::string& path,
                    bool load_features, int64_t batch_rows) {
  FeatureSet set;
  const std::string features = "/" + prefix + "features";
  if (io::h5_exists(file, features)) {
    if (load_features) {
      set.features = read_features(file, features, path, batch_rows);
    } else {
      set.stats = stats_from_dataset(file, features, path, batch_rows);
    }
    return set;
  }
  const bool has_mu = io::h5_exists(file, "/" + prefix + "mu");
  const bool has_sigma = io::h5_exists(file, "/" + prefix + "sigma");
  if (has_mu != has_sigma) {
    throw Error(str("has /", prefix, has_mu ? "mu" : "sigma", " without /", prefix,
                    has_mu ? "sigma" : "mu"),
                path);
  }
  if (has_mu) set.stats = read_stats(file, prefix, path);
  return set;
}

}  // namespace

FeatureMatrix read_features(hid_t file, const std::string& dataset, const std::string& path,
                            int64_t batch_rows) {
  const auto dims = matrix_dims(file, dataset, path);
  const auto n = static_cast<int64_t>(dims[0]);
  const auto d = static_cast<int64_t>(dims[1]);
  FeatureMatrix m(n, d);
  for (int64_t r0 = 0; r0 < n; r0 += batch_rows) {
    const int64_t nr = std::min(batch_rows, n - r0);
    const auto rows = io::h5_read_rows<float>(file, dataset, r0, nr);
    VARDP_CHECK(static_cast<int64_t>(rows.size()) == nr * d, path, ": short read of ", dataset);
    std::memcpy(m.data() + r0 * d, rows.data(), rows.size() * sizeof(float));
  }
  if (!m.allFinite()) throw Error(str(dataset, " has non-finite values"), path);
  return m;
}

FeatureStats stats_from_dataset(hid_t file, const std::string& dataset, const std::string& path,
                                int64_t batch_rows) {
  const auto dims = matrix_dims(file, dataset, path);
  const auto n = static_cast<int64_t>(dims[0]);
  const auto d = static_cast<int64_t>(dims[1]);
  if (n < 2) throw Error(str(dataset, " has ", n, " rows; statistics need at least 2"), path);
  StatsAccumulator acc(d);
  for (int64_t r0 = 0; r0 < n; r0 += batch_rows) {
    const int64_t nr = std::min(batch_rows, n - r0);
    const auto rows = io::h5_read_rows<float>(file, dataset, r0, nr);
    VARDP_CHECK(static_cast<int64_t>(rows.size()) == nr * d, path, ": short read of ", dataset);
    for (float v : rows) {
      if (!std::isfinite(v)) throw Error(str(dataset, " has non-finite values"), path);
    }
    acc.add(rows.data(), nr);
  }
  return acc.finalize();
}

FeatureStats read_stats(hid_t file, const std::string& prefix, const std::string& path) {
  FeatureStats s;
  std::vector<hsize_t> mu_dims, sigma_dims;
  const auto mu = io::h5_read<double>(file, "/" + prefix + "mu", &mu_dims);
  const auto sigma = io::h5_read<double>(file, "/" + prefix + "sigma", &sigma_dims);
  if (mu_dims.size() != 1) throw Error(str("/", prefix, "mu must be a vector"), path);
  const auto d = static_cast<int64_t>(mu_dims[0]);
  if (sigma_dims.size() != 2 || static_cast<int64_t>(sigma_dims[0]) != d ||
      static_cast<int64_t>(sigma_dims[1]) != d) {
    throw Error(str("/", prefix, "sigma must be (", d, ", ", d, ") to match /", prefix, "mu"), path);
  }
  s.mu = Eigen::Map<const Eigen::VectorXd>(mu.data(), d);
  // Row-major on disk; the matrix is symmetric, but transpose explicitly to stay exact.
  s.sigma = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      sigma.data(), d, d);
  const std::string count = "/" + prefix + "count";
  if (io::h5_exists(file, count)) {
    const auto c = io::h5_read<int64_t>(file, count);
    if (c.size() != 1) throw Error(str(count, " must be a scalar"), path);
    s.count = c[0];
  }
  check_stats(s, str(path, " (/", prefix, "mu, /", prefix, "sigma)"));
  return s;
}

void write_stats(hid_t file, const std::string& prefix, const FeatureStats& s) {
  const auto d = static_cast<hsize_t>(s.dim());
  io::h5_write<double>(file, "/" + prefix + "mu", s.mu.data(), {d});
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> sigma = s.sigma;
  io::h5_write<double>(file, "/" + prefix + "sigma", sigma.data(), {d, d});
  io::h5_write<int64_t>(file, "/" + prefix + "count", &s.count, {});
}

EvalInput read_eval_input(const std::string& path, bool load_features, int64_t batch_rows) {
  VARDP_CHECK(batch_rows > 0, "read_eval_input: batch_rows must be positive");
  auto file = io::H5File::open(path);
  EvalInput in;
  in.path = path;
  in.pool = read_set(file.id(), "", path, load_features, batch_rows);
  in.spatial = read_set(file.id(), "spatial_", path, load_features, batch_rows);
  if (!in.pool.present()) {
    if (io::h5_exists(file.id(), "/images")) {
      throw UsageError("images need a feature network (--features-net); give /features or "
                       "/mu + /sigma instead",
                       path);
    }
    throw UsageError("no /features and no /mu + /sigma at the file root", path);
  }
  return in;
}

void write_stats_file(const std::string& path, const FeatureStats& pool,
                      const std::optional<FeatureStats>& spatial, const std::string& source) {
  io::AtomicH5File out(path);
  io::Provenance prov;
  prov.format = kStatsFormat;
  prov.format_version = kStatsFormatVersion;
  io::write_provenance(out.id(), prov);
  io::h5_write_attr(out.id(), "source", source);
  write_stats(out.id(), "", pool);
  if (spatial) write_stats(out.id(), "spatial_", *spatial);
  out.commit();
}

}  // namespace vardp::eval
