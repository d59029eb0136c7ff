#include "vardp/io/h5.hpp"

#include <cstring>
#include <sstream>

#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {

// HDF5 prints its own error stack by default; vardp reports errors through exceptions instead.
struct SilenceHdf5 {
  SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
const SilenceHdf5 kSilence;

std::string object_name(hid_t obj) {
  ssize_t n = H5Iget_name(obj, nullptr, 0);
  if (n <= 0) return "?";
  std::string s(static_cast<size_t>(n), '\0');
  H5Iget_name(obj, s.data(), static_cast<size_t>(n) + 1);
  return s;
}

std::string file_name(hid_t obj) {
  ssize_t n = H5Fget_name(obj, nullptr, 0);
  if (n <= 0) return "?";
  std::string s(static_cast<size_t>(n), '\0');
  H5Fget_name(obj, s.data(), static_cast<size_t>(n) + 1);
  return s;
}

[[noreturn]] void fail(hid_t loc, const std::string& what, const std::string& path) {
  throw Error(what, file_name(loc) + ":" + (path.empty() ? object_name(loc) : path));
}

hid_t check(hid_t id, hid_t loc, const std::string& what, const std::string& path) {
  if (id < 0) fail(loc, what, path);
  return id;
}

void check_status(herr_t st, hid_t loc, const std::string& what, const std::string& path) {
  if (st < 0) fail(loc, what, path);
}

std::string parent_of(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos || pos == 0) return "";
  return path.substr(0, pos);
}

H5Handle open_attr(hid_t obj, const std::string& name) {
  hid_t a = H5Aopen(obj, name.c_str(), H5P_DEFAULT);
  if (a < 0) fail(obj, "missing attribute '" + name + "'", "");
  return H5Handle(a);
}

void delete_attr_if_exists(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
}

template <class T>
void write_attr_array(hid_t obj, const std::string& name, const T* data, hsize_t n, bool scalar) {
  delete_attr_if_exists(obj, name);
  H5Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr));
  H5Handle attr(check(H5Acreate2(obj, name.c_str(), h5_native_type<T>(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
                      obj, "cannot create attribute '" + name + "'", ""));
  check_status(H5Awrite(attr.id(), h5_native_type<T>(), data), obj, "cannot write attribute '" + name + "'", "");
}

template <class T>
std::vector<T> read_attr_array(hid_t obj, const std::string& name) {
  H5Handle attr = open_attr(obj, name);
  H5Handle space(H5Aget_space(attr.id()));
  hssize_t n = H5Sget_simple_extent_npoints(space.id());
  std::vector<T> out(static_cast<size_t>(n));
  if (n > 0)
    check_status(H5Aread(attr.id(), h5_native_type<T>(), out.data()), obj,
                 "cannot read attribute '" + name + "' as a number", "");
  return out;
}

H5Handle string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return H5Handle(t);
}

}  // namespace

H5Handle& H5Handle::operator=(H5Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = -1;
  }
  return *this;
}

void H5Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: H5Idec_ref(id_); break;
  }
  id_ = -1;
}

template <> hid_t h5_native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t h5_native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t h5_native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t h5_native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t h5_native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t h5_native_type<uint16_t>() { return H5T_NATIVE_UINT16; }
template <> hid_t h5_native_type<int8_t>() { return H5T_NATIVE_INT8; }

H5File H5File::create(const std::string& path) {
  H5File f;
  f.path_ = path;
  H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  // Files written by this version stay readable by h5py with HDF5 1.10 (GPU hosts).
  H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id());
  if (id < 0) throw Error("cannot create HDF5 file", path);
  f.handle_ = H5Handle(id);
  return f;
}

H5File H5File::open(const std::string& path, H5Mode mode) {
  H5File f;
  f.path_ = path;
  if (H5Fis_hdf5(path.c_str()) <= 0) throw Error("not an HDF5 file (or missing/unreadable)", path);
  hid_t id = H5Fopen(path.c_str(), mode == H5Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0) throw Error("cannot open HDF5 file", path);
  f.handle_ = H5Handle(id);
  return f;
}

void H5File::flush() {
  if (handle_.valid()) check_status(H5Fflush(handle_.id(), H5F_SCOPE_GLOBAL), handle_.id(), "flush failed", "/");
}

bool h5_exists(hid_t loc, const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  bool absolute = !path.empty() && path[0] == '/';
  if (absolute) cur = "";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += (cur.empty() && !absolute ? "" : "/") + part;
    if (H5Lexists(loc, cur.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

H5Handle h5_require_group(hid_t loc, const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  bool absolute = !path.empty() && path[0] == '/';
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += (cur.empty() && !absolute ? "" : "/") + part;
    if (H5Lexists(loc, cur.c_str(), H5P_DEFAULT) <= 0) {
      H5Handle g(check(H5Gcreate2(loc, cur.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), loc,
                       "cannot create group", cur));
    }
  }
  if (cur.empty()) return H5Handle(check(H5Gopen2(loc, "/", H5P_DEFAULT), loc, "cannot open root group", "/"));
  return h5_open_group(loc, cur);
}

H5Handle h5_open_group(hid_t loc, const std::string& path) {
  return H5Handle(check(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), loc, "missing group", path));
}

std::vector<std::string> h5_list(hid_t loc, const std::string& group) {
  H5Handle g = h5_open_group(loc, group);
  H5G_info_t info;
  check_status(H5Gget_info(g.id(), &info), loc, "cannot list group", group);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string s(static_cast<size_t>(n), '\0');
    H5Lget_name_by_idx(g.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), static_cast<size_t>(n) + 1, H5P_DEFAULT);
    names.push_back(s);
  }
  return names;
}

// --- attributes ---
void h5_write_attr(hid_t obj, const std::string& name, const std::string& value) {
  delete_attr_if_exists(obj, name);
  H5Handle type = string_type();
  H5Handle space(H5Screate(H5S_SCALAR));
  H5Handle attr(check(H5Acreate2(obj, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT), obj,
                      "cannot create attribute '" + name + "'", ""));
  const char* p = value.c_str();
  check_status(H5Awrite(attr.id(), type.id(), &p), obj, "cannot write attribute '" + name + "'", "");
}
void h5_write_attr(hid_t obj, const std::string& name, const char* value) {
  h5_write_attr(obj, name, std::string(value));
}
void h5_write_attr(hid_t obj, const std::string& name, int64_t value) {
  write_attr_array<int64_t>(obj, name, &value, 1, true);
}
void h5_write_attr(hid_t obj, const std::string& name, double value) {
  write_attr_array<double>(obj, name, &value, 1, true);
}
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value) {
  write_attr_array<int64_t>(obj, name, value.data(), value.size(), false);
}
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<double>& value) {
  write_attr_array<double>(obj, name, value.data(), value.size(), false);
}
void h5_write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& value) {
  delete_attr_if_exists(obj, name);
  H5Handle type = string_type();
  hsize_t n = value.size();
  H5Handle space(H5Screate_simple(1, &n, nullptr));
  H5Handle attr(check(H5Acreate2(obj, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT), obj,
                      "cannot create attribute '" + name + "'", ""));
  std::vector<const char*> ptrs;
  for (const auto& s : value) ptrs.push_back(s.c_str());
  check_status(H5Awrite(attr.id(), type.id(), ptrs.data()), obj, "cannot write attribute '" + name + "'", "");
}

bool h5_has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::vector<std::string> h5_read_attr_strings(hid_t obj, const std::string& name) {
  H5Handle attr = open_attr(obj, name);
  H5Handle ftype(H5Aget_type(attr.id()));
  if (H5Tget_class(ftype.id()) != H5T_STRING) fail(obj, "attribute '" + name + "' is not a string", "");
  H5Handle space(H5Aget_space(attr.id()));
  hssize_t n = H5Sget_simple_extent_npoints(space.id());
  std::vector<std::string> out;
  if (H5Tis_variable_str(ftype.id()) > 0) {
    H5Handle mtype = string_type();
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    check_status(H5Aread(attr.id(), mtype.id(), ptrs.data()), obj, "cannot read attribute '" + name + "'", "");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mtype.id(), space.id(), H5P_DEFAULT, ptrs.data());
  } else {
    size_t len = H5Tget_size(ftype.id());
    std::vector<char> buf(len * static_cast<size_t>(n) + 1, '\0');
    H5Handle mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype.id(), len);
    check_status(H5Aread(attr.id(), mtype.id(), buf.data()), obj, "cannot read attribute '" + name + "'", "");
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + static_cast<size_t>(i) * len;
      out.emplace_back(p, strnlen(p, len));
    }
  }
  return out;
}

std::string h5_read_attr_string(hid_t obj, const std::string& name) {
  auto v = h5_read_attr_strings(obj, name);
  if (v.size() != 1) fail(obj, "attribute '" + name + "' is not a single string", "");
  return v[0];
}
int64_t h5_read_attr_int(hid_t obj, const std::string& name) {
  auto v = read_attr_array<int64_t>(obj, name);
  if (v.size() != 1) fail(obj, "attribute '" + name + "' is not a scalar", "");
  return v[0];
}
double h5_read_attr_double(hid_t obj, const std::string& name) {
  auto v = read_attr_array<double>(obj, name);
  if (v.size() != 1) fail(obj, "attribute '" + name + "' is not a scalar", "");
  return v[0];
}
std::vector<int64_t> h5_read_attr_ints(hid_t obj, const std::string& name) {
  return read_attr_array<int64_t>(obj, name);
}
std::vector<double> h5_read_attr_doubles(hid_t obj, const std::string& name) {
  return read_attr_array<double>(obj, name);
}

// --- datasets ---
template <class T>
void h5_write(hid_t loc, const std::string& path, const T* data, const std::vector<hsize_t>& dims,
              const H5WriteOptions& opt) {
  std::string parent = parent_of(path);
  if (!parent.empty()) h5_require_group(loc, parent);
  if (H5Lexists(loc, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(loc, path.c_str(), H5P_DEFAULT);
  H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                              : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t total = 1;
  for (auto d : dims) total *= d;
  if ((opt.compression > 0 || !opt.chunk.empty()) && !dims.empty() && total > 0) {
    std::vector<hsize_t> chunk = opt.chunk;
    if (chunk.empty()) {
      // Chunk along the first dimension: about 1 MiB per chunk.
      chunk = dims;
      hsize_t row = total / dims[0] * sizeof(T);
      chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 20) / std::max<hsize_t>(row, 1)));
    }
    H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data());
    if (opt.compression > 0) H5Pset_deflate(dcpl.id(), static_cast<unsigned>(opt.compression));
  }
  H5Handle ds(check(H5Dcreate2(loc, path.c_str(), h5_native_type<T>(), space.id(), H5P_DEFAULT, dcpl.id(),
                               H5P_DEFAULT), loc, "cannot create dataset", path));
  if (total > 0)
    check_status(H5Dwrite(ds.id(), h5_native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), loc,
                 "cannot write dataset", path);
}

void h5_write_string(hid_t loc, const std::string& path, const std::string& value) {
  std::string parent = parent_of(path);
  if (!parent.empty()) h5_require_group(loc, parent);
  if (H5Lexists(loc, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(loc, path.c_str(), H5P_DEFAULT);
  H5Handle type = string_type();
  H5Handle space(H5Screate(H5S_SCALAR));
  H5Handle ds(check(H5Dcreate2(loc, path.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                    loc, "cannot create dataset", path));
  const char* p = value.c_str();
  check_status(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), loc, "cannot write dataset", path);
}

std::vector<hsize_t> h5_dims(hid_t loc, const std::string& path) {
  H5Handle ds(check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), loc, "missing dataset", path));
  H5Handle space(H5Dget_space(ds.id()));
  int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return dims;
}

template <class T>
std::vector<T> h5_read(hid_t loc, const std::string& path, std::vector<hsize_t>* dims_out) {
  H5Handle ds(check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), loc, "missing dataset", path));
  H5Handle space(H5Dget_space(ds.id()));
  hssize_t n = H5Sget_simple_extent_npoints(space.id());
  if (dims_out) *dims_out = h5_dims(loc, path);
  std::vector<T> out(static_cast<size_t>(n));
  if (n > 0)
    check_status(H5Dread(ds.id(), h5_native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), loc,
                 "cannot read dataset (wrong type?)", path);
  return out;
}

template <class T>
std::vector<T> h5_read_rows(hid_t loc, const std::string& path, hsize_t row0, hsize_t nrows) {
  H5Handle ds(check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), loc, "missing dataset", path));
  H5Handle space(H5Dget_space(ds.id()));
  int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 1) fail(loc, "dataset has no rows", path);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  if (row0 + nrows > dims[0])
    fail(loc, str("rows [", row0, ", ", row0 + nrows, ") out of range (", dims[0], " rows)"), path);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row0;
  count[0] = nrows;
  check_status(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), loc,
               "bad selection", path);
  H5Handle mem(H5Screate_simple(rank, count.data(), nullptr));
  hsize_t total = 1;
  for (auto c : count) total *= c;
  std::vector<T> out(static_cast<size_t>(total));
  if (total > 0)
    check_status(H5Dread(ds.id(), h5_native_type<T>(), mem.id(), space.id(), H5P_DEFAULT, out.data()), loc,
                 "cannot read rows", path);
  return out;
}

std::string h5_read_string(hid_t loc, const std::string& path) {
  H5Handle ds(check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), loc, "missing dataset", path));
  H5Handle type = string_type();
  char* p = nullptr;
  check_status(H5Dread(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), loc, "cannot read string", path);
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

#define VARDP_H5_INSTANTIATE(T)                                                                          \
  template void h5_write<T>(hid_t, const std::string&, const T*, const std::vector<hsize_t>&,              \
                            const H5WriteOptions&);                                                        \
  template std::vector<T> h5_read<T>(hid_t, const std::string&, std::vector<hsize_t>*);                    \
  template std::vector<T> h5_read_rows<T>(hid_t, const std::string&, hsize_t, hsize_t);
VARDP_H5_INSTANTIATE(float)
VARDP_H5_INSTANTIATE(double)
VARDP_H5_INSTANTIATE(int64_t)
VARDP_H5_INSTANTIATE(int32_t)
VARDP_H5_INSTANTIATE(uint8_t)
VARDP_H5_INSTANTIATE(uint16_t)
VARDP_H5_INSTANTIATE(int8_t)
#undef VARDP_H5_INSTANTIATE

}  // namespace vardp::io
