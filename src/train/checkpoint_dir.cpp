#include "vardp/train/checkpoint_dir.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "vardp/io/atomic_file.hpp"
#include "vardp/util/error.hpp"

namespace fs = std::filesystem;

namespace vardp::train {

CheckpointDir::CheckpointDir(std::string run_dir, int64_t keep_last)
    : run_dir_(std::move(run_dir)), keep_last_(std::max<int64_t>(1, keep_last)) {
  std::error_code ec;
  fs::create_directories(run_dir_, ec);
  if (ec) throw Error("cannot create run directory: " + ec.message(), run_dir_);
}

std::string step_file(const std::string& stem, int64_t step) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%08lld.h5", static_cast<long long>(step));
  return stem + suffix;
}

std::string CheckpointDir::path_for_step(int64_t step) const {
  return step_file((fs::path(run_dir_) / "checkpoint").string(), step);
}

namespace {
// The step of a checkpoint file name as path_for_step writes it (checkpoint-<8 or more digits>.h5).
std::optional<int64_t> checkpoint_step(const std::string& name) {
  static const std::regex pattern("checkpoint-([0-9]{8,})\\.h5");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  return std::stoll(m[1]);
}
}  // namespace

std::vector<int64_t> CheckpointDir::steps() const {
  std::vector<int64_t> out;
  for (const auto& e : fs::directory_iterator(run_dir_))
    if (auto step = checkpoint_step(e.path().filename().string())) out.push_back(*step);
  std::sort(out.begin(), out.end());
  return out;
}

void CheckpointDir::mark_latest(int64_t step) {
  std::string path = path_for_step(step);
  if (!fs::exists(path)) throw Error("checkpoint to mark does not exist", path);
  io::write_text_atomic((fs::path(run_dir_) / "latest").string(), fs::path(path).filename().string() + "\n");
  auto all = steps();
  for (size_t i = 0; i + static_cast<size_t>(keep_last_) < all.size(); ++i) {
    if (all[i] == step) continue;
    std::error_code ec;
    fs::remove(path_for_step(all[i]), ec);
  }
}

std::optional<std::string> CheckpointDir::latest() const {
  const fs::path marker = fs::path(run_dir_) / "latest";
  std::error_code ec;
  if (!fs::exists(marker, ec)) return std::nullopt;
  // A marker that exists but says nothing usable is refused, never read as "fresh start": that
  // would restart from step 0 over the run's checkpoints (and, for DP, replay its steps).
  std::ifstream in(marker);
  std::string name;
  if (!in || !std::getline(in, name))
    throw Error("`latest` is empty or unreadable; it must name the newest complete checkpoint (e.g. " +
                    fs::path(path_for_step(0)).filename().string() + "); fix or remove it",
                marker.string());
  if (!checkpoint_step(name))
    throw Error("`latest` must hold a checkpoint file name of this directory (checkpoint-<8 digits>.h5), not '" +
                    name + "'",
                marker.string());
  std::string path = (fs::path(run_dir_) / name).string();
  if (!fs::exists(path)) throw Error("`latest` names " + name + ", which is missing", run_dir_);
  return path;
}

std::vector<std::string> CheckpointDir::remove_orphans() {
  int64_t committed = -1;  // without `latest`, no checkpoint was ever committed
  if (auto path = latest()) committed = *checkpoint_step(fs::path(*path).filename().string());
  std::vector<std::string> removed;
  for (int64_t step : steps()) {
    if (step <= committed) continue;
    const std::string path = path_for_step(step);
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) throw Error("cannot remove an uncommitted checkpoint: " + ec.message(), path);
    removed.push_back(path);
  }
  return removed;
}

void CheckpointDir::mark_done(const std::string& summary) {
  io::write_text_atomic((fs::path(run_dir_) / "DONE").string(), summary);
}

bool CheckpointDir::done() const { return fs::exists(fs::path(run_dir_) / "DONE"); }

}  // namespace vardp::train
