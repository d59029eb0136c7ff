#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "test_paths.hpp"
#include "expect_error.hpp"
#include "vardp/train/checkpoint_dir.hpp"
#include "vardp/train/stop_request.hpp"

namespace vardp::train {
namespace {

void touch(const std::string& p) { std::ofstream(p) << "x"; }

TEST(CheckpointDir, LatestMarkerAndKeepLast) {
  test::ScratchDir dir;
  CheckpointDir ck(dir / "run", 2);
  EXPECT_FALSE(ck.latest().has_value());
  for (int64_t s : {10, 20, 30}) {
    touch(ck.path_for_step(s));
    ck.mark_latest(s);
  }
  EXPECT_EQ(ck.steps(), (std::vector<int64_t>{20, 30}));
  EXPECT_EQ(*ck.latest(), ck.path_for_step(30));
  EXPECT_NE(ck.path_for_step(30).find("checkpoint-00000030.h5"), std::string::npos);
  // A checkpoint that was never committed cannot be marked.
  EXPECT_THROW(ck.mark_latest(40), std::exception);
  EXPECT_FALSE(ck.done());
  ck.mark_done("finished\n");
  EXPECT_TRUE(ck.done());
}

TEST(CheckpointDir, LatestNamingAMissingFileIsAnError) {
  test::ScratchDir dir;
  CheckpointDir ck(dir / "run", 3);
  touch(ck.path_for_step(5));
  ck.mark_latest(5);
  std::filesystem::remove(ck.path_for_step(5));
  EXPECT_THROW(ck.latest(), std::exception);
}

TEST(CheckpointDir, BrokenLatestIsRefusedNeverReadAsAFreshStart) {
  // An empty or foreign `latest` would otherwise restart the run from step 0 over its
  // checkpoints (and remove_orphans would then see every checkpoint as uncommitted).
  test::ScratchDir dir;
  CheckpointDir ck(dir / "run", 3);
  touch(ck.path_for_step(5));
  ck.mark_latest(5);
  const std::string marker = dir / "run/latest";
  for (const std::string& text : {std::string(), std::string("\n"), std::string("../other/checkpoint-00000005.h5\n"),
                                   ck.path_for_step(5) + "\n", std::string("DONE\n")}) {
    std::ofstream(marker, std::ios::trunc) << text;
    test::expect_error_containing([&] { ck.latest(); }, "latest");
    test::expect_error_containing([&] { ck.remove_orphans(); }, "latest");
    EXPECT_TRUE(std::filesystem::exists(ck.path_for_step(5))) << "a checkpoint was removed for '" << text << "'";
  }
}

TEST(CheckpointDir, RemoveOrphansKeepsCommittedCheckpointsOnly) {
  test::ScratchDir dir;
  CheckpointDir ck(dir / "run", 5);
  for (int64_t s : {2, 4}) {
    touch(ck.path_for_step(s));
    ck.mark_latest(s);
  }
  touch(ck.path_for_step(6));  // written, killed before its marker
  EXPECT_EQ(ck.remove_orphans(), std::vector<std::string>{ck.path_for_step(6)});
  EXPECT_EQ(ck.steps(), (std::vector<int64_t>{2, 4}));
  // Without any marker every checkpoint is uncommitted (the marker follows each checkpoint).
  test::ScratchDir fresh;
  CheckpointDir none(fresh / "run", 5);
  touch(none.path_for_step(2));
  EXPECT_EQ(none.remove_orphans().size(), 1u);
  EXPECT_TRUE(none.steps().empty());
}

TEST(StopPolicy, SignalBecomesAStopRequest) {
  auto comm = dist::make_single_comm();
  install_stop_signal_handlers();
  clear_stop_signal();
  StopPolicy policy(0.0);
  EXPECT_FALSE(policy.should_stop(*comm, 0.1));
  std::raise(SIGUSR1);
  EXPECT_TRUE(policy.should_stop(*comm, 0.1));
  EXPECT_EQ(policy.reason(), "SIGUSR1");
  clear_stop_signal();
  std::raise(SIGTERM);
  EXPECT_TRUE(policy.should_stop(*comm, 0.1));
  EXPECT_EQ(policy.reason(), "SIGTERM");
  clear_stop_signal();
}

TEST(StopPolicy, WallTimeStopsBeforeTheLimit) {
  auto comm = dist::make_single_comm();
  clear_stop_signal();
  StopPolicy policy(20.0 / 3600.0);  // 20 s budget, 30 s safety margin: stop at once
  EXPECT_TRUE(policy.should_stop(*comm, 0.01));
  EXPECT_EQ(policy.reason(), "wall time");
  StopPolicy generous(10.0);
  EXPECT_FALSE(generous.should_stop(*comm, 0.01));
}

}  // namespace
}  // namespace vardp::train
