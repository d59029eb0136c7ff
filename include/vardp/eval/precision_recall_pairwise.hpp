// Blocked pairwise products of two feature sets with bounded memory: the k-NN metrics
// (precision/recall, density/coverage) and KID all reduce over an N_x x N_y matrix that is never
// held whole. Rows of x are processed in blocks of `block_rows`, one block per worker thread at a
// time, so the working memory is about threads * block_rows * N_y doubles plus small tiles.
#pragma once
#include <Eigen/Core>

#include <cstdint>
#include <functional>

#include "vardp/eval/stats.hpp"

namespace vardp::eval {

struct PairwiseOptions {
  int64_t block_rows = 256;   // rows of x per block (the callback's tile height)
  int64_t block_cols = 2048;  // rows of y converted to float64 at a time inside a block
  int threads = 0;            // worker threads; 0: the CPUs in this process's affinity mask
};

// Row-major float64 tile handed to the callbacks.
using DoubleTile = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// fn(thread, row0, tile): tile(i, j) = (x_{row0+i} - shift) . (y_j - shift) in float64 (GEMM on
// float64 copies of the float32 rows). Called concurrently from `threads` workers, each with its
// own `thread` index in [0, threads); distinct calls cover disjoint row blocks. An empty shift
// means zero.
using TileFn = std::function<void(int thread, int64_t row0, DoubleTile& tile)>;
void for_each_gram_block(const FeatureMatrix& x, const FeatureMatrix& y,
                         const Eigen::RowVectorXd& shift, const PairwiseOptions& opt,
                         const TileFn& fn);

// A block of squared Euclidean distances d(i, j) = |x_{row0+i} - y_j|^2, computed by the
// expansion |x|^2 + |y|^2 - 2 x.y on data centred on `shift` (rounded to float32, so that the
// centring of float32 rows is exact) and clamped at 0. `bound(i, j)` bounds the expansion's
// rounding error; where a decision falls within it, `direct(i, j)` recomputes the distance from
// the coordinate differences (exact ties, e.g. on lattices, stay ties). When x and y are the same
// object the diagonal is exactly 0.
struct SqdistBlock {
  int thread = 0;
  int64_t row0 = 0;
  DoubleTile* d = nullptr;
  const FeatureMatrix* x = nullptr;
  const FeatureMatrix* y = nullptr;
  const Eigen::VectorXd* x_norms = nullptr;  // squared norms of the centred rows
  const Eigen::VectorXd* y_norms = nullptr;
  double y_norm_max = 0.0;
  double err_scale = 0.0;

  double bound(int64_t i, int64_t j) const { return err_scale * ((*x_norms)(row0 + i) + (*y_norms)(j)); }
  // Bound valid for every j of row i.
  double row_bound(int64_t i) const { return err_scale * ((*x_norms)(row0 + i) + y_norm_max); }
  double direct(int64_t i, int64_t j) const;
};
using SqdistFn = std::function<void(SqdistBlock& block)>;
void for_each_sqdist_block(const FeatureMatrix& x, const FeatureMatrix& y,
                           const Eigen::RowVectorXd& shift, const PairwiseOptions& opt,
                           const SqdistFn& fn);

// |x_i - y_j|^2 from the float64 coordinate differences (float32 differences are exact in float64).
double direct_sqdist(const FeatureMatrix& x, int64_t i, const FeatureMatrix& y, int64_t j);

// Number of workers the options resolve to (at least 1, at most the number of row blocks).
int resolve_threads(const PairwiseOptions& opt, int64_t rows);

}  // namespace vardp::eval
