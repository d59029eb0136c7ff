// matio wrapper. matio converts stored data to the variable's class on read, so the element
// type of `data` follows class_type; character data arrive as 8- or 16-bit code units.
#include "vardp/data/mat_file.hpp"

#include <matio.h>

#include <cstring>

#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

struct VarDeleter {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using VarPtr = std::unique_ptr<matvar_t, VarDeleter>;

size_t element_count(const matvar_t* v) {
  if (v->rank <= 0 || !v->dims) return 0;
  size_t n = 1;
  for (int i = 0; i < v->rank; ++i) n *= v->dims[i];
  return n;
}

template <class T>
void append_as_double(const void* data, size_t n, std::vector<double>* out) {
  const T* p = static_cast<const T*>(data);
  for (size_t i = 0; i < n; ++i) out->push_back(static_cast<double>(p[i]));
}

std::vector<double> to_doubles(const matvar_t* v, const std::string& what) {
  std::vector<double> out;
  const size_t n = element_count(v);
  if (n == 0) return out;
  if (v->isComplex) throw Error("complex data where real numbers were expected", what);
  if (!v->data) throw Error("variable has no data", what);
  switch (v->class_type) {
    case MAT_C_DOUBLE: append_as_double<double>(v->data, n, &out); break;
    case MAT_C_SINGLE: append_as_double<float>(v->data, n, &out); break;
    case MAT_C_INT8: append_as_double<int8_t>(v->data, n, &out); break;
    case MAT_C_UINT8: append_as_double<uint8_t>(v->data, n, &out); break;
    case MAT_C_INT16: append_as_double<int16_t>(v->data, n, &out); break;
    case MAT_C_UINT16: append_as_double<uint16_t>(v->data, n, &out); break;
    case MAT_C_INT32: append_as_double<int32_t>(v->data, n, &out); break;
    case MAT_C_UINT32: append_as_double<uint32_t>(v->data, n, &out); break;
    case MAT_C_INT64: append_as_double<int64_t>(v->data, n, &out); break;
    case MAT_C_UINT64: append_as_double<uint64_t>(v->data, n, &out); break;
    default:
      throw Error(str("not a numeric array (MATLAB class ", int(v->class_type), ")"), what);
  }
  return out;
}

void append_utf8(uint32_t cp, std::string* s) {
  if (cp < 0x80) {
    *s += char(cp);
  } else if (cp < 0x800) {
    *s += char(0xC0 | (cp >> 6));
    *s += char(0x80 | (cp & 0x3F));
  } else {
    *s += char(0xE0 | (cp >> 12));
    *s += char(0x80 | ((cp >> 6) & 0x3F));
    *s += char(0x80 | (cp & 0x3F));
  }
}

// Rows of a char matrix (column-major storage).
std::vector<std::string> char_rows(const matvar_t* v, const std::string& what) {
  if (v->class_type != MAT_C_CHAR) throw Error("not a character array", what);
  const size_t n = element_count(v);
  if (n == 0) return {std::string()};
  const size_t rows = v->dims[0];
  const size_t cols = n / rows;
  std::vector<std::string> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const size_t i = c * rows + r;
      if (v->data_size == 1) {
        out[r] += static_cast<const char*>(v->data)[i];
      } else if (v->data_size == 2) {
        append_utf8(static_cast<const uint16_t*>(v->data)[i], &out[r]);
      } else {
        append_utf8(static_cast<const uint32_t*>(v->data)[i], &out[r]);
      }
    }
  }
  return out;
}

std::string one_string(const matvar_t* v, const std::string& what) {
  const auto rows = char_rows(v, what);
  if (rows.size() != 1) throw Error("expected a single-row character array", what);
  return rows.front();
}

}  // namespace

struct MatFile::Impl {
  mat_t* mat = nullptr;
  VarPtr read(const std::string& path, const std::string& var) {
    Mat_Rewind(mat);
    VarPtr v(Mat_VarRead(mat, var.c_str()));
    if (!v) throw Error(str("variable '", var, "' not found or unreadable"), path);
    return v;
  }
};

MatFile::MatFile(const std::string& path) : path_(path), impl_(std::make_unique<Impl>()) {
  impl_->mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!impl_->mat) throw Error("cannot open as a MATLAB .mat file (missing or corrupt)", path);
}

MatFile::~MatFile() {
  if (impl_ && impl_->mat) Mat_Close(impl_->mat);
}

bool MatFile::has(const std::string& var) {
  Mat_Rewind(impl_->mat);
  VarPtr v(Mat_VarReadInfo(impl_->mat, var.c_str()));
  return v != nullptr;
}

std::vector<double> MatFile::numeric(const std::string& var) {
  VarPtr v = impl_->read(path_, var);
  return to_doubles(v.get(), path_ + ":" + var);
}

std::vector<std::string> MatFile::strings(const std::string& var) {
  VarPtr v = impl_->read(path_, var);
  const std::string what = path_ + ":" + var;
  if (v->class_type == MAT_C_CHAR) return char_rows(v.get(), what);
  if (v->class_type != MAT_C_CELL) throw Error("expected a cell array of strings", what);
  const size_t n = element_count(v.get());
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    matvar_t* cell = Mat_VarGetCell(v.get(), int(i));
    if (!cell) throw Error(str("cell ", i, " is missing"), what);
    out.push_back(one_string(cell, str(what, "{", i + 1, "}")));
  }
  return out;
}

size_t MatFile::struct_size(const std::string& var) {
  VarPtr v = impl_->read(path_, var);
  if (v->class_type != MAT_C_STRUCT) throw Error("expected a struct array", path_ + ":" + var);
  return element_count(v.get());
}

std::vector<double> MatFile::struct_numeric(const std::string& var, const std::string& field) {
  VarPtr v = impl_->read(path_, var);
  const std::string what = path_ + ":" + var + "." + field;
  if (v->class_type != MAT_C_STRUCT) throw Error("expected a struct array", what);
  const size_t n = element_count(v.get());
  std::vector<double> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    matvar_t* f = Mat_VarGetStructFieldByName(v.get(), field.c_str(), i);
    if (!f) throw Error(str("field missing in element ", i + 1), what);
    const std::vector<double> d = to_doubles(f, str(what, "(", i + 1, ")"));
    if (d.size() != 1) throw Error(str("element ", i + 1, " holds ", d.size(), " numbers, not 1"), what);
    out.push_back(d[0]);
  }
  return out;
}

std::vector<std::string> MatFile::struct_string(const std::string& var, const std::string& field) {
  VarPtr v = impl_->read(path_, var);
  const std::string what = path_ + ":" + var + "." + field;
  if (v->class_type != MAT_C_STRUCT) throw Error("expected a struct array", what);
  const size_t n = element_count(v.get());
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    matvar_t* f = Mat_VarGetStructFieldByName(v.get(), field.c_str(), i);
    if (!f) throw Error(str("field missing in element ", i + 1), what);
    out.push_back(one_string(f, str(what, "(", i + 1, ")")));
  }
  return out;
}

// ---- writer ----------------------------------------------------------------------------------

namespace {

matvar_t* make_numeric(const char* name, const std::vector<double>& values, MatWriter::NumClass c) {
  size_t dims[2] = {1, values.size()};
  // MAT_F_DONT_COPY_DATA is not used: matio copies, so the temporaries may die afterwards.
  switch (c) {
    case MatWriter::NumClass::f64: {
      std::vector<double> d = values;
      return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, d.data(), 0);
    }
    case MatWriter::NumClass::u8: {
      std::vector<uint8_t> d(values.begin(), values.end());
      return Mat_VarCreate(name, MAT_C_UINT8, MAT_T_UINT8, 2, dims, d.data(), 0);
    }
    case MatWriter::NumClass::u16: {
      std::vector<uint16_t> d(values.begin(), values.end());
      return Mat_VarCreate(name, MAT_C_UINT16, MAT_T_UINT16, 2, dims, d.data(), 0);
    }
    case MatWriter::NumClass::i32: {
      std::vector<int32_t> d(values.begin(), values.end());
      return Mat_VarCreate(name, MAT_C_INT32, MAT_T_INT32, 2, dims, d.data(), 0);
    }
  }
  return nullptr;
}

matvar_t* make_char(const char* name, const std::string& s) {
  size_t dims[2] = {1, s.size()};
  std::string copy = s;
  return Mat_VarCreate(name, MAT_C_CHAR, MAT_T_UINT8, 2, dims, copy.data(), 0);
}

}  // namespace

struct MatWriter::Impl {
  mat_t* mat = nullptr;
  void write(const std::string& path, matvar_t* v) {
    if (!v) throw Error("cannot create MATLAB variable", path);
    const int rc = Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
    if (rc != 0) throw Error("cannot write MATLAB variable", path);
  }
};

MatWriter::MatWriter(const std::string& path) : path_(path), impl_(std::make_unique<Impl>()) {
  impl_->mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  if (!impl_->mat) throw Error("cannot create MATLAB v5 file", path);
}

MatWriter::~MatWriter() { close(); }

void MatWriter::close() {
  if (impl_ && impl_->mat) {
    Mat_Close(impl_->mat);
    impl_->mat = nullptr;
  }
}

void MatWriter::numeric(const std::string& name, const std::vector<double>& values,
                        NumClass num_class) {
  impl_->write(path_, make_numeric(name.c_str(), values, num_class));
}

void MatWriter::cell_strings(const std::string& name, const std::vector<std::string>& values) {
  size_t dims[2] = {1, values.size()};
  matvar_t* cell = Mat_VarCreate(name.c_str(), MAT_C_CELL, MAT_T_CELL, 2, dims, nullptr, 0);
  if (!cell) throw Error("cannot create cell array", path_);
  for (size_t i = 0; i < values.size(); ++i)
    Mat_VarSetCell(cell, int(i), make_char(nullptr, values[i]));
  impl_->write(path_, cell);
}

void MatWriter::struct_array(const std::string& name, size_t n, const std::vector<Field>& fields) {
  std::vector<const char*> names;
  for (const auto& f : fields) names.push_back(f.name.c_str());
  names.push_back(nullptr);
  size_t dims[2] = {1, n};
  matvar_t* s = Mat_VarCreateStruct2(name.c_str(), 2, dims, names.data());
  if (!s) throw Error("cannot create struct array", path_);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& f : fields) {
      matvar_t* v = nullptr;
      if (!f.strings.empty()) {
        v = make_char(f.name.c_str(), f.strings.at(i));
      } else {
        v = make_numeric(f.name.c_str(), {f.numbers.at(i)}, f.num_class);
      }
      Mat_VarSetStructFieldByName(s, f.name.c_str(), i, v);
    }
  }
  impl_->write(path_, s);
}

}  // namespace vardp::data
