// `vardp sample --run DIR`: the evaluation sample set of a training run (see sharded_samples.hpp).
#pragma once
#include <boost/program_options.hpp>

namespace vardp::app {

int sample_run(const boost::program_options::variables_map& vm);

}  // namespace vardp::app
