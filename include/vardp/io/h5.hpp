// HDF5 through the C API behind small RAII handles. Every file vardp writes is self-describing:
// see provenance.hpp and docs/file-formats.md.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vardp::io {

// Owns one hid_t and closes it with the matching H5*close.
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
};

// Element types that datasets and attributes support.
template <class T>
hid_t h5_native_type();
template <> hid_t h5_native_type<float>();
template <> hid_t h5_native_type<double>();
template <> hid_t h5_native_type<int64_t>();
template <> hid_t h5_native_type<int32_t>();
template <> hid_t h5_native_type<uint8_t>();
template <> hid_t h5_native_type<uint16_t>();
template <> hid_t h5_native_type<int8_t>();

enum class H5Mode { read, read_write };

class H5File {
 public:
  // Creates (truncating) a file; prefer AtomicH5File for outputs.
  static H5File create(const std::string& path);
  static H5File open(const std::string& path, H5Mode mode = H5Mode::read);
  const std::string& path() const { return path_; }
  hid_t id() const { return handle_.id(); }
  void flush();
  void close() { handle_.reset(); }

 private:
  H5Handle handle_;
  std::string path_;
};

// --- groups, links -----------------------------------------------------------------------
bool h5_exists(hid_t loc, const std::string& path);  // any link along a/b/c
// Creates missing intermediate groups; returns the (possibly existing) group.
H5Handle h5_require_group(hid_t loc, const std::string& path);
H5Handle h5_open_group(hid_t loc, const std::string& path);
std::vector<std::string> h5_list(hid_t loc, const std::string& group = ".");

// --- attributes (on a file, group or dataset) --------------------------------------------
void h5_write_attr(hid_t obj, const std::string& name, const std::string& value);
void h5_write_attr(hid_t obj, const std::string& name, const char* value);
void h5_write_attr(hid_t obj, const std::string& name, int64_t value);
void h5_write_attr(hid_t obj, const std::string& name, double value);
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value);
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<double>& value);
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& value);
bool h5_has_attr(hid_t obj, const std::string& name);
std::string h5_read_attr_string(hid_t obj, const std::string& name);
int64_t h5_read_attr_int(hid_t obj, const std::string& name);
double h5_read_attr_double(hid_t obj, const std::string& name);
std::vector<int64_t> h5_read_attr_ints(hid_t obj, const std::string& name);
std::vector<double> h5_read_attr_doubles(hid_t obj, const std::string& name);
std::vector<std::string> h5_read_attr_strings(hid_t obj, const std::string& name);

// --- datasets ------------------------------------------------------------------------------
struct H5WriteOptions {
  int compression = 0;               // gzip level 0..9 (0: none, contiguous)
  std::vector<hsize_t> chunk;        // empty: automatic when compressing
};

// Writes a whole dataset (intermediate groups created). dims may be empty for a scalar.
template <class T>
void h5_write(hid_t loc, const std::string& path, const T* data, const std::vector<hsize_t>& dims,
              const H5WriteOptions& opt = {});
template <class T>
void h5_write(hid_t loc, const std::string& path, const std::vector<T>& data,
              const std::vector<hsize_t>& dims, const H5WriteOptions& opt = {}) {
  h5_write<T>(loc, path, data.data(), dims, opt);
}
void h5_write_string(hid_t loc, const std::string& path, const std::string& value);

std::vector<hsize_t> h5_dims(hid_t loc, const std::string& path);
// Reads a whole dataset converted to T (HDF5 converts numeric types).
template <class T>
std::vector<T> h5_read(hid_t loc, const std::string& path, std::vector<hsize_t>* dims = nullptr);
// Reads rows [row0, row0+nrows) of a dataset whose first dimension indexes rows.
template <class T>
std::vector<T> h5_read_rows(hid_t loc, const std::string& path, hsize_t row0, hsize_t nrows);
std::string h5_read_string(hid_t loc, const std::string& path);

}  // namespace vardp::io
