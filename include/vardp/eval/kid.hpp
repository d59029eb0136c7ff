// Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD
// with the polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, by default gamma = 1/d,
// coef0 = 1, degree = 3 (as in the paper and torch-fidelity). vardp evaluates the U-statistic
// over the whole sets (no random subsets), which has the same expectation as the subset average
// that torch-fidelity reports and no sampling noise of its own.
#pragma once
#include <cstdint>

#include "vardp/eval/precision_recall_pairwise.hpp"
#include "vardp/eval/stats.hpp"

namespace vardp::eval {

struct KidOptions {
  int degree = 3;
  double gamma = 0.0;  // <= 0: 1 / d
  double coef0 = 1.0;
  PairwiseOptions pairwise;
};

struct KidResult {
  double kid = 0.0;       // mean k(real, real') + mean k(fake, fake') - 2 mean k(real, fake)
  double mean_k_real = 0.0;   // off-diagonal mean over real pairs
  double mean_k_fake = 0.0;   // off-diagonal mean over fake pairs
  double mean_k_cross = 0.0;  // mean over all (real, fake) pairs
};

KidResult kernel_inception_distance(const FeatureMatrix& real, const FeatureMatrix& fake,
                                    const KidOptions& opt = {});

}  // namespace vardp::eval
