// StateDict, format detection, the .pth loader and strict key/shape checks.
#include "vardp/io/state_dict.hpp"

#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <new>
#include <set>

#include "vardp/io/pth.hpp"
#include "vardp/util/error.hpp"

namespace vardp::io {

// ---- StateDict ------------------------------------------------------------------------------

const torch::Tensor& StateDict::at(const std::string& key) const {
  auto it = tensors_.find(key);
  if (it == tensors_.end()) throw Error("state dict has no tensor '" + key + "'");
  return it->second;
}

void StateDict::insert(const std::string& key, torch::Tensor tensor) {
  auto [it, inserted] = tensors_.insert_or_assign(key, std::move(tensor));
  if (inserted) keys_.push_back(key);
}

int64_t StateDict::num_elements() const {
  int64_t n = 0;
  for (const auto& kv : tensors_) n += kv.second.numel();
  return n;
}

int64_t StateDict::num_bytes() const {
  int64_t n = 0;
  for (const auto& kv : tensors_) n += kv.second.numel() * static_cast<int64_t>(kv.second.element_size());
  return n;
}

// ---- dtypes ---------------------------------------------------------------------------------

torch::ScalarType to_scalar_type(DType t) {
  switch (t) {
    case DType::float32: return torch::kFloat32;
    case DType::float64: return torch::kFloat64;
    case DType::float16: return torch::kFloat16;
    case DType::bfloat16: return torch::kBFloat16;
    case DType::int64: return torch::kInt64;
    case DType::int32: return torch::kInt32;
    case DType::int16: return torch::kInt16;
    case DType::int8: return torch::kInt8;
    case DType::uint8: return torch::kUInt8;
    case DType::boolean: return torch::kBool;
  }
  throw Error("unknown dtype");
}

DType from_scalar_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return DType::float32;
    case torch::kFloat64: return DType::float64;
    case torch::kFloat16: return DType::float16;
    case torch::kBFloat16: return DType::bfloat16;
    case torch::kInt64: return DType::int64;
    case torch::kInt32: return DType::int32;
    case torch::kInt16: return DType::int16;
    case torch::kInt8: return DType::int8;
    case torch::kUInt8: return DType::uint8;
    case torch::kBool: return DType::boolean;
    default: break;
  }
  throw Error(std::string("tensors of type ") + c10::toString(t) + " cannot be stored in a state dict file");
}

// ---- format detection -----------------------------------------------------------------------

CheckpointFormat detect_checkpoint_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open the file (missing or unreadable)", path);
  unsigned char head[8] = {0};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const std::streamsize got = in.gcount();
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6)))
    return CheckpointFormat::pth_zip;
  static const unsigned char kHdf5Magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (got == 8 && std::memcmp(head, kHdf5Magic, 8) == 0) return CheckpointFormat::hdf5;
  if (got >= 2 && head[0] == 0x80 && head[1] <= 5)
    throw Error("this is the legacy torch.save format (PyTorch < 1.6 or "
                "_use_new_zipfile_serialization=False), which vardp does not read; re-save it "
                "with torch.save in a current PyTorch", path);
  if (got == 0) throw Error("the file is empty", path);
  // HDF5 allows a user block before the superblock (signature at 512, 1024, ...).
  if (H5Fis_hdf5(path.c_str()) > 0) return CheckpointFormat::hdf5;
  throw Error("neither a torch.save zip file (.pth) nor an HDF5 state dict", path);
}

StateDict load_state_dict(const std::string& path) {
  switch (detect_checkpoint_format(path)) {
    case CheckpointFormat::pth_zip: return load_state_dict_pth(path);
    case CheckpointFormat::hdf5: return load_state_dict_h5(path);
  }
  throw Error("unknown checkpoint format", path);
}

// ---- .pth ------------------------------------------------------------------------------------

namespace {

void check_bool_bytes(const torch::Tensor& t, const std::string& path, const std::string& what) {
  if (t.scalar_type() != torch::kBool) return;
  const auto* p = static_cast<const unsigned char*>(t.data_ptr());
  const int64_t n = t.numel();
  for (int64_t k = 0; k < n; ++k)
    if (p[k] > 1) throw Error(str(what, " holds the byte ", int(p[k]), " in a bool tensor"), path);
}

StateDict load_pth(const std::string& path) {
  const PthReader rd(path);
  const auto& ts = rd.tensors();
  std::vector<torch::Tensor> out(ts.size());
  for (const std::string& skey : rd.storage_order()) {
    const PthStorage& s = rd.storage(skey);
    const auto opts = torch::TensorOptions().dtype(to_scalar_type(s.dtype));
    // A view that is the whole storage in C order can take the storage's bytes as they are.
    auto is_whole = [&](const TensorRecord& r) {
      return r.storage_offset == 0 && checked_numel(r.shape, path) == s.numel &&
             is_contiguous_view(r);
    };
    const std::string what = "storage '" + skey + "'";
    if (s.users.size() == 1 && is_whole(ts[s.users[0]].second)) {
      // The common case (one tensor per storage): read straight into the tensor's memory.
      torch::Tensor t = torch::empty(ts[s.users[0]].second.shape, opts);
      rd.read_storage(skey, t.data_ptr(), s.nbytes);
      check_bool_bytes(t, path, what);
      out[s.users[0]] = std::move(t);
      continue;
    }
    // Shared storage or a strided/partial view: read the storage once, then take each view.
    torch::Tensor buf = torch::empty({s.numel}, opts);
    rd.read_storage(skey, buf.data_ptr(), s.nbytes);
    check_bool_bytes(buf, path, what);
    for (size_t idx : s.users) {
      const TensorRecord& r = ts[idx].second;
      if (is_whole(r)) {
        out[idx] = buf.view(r.shape);  // tied tensors keep sharing memory, as in torch.load
      } else {
        // clone: a partial view must not keep the whole storage alive.
        out[idx] = buf.as_strided(r.shape, r.strides, r.storage_offset)
                       .clone(at::MemoryFormat::Contiguous);
      }
    }
  }
  StateDict sd;
  for (size_t k = 0; k < ts.size(); ++k) sd.insert(ts[k].first, std::move(out[k]));
  return sd;
}

}  // namespace

StateDict load_state_dict_pth(const std::string& path) {
  try {
    return load_pth(path);
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while loading the state dict", path);
  } catch (const c10::Error& e) {
    throw Error(std::string("LibTorch error while loading: ") + e.what_without_backtrace(), path);
  }
}

// ---- strict checks ---------------------------------------------------------------------------

namespace {
std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t k = 0; k < v.size(); ++k) out += (k ? ", " : "") + v[k];
  return out;
}
}  // namespace

void check_keys_and_shapes(const StateDict& got,
                           const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
                           const std::string& what) {
  std::vector<std::string> missing, unexpected, misshaped;
  std::set<std::string> wanted;
  for (const auto& [key, shape] : expected) {
    wanted.insert(key);
    if (!got.contains(key)) {
      missing.push_back(key);
      continue;
    }
    const auto sizes = got.at(key).sizes();
    const std::vector<int64_t> have(sizes.begin(), sizes.end());
    if (have != shape)
      misshaped.push_back(key + " (expected " + shape_text(shape) + ", found " + shape_text(have) + ")");
  }
  for (const auto& key : got.keys())
    if (!wanted.count(key)) unexpected.push_back(key);
  if (missing.empty() && unexpected.empty() && misshaped.empty()) return;
  std::string msg = "state dict does not match the model:";
  if (!missing.empty()) msg += str(" ", missing.size(), " missing key(s): ", join(missing), ";");
  if (!unexpected.empty())
    msg += str(" ", unexpected.size(), " unexpected key(s): ", join(unexpected), ";");
  if (!misshaped.empty())
    msg += str(" ", misshaped.size(), " key(s) with the wrong shape: ", join(misshaped), ";");
  msg.pop_back();
  throw Error(msg, what);
}

}  // namespace vardp::io
