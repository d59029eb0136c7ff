// Hostile and broken .pth files: forbidden globals and opcodes, malformed pickles, bad tensor
// geometry, truncated and mutated archives. Each must end in a vardp::Error that says what is
// wrong, never in a crash, another exception type, executed code or a partial result.
#include <gtest/gtest.h>

#include <filesystem>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/io/pickle.hpp"
#include "vardp/io/pth.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/io/zip_archive.hpp"

namespace vardp::test {
namespace {

using io::StateDict;
using namespace std::string_literals;  // byte strings with embedded NULs

// ---- a small pickle writer for hand-made streams --------------------------------------------

struct Pk {
  std::string b = "\x80\x02";  // PROTO 2
  Pk& op(char c) { b += c; return *this; }
  Pk& raw(const std::string& s) { b += s; return *this; }
  Pk& global(const std::string& mod, const std::string& name) {
    b += 'c';
    b += mod + "\n" + name + "\n";
    return *this;
  }
  Pk& str(const std::string& s) {
    b += 'X';
    for (int k = 0; k < 4; ++k) b += static_cast<char>((s.size() >> (8 * k)) & 0xff);
    b += s;
    return *this;
  }
  Pk& integer(int64_t v) {  // LONG1 with 8 bytes: any int64
    b += '\x8a';
    b += '\x08';
    for (int k = 0; k < 8; ++k) b += static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff);
    return *this;
  }
  Pk& ints(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  Pk& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  // _rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict())
  Pk& tensor(const std::string& storage_type, const std::string& key, int64_t numel, int64_t offset,
             const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).op('t');
    op('Q');
    integer(offset).ints(size).ints(stride).op('\x89');
    empty_ordered_dict();
    return op('t').op('R');
  }
  std::string done() { return b + "."; }
};

struct TensorSpec {
  std::string name, storage_type, key;
  int64_t numel, offset;
  std::vector<int64_t> size, stride;
};

std::string state_dict_pickle(const std::vector<TensorSpec>& specs) {
  Pk p;
  p.empty_ordered_dict().op('(');
  for (const auto& s : specs) p.str(s.name).tensor(s.storage_type, s.key, s.numel, s.offset, s.size, s.stride);
  p.op('u');
  return p.done();
}

void expect_pickle_error(const std::string& bytes, const std::vector<std::string>& needles,
                         const std::string& label) {
  expect_error([&] { io::read_state_dict_pickle(bytes, "test.pkl"); }, needles, label);
}

// ---- pickle level ---------------------------------------------------------------------------

TEST(IoPthPickle, HandMadeStateDictIsRead) {
  const auto sd = io::read_state_dict_pickle(
      state_dict_pickle({{"a", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}},
                         {"b", "HalfStorage", "1", 4, 1, {3}, {1}},
                         {"c", "FloatStorage", "0", 6, 2, {2}, {3}}}),
      "test.pkl");
  ASSERT_EQ(sd.entries.size(), 3u);
  EXPECT_EQ(sd.entries[0].first, "a");
  EXPECT_EQ(sd.entries[1].second.dtype, io::DType::float16);
  EXPECT_EQ(sd.entries[1].second.storage_offset, 1);
  EXPECT_EQ(sd.entries[2].second.strides, std::vector<int64_t>{3});
  EXPECT_TRUE(sd.ordered);
}

TEST(IoPthPickle, ForbiddenGlobalsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> globals = {
      {"os", "system"}, {"posix", "system"}, {"builtins", "eval"}, {"builtins", "exec"},
      {"subprocess", "Popen"}, {"__builtin__", "getattr"}, {"torch", "load"},
      {"torch._utils", "_rebuild_tensor"}, {"torch._utils", "_rebuild_qtensor"},
      {"collections", "defaultdict"}, {"torch", "ComplexFloatStorage"}, {"numpy.core.multiarray", "_reconstruct"}};
  for (const auto& [mod, name] : globals) {
    // as a callable: GLOBAL, args, REDUCE
    expect_pickle_error(Pk().global(mod, name).op('(').str("x").op('t').op('R').done(),
                        {"pickle global '" + mod + "." + name + "' is not allowed"}, mod + "." + name);
    // as protocol 4 STACK_GLOBAL
    expect_pickle_error(Pk().str(mod).str(name).raw("\x93").op(')').op('R').done(),
                        {"'" + mod + "." + name + "' is not allowed"}, "stack " + mod + "." + name);
  }
  // Non-printable bytes in a global are escaped in the message.
  expect_pickle_error(Pk().global("os\x01", "system").done(), {"os\\x01.system"}, "escape");
}

TEST(IoPthPickle, ForbiddenOpcodesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"i__main__\nEvil\n", "INST"},   {"o", "OBJ"},          {"\x81", "NEWOBJ"},
      {"\x92", "NEWOBJ_EX"},          {"\x82\x01", "EXT1"},   {"I1\n", "INT"},
      {"S'x'\n", "STRING"},           {"Vx\n", "UNICODE"},   {"Px\n", "PERSID"},
      {"g1\n", "GET"},                {"p1\n", "PUT"},       {"\x8f", "EMPTY_SET"},
      {"\x97", "NEXT_BUFFER"},        {"F1.0\n", "FLOAT"},   {"U\x01x", "SHORT_BINSTRING"}};
  for (const auto& [bytes, name] : cases)
    expect_pickle_error(Pk().raw(bytes).done(), {"opcode " + name, "not allowed"}, name);
  expect_pickle_error(Pk().raw("\xff").done(), {"unknown pickle opcode 0xff"}, "0xff");
  expect_pickle_error(std::string("\x80\x06}."), {"protocol 6"}, "proto 6");
}

TEST(IoPthPickle, MalformedStreamsFailCleanly) {
  expect_pickle_error("", {"no STOP"}, "empty");
  expect_pickle_error(Pk().op('}').b, {"no STOP"}, "no stop");
  expect_pickle_error(Pk().done(), {"0 stack items"}, "empty stack");
  expect_pickle_error(Pk().op('}').op('}').done(), {"2 stack items"}, "two items");
  expect_pickle_error(Pk().op('0').done(), {"underflow"}, "pop empty");
  expect_pickle_error(Pk().op('}').op('(').op('0').done(), {"underflow"}, "pop below mark");
  expect_pickle_error(Pk().op('(').op('}').done(), {"open MARK"}, "open mark");
  expect_pickle_error(Pk().op('t').done(), {"MARK"}, "tuple without mark");
  expect_pickle_error(Pk().raw("h\x05").done(), {"memo entry 5"}, "memo");
  expect_pickle_error(Pk().raw("X\xff\xff\xff\x7f").b, {"truncated"}, "huge string");
  expect_pickle_error(Pk().raw("\x8d\xff\xff\xff\xff\xff\xff\xff\xff").b, {"truncated"}, "huge string8");
  expect_pickle_error(Pk().raw("\x95\xff\xff\xff\xff\xff\xff\xff\x7f}").done(), {"FRAME"}, "frame");
  expect_pickle_error(Pk().raw("\x8a\x09").raw(std::string(9, '\1')).done(), {"64 bits"}, "long1");
  expect_pickle_error(Pk().raw("cos").b, {"newline"}, "global line");
  expect_pickle_error(Pk().raw("X\x02\x00\x00\x00\xc3\x28"s).done(), {"UTF-8"}, "utf8");
  // A list containing itself (a reference cycle) and mutation after insertion.
  expect_pickle_error(Pk().raw("]q\x00h\x00"s).op('a').done(), {"contain itself"}, "cycle");
  expect_pickle_error(Pk().raw("]q\x00]q\x01h\x00"s).op('a').raw("h\x01").op(')').op('R').done(),
                      {"REDUCE calls a list"}, "reduce list");
  expect_pickle_error(Pk().raw("]q\x00]q\x01h\x00"s).op('a').op('a').done(),
                      {"already part of another value"}, "indirect cycle");
  // Deep nesting is bounded (no stack overflow when the values are destroyed).
  std::string deep = Pk().op(')').b;
  for (int k = 0; k < 100000; ++k) deep += '\x85';
  expect_pickle_error(deep + ".", {"nesting deeper"}, "deep");
  // Structure that is valid pickle but not a state dict.
  expect_pickle_error(Pk().op(']').done(), {"is a list, not a state dict"}, "list");
  expect_pickle_error(Pk().op('}').str("k").raw("K\x01").op('s').done(), {"'k' is a int"}, "int value");
  expect_pickle_error(Pk().op('}').raw("K\x01K\x01").op('s').done(), {"keys must be strings"}, "int key");
  expect_pickle_error(Pk().empty_ordered_dict().op('}').str("evil").op('}').op('s').op('b').done(),
                      {"attribute 'evil'"}, "build attr");
  expect_pickle_error(Pk().op('}').op('}').op('b').done(), {"BUILD on a dict"}, "build dict");
  expect_pickle_error(Pk().global("collections", "OrderedDict").op('(').op(']').op('t').op('R').done(),
                      {"OrderedDict called with arguments"}, "odict args");
  expect_pickle_error(Pk().global("torch", "FloatStorage").op(')').op('R').done(),
                      {"REDUCE on a torch storage type"}, "storage reduce");
}

TEST(IoPthPickle, TensorArgumentsAreValidated) {
  auto one = [](TensorSpec s) { return state_dict_pickle({std::move(s)}); };
  expect_pickle_error(one({"w", "FloatStorage", "0", 4, -1, {4}, {1}}), {"negative storage offset"}, "offset");
  expect_pickle_error(one({"w", "FloatStorage", "0", 4, 0, {-4}, {1}}), {"negative tensor size"}, "size");
  expect_pickle_error(one({"w", "FloatStorage", "0", 4, 0, {4}, {-1}}), {"negative tensor stride"}, "stride");
  expect_pickle_error(one({"w", "FloatStorage", "0", 4, 0, {4}, {1, 1}}), {"1 sizes but 2 strides"}, "rank");
  expect_pickle_error(one({"w", "FloatStorage", "0", -4, 0, {4}, {1}}), {"negative size"}, "numel");
  expect_pickle_error(one({"w", "FloatStorage", "../x", 4, 0, {4}, {1}}), {"not a plain record name"}, "key");
  expect_pickle_error(state_dict_pickle({{"a", "FloatStorage", "0", 4, 0, {4}, {1}},
                                         {"b", "IntStorage", "0", 4, 0, {4}, {1}}}),
                      {"declared twice"}, "dtype clash");
  // persistent ids other than torch's storage tuple
  expect_pickle_error(Pk().op('}').str("k").str("x").op('Q').op('s').done(), {"persistent id"}, "pid str");
  expect_pickle_error(Pk().op('}').str("k").op('(').str("module").global("torch", "FloatStorage")
                          .str("0").str("cpu").raw("K\x01").op('t').op('Q').op('s').done(),
                      {"'module' is not 'storage'"}, "pid tag");
}

// ---- archive level --------------------------------------------------------------------------

class IoPthArchive : public ::testing::Test {
 protected:
  // A .pth built from a hand-made pickle and storage records.
  std::string make(const std::string& name, const std::string& pickle,
                   const std::vector<std::pair<std::string, std::string>>& storages) {
    std::vector<std::pair<std::string, std::string>> entries{{"m/data.pkl", pickle}};
    for (const auto& [k, v] : storages) entries.emplace_back("m/data/" + k, v);
    entries.emplace_back("m/version", "3\n");
    const std::string path = dir_ / name;
    write_zip(path, entries);
    return path;
  }
  ScratchDir dir_;
};

TEST_F(IoPthArchive, GeometryIsCheckedAgainstStorageRecords) {
  const std::string f16(16, '\0');
  // fine: a 2x2 float view of a 4-element storage
  const auto ok = make("ok.pth", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1}}}),
                       {{"0", f16}});
  EXPECT_EQ(io::load_state_dict(ok).at("w").numel(), 4);

  expect_error([&] {
    io::load_state_dict(make("a.pth", state_dict_pickle({{"w", "FloatStorage", "0", 4, 1, {2, 2}, {2, 1}}}),
                             {{"0", f16}}));
  }, {"tensor 'w'", "reaches element 4", "which has 4"}, "past end");
  expect_error([&] {
    io::load_state_dict(make("b.pth", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0, {2, 2}, {3, 1}}}),
                             {{"0", f16}}));
  }, {"reaches element 4"}, "stride past end");
  expect_error([&] {
    io::load_state_dict(make("c.pth", state_dict_pickle({{"w", "FloatStorage", "0", 5, 0, {4}, {1}}}),
                             {{"0", f16}}));
  }, {"has 16 bytes", "5 x float32 = 20"}, "record size");
  expect_error([&] {
    io::load_state_dict(make("d.pth", state_dict_pickle({{"w", "FloatStorage", "7", 4, 0, {4}, {1}}}),
                             {{"0", f16}}));
  }, {"'m/data/7' is missing"}, "missing record");
  expect_error([&] {
    io::load_state_dict(make("e.pth", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0,
                                                          {int64_t{1} << 62, 8}, {1, 1}}}),
                             {{"0", f16}}));
  }, {"overflows"}, "numel overflow");
  expect_error([&] {
    io::load_state_dict(make("f.pth", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0,
                                                          {3, 2}, {int64_t{1} << 62, 1}}}),
                             {{"0", f16}}));
  }, {"overflows"}, "extent overflow");
  expect_error([&] {
    io::load_state_dict(make("g.pth", state_dict_pickle({{"w", "FloatStorage", "0",
                                                          int64_t{1} << 62, 0, {4}, {1}}}),
                             {{"0", f16}}));
  }, {"overflows"}, "storage bytes overflow");
  expect_error([&] {
    io::load_state_dict(make("h.pth", state_dict_pickle({{"w", "BoolStorage", "0", 4, 0, {4}, {1}}}),
                             {{"0", std::string("\x01\x00\x07\x01", 4)}}));
  }, {"byte 7 in a bool tensor"}, "bool bytes");
  // No partial result: a bad second tensor fails the whole load.
  expect_error([&] {
    io::load_state_dict(make("i.pth", state_dict_pickle({{"a", "FloatStorage", "0", 4, 0, {4}, {1}},
                                                         {"b", "FloatStorage", "1", 4, 0, {5}, {1}}}),
                             {{"0", f16}, {"1", f16}}));
  }, {"tensor 'b'"}, "second tensor");
}

TEST_F(IoPthArchive, MaliciousPicklesFromPython) {
  ASSERT_TRUE(make_cases(dir_.str(), {"evil"}));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"evil_os_system", "'posix.system' is not allowed"},
      {"evil_eval", "eval' is not allowed"},  // protocol 2 writes '__builtin__ eval'
      {"evil_class", "'__main__.Plain' is not allowed"},
      {"evil_in_state_dict", "'posix.system' is not allowed"},
      {"evil_stack_global", "'posix.system' is not allowed"},
      {"evil_unknown_opcode", "unknown pickle opcode 0xff"}};
  for (const auto& [name, needle] : cases)
    expect_error([&] { io::load_state_dict(dir_ / (name + ".pth")); }, {needle, name + ".pth"}, name);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "PWNED")) << "code from a pickle was executed";
}

TEST_F(IoPthArchive, TruncatedArchives) {
  ASSERT_TRUE(make_cases(dir_.str(), {"small"}));
  const std::string good = read_bytes(dir_ / "small.pth");
  const StateDict want = io::load_state_dict(dir_ / "small.pth");
  int n = 0;
  for (size_t len = 0; len < good.size(); len += (len < 64 || good.size() - len < 128) ? 1 : 13) {
    const std::string path = dir_ / "t.pth";
    write_bytes(path, good.substr(0, len));
    expect_error([&] { io::load_state_dict(path); }, {"t.pth"}, str("truncated to ", len));
    ++n;
  }
  EXPECT_GT(n, 200);
  // A zip whose central directory is intact but a storage record is cut short.
  write_zip(dir_ / "short.pth", {{"m/data.pkl", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0, {4}, {1}}})},
                                 {"m/data/0", std::string(12, '\0')}});
  expect_error([&] { io::load_state_dict(dir_ / "short.pth"); }, {"has 12 bytes"}, "short record");
}

// Deterministic byte flips, zeroed runs and truncations of a small genuine .pth: every variant
// either fails with a vardp::Error or (the change hit a byte nothing depends on) loads exactly
// the original tensors; libzip's CRC check covers the pickle and the storages.
TEST_F(IoPthArchive, MutatedFilesNeverCrash) {
  ASSERT_TRUE(make_cases(dir_.str(), {"small"}));
  const std::string good = read_bytes(dir_ / "small.pth");
  const StateDict want = io::load_state_dict(dir_ / "small.pth");
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int errors = 0, loaded = 0;
  const int kVariants = 400;
  for (int v = 0; v < kVariants; ++v) {
    std::string bad = good;
    const int kind = v % 4;
    if (kind <= 1) {  // 1 or 1..4 flipped bytes
      const int flips = kind == 0 ? 1 : 1 + static_cast<int>(next() % 4);
      for (int k = 0; k < flips; ++k) bad[next() % bad.size()] ^= static_cast<char>(1 + next() % 255);
    } else if (kind == 2) {  // a zeroed or 0xff run
      const size_t at = next() % bad.size();
      const size_t len = std::min<size_t>(1 + next() % 16, bad.size() - at);
      std::fill(bad.begin() + static_cast<long>(at), bad.begin() + static_cast<long>(at + len),
                (v / 4) % 2 ? '\xff' : '\0');
    } else {  // truncation plus a flip near the end
      bad.resize(next() % bad.size());
      if (!bad.empty()) bad[bad.size() - 1] ^= 0x5a;
    }
    const std::string path = dir_ / "m.pth";
    write_bytes(path, bad);
    try {
      const StateDict got = io::load_state_dict(path);
      ++loaded;
      expect_same(got, want);
    } catch (const vardp::Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("m.pth"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "variant " << v << ": non-vardp exception: " << e.what();
    }
  }
  EXPECT_EQ(errors + loaded, kVariants);
  EXPECT_GT(errors, kVariants / 2);
  std::printf("mutated .pth variants: %d rejected with vardp::Error, %d loaded identical\n", errors,
              loaded);
}

// The pickle interpreter itself under mutation (bypassing the CRC): the official fixture's
// data.pkl with flipped bytes, alone and repacked with its storages into a valid zip.
TEST_F(IoPthArchive, MutatedPicklesNeverCrash) {
  io::ZipArchive zip(fixture("var_official_tiny/var_fixture.pth"));
  const std::string pkl = zip.read(zip.at("var_fixture/data.pkl"), 1 << 20);
  std::vector<std::pair<std::string, std::string>> storages;
  for (const auto& e : zip.entries())
    if (e.name.rfind("var_fixture/data/", 0) == 0)
      storages.emplace_back(e.name.substr(17), zip.read(e, 1 << 26));
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  int errors = 0, parsed = 0;
  for (int v = 0; v < 600; ++v) {
    std::string bad = pkl;
    const int flips = 1 + static_cast<int>(next() % 3);
    for (int k = 0; k < flips; ++k) bad[next() % bad.size()] = static_cast<char>(next() & 0xff);
    if (v % 5 == 4) bad.resize(next() % bad.size());
    try {
      io::read_state_dict_pickle(bad, "mutated.pkl");
      ++parsed;
    } catch (const vardp::Error&) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "pickle variant " << v << ": non-vardp exception: " << e.what();
    }
    if (v % 3 == 0) {  // through the whole loader with a valid CRC
      std::vector<std::pair<std::string, std::string>> entries{{"m/data.pkl", bad}};
      for (const auto& [k, s] : storages) entries.emplace_back("m/data/" + k, s);
      write_zip(dir_ / "r.pth", entries);
      try {
        const StateDict sd = io::load_state_dict(dir_ / "r.pth");
        for (const auto& key : sd.keys()) EXPECT_TRUE(sd.at(key).is_contiguous());
      } catch (const vardp::Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "repacked variant " << v << ": non-vardp exception: " << e.what();
      }
    }
  }
  EXPECT_GT(errors, 300);
  std::printf("mutated pickles: %d rejected, %d parsed\n", errors, parsed);
}

}  // namespace
}  // namespace vardp::test
