// State dicts (name -> tensor, ordered) and the two file formats vardp reads them from:
//  * PyTorch `torch.save` zip files (.pth/.pt, e.g. the published VAR checkpoints), read with
//    the restricted pickle reader of pickle.hpp: nothing in the file is executed;
//  * vardp's own HDF5 state-dict files (format "vardp.state_dict", version 1), written by
//    save_state_dict_h5. The format is detected from the file's content, not its name.
//
// HDF5 layout ("vardp.state_dict", format_version 1):
//   /                 provenance attributes (provenance.hpp); format = "vardp.state_dict"
//   /tensors          group; attribute `keys`: tensor names in state-dict order (string array)
//   /tensors/<key>    one dataset per tensor with the tensor's shape (scalar dataspace for 0-d)
//                     and its original element type; attribute `dtype` names it:
//                       float32, float64, int64, int32, int16, int8, uint8: the matching type
//                       float16  : IEEE binary16 (h5py reads numpy.float16)
//                       bfloat16 : uint16 holding the bfloat16 bit pattern
//                       bool     : uint8 holding 0 or 1
//   Keys may contain dots ("blocks.0.attn.proj.weight") but no '/'.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vardp/io/pickle.hpp"
#include "vardp/io/provenance.hpp"

namespace vardp::io {

inline constexpr const char* kStateDictFormat = "vardp.state_dict";
inline constexpr int64_t kStateDictFormatVersion = 1;

// Insertion-ordered map from names to CPU tensors.
class StateDict {
 public:
  const std::vector<std::string>& keys() const { return keys_; }
  bool contains(const std::string& key) const { return tensors_.count(key) != 0; }
  // Throws vardp::Error naming the key if it is absent.
  const torch::Tensor& at(const std::string& key) const;
  // A new key goes last; an existing key keeps its position and gets the new tensor (as a Python
  // dict does).
  void insert(const std::string& key, torch::Tensor tensor);
  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  int64_t num_elements() const;  // sum of numel() over all tensors
  int64_t num_bytes() const;     // sum of numel() * element size

 private:
  std::vector<std::string> keys_;
  std::unordered_map<std::string, torch::Tensor> tensors_;
};

// DType <-> LibTorch element type; from_scalar_type throws for types a state dict file cannot
// hold (complex, quantized, ...).
torch::ScalarType to_scalar_type(DType t);
DType from_scalar_type(torch::ScalarType t);

enum class CheckpointFormat { pth_zip, hdf5 };

// Sniffs the file's first bytes. Throws a clear Error for missing files, the pre-1.6 torch.save
// format, and anything else that is neither a zip nor HDF5.
CheckpointFormat detect_checkpoint_format(const std::string& path);

// Loads a .pth (zip) or vardp HDF5 state dict into contiguous CPU tensors of the stored dtype
// (float32/float16/bfloat16/float64/int64/int32/int16/int8/uint8/bool), honouring strides and
// storage offsets. Storage bytes are read straight into tensor memory: peak memory stays below
// twice the file size. Any problem throws vardp::Error naming the file (and key); nothing is
// returned partially.
StateDict load_state_dict(const std::string& path);
StateDict load_state_dict_pth(const std::string& path);
StateDict load_state_dict_h5(const std::string& path);

// Writes `sd` in the HDF5 layout above, atomically (AtomicH5File). `provenance` supplies the
// config and world size; its format and format_version are replaced by the state-dict ones.
// `annotate`, if given, writes more into the open file before it is committed (vardp merge: the
// privacy stamp of train/release.hpp), so the file never appears under its name without it.
void save_state_dict_h5(const StateDict& sd, const std::string& path, const Provenance& provenance,
                        const std::function<void(hid_t)>& annotate = {});

// The /tensors group of the layout above under any location and group name (checkpoints hold
// several such groups). `path` names the file in errors.
void write_state_dict_group(hid_t loc, const std::string& group, const StateDict& sd,
                            const std::string& path);
StateDict read_state_dict_group(hid_t loc, const std::string& group, const std::string& path);

// Strict loading: throws one vardp::Error (prefixed by `what`, e.g. "VAR checkpoint x.pth") that
// lists every missing, unexpected and mis-shaped key by name. Returns normally if all match.
void check_keys_and_shapes(const StateDict& got,
                           const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
                           const std::string& what);

}  // namespace vardp::io
