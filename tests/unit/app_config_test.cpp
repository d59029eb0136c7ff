// Config loading: typed values, unknown keys and wrong types named with file and line,
// --set overrides, sweeps.
#include <gtest/gtest.h>

#include <fstream>

#include "app/config_loader.hpp"
#include "app/sweep.hpp"
#include "test_paths.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

std::string write(const test::ScratchDir& dir, const std::string& name, const std::string& text) {
  std::string p = dir / name;
  std::ofstream(p) << text;
  return p;
}

std::string error_of(const ConfigSources& s) {
  try {
    load_config(s);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWithoutFile) {
  config::Config c = load_config({});
  EXPECT_EQ(c.adapt.method, "full");
  EXPECT_EQ(c.model.patch_nums.size(), 10u);
  EXPECT_FALSE(c.dp.noise_multiplier.has_value());
}

TEST(Config, ReadsTypedValues) {
  test::ScratchDir dir;
  std::string f = write(dir, "a.toml",
                        "[adapt]\nmethod = \"lora\"\nlora_rank = 8\nlora_targets = [\"attn\"]\n"
                        "[dp]\nenabled = true\ntarget_epsilon = 10\nmax_grad_norm = 0.1\n"
                        "[model]\npatch_nums = [1, 2, 4, 8]\n");
  config::Config c = load_config({f});
  EXPECT_EQ(c.adapt.method, "lora");
  EXPECT_EQ(c.adapt.lora_rank, 8);
  ASSERT_EQ(c.adapt.lora_targets.size(), 1u);
  EXPECT_TRUE(c.dp.enabled);
  ASSERT_TRUE(c.dp.target_epsilon.has_value());
  EXPECT_DOUBLE_EQ(*c.dp.target_epsilon, 10.0);  // integer accepted for a float key
  EXPECT_DOUBLE_EQ(c.dp.max_grad_norm, 0.1);
  EXPECT_EQ(c.model.patch_nums, (std::vector<int64_t>{1, 2, 4, 8}));
}

TEST(Config, MisspeltKeyNamesKeyFileAndLine) {
  test::ScratchDir dir;
  std::string f = write(dir, "bad.toml", "[train]\nlr = 0.1\nepohcs = 3\n");
  std::string e = error_of({f});
  EXPECT_NE(e.find("train.epohcs"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.toml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'epochs'"), std::string::npos) << e;
}

TEST(Config, UnknownTableIsAnError) {
  test::ScratchDir dir;
  std::string f = write(dir, "bad.toml", "\n[trian]\nlr = 0.1\n");
  std::string e = error_of({f});
  EXPECT_NE(e.find("'trian'"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.toml:2"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKeyFileAndLine) {
  test::ScratchDir dir;
  std::string f = write(dir, "bad.toml", "[train]\n\nsteps = \"ten\"\n");
  std::string e = error_of({f});
  EXPECT_NE(e.find("train.steps"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer, got a string"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.toml:3"), std::string::npos) << e;
  f = write(dir, "bad2.toml", "[model]\npatch_nums = [1, 2.5]\n");
  e = error_of({f});
  EXPECT_NE(e.find("model.patch_nums[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("bad2.toml:2"), std::string::npos) << e;
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
  test::ScratchDir dir;
  std::string f = write(dir, "syn.toml", "[train]\nlr = = 1\n");
  std::string e = error_of({f});
  EXPECT_NE(e.find("syn.toml:2"), std::string::npos) << e;
}

TEST(Config, SetOverridesFileAndReportsOrigin) {
  test::ScratchDir dir;
  std::string f = write(dir, "a.toml", "[train]\nlr = 0.1\nsteps = 5\n");
  ConfigSources s{f, {"train.lr=0.5", "data.train=/data/x.h5", "adapt.lora_targets=[\"mlp\", \"attn\"]"}};
  config::Config c = load_config(s);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.5);
  EXPECT_EQ(c.train.steps, 5);
  EXPECT_EQ(c.data.train, "/data/x.h5");  // bare word becomes a string
  EXPECT_EQ(c.adapt.lora_targets, (std::vector<std::string>{"mlp", "attn"}));
  // Later --set wins.
  s.sets.push_back("train.lr=0.25");
  EXPECT_DOUBLE_EQ(load_config(s).train.lr, 0.25);
  std::string e = error_of({f, {"train.steps=abc"}});
  EXPECT_NE(e.find("--set train.steps=abc"), std::string::npos) << e;
  e = error_of({f, {"train.stepz=3"}});
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_THROW(load_config({f, {"nodot=3"}}), UsageError);
}

TEST(Config, ValidationRejectsBadValues) {
  EXPECT_THROW(load_config({"", {"adapt.method=\"qlora\""}}), UsageError);
  EXPECT_THROW(load_config({"", {"dp.noise_multiplier=1.0", "dp.target_epsilon=3.0"}}), UsageError);
  EXPECT_THROW(load_config({"", {"model.patch_nums=[1, 3, 2]"}}), UsageError);
}

TEST(Config, ResolvedTomlRoundTrips) {
  ConfigSources s{"", {"train.lr=0.000123", "dp.target_epsilon=7.5", "data.train=\"a \\\"q\\\" b\""}};
  config::Config c = load_config(s);
  test::ScratchDir dir;
  std::string f = write(dir, "resolved.toml", to_toml(c));
  config::Config back = load_config({f});
  EXPECT_EQ(to_toml(back), to_toml(c));
  EXPECT_DOUBLE_EQ(back.train.lr, 0.000123);
  EXPECT_EQ(back.data.train, "a \"q\" b");
  EXPECT_FALSE(back.dp.noise_multiplier.has_value());
}

TEST(Sweep, EnumeratesLastAxisFastest) {
  test::ScratchDir dir;
  std::string f = write(dir, "s.toml",
                        "[[axis]]\nkey = \"dp.target_epsilon\"\nvalues = [1.0, 10.0, 100.0]\n"
                        "[[axis]]\nkey = \"dp.augmult\"\nvalues = [1, 32]\n");
  Sweep s = load_sweep(f);
  ASSERT_EQ(s.size(), 6);
  auto p = s.point(0);
  EXPECT_EQ(p[0].second, "1.0");
  EXPECT_EQ(p[1].second, "1");
  p = s.point(1);
  EXPECT_EQ(p[0].second, "1.0");
  EXPECT_EQ(p[1].second, "32");
  p = s.point(5);
  EXPECT_EQ(p[0].second, "100.0");
  EXPECT_EQ(p[1].second, "32");
  EXPECT_THROW(s.point(6), UsageError);
  EXPECT_EQ(s.label(3), "0003-target_epsilon=10.0-augmult=32");
}

TEST(Sweep, PointOverridesConfigAndSetWinsOverSweep) {
  test::ScratchDir dir;
  std::string sweep = write(dir, "s.toml", "[[axis]]\nkey = \"dp.target_epsilon\"\nvalues = [1, 10, 20]\n");
  std::string cfg = write(dir, "c.toml", "[dp]\nenabled = true\ntarget_epsilon = 3.0\n[output]\ndir = \"runs/x\"\n");
  config::Config c = load_config({cfg, {}, sweep, 2});
  EXPECT_DOUBLE_EQ(*c.dp.target_epsilon, 20.0);
  EXPECT_EQ(c.output.dir, "runs/x/0002-target_epsilon=20");  // one directory per point
  c = load_config({cfg, {"dp.target_epsilon=50"}, sweep, 2});
  EXPECT_DOUBLE_EQ(*c.dp.target_epsilon, 50.0);
  EXPECT_THROW(load_config({cfg, {}, sweep, 3}), UsageError);
}

TEST(Sweep, RejectsMalformedFiles) {
  test::ScratchDir dir;
  EXPECT_THROW(load_sweep(write(dir, "a.toml", "x = 1\n")), UsageError);
  EXPECT_THROW(load_sweep(write(dir, "b.toml", "[[axis]]\nkey = \"a.b\"\nvalues = []\n")), UsageError);
  EXPECT_THROW(load_sweep(write(dir, "c.toml", "[[axis]]\nkey = \"a.b\"\nvals = [1]\n")), UsageError);
}

}  // namespace
}  // namespace vardp::app
