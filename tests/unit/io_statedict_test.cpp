// StateDict, vardp's HDF5 state-dict format (round trips, h5py interoperability, rejection of
// inconsistent files), strict key/shape checks and the `vardp convert` command.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/state_dict.hpp"

namespace vardp::test {
namespace {

using io::StateDict;

StateDict all_dtypes() {
  torch::manual_seed(5);
  StateDict sd;
  sd.insert("blocks.0.attn.mat_qkv.weight", torch::randn({6, 4}));
  sd.insert("half", torch::randn({3, 2}).to(torch::kFloat16));
  sd.insert("bf16", torch::randn({5}).to(torch::kBFloat16));
  sd.insert("f64", torch::randn({2, 2, 2}, torch::kFloat64));
  sd.insert("lvl_1L", torch::arange(10, torch::kInt64).view({1, 10}));
  sd.insert("i32", torch::tensor({-5, 7}, torch::kInt32));
  sd.insert("i16", torch::tensor({-300, 2}, torch::kInt16));
  sd.insert("i8", torch::tensor({-128, 127}, torch::kInt8));
  sd.insert("u8", torch::tensor({0, 255}, torch::kUInt8));
  sd.insert("mask", torch::tensor({true, false, true}));
  sd.insert("scalar", torch::tensor(2.5));
  sd.insert("empty", torch::zeros({0, 4}));
  sd.insert("transposed", torch::randn({3, 5}).t());  // saved contiguous
  return sd;
}

TEST(IoStateDict, OrderedMapSemantics) {
  StateDict sd;
  sd.insert("b", torch::ones({2}));
  sd.insert("a", torch::ones({3, 2}));
  sd.insert("b", torch::zeros({4}));  // replaced in place
  EXPECT_EQ(sd.keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(sd.size(), 2u);
  EXPECT_TRUE(sd.contains("a"));
  EXPECT_FALSE(sd.contains("c"));
  EXPECT_EQ(sd.at("b").numel(), 4);
  EXPECT_EQ(sd.num_elements(), 10);
  EXPECT_EQ(sd.num_bytes(), 40);
  expect_error([&] { sd.at("missing.key"); }, {"missing.key"});
}

TEST(IoStateDict, Hdf5RoundTripKeepsDtypesShapesOrderValues) {
  ScratchDir dir;
  const StateDict sd = all_dtypes();
  io::Provenance p;
  p.config_toml = "[model]\n";
  io::save_state_dict_h5(sd, dir / "sd.h5", p);
  EXPECT_EQ(io::detect_checkpoint_format(dir / "sd.h5"), io::CheckpointFormat::hdf5);
  const StateDict back = io::load_state_dict(dir / "sd.h5");
  StateDict want;
  for (const auto& k : sd.keys()) want.insert(k, sd.at(k).contiguous());
  expect_same(back, want);

  io::H5File f = io::H5File::open(dir / "sd.h5");
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "format"), "vardp.state_dict");
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "format_version"), 1);
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "num_tensors"), static_cast<int64_t>(sd.size()));
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "config_toml"), "[model]\n");
  // bfloat16 keeps its bits as uint16; the value is readable by anyone who knows the layout.
  std::vector<hsize_t> dims;
  const auto bits = io::h5_read<uint16_t>(f.id(), "tensors/bf16", &dims);
  ASSERT_EQ(bits.size(), 5u);
  const auto bf = sd.at("bf16");
  EXPECT_EQ(bits[3], *reinterpret_cast<const uint16_t*>(bf.data_ptr<at::BFloat16>() + 3));
}

// The file is usable from Python: h5py sees float16 as numpy.float16 and the documented layout.
TEST(IoStateDict, Hdf5IsReadableWithH5py) {
  ScratchDir dir;
  const StateDict sd = all_dtypes();
  io::save_state_dict_h5(sd, dir / "sd.h5", {});
  const std::string script =
      "import h5py, numpy as np, sys\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "assert f.attrs['format'] == 'vardp.state_dict', f.attrs['format']\n"
      "keys = [k.decode() if isinstance(k, bytes) else k for k in f['tensors'].attrs['keys']]\n"
      "assert keys[0] == 'blocks.0.attn.mat_qkv.weight' and len(keys) == 13, keys\n"
      "h = f['tensors/half']\n"
      "assert h.dtype == np.float16 and h.attrs['dtype'] == 'float16', h.dtype\n"
      "assert f['tensors/bf16'].attrs['dtype'] == 'bfloat16'\n"
      "assert f['tensors/scalar'].shape == () and f['tensors/empty'].shape == (0, 4)\n"
      "assert f['tensors/lvl_1L'][0, 9] == 9\n"
      "print(float(h[2, 1]))\n";
  write_bytes(dir / "check.py", script);
  const std::string cmd = std::string(kPython) + " " + shell_quote(dir / "check.py") + " " +
                          shell_quote(dir / "sd.h5") + " > " + shell_quote(dir / "out.txt") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_bytes(dir / "out.txt");
  const double v = std::stod(read_bytes(dir / "out.txt"));
  EXPECT_EQ(v, static_cast<double>(sd.at("half")[2][1].item<float>()));
}

TEST(IoStateDict, Hdf5InconsistentFilesAreRejected) {
  ScratchDir dir;
  StateDict sd;
  sd.insert("a", torch::ones({2}));
  sd.insert("b", torch::ones({3}));
  const std::string path = dir / "sd.h5";
  auto fresh = [&] { io::save_state_dict_h5(sd, path, {}); };

  fresh();
  {  // a listed key whose dataset is gone
    io::H5File f = io::H5File::open(path, io::H5Mode::read_write);
    ASSERT_GE(H5Ldelete(f.id(), "tensors/b", H5P_DEFAULT), 0);
  }
  expect_error([&] { io::load_state_dict(path); }, {"lists 'b' but it has no dataset"});

  fresh();
  {  // an extra dataset not in the key list
    io::H5File f = io::H5File::open(path, io::H5Mode::read_write);
    io::h5_write<float>(f.id(), "tensors/c", std::vector<float>{1.f}, {1});
  }
  expect_error([&] { io::load_state_dict(path); }, {"/tensors/c is not listed"});

  fresh();
  {  // dtype attribute that lies about the stored type
    io::H5File f = io::H5File::open(path, io::H5Mode::read_write);
    io::H5Handle d(H5Dopen2(f.id(), "tensors/a", H5P_DEFAULT));
    io::h5_write_attr(d.id(), "dtype", std::string("int64"));
  }
  expect_error([&] { io::load_state_dict(path); }, {"/tensors/a", "does not match its dtype"});

  fresh();
  {
    io::H5File f = io::H5File::open(path, io::H5Mode::read_write);
    io::H5Handle d(H5Dopen2(f.id(), "tensors/a", H5P_DEFAULT));
    io::h5_write_attr(d.id(), "dtype", std::string("complex64"));
  }
  expect_error([&] { io::load_state_dict(path); }, {"unknown dtype 'complex64'"});

  {  // another vardp format
    io::AtomicH5File f(dir / "metrics.h5");
    io::Provenance p;
    p.format = "vardp.metrics";
    io::write_provenance(f.id(), p);
    f.commit();
  }
  expect_error([&] { io::load_state_dict(dir / "metrics.h5"); }, {"'vardp.metrics'", "vardp.state_dict"});
  {  // a newer version of this format
    io::AtomicH5File f(dir / "future.h5");
    io::Provenance p;
    p.format = "vardp.state_dict";
    p.format_version = 2;
    io::write_provenance(f.id(), p);
    f.commit();
  }
  expect_error([&] { io::load_state_dict(dir / "future.h5"); }, {"version 2"});
}

TEST(IoStateDict, SaveRejectsUnstorableInputWithoutLeavingAFile) {
  ScratchDir dir;
  StateDict bad_key;
  bad_key.insert("a/b", torch::ones({1}));
  expect_error([&] { io::save_state_dict_h5(bad_key, dir / "x.h5", {}); }, {"'a/b'"});
  StateDict bad_type;
  bad_type.insert("c", torch::ones({2}, torch::kComplexFloat));
  expect_error([&] { io::save_state_dict_h5(bad_type, dir / "x.h5", {}); }, {"cannot be stored"});
  EXPECT_FALSE(std::filesystem::exists(dir / "x.h5"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()),
                          std::filesystem::directory_iterator()), 0);
}

TEST(IoStateDict, StrictCheckListsEveryProblemByName) {
  StateDict sd;
  sd.insert("pos_start", torch::zeros({1, 1, 8}));
  sd.insert("head.weight", torch::zeros({4, 8}));
  sd.insert("extra.bias", torch::zeros({2}));
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"pos_start", {1, 1, 8}}, {"head.weight", {8, 4}}, {"head.bias", {4}}, {"lvl_1L", {1, 10}}};
  expect_error([&] { io::check_keys_and_shapes(sd, expected, "VAR checkpoint m.pth"); },
               {"VAR checkpoint m.pth", "2 missing key(s): head.bias, lvl_1L",
                "1 unexpected key(s): extra.bias",
                "head.weight (expected [8, 4], found [4, 8])"});
  StateDict good;
  for (const auto& [k, s] : expected) good.insert(k, torch::zeros(s));
  EXPECT_NO_THROW(io::check_keys_and_shapes(good, expected, "ok"));
}

// `vardp convert` end to end through the built binary (unit_io does not link the CLI); CTest
// passes VARDP_BIN.
TEST(IoStateDict, ConvertCommandWritesAnEquivalentHdf5File) {
  const char* bin = std::getenv("VARDP_BIN");
  if (!bin || !std::filesystem::exists(bin)) GTEST_SKIP() << "VARDP_BIN (the vardp binary) not set or not built";
  ScratchDir dir;
  const std::string in = fixture("var_official_tiny/var_fixture.pth");
  auto run = [&](const std::vector<std::string>& args) {
    std::string cmd = shell_quote(bin) + " convert";
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " > " + shell_quote(dir / "out.txt") + " 2>&1";
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(run({in, dir / "var.h5"}), 0) << read_bytes(dir / "out.txt");
  EXPECT_NE(read_bytes(dir / "out.txt").find("tensors"), std::string::npos);
  expect_same(io::load_state_dict(dir / "var.h5"), io::load_state_dict(in));
  EXPECT_EQ(run({in, dir / "var.h5"}), 2);  // exists: usage error without --force
  EXPECT_NE(read_bytes(dir / "out.txt").find("--force"), std::string::npos);
  EXPECT_EQ(run({in, dir / "var.h5", "--force"}), 0);
  EXPECT_EQ(run({dir / "var.h5", dir / "again.h5"}), 0);  // HDF5 -> HDF5
  expect_same(io::load_state_dict(dir / "again.h5"), io::load_state_dict(in));
  EXPECT_EQ(run({in}), 2);  // OUT missing
  EXPECT_EQ(run({dir / "missing.pth", dir / "x.h5"}), 1);
  EXPECT_NE(read_bytes(dir / "out.txt").find("missing.pth"), std::string::npos);
}

}  // namespace
}  // namespace vardp::test
