// Helpers shared by the .pth / state-dict tests: running the Python generators, raw file access,
// writing zip files with libzip, comparing state dicts.
#pragma once
#include <gtest/gtest.h>
#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "test_paths.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::test {

// Debian's interpreter with python3-torch, h5py and numpy (not the pyenv python on PATH).
inline const char* kPython = "/usr/bin/python3";

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs tests/python/<script> with args; returns false (and reports) on failure.
inline bool run_python(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = std::string(kPython) + " " + shell_quote(source_dir() + "/tests/python/" + script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) ADD_FAILURE() << "command failed (" << rc << "): " << cmd;
  return rc == 0;
}

// Writes the named cases of make_pth_cases.py into dir.
inline bool make_cases(const std::string& dir, const std::vector<std::string>& cases) {
  std::vector<std::string> args{dir};
  args.insert(args.end(), cases.begin(), cases.end());
  return run_python("make_pth_cases.py", args);
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Writes a zip of stored (uncompressed) entries, in order, as torch.save does.
inline void write_zip(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& entries) {
  int err = 0;
  zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!za) throw std::runtime_error("zip_open failed for " + path);
  for (const auto& [name, data] : entries) {
    // libzip reads the buffer at zip_close; keep copies alive until then.
    void* copy = std::malloc(data.size() ? data.size() : 1);
    std::memcpy(copy, data.data(), data.size());
    zip_source_t* src = zip_source_buffer(za, copy, data.size(), 1);
    const zip_int64_t idx = zip_file_add(za, name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) throw std::runtime_error("zip_file_add failed: " + name);
    zip_set_file_compression(za, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
  }
  if (zip_close(za) != 0) throw std::runtime_error("zip_close failed for " + path);
}

// Same keys in the same order, same dtypes and shapes, bit-identical values.
inline void expect_same(const io::StateDict& got, const io::StateDict& want) {
  ASSERT_EQ(got.keys(), want.keys());
  for (const auto& key : want.keys()) {
    const auto& a = got.at(key);
    const auto& b = want.at(key);
    EXPECT_EQ(a.scalar_type(), b.scalar_type()) << key;
    EXPECT_EQ(a.sizes(), b.sizes()) << key;
    EXPECT_TRUE(a.is_contiguous()) << key;
    if (a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes())
      EXPECT_TRUE(torch::equal(a, b)) << key;
  }
}

// Runs fn, expecting a vardp::Error whose message contains every string in `needles`.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles,
                         const std::string& label = "") {
  try {
    fn();
    ADD_FAILURE() << label << ": no error thrown";
  } catch (const vardp::Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << label << ": message lacks '" << n << "': " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-vardp exception: " << e.what();
  }
}

}  // namespace vardp::test
