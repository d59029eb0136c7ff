// Density and coverage (Naeem et al. 2020, clovaai/generative-evaluation-prdc), on the same k-NN
// balls as improved precision/recall:
//   density  = 1/(k N_fake) * sum over fake samples of the number of real balls containing them
//   coverage = share of real samples whose ball contains at least one fake sample, i.e. whose
//              nearest fake sample lies within the real sample's own radius.
// prdc compares with `<`; ManifoldOptions::membership selects `<` or `<=` for all four metrics.
#pragma once
#include <vector>

#include "vardp/eval/precision_recall.hpp"

namespace vardp::eval {

struct DensityCoverage {
  int k = 0;
  double density = 0.0;
  double coverage = 0.0;
};
std::vector<DensityCoverage> density_coverage(const ManifoldCounts& counts);

// All four metrics per k from one pass over the distances (prdc's compute_prdc, several k).
struct Prdc {
  int k = 0;
  double precision = 0.0;
  double recall = 0.0;
  double density = 0.0;
  double coverage = 0.0;
};
std::vector<Prdc> prdc_from_counts(const ManifoldCounts& counts);
std::vector<Prdc> compute_prdc(const FeatureMatrix& real, const FeatureMatrix& fake,
                               const ManifoldOptions& opt = {});

}  // namespace vardp::eval
