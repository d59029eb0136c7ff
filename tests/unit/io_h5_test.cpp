// The HDF5 layer: datasets, attributes, provenance, format checks, atomic files, time series.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_paths.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/io/timeseries.hpp"
#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {

TEST(Hdf5, DatasetsAndAttributesRoundTrip) {
  test::ScratchDir dir;
  std::string path = dir / "a.h5";
  {
    H5File f = H5File::create(path);
    std::vector<float> x{1, 2, 3, 4, 5, 6};
    h5_write<float>(f.id(), "g/sub/x", x, {2, 3});
    std::vector<int64_t> labels{7, 8, 9};
    h5_write<int64_t>(f.id(), "labels", labels, {3}, {4, {}});
    h5_write_string(f.id(), "note", "hello");
    h5_write_attr(f.id(), "s", std::string("text"));
    h5_write_attr(f.id(), "i", int64_t{42});
    h5_write_attr(f.id(), "d", 0.25);
    h5_write_attr(f.id(), "names", std::vector<std::string>{"a", "bb"});
    h5_write_attr(f.id(), "ints", std::vector<int64_t>{1, 2});
  }
  H5File f = H5File::open(path);
  std::vector<hsize_t> dims;
  auto x = h5_read<double>(f.id(), "g/sub/x", &dims);  // converted on read
  EXPECT_EQ(dims, (std::vector<hsize_t>{2, 3}));
  EXPECT_DOUBLE_EQ(x[5], 6.0);
  EXPECT_EQ(h5_read_rows<float>(f.id(), "g/sub/x", 1, 1), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(h5_read<int64_t>(f.id(), "labels"), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(h5_read_string(f.id(), "note"), "hello");
  EXPECT_EQ(h5_read_attr_string(f.id(), "s"), "text");
  EXPECT_EQ(h5_read_attr_int(f.id(), "i"), 42);
  EXPECT_DOUBLE_EQ(h5_read_attr_double(f.id(), "d"), 0.25);
  EXPECT_EQ(h5_read_attr_strings(f.id(), "names"), (std::vector<std::string>{"a", "bb"}));
  EXPECT_EQ(h5_read_attr_ints(f.id(), "ints"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(h5_exists(f.id(), "g/sub/x"));
  EXPECT_FALSE(h5_exists(f.id(), "g/nothing/x"));
  EXPECT_EQ(h5_list(f.id(), "g"), (std::vector<std::string>{"sub"}));
  EXPECT_THROW(h5_read<float>(f.id(), "missing"), Error);
  EXPECT_THROW(h5_read_rows<float>(f.id(), "g/sub/x", 1, 5), Error);
}

TEST(Hdf5, ProvenanceAndFormatChecks) {
  test::ScratchDir dir;
  std::string path = dir / "p.h5";
  setenv("SLURM_ARRAY_TASK_ID", "17", 1);
  {
    H5File f = H5File::create(path);
    write_provenance(f.id(), {"vardp.test", 2, "[train]\nsteps = 3\n", 4});
  }
  unsetenv("SLURM_ARRAY_TASK_ID");
  H5File f = H5File::open(path);
  EXPECT_EQ(h5_read_attr_string(f.id(), "format"), "vardp.test");
  EXPECT_EQ(h5_read_attr_int(f.id(), "format_version"), 2);
  EXPECT_EQ(h5_read_attr_int(f.id(), "world_size"), 4);
  EXPECT_EQ(h5_read_attr_string(f.id(), "config_toml"), "[train]\nsteps = 3\n");
  EXPECT_EQ(h5_read_attr_string(f.id(), "SLURM_ARRAY_TASK_ID"), "17");
  EXPECT_FALSE(h5_has_attr(f.id(), "SLURM_JOB_ID") && !std::getenv("SLURM_JOB_ID"));
  for (const char* a : {"vardp_version", "git_sha", "created_utc"}) EXPECT_TRUE(h5_has_attr(f.id(), a)) << a;
  EXPECT_EQ(check_format(f.id(), path, "vardp.test", 2), 2);
  try {
    check_format(f.id(), path, "vardp.test", 1);
    FAIL() << "newer version accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  try {
    check_format(f.id(), path, "vardp.checkpoint", 1);
    FAIL() << "wrong format accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vardp.checkpoint"), std::string::npos) << e.what();
  }
}

TEST(Hdf5, OpenErrorsNameThePath) {
  test::ScratchDir dir;
  try {
    H5File::open(dir / "none.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none.h5"), std::string::npos);
  }
}

TEST(AtomicFile, NothingUnderFinalNameUntilCommit) {
  test::ScratchDir dir;
  std::string path = dir / "out.h5";
  {
    AtomicH5File f(path);
    h5_write_attr(f.id(), "x", int64_t{1});
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(std::filesystem::exists(f.temp_path()));
    f.commit();
    EXPECT_FALSE(std::filesystem::exists(f.temp_path()));
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  std::string tmp;
  {
    AtomicH5File g(dir / "abandoned.h5");  // e.g. an exception before commit
    tmp = g.temp_path();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "abandoned.h5"));
  EXPECT_FALSE(std::filesystem::exists(tmp));
  write_text_atomic(dir / "latest", "checkpoint-10.h5\n");
  EXPECT_TRUE(std::filesystem::exists(dir / "latest"));
}

TEST(TimeSeries, AppendsAndReopens) {
  test::ScratchDir dir;
  std::string path = dir / "m.h5";
  {
    H5File f = H5File::create(path);
    TimeSeriesWriter w(f.id());
    for (int s = 0; s < 2500; ++s) w.append("loss", s, 1.0 / (s + 1));
    w.append("eps", 10, 0.5);
    w.flush();
  }
  {
    H5File f = H5File::open(path, H5Mode::read_write);
    TimeSeriesWriter w(f.id());
    w.append("loss", 2500, 9.0);  // continues after a resume
  }
  H5File f = H5File::open(path);
  auto steps = h5_read<int64_t>(f.id(), "metrics/loss/step");
  auto values = h5_read<double>(f.id(), "metrics/loss/value");
  ASSERT_EQ(steps.size(), 2501u);
  EXPECT_EQ(steps[2500], 2500);
  EXPECT_DOUBLE_EQ(values[2500], 9.0);
  EXPECT_DOUBLE_EQ(values[3], 0.25);
  EXPECT_EQ(h5_read<int64_t>(f.id(), "metrics/eps/step"), (std::vector<int64_t>{10}));
}

}  // namespace
}  // namespace vardp::io
