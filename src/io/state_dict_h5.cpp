// vardp's HDF5 state-dict files (layout documented in state_dict.hpp).
#include <hdf5.h>

#include <new>
#include <set>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {

// IEEE binary16, built the way h5py describes numpy.float16, so analysis scripts get float16.
H5Handle half_type() {
  H5Handle t(H5Tcopy(H5T_IEEE_F32LE));
  if (!t.valid() || H5Tset_fields(t.id(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.id(), 2) < 0 ||
      H5Tset_ebias(t.id(), 15) < 0)
    throw Error("cannot build the HDF5 float16 type");
  return t;
}

// File and memory types of one dtype. `owned` keeps a derived type alive.
struct TypePair {
  hid_t file = -1;
  hid_t mem = -1;
  H5Handle owned;
};

TypePair types_of(DType dt) {
  TypePair p;
  switch (dt) {
    case DType::float32: p.file = H5T_IEEE_F32LE; p.mem = H5T_NATIVE_FLOAT; break;
    case DType::float64: p.file = H5T_IEEE_F64LE; p.mem = H5T_NATIVE_DOUBLE; break;
    case DType::int64: p.file = H5T_STD_I64LE; p.mem = H5T_NATIVE_INT64; break;
    case DType::int32: p.file = H5T_STD_I32LE; p.mem = H5T_NATIVE_INT32; break;
    case DType::int16: p.file = H5T_STD_I16LE; p.mem = H5T_NATIVE_INT16; break;
    case DType::int8: p.file = H5T_STD_I8LE; p.mem = H5T_NATIVE_INT8; break;
    case DType::uint8:
    case DType::boolean: p.file = H5T_STD_U8LE; p.mem = H5T_NATIVE_UINT8; break;
    case DType::bfloat16: p.file = H5T_STD_U16LE; p.mem = H5T_NATIVE_UINT16; break;
    case DType::float16:
      p.owned = half_type();
      p.file = p.owned.id();
      p.mem = p.owned.id();  // same bytes in memory (little-endian host)
      break;
  }
  return p;
}

// The stored type must be what the dtype attribute says: no silent conversions on read.
bool stored_type_matches(hid_t ftype, DType dt) {
  const H5T_class_t cls = H5Tget_class(ftype);
  const size_t size = H5Tget_size(ftype);
  if (size != dtype_size(dt)) return false;
  switch (dt) {
    case DType::float32:
    case DType::float64:
    case DType::float16: return cls == H5T_FLOAT;
    case DType::int64:
    case DType::int32:
    case DType::int16:
    case DType::int8: return cls == H5T_INTEGER && H5Tget_sign(ftype) == H5T_SGN_2;
    case DType::uint8:
    case DType::boolean:
    case DType::bfloat16: return cls == H5T_INTEGER && H5Tget_sign(ftype) == H5T_SGN_NONE;
  }
  return false;
}

void check_key_name(const std::string& key, const std::string& path) {
  if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
      key.find('\0') != std::string::npos)
    throw Error("state dict key '" + key + "' cannot be an HDF5 dataset name (empty, '.', "
                "'..' or containing '/')", path);
}

H5Handle utf8_link_plist() {
  H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  if (!lcpl.valid() || H5Pset_char_encoding(lcpl.id(), H5T_CSET_UTF8) < 0)
    throw Error("cannot create an HDF5 link property list");
  return lcpl;
}

StateDict load_h5(const std::string& path) {
  H5File file = H5File::open(path);
  check_format(file.id(), path, kStateDictFormat, kStateDictFormatVersion);
  return read_state_dict_group(file.id(), "tensors", path);
}

}  // namespace

StateDict read_state_dict_group(hid_t loc, const std::string& group, const std::string& path) {
  if (!h5_exists(loc, group)) throw Error("no state-dict group /" + group, path);
  H5Handle g = h5_open_group(loc, group);
  const std::vector<std::string> keys = h5_read_attr_strings(g.id(), "keys");
  const std::vector<std::string> names = h5_list(loc, group);
  std::set<std::string> listed;
  for (const auto& k : keys)
    if (!listed.insert(k).second) throw Error("/" + group + "@keys lists '" + k + "' twice", path);
  const std::set<std::string> present(names.begin(), names.end());
  for (const auto& k : keys)
    if (!present.count(k)) throw Error("/" + group + "@keys lists '" + k + "' but it has no dataset", path);
  for (const auto& n : names)
    if (!listed.count(n)) throw Error("dataset /" + group + "/" + n + " is not listed in /" + group + "@keys", path);

  StateDict sd;
  for (const auto& key : keys) {
    const std::string where = path + ":/" + group + "/" + key;
    H5Handle d(H5Dopen2(g.id(), key.c_str(), H5P_DEFAULT));
    if (!d.valid()) throw Error("cannot open the dataset", where);
    DType dt;
    const std::string dname = h5_read_attr_string(d.id(), "dtype");
    if (!dtype_from_name(dname, &dt)) throw Error("unknown dtype '" + dname + "'", where);
    H5Handle ftype(H5Dget_type(d.id()));
    if (!ftype.valid() || !stored_type_matches(ftype.id(), dt))
      throw Error("stored element type does not match its dtype attribute '" + dname + "'", where);
    H5Handle space(H5Dget_space(d.id()));
    const int rank = H5Sget_simple_extent_ndims(space.id());
    if (rank < 0 || rank > 64) throw Error("cannot read the dataset's shape", where);
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr) < 0)
      throw Error("cannot read the dataset's shape", where);
    std::vector<int64_t> shape(dims.begin(), dims.end());
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(to_scalar_type(dt)));
    if (t.numel() > 0) {
      TypePair tp = types_of(dt);
      if (H5Dread(d.id(), tp.mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
        throw Error("cannot read the dataset", where);
    }
    if (dt == DType::boolean) {
      const auto* p = static_cast<const unsigned char*>(t.data_ptr());
      for (int64_t k = 0; k < t.numel(); ++k)
        if (p[k] > 1) throw Error("bool dataset holds a value other than 0 and 1", where);
    }
    sd.insert(key, std::move(t));
  }
  return sd;
}

StateDict load_state_dict_h5(const std::string& path) {
  try {
    return load_h5(path);
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while loading the state dict", path);
  } catch (const c10::Error& e) {
    throw Error(std::string("LibTorch error while loading: ") + e.what_without_backtrace(), path);
  }
}

void write_state_dict_group(hid_t loc, const std::string& group, const StateDict& sd,
                            const std::string& path) {
  for (const auto& key : sd.keys()) check_key_name(key, path);
  H5Handle g = h5_require_group(loc, group);
  h5_write_attr(g.id(), "keys", sd.keys());
  H5Handle lcpl = utf8_link_plist();
  for (const auto& key : sd.keys()) {
    const std::string where = path + ":/" + group + "/" + key;
    torch::Tensor t = sd.at(key).detach();
    if (!t.device().is_cpu()) t = t.cpu();
    t = t.contiguous();
    const DType dt = from_scalar_type(t.scalar_type());
    TypePair tp = types_of(dt);
    std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    if (!space.valid()) throw Error("cannot create the dataspace", where);
    H5Handle d(H5Dcreate2(g.id(), key.c_str(), tp.file, space.id(), lcpl.id(), H5P_DEFAULT,
                          H5P_DEFAULT));
    if (!d.valid()) throw Error("cannot create the dataset", where);
    if (t.numel() > 0 &&
        H5Dwrite(d.id(), tp.mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
      throw Error("cannot write the dataset", where);
    h5_write_attr(d.id(), "dtype", dtype_name(dt));
  }
}

void save_state_dict_h5(const StateDict& sd, const std::string& path, const Provenance& provenance,
                        const std::function<void(hid_t)>& annotate) {
  for (const auto& key : sd.keys()) {
    check_key_name(key, path);
    from_scalar_type(sd.at(key).scalar_type());  // throws for unsupported dtypes before writing
  }
  AtomicH5File file(path);
  Provenance p = provenance;
  p.format = kStateDictFormat;
  p.format_version = kStateDictFormatVersion;
  write_provenance(file.id(), p);
  h5_write_attr(file.id(), "num_tensors", static_cast<int64_t>(sd.size()));
  write_state_dict_group(file.id(), "tensors", sd, path);
  if (annotate) annotate(file.id());
  file.commit();
}

}  // namespace vardp::io
