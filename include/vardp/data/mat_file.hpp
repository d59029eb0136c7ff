// MATLAB v5 annotation files (Oxford Flowers' imagelabels.mat / setid.mat, the Stanford Cars
// devkit) through matio, behind a small interface that keeps matio's types out of the rest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vardp::data {

class MatFile {
 public:
  explicit MatFile(const std::string& path);  // throws Error naming the path
  ~MatFile();
  MatFile(const MatFile&) = delete;
  MatFile& operator=(const MatFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& var);
  // Any real numeric or logical array, flattened in MATLAB (column-major) order.
  std::vector<double> numeric(const std::string& var);
  // A cell array of char arrays (one string each) or a char matrix (one string per row).
  std::vector<std::string> strings(const std::string& var);
  // Struct arrays: one value per element (numeric fields must hold one number per element).
  size_t struct_size(const std::string& var);
  std::vector<double> struct_numeric(const std::string& var, const std::string& field);
  std::vector<std::string> struct_string(const std::string& var, const std::string& field);

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

// Writes MATLAB v5 files (tests build Flowers/Cars annotation trees with it).
class MatWriter {
 public:
  enum class NumClass { f64, u8, u16, i32 };
  struct Field {
    std::string name;
    NumClass num_class = NumClass::f64;
    std::vector<double> numbers;       // one per struct element, or
    std::vector<std::string> strings;  // one per struct element
  };

  explicit MatWriter(const std::string& path);
  ~MatWriter();
  MatWriter(const MatWriter&) = delete;
  MatWriter& operator=(const MatWriter&) = delete;

  // A 1 x n row vector.
  void numeric(const std::string& name, const std::vector<double>& values,
               NumClass num_class = NumClass::f64);
  // A 1 x n cell array of char rows.
  void cell_strings(const std::string& name, const std::vector<std::string>& values);
  // A 1 x n struct array.
  void struct_array(const std::string& name, size_t n, const std::vector<Field>& fields);
  void close();

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vardp::data
