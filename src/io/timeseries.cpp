#include "vardp/io/timeseries.hpp"

#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {
H5Handle open_or_create_1d(hid_t loc, const std::string& path, hid_t type, hsize_t* size) {
  if (h5_exists(loc, path)) {
    H5Handle ds(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!ds.valid()) throw Error("cannot open time series", path);
    H5Handle space(H5Dget_space(ds.id()));
    H5Sget_simple_extent_dims(space.id(), size, nullptr);
    return ds;
  }
  hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = 1024;
  H5Handle space(H5Screate_simple(1, &zero, &unlimited));
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.id(), 1, &chunk);
  H5Handle ds(H5Dcreate2(loc, path.c_str(), type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT));
  if (!ds.valid()) throw Error("cannot create time series", path);
  *size = 0;
  return ds;
}

void append_one(hid_t ds, hsize_t at, hid_t type, const void* value) {
  hsize_t new_size = at + 1;
  if (H5Dset_extent(ds, &new_size) < 0) throw Error("cannot extend time series");
  H5Handle space(H5Dget_space(ds));
  hsize_t start = at, count = 1;
  H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  H5Handle mem(H5Screate_simple(1, &count, nullptr));
  if (H5Dwrite(ds, type, mem.id(), space.id(), H5P_DEFAULT, value) < 0) throw Error("cannot append to time series");
}
}  // namespace

TimeSeriesWriter::TimeSeriesWriter(hid_t loc, std::string group) : loc_(loc), group_(std::move(group)) {}

TimeSeriesWriter::Series& TimeSeriesWriter::series(const std::string& name) {
  auto it = series_.find(name);
  if (it != series_.end()) return it->second;
  std::string base = group_ + "/" + name;
  h5_require_group(loc_, base);
  Series s;
  hsize_t n_step = 0, n_value = 0;
  s.step = open_or_create_1d(loc_, base + "/step", H5T_NATIVE_INT64, &n_step);
  s.value = open_or_create_1d(loc_, base + "/value", H5T_NATIVE_DOUBLE, &n_value);
  if (n_step != n_value) throw Error("step and value lengths differ", base);
  s.size = n_step;
  return series_.emplace(name, std::move(s)).first->second;
}

void TimeSeriesWriter::append(const std::string& name, int64_t step, double value) {
  Series& s = series(name);
  append_one(s.step.id(), s.size, H5T_NATIVE_INT64, &step);
  append_one(s.value.id(), s.size, H5T_NATIVE_DOUBLE, &value);
  ++s.size;
}

void TimeSeriesWriter::flush() { H5Fflush(loc_, H5F_SCOPE_GLOBAL); }

}  // namespace vardp::io
