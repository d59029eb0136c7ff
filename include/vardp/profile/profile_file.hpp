// HDF5 output of FLOP profiles: the `vardp profile` file (format "vardp.profile", version 1) and
// the module table that the trainer's flops.h5 shares with it. Layouts: docs/formats/profile.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/profile/training_flops.hpp"

namespace vardp::profile {

inline constexpr const char* kProfileFormat = "vardp.profile";

// <group>/instances int64 (n); <group>/forward_flops, backward_input_flops, backward_weight_flops
// float64 (n), per example-view; <group>/dp_extra_flops, optimizer_flops float64 (n), per step;
// row names in the attribute <group>@names (string[]).
void write_module_table(hid_t loc, const std::string& group, const std::vector<ModuleFlops>& rows);

// Scalars <group>/rows, examples, tokenize_flops, forward_flops, backward_flops, total_flops,
// dp_extra_flops, dp_extra_matmul_flops, optimizer_flops, executed_flops (float64).
void write_step_totals(hid_t loc, const std::string& group, const StepFlops& f);

// What `vardp profile` computed for one configuration.
struct RunProfile {
  StepFlops step;  // one step of the planned size (DP: the expected lot q N, rounded)
  StepFlops run;   // all planned steps
  int64_t steps = 0;
  std::map<std::string, int64_t> attrs_int;
  std::map<std::string, double> attrs_double;
  std::map<std::string, std::string> attrs_string;
};

void write_profile(const std::string& path, const io::Provenance& provenance, const TrainingFlopModel& model,
                   const RunProfile& profile);

}  // namespace vardp::profile
