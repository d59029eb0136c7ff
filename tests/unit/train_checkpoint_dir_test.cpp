#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "test_paths.hpp"
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
