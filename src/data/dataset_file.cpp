#include "vardp/data/dataset_file.hpp"

#include <algorithm>

#include "vardp/data/sha256.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {

RowAppender::RowAppender(hid_t loc, const std::string& path, const std::vector<hsize_t>& row_shape,
                         int compression)
    : path_(path), row_shape_(row_shape) {
  for (hsize_t d : row_shape_) row_bytes_ *= size_t(d);
  std::vector<hsize_t> dims = {0}, maxdims = {H5S_UNLIMITED}, chunk = {1};
  dims.insert(dims.end(), row_shape_.begin(), row_shape_.end());
  maxdims.insert(maxdims.end(), row_shape_.begin(), row_shape_.end());
  chunk[0] = std::max<hsize_t>(1, hsize_t((64 << 10) / std::max<size_t>(row_bytes_, 1)));
  chunk.insert(chunk.end(), row_shape_.begin(), row_shape_.end());
  io::H5Handle space(H5Screate_simple(int(dims.size()), dims.data(), maxdims.data()));
  io::H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!space.valid() || !dcpl.valid() ||
      H5Pset_chunk(dcpl.id(), int(chunk.size()), chunk.data()) < 0)
    throw Error("cannot set up chunked dataset", path);
  if (compression > 0 && H5Pset_deflate(dcpl.id(), unsigned(std::min(compression, 9))) < 0)
    throw Error("cannot enable gzip compression", path);
  io::H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  dset_ = io::H5Handle(
      H5Dcreate2(loc, path.c_str(), H5T_NATIVE_UINT8, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT));
  if (!dset_.valid()) throw Error("cannot create dataset", path);
}

void RowAppender::append(const uint8_t* rows, hsize_t n) {
  if (n == 0) return;
  std::vector<hsize_t> dims = {rows_ + n};
  dims.insert(dims.end(), row_shape_.begin(), row_shape_.end());
  if (H5Dset_extent(dset_.id(), dims.data()) < 0) throw Error("cannot extend dataset", path_);
  io::H5Handle file_space(H5Dget_space(dset_.id()));
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = rows_;
  count[0] = n;
  if (H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr) < 0)
    throw Error("cannot select rows", path_);
  io::H5Handle mem_space(H5Screate_simple(int(count.size()), count.data(), nullptr));
  if (H5Dwrite(dset_.id(), H5T_NATIVE_UINT8, mem_space.id(), file_space.id(), H5P_DEFAULT, rows) < 0)
    throw Error(str("cannot write rows ", rows_, "..", rows_ + n), path_);
  rows_ += n;
}

DatasetInfo read_dataset_info(hid_t file, const std::string& path) {
  DatasetInfo info;
  info.path = path;
  info.format_version = io::check_format(file, path, kDatasetFormat, kDatasetFormatVersion);
  const std::vector<hsize_t> dims = io::h5_dims(file, "images");
  if (dims.size() != 4 || dims[1] != dims[2] || dims[3] != 3)
    throw Error("/images is not (N, S, S, 3)", path);
  info.num_examples = int64_t(dims[0]);
  info.resolution = int64_t(dims[1]);
  const std::vector<hsize_t> ldims = io::h5_dims(file, "labels");
  if (ldims.size() != 1 || ldims[0] != dims[0])
    throw Error(str("/labels does not hold ", dims[0], " entries"), path);
  info.image_size = io::h5_read_attr_int(file, "image_size");
  info.num_classes = io::h5_read_attr_int(file, "num_classes");
  info.class_names = io::h5_read_attr_strings(file, "class_names");
  info.original_class_ids = io::h5_read_attr_ints(file, "original_class_ids");
  info.source = io::h5_read_attr_string(file, "source");
  info.split = io::h5_read_attr_string(file, "split");
  info.images_sha256 = io::h5_read_attr_string(file, "images_sha256");
  if (int64_t(info.class_names.size()) != info.num_classes)
    throw Error("class_names and num_classes disagree", path);
  return info;
}

DatasetInfo read_dataset_info(const std::string& path) {
  io::H5File f = io::H5File::open(path);
  return read_dataset_info(f.id(), path);
}

std::string compute_images_sha256(const std::string& path) {
  io::H5File f = io::H5File::open(path);
  const std::vector<hsize_t> dims = io::h5_dims(f.id(), "images");
  if (dims.empty()) throw Error("/images has no rows", path);
  size_t row_bytes = 1;
  for (size_t i = 1; i < dims.size(); ++i) row_bytes *= size_t(dims[i]);
  const hsize_t block = std::max<hsize_t>(1, hsize_t((32 << 20) / std::max<size_t>(row_bytes, 1)));
  Sha256 sha;
  for (hsize_t r = 0; r < dims[0]; r += block) {
    const hsize_t n = std::min(block, dims[0] - r);
    const std::vector<uint8_t> rows = io::h5_read_rows<uint8_t>(f.id(), "images", r, n);
    sha.update(rows.data(), rows.size());
  }
  return sha.hex_digest();
}

}  // namespace vardp::data
