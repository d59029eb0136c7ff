// Reading torch.save files: the official-code fixtures, every dtype, views, shared storages,
// plain dicts, nn.Parameter values, pickle protocol 4, torch-2.x-style and big-endian archives.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/io/pth.hpp"
#include "vardp/io/state_dict.hpp"

namespace vardp::test {
namespace {

using io::PthReader;
using io::StateDict;

std::string tiny(const std::string& file) { return fixture("var_official_tiny/" + file); }

// The fixture files: keys in file order, shapes and dtypes exactly as the official code's
// config.json records them.
void check_against_config(const std::string& pth, const std::string& which) {
  std::ifstream in(tiny("config.json"));
  ASSERT_TRUE(in) << "missing config.json";
  const auto config = nlohmann::ordered_json::parse(in);
  const auto& expected = config.at("state_dict_keys").at(which);

  PthReader rd(pth);
  EXPECT_TRUE(rd.pickled().ordered);
  EXPECT_TRUE(rd.pickled().has_metadata);
  EXPECT_EQ(rd.pickled().protocol, 2);
  EXPECT_EQ(rd.prefix(), which + "_fixture");
  EXPECT_EQ(rd.version(), 3);
  ASSERT_EQ(rd.tensors().size(), expected.size());

  const StateDict sd = io::load_state_dict(pth);
  ASSERT_EQ(sd.size(), expected.size());
  size_t k = 0;
  for (const auto& [key, spec] : expected.items()) {
    EXPECT_EQ(sd.keys()[k], key) << "position " << k;
    EXPECT_EQ(rd.tensors()[k].first, key);
    const auto& t = sd.at(key);
    const auto shape = spec.at("shape").get<std::vector<int64_t>>();
    EXPECT_EQ(std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), shape) << key;
    EXPECT_EQ(io::dtype_name(io::from_scalar_type(t.scalar_type())), spec.at("dtype").get<std::string>())
        << key;
    EXPECT_TRUE(t.is_contiguous()) << key;
    EXPECT_TRUE(t.device().is_cpu()) << key;
    ++k;
  }
}

TEST(IoPthFixture, VarKeysShapesDtypesMatchOfficialConfig) {
  check_against_config(tiny("var_fixture.pth"), "var");
}

TEST(IoPthFixture, VaeKeysShapesDtypesMatchOfficialConfig) {
  check_against_config(tiny("vae_fixture.pth"), "vae");
}

// Every tensor bit-identical to what torch.load gives (dumped by Python at test time).
TEST(IoPthFixture, ValuesMatchTorchLoad) {
  ScratchDir dir;
  for (const std::string which : {"var", "vae"}) {
    const std::string pth = tiny(which + "_fixture.pth");
    const std::string ref = dir / (which + "_ref.h5");
    ASSERT_TRUE(run_python("make_pth_reference.py", {pth, ref}));
    const StateDict got = io::load_state_dict(pth);
    expect_same(got, io::load_state_dict(ref));
    // Spot values that have a known meaning in VAR: lvl_1L is the scale index of each token.
    if (which == "var") {
      const auto lvl = got.at("lvl_1L");
      EXPECT_EQ(lvl.scalar_type(), torch::kInt64);
      EXPECT_EQ(lvl[0][0].item<int64_t>(), 0);
      EXPECT_EQ(lvl[0][54].item<int64_t>(), 4);  // patch nums 1..5: 55 tokens, last at scale 4
    }
  }
}

class IoPthCases : public ::testing::Test {
 protected:
  // Generates NAME.pth + NAME_ref.h5 and checks the loader against the reference.
  StateDict load_and_compare(const std::string& name) {
    EXPECT_TRUE(make_cases(dir_.str(), {name}));
    const StateDict got = io::load_state_dict(dir_ / (name + ".pth"));
    const StateDict want = io::load_state_dict(dir_ / (name + "_ref.h5"));
    expect_same(got, want);
    return got;
  }
  ScratchDir dir_;
};

TEST_F(IoPthCases, AllDtypes) {
  const StateDict sd = load_and_compare("dtypes");
  EXPECT_EQ(sd.at("f16").scalar_type(), torch::kFloat16);
  EXPECT_EQ(sd.at("bf16").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(sd.at("f64").scalar_type(), torch::kFloat64);
  EXPECT_EQ(sd.at("i64").scalar_type(), torch::kInt64);
  EXPECT_EQ(sd.at("i64")[1][2].item<int64_t>(), int64_t{2} * 1000000007);
  EXPECT_EQ(sd.at("i32")[2].item<int32_t>(), 2147483647);
  EXPECT_EQ(sd.at("u8")[1].item<uint8_t>(), 255);
  EXPECT_EQ(sd.at("bool").scalar_type(), torch::kBool);
  EXPECT_EQ(sd.at("scalar").dim(), 0);
  EXPECT_EQ(sd.at("scalar").item<float>(), 3.25f);
  EXPECT_EQ(sd.at("empty").sizes(), torch::IntArrayRef({0, 3}));
  EXPECT_EQ(sd.num_elements(), 12 + 5 + 6 + 4 + 6 + 3 + 2 + 3 + 3 + 4 + 1 + 0);
}

TEST_F(IoPthCases, NonContiguousViewsAndSharedStorages) {
  const StateDict sd = load_and_compare("views");
  EXPECT_TRUE(torch::equal(sd.at("transposed"), sd.at("base").t()));
  EXPECT_TRUE(torch::equal(sd.at("sliced"), sd.at("base").slice(0, 1, 4).slice(1, 0, 5, 2)));
  EXPECT_TRUE(torch::equal(sd.at("row"), sd.at("base")[2]));
  // Tied weights (same storage, same whole view) stay tied, as after torch.load.
  EXPECT_EQ(sd.at("tied").data_ptr(), sd.at("base").data_ptr());
  // Partial views are copies: they must not keep a larger storage alive.
  EXPECT_EQ(sd.at("row").storage().nbytes(), 5 * sizeof(float));
  EXPECT_EQ(sd.at("expanded").sizes(), torch::IntArrayRef({3, 4}));
  EXPECT_TRUE(torch::equal(sd.at("expanded").select(1, 0), sd.at("expanded").select(1, 3)));

  PthReader rd(dir_ / "views.pth");
  const auto& rec = rd.tensors()[2].second;  // "sliced"
  EXPECT_EQ(rd.tensors()[2].first, "sliced");
  EXPECT_EQ(rec.storage_offset, 5);
  EXPECT_EQ(rec.strides, (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(rec.storage_key, rd.tensors()[0].second.storage_key);  // shares base's storage
  EXPECT_FALSE(io::is_contiguous_view(rec));
  EXPECT_EQ(rd.storage(rec.storage_key).users.size(), 5u);
}

TEST_F(IoPthCases, PlainDictNotOrderedDict) {
  load_and_compare("plain_dict");
  PthReader rd(dir_ / "plain_dict.pth");
  EXPECT_FALSE(rd.pickled().ordered);
  EXPECT_FALSE(rd.pickled().has_metadata);
}

TEST_F(IoPthCases, ParametersThroughRebuildParameter) {
  load_and_compare("params");
  PthReader rd(dir_ / "params.pth");
  EXPECT_TRUE(rd.tensors()[0].second.requires_grad);
  EXPECT_FALSE(rd.tensors()[1].second.requires_grad);
}

TEST_F(IoPthCases, PickleProtocol4) {
  load_and_compare("proto4");
  PthReader rd(dir_ / "proto4.pth");
  EXPECT_EQ(rd.pickled().protocol, 4);
}

TEST_F(IoPthCases, Torch2StyleArchive) {
  load_and_compare("torch2_style");
  PthReader rd(dir_ / "torch2_style.pth");
  EXPECT_EQ(rd.prefix(), "archive");
  EXPECT_FALSE(rd.big_endian());
}

TEST_F(IoPthCases, BigEndianArchiveIsSwapped) {
  load_and_compare("big_endian");
  PthReader rd(dir_ / "big_endian.pth");
  EXPECT_TRUE(rd.big_endian());
}

TEST_F(IoPthCases, OtherTorchFilesFailClearly) {
  ASSERT_TRUE(make_cases(dir_.str(), {"legacy", "torchscript", "nested", "tensor_only"}));
  expect_error([&] { io::load_state_dict(dir_ / "legacy.pth"); }, {"legacy torch.save format"});
  expect_error([&] { io::load_state_dict(dir_ / "torchscript.pth"); }, {"TorchScript"});
  expect_error([&] { io::load_state_dict(dir_ / "nested.pth"); },
               {"entry 'model'", "not a tensor", "training checkpoint"});
  expect_error([&] { io::load_state_dict(dir_ / "tensor_only.pth"); }, {"not a state dict"});
  expect_error([&] { io::load_state_dict(dir_ / "missing.pth"); }, {"missing.pth"});
  write_bytes(dir_ / "text.pth", "hello, not a checkpoint\n");
  expect_error([&] { io::load_state_dict(dir_ / "text.pth"); }, {"neither"});
  write_bytes(dir_ / "empty.pth", "");
  expect_error([&] { io::load_state_dict(dir_ / "empty.pth"); }, {"empty"});
}

}  // namespace
}  // namespace vardp::test
