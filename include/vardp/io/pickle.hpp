// A restricted pickle reader for PyTorch state dicts (`data.pkl` inside a torch.save zip).
//
// Python's pickle format is a small stack machine whose GLOBAL + REDUCE opcodes call arbitrary
// Python functions: loading an untrusted .pth with pickle runs whatever it names. This reader
// interprets only the opcodes that torch.save emits for a state dict (protocols 2 to 5) and
// only these globals, which it models as data instead of calling anything:
//   collections.OrderedDict             -> an ordered dict (its BUILD metadata is accepted)
//   torch._utils._rebuild_tensor_v2     -> a TensorRecord (dtype, shape, strides, offset)
//   torch._utils._rebuild_parameter     -> the wrapped TensorRecord (nn.Parameter values)
//   torch.<Type>Storage, torch.UntypedStorage -> the storage type of a persistent id
// Every other global, every other opcode, and every malformed stream is rejected with a
// vardp::Error naming it. Nothing in the file is ever executed. Pure C++: no LibTorch here.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vardp::io {

// Element types a state dict may hold.
enum class DType : uint8_t { float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8,
                             boolean };

const char* dtype_name(DType t);     // "float32", "float16", "bfloat16", "bool", ...
size_t dtype_size(DType t);          // bytes per element
bool dtype_from_name(const std::string& name, DType* out);  // inverse of dtype_name

// One tensor of a state dict as the pickle describes it: a strided view of a storage. Counts
// (offset, numel) are in elements of `dtype`.
struct TensorRecord {
  DType dtype = DType::float32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t storage_offset = 0;
  std::string storage_key;     // names the zip record "<prefix>/data/<storage_key>"
  std::string location;        // device it was saved from ("cpu", "cuda:0"): loaded to CPU
  int64_t storage_numel = 0;   // elements in the whole storage
  bool requires_grad = false;
};

struct PickledStateDict {
  std::vector<std::pair<std::string, TensorRecord>> entries;  // file order
  bool ordered = false;        // collections.OrderedDict (true) or a plain dict
  bool has_metadata = false;   // the OrderedDict carried torch's `_metadata` (module versions)
  int protocol = 0;            // pickle protocol from the PROTO opcode (0 when absent)
};

// Interprets `bytes` (a whole data.pkl) and returns the state dict it describes. `context`
// (e.g. "model.pth:archive/data.pkl") prefixes every error message. Validates the structure only
// (types, non-negative sizes, one dtype and numel per storage); storage bounds are checked by the
// caller, who knows the record sizes (see pth.hpp).
PickledStateDict read_state_dict_pickle(const std::string& bytes, const std::string& context);

}  // namespace vardp::io
