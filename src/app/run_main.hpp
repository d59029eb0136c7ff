#pragma once
#include <string>
#include <vector>

namespace vardp::app {
// The whole CLI: dispatches to a command and turns exceptions into exit codes. An error every
// rank sees (CollectiveError, usage errors before MPI starts) ends the job collectively; any
// other error on a rank of a multi-rank job prints "[rank N] error: ..." and aborts the job.
int run_main(int argc, char** argv);
}  // namespace vardp::app
