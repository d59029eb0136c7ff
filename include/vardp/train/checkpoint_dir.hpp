// The checkpoint files of a run directory: checkpoint-<step>.h5 written atomically, then the
// `latest` marker (invariant 7: the marker is written last, so it never names a partial file),
// and only the newest keep_last checkpoints kept.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vardp::train {

// The per-step file names of a run directory: `<stem>-<step, 8 digits>.h5`, e.g.
// DIR/checkpoint-00000062.h5, DIR/samples-00000062.h5, DIR/eval-00000062.h5.
std::string step_file(const std::string& stem, int64_t step);

class CheckpointDir {
 public:
  CheckpointDir(std::string run_dir, int64_t keep_last);
  const std::string& run_dir() const { return run_dir_; }
  std::string path_for_step(int64_t step) const;  // <run_dir>/checkpoint-<step 8 digits>.h5
  // Called after checkpoint `step` was committed: writes `latest`, removes older ones.
  void mark_latest(int64_t step);
  // The checkpoint `latest` names, if any (and it exists).
  std::optional<std::string> latest() const;
  // Steps of the checkpoints present, ascending.
  std::vector<int64_t> steps() const;
  // Removes every checkpoint newer than the one `latest` names (all of them without `latest`):
  // complete files whose marker was never written (killed in between). A resume replays their
  // steps, so keeping them would leave a second version of a step on disk (invariant 4).
  // Returns the removed paths.
  std::vector<std::string> remove_orphans();
  // A DONE marker: the run finished; `--resume auto` then exits 0 at once.
  void mark_done(const std::string& summary);
  bool done() const;

 private:
  std::string run_dir_;
  int64_t keep_last_;
};

}  // namespace vardp::train
