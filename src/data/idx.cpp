#include "vardp/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <memory>

#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

void read_exact(gzFile f, void* out, size_t n, const std::string& path) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    const unsigned chunk = unsigned(std::min<size_t>(n, 1u << 30));
    const int got = gzread(f, p, chunk);
    if (got <= 0) throw Error("truncated or corrupt IDX file", path);
    p += got;
    n -= size_t(got);
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

IdxArray read_idx_ubyte(const std::string& path) {
  GzPtr f(gzopen(path.c_str(), "rb"));
  if (!f) throw Error("cannot open IDX file", path);
  uint8_t magic[4];
  read_exact(f.get(), magic, 4, path);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4)
    throw Error("not an unsigned-byte IDX file (bad magic)", path);
  IdxArray a;
  size_t total = 1;
  for (int i = 0; i < magic[3]; ++i) {
    uint8_t b[4];
    read_exact(f.get(), b, 4, path);
    a.dims.push_back(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]);
    total *= a.dims.back();
  }
  if (total > (size_t(1) << 34)) throw Error("IDX dimensions implausibly large", path);
  a.data.resize(total);
  read_exact(f.get(), a.data.data(), total, path);
  return a;
}

void write_idx_ubyte(const std::string& path, const IdxArray& array) {
  GzPtr f(gzopen(path.c_str(), ends_with(path, ".gz") ? "wb" : "wbT"));
  if (!f) throw Error("cannot create IDX file", path);
  std::vector<uint8_t> header = {0, 0, 0x08, uint8_t(array.dims.size())};
  for (uint32_t d : array.dims)
    for (int s = 24; s >= 0; s -= 8) header.push_back(uint8_t(d >> s));
  bool ok = gzwrite(f.get(), header.data(), unsigned(header.size())) == int(header.size());
  if (!array.data.empty())
    ok = ok && gzwrite(f.get(), array.data.data(), unsigned(array.data.size())) ==
                   int(array.data.size());
  if (!ok || gzclose(f.release()) != Z_OK) throw Error("cannot write IDX file", path);
}

}  // namespace vardp::data
