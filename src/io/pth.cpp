#include "vardp/io/pth.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "vardp/util/error.hpp"

// Storage bytes are copied as they are; the byte order record decides whether to swap.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vardp assumes a little-endian host");

namespace vardp::io {
namespace {

// data.pkl of a state dict is ~250 bytes per tensor; 256 MiB is far beyond any real model and
// keeps a corrupted directory from asking for an absurd allocation.
constexpr uint64_t kMaxPickleBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxSmallRecord = 4096;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

void byteswap_inplace(void* data, uint64_t nbytes, size_t elem) {
  if (elem <= 1) return;
  auto* p = static_cast<unsigned char*>(data);
  for (uint64_t k = 0; k + elem <= nbytes; k += elem) std::reverse(p + k, p + k + elem);
}

}  // namespace

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& context) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(str("negative dimension ", d), context);
    if (__builtin_mul_overflow(n, d, &n))
      throw Error("tensor size overflows 64-bit arithmetic", context);
  }
  return n;
}

bool is_contiguous_view(const TensorRecord& r) {
  int64_t expected = 1;
  for (size_t k = r.shape.size(); k-- > 0;) {
    if (r.shape[k] == 0) return true;  // no elements: any layout is contiguous
    if (r.shape[k] != 1 && r.strides[k] != expected) return false;
    expected *= r.shape[k];  // cannot overflow: numel was checked when the record was validated
  }
  return true;
}

PthReader::PthReader(const std::string& path) : zip_(path) {
  // ---- locate <prefix>/data.pkl ----
  const ZipEntry* pkl = nullptr;
  bool torchscript = false;
  for (const ZipEntry& e : zip_.entries()) {
    const auto slash = e.name.find('/');
    if (slash == std::string::npos) continue;
    const std::string rest = e.name.substr(slash + 1);
    if (rest == "data.pkl") {
      if (pkl)
        throw Error("two data.pkl records ('" + pkl->name + "' and '" + e.name + "')", path);
      pkl = &e;
    }
    if (rest == "constants.pkl" || rest.rfind("code/", 0) == 0) torchscript = true;
  }
  // torch.jit.save archives also hold a data.pkl, but of a scripted module.
  if (torchscript)
    throw Error("this is a TorchScript archive (torch.jit.save), not a torch.save state dict", path);
  if (!pkl) throw Error("zip archive has no <name>/data.pkl record: not a torch.save file", path);
  prefix_ = pkl->name.substr(0, pkl->name.find('/'));
  const std::string dir = prefix_ + "/";

  // ---- small records ----
  for (const char* name : {"version", ".data/version"}) {
    if (const ZipEntry* v = zip_.find(dir + name)) {
      const std::string text = trim(zip_.read(*v, kMaxSmallRecord));
      char* end = nullptr;
      const long long x = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || x < 0)
        throw Error("record '" + v->name + "' is not a version number", path);
      version_ = x;
      break;
    }
  }
  if (const ZipEntry* bo = zip_.find(dir + "byteorder")) {
    const std::string order = trim(zip_.read(*bo, kMaxSmallRecord));
    if (order == "big") {
      big_endian_ = true;
    } else if (order != "little") {
      throw Error("record '" + bo->name + "' names an unknown byte order", path);
    }
  }

  // ---- the pickle ----
  pickled_ = read_state_dict_pickle(zip_.read(*pkl, kMaxPickleBytes), path + ":" + pkl->name);

  // ---- storages and bounds ----
  for (size_t idx = 0; idx < pickled_.entries.size(); ++idx) {
    const auto& [key, r] = pickled_.entries[idx];
    const std::string ctx = path + ": tensor '" + key + "'";
    auto it = storages_.find(r.storage_key);
    if (it == storages_.end()) {
      PthStorage s;
      s.key = r.storage_key;
      s.dtype = r.dtype;
      s.numel = r.storage_numel;
      if (__builtin_mul_overflow(static_cast<uint64_t>(s.numel), dtype_size(s.dtype), &s.nbytes))
        throw Error("storage size overflows 64-bit arithmetic", ctx);
      const std::string record = dir + "data/" + s.key;
      s.entry = zip_.find(record);
      if (!s.entry) throw Error("its storage record '" + record + "' is missing", ctx);
      if (s.entry->size != s.nbytes)
        throw Error(str("storage record '", record, "' has ", s.entry->size, " bytes, but the ",
                        "pickle declares ", s.numel, " x ", dtype_name(s.dtype), " = ", s.nbytes),
                    ctx);
      it = storages_.emplace(s.key, std::move(s)).first;
      storage_order_.push_back(r.storage_key);
    }
    it->second.users.push_back(idx);

    const int64_t numel = checked_numel(r.shape, ctx);
    if (numel > 0) {
      // Highest element index touched: offset + sum (size_k - 1) * stride_k.
      int64_t last = r.storage_offset;
      for (size_t k = 0; k < r.shape.size(); ++k) {
        int64_t span;
        if (__builtin_mul_overflow(r.shape[k] - 1, r.strides[k], &span) ||
            __builtin_add_overflow(last, span, &last))
          throw Error("tensor extent overflows 64-bit arithmetic", ctx);
      }
      if (last >= r.storage_numel)
        throw Error(str("view (offset ", r.storage_offset, ") reaches element ", last,
                        " of storage '", r.storage_key, "' which has ", r.storage_numel),
                    ctx);
    } else if (r.storage_offset > r.storage_numel) {
      throw Error(str("storage offset ", r.storage_offset, " beyond storage '", r.storage_key,
                      "' of ", r.storage_numel, " elements"), ctx);
    }
  }
}

const PthStorage& PthReader::storage(const std::string& key) const {
  auto it = storages_.find(key);
  if (it == storages_.end()) throw Error("no storage '" + key + "'", path());
  return it->second;
}

void PthReader::read_storage(const std::string& key, void* dst, uint64_t nbytes) const {
  const PthStorage& s = storage(key);
  zip_.read_into(*s.entry, dst, nbytes);
  if (big_endian_) byteswap_inplace(dst, nbytes, dtype_size(s.dtype));
}

}  // namespace vardp::io
