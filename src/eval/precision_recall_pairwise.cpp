#include "vardp/eval/precision_recall_pairwise.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

// CPUs this process may run on: under Slurm / cgroups the affinity mask, not the whole node.
int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(CPU_COUNT(&set), 1);
  return std::max(static_cast<int>(std::thread::hardware_concurrency()), 1);
}

}  // namespace

int resolve_threads(const PairwiseOptions& opt, int64_t rows) {
  int t = opt.threads > 0 ? opt.threads : available_cpus();
  const int64_t blocks = (rows + opt.block_rows - 1) / std::max<int64_t>(opt.block_rows, 1);
  t = static_cast<int>(std::min<int64_t>(std::max(t, 1), std::max<int64_t>(blocks, 1)));
  return t;
}

void for_each_gram_block(const FeatureMatrix& x, const FeatureMatrix& y,
                         const Eigen::RowVectorXd& shift, const PairwiseOptions& opt,
                         const TileFn& fn) {
  VARDP_CHECK(x.cols() == y.cols(), "pairwise: feature dimensions differ (", x.cols(), " vs ",
              y.cols(), ")");
  VARDP_CHECK(opt.block_rows > 0 && opt.block_cols > 0, "pairwise: block sizes must be positive");
  const int64_t d = x.cols();
  VARDP_CHECK(shift.size() == 0 || shift.size() == d, "pairwise: shift has ", shift.size(),
              " entries, expected ", d);
  const int64_t nx = x.rows();
  const int64_t ny = y.rows();
  if (nx == 0 || ny == 0) return;
  const int64_t nblocks = (nx + opt.block_rows - 1) / opt.block_rows;
  const int nthreads = resolve_threads(opt, nx);

  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&](int thread) {
    try {
      DoubleTile tile;
      Eigen::MatrixXd xb, yb;  // float64 copies of the current row block / column chunk
      for (int64_t b = next++; b < nblocks; b = next++) {
        {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (failure) return;
        }
        const int64_t r0 = b * opt.block_rows;
        const int64_t nr = std::min(opt.block_rows, nx - r0);
        xb = x.middleRows(r0, nr).cast<double>();
        if (shift.size() == d) xb.rowwise() -= shift;
        tile.resize(nr, ny);
        for (int64_t c0 = 0; c0 < ny; c0 += opt.block_cols) {
          const int64_t nc = std::min(opt.block_cols, ny - c0);
          yb = y.middleRows(c0, nc).cast<double>();
          if (shift.size() == d) yb.rowwise() -= shift;
          tile.middleCols(c0, nc).noalias() = xb * yb.transpose();
        }
        fn(thread, r0, tile);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  if (nthreads == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(nthreads);
    for (int t = 0; t < nthreads; ++t) pool.emplace_back(worker, t);
    for (auto& th : pool) th.join();
  }
  if (failure) std::rethrow_exception(failure);
}

namespace {

Eigen::VectorXd centred_sq_norms(const FeatureMatrix& m, const Eigen::RowVectorXd& shift) {
  Eigen::VectorXd n(m.rows());
  for (int64_t i = 0; i < m.rows(); ++i) {
    Eigen::RowVectorXd r = m.row(i).cast<double>();
    if (shift.size() == m.cols()) r -= shift;
    n(i) = r.squaredNorm();
  }
  return n;
}

}  // namespace

double direct_sqdist(const FeatureMatrix& x, int64_t i, const FeatureMatrix& y, int64_t j) {
  const float* a = x.row(i).data();
  const float* b = y.row(j).data();
  double s = 0.0;
  for (int64_t c = 0; c < x.cols(); ++c) {
    const double t = static_cast<double>(a[c]) - static_cast<double>(b[c]);
    s += t * t;
  }
  return s;
}

double SqdistBlock::direct(int64_t i, int64_t j) const {
  if (x == y && row0 + i == j) return 0.0;
  return direct_sqdist(*x, row0 + i, *y, j);
}

void for_each_sqdist_block(const FeatureMatrix& x, const FeatureMatrix& y,
                           const Eigen::RowVectorXd& shift, const PairwiseOptions& opt,
                           const SqdistFn& fn) {
  const bool same = &x == &y;
  // A float32 shift makes x - shift exact in float64 for float32 rows of similar magnitude.
  const Eigen::RowVectorXd s =
      shift.size() == x.cols() ? Eigen::RowVectorXd(shift.cast<float>().cast<double>()) : shift;
  const Eigen::VectorXd nx = centred_sq_norms(x, s);
  const Eigen::VectorXd ny = same ? nx : centred_sq_norms(y, s);
  const double ny_max = ny.size() > 0 ? ny.maxCoeff() : 0.0;
  // Dot products and norms over d terms err by at most ~d*u*|x||y| (u = eps/2) each; the bound on
  // |x|^2 + |y|^2 - 2 x.y is kept a factor of 2 above that sum.
  const double err_scale =
      2.0 * (static_cast<double>(x.cols()) + 8.0) * std::numeric_limits<double>::epsilon();
  for_each_gram_block(x, y, s, opt, [&](int thread, int64_t row0, DoubleTile& tile) {
    for (int64_t i = 0; i < tile.rows(); ++i) {
      const double ni = nx(row0 + i);
      double* row = tile.row(i).data();
      for (int64_t j = 0; j < tile.cols(); ++j) {
        row[j] = std::max(ni + ny(j) - 2.0 * row[j], 0.0);
      }
      if (same) row[row0 + i] = 0.0;
    }
    SqdistBlock block;
    block.thread = thread;
    block.row0 = row0;
    block.d = &tile;
    block.x = &x;
    block.y = &y;
    block.x_norms = &nx;
    block.y_norms = &ny;
    block.y_norm_max = ny_max;
    block.err_scale = err_scale;
    fn(block);
  });
}

}  // namespace vardp::eval
