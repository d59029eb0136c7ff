#include "vardp/io/zip_archive.hpp"

#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {

std::string libzip_error(int code) {
  zip_error_t err;
  zip_error_init_with_code(&err, code);
  std::string msg = zip_error_strerror(&err);
  zip_error_fini(&err);
  return msg;
}

// Deflate cannot expand more than about 1032:1; a larger claimed ratio means a corrupted header.
constexpr uint64_t kMaxDeflateRatio = 1032;
// One zip_fread call moves at most this much (libzip takes 64-bit sizes, but the underlying
// read() calls are happier with bounded requests).
constexpr uint64_t kReadChunk = uint64_t{1} << 30;

struct ZipFileCloser {
  void operator()(zip_file_t* f) const {
    if (f) zip_fclose(f);
  }
};
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

}  // namespace

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("no such file (or not a regular file)", path);
  file_size_ = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot determine the file size: " + ec.message(), path);

  int code = 0;
  // ZIP_CHECKCONS: compare every local header with its central-directory entry.
  za_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!za_) throw Error("not a readable zip archive (" + libzip_error(code) + ")", path);

  const zip_int64_t n = zip_get_num_entries(za_, 0);
  if (n < 0) throw Error("cannot count the zip entries", path);
  entries_.reserve(static_cast<size_t>(n));
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za_, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW, &st) != 0)
      throw Error(str("cannot stat zip entry ", i, " (", zip_strerror(za_), ")"), path);
    const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
                              ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need || !st.name)
      throw Error(str("zip entry ", i, " lacks its name, sizes or method"), path);
    ZipEntry e;
    e.name = st.name;
    e.index = static_cast<uint64_t>(i);
    e.size = st.size;
    e.compressed_size = st.comp_size;
    e.method = st.comp_method;
    // Sizes a valid archive cannot have: more stored bytes than the file holds, or a
    // decompressed size beyond what deflate can produce. Checking here keeps absurd sizes from
    // ever reaching an allocation.
    if (e.compressed_size > file_size_)
      throw Error(str("zip entry '", e.name, "' claims ", e.compressed_size,
                      " compressed bytes in a file of ", file_size_), path);
    if (e.method == ZIP_CM_STORE && e.size != e.compressed_size)
      throw Error(str("stored zip entry '", e.name, "' has size ", e.size,
                      " but compressed size ", e.compressed_size), path);
    if (e.method != ZIP_CM_STORE &&
        e.size / kMaxDeflateRatio > e.compressed_size + 1)
      throw Error(str("zip entry '", e.name, "' claims an impossible expansion (", e.size,
                      " bytes from ", e.compressed_size, ")"), path);
    if (!by_name_.emplace(e.name, entries_.size()).second)
      throw Error("duplicate zip entry name '" + e.name + "'", path);
    entries_.push_back(std::move(e));
  }
}

ZipArchive::~ZipArchive() {
  if (za_) zip_discard(za_);  // read-only: nothing to write back
}

ZipArchive::ZipArchive(ZipArchive&& o) noexcept
    : path_(std::move(o.path_)), file_size_(o.file_size_), za_(o.za_),
      entries_(std::move(o.entries_)), by_name_(std::move(o.by_name_)) {
  o.za_ = nullptr;
}

ZipArchive& ZipArchive::operator=(ZipArchive&& o) noexcept {
  if (this != &o) {
    if (za_) zip_discard(za_);
    path_ = std::move(o.path_);
    file_size_ = o.file_size_;
    za_ = o.za_;
    o.za_ = nullptr;
    entries_ = std::move(o.entries_);
    by_name_ = std::move(o.by_name_);
  }
  return *this;
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const ZipEntry& ZipArchive::at(const std::string& name) const {
  const ZipEntry* e = find(name);
  if (!e) throw Error("zip entry '" + name + "' is missing", path_);
  return *e;
}

std::string ZipArchive::read(const ZipEntry& entry, uint64_t max_size) const {
  if (entry.size > max_size)
    throw Error(str("zip entry '", entry.name, "' has ", entry.size, " bytes, more than the ",
                    max_size, " allowed for it"), path_);
  std::string out(static_cast<size_t>(entry.size), '\0');
  read_into(entry, out.data(), entry.size);
  return out;
}

void ZipArchive::read_into(const ZipEntry& entry, void* dst, uint64_t nbytes) const {
  if (nbytes != entry.size)
    throw Error(str("zip entry '", entry.name, "' has ", entry.size, " bytes, expected ", nbytes),
                path_);
  ZipFilePtr f(zip_fopen_index(za_, entry.index, 0));
  if (!f)
    throw Error(str("cannot open zip entry '", entry.name, "' (", zip_strerror(za_), ")"), path_);
  auto* out = static_cast<char*>(dst);
  uint64_t done = 0;
  while (done < nbytes) {
    const uint64_t want = std::min(kReadChunk, nbytes - done);
    const zip_int64_t got = zip_fread(f.get(), out + done, want);
    if (got < 0)
      throw Error(str("reading zip entry '", entry.name, "' failed (", zip_file_strerror(f.get()),
                      ")"), path_);
    if (got == 0)
      throw Error(str("zip entry '", entry.name, "' ended after ", done, " of ", nbytes,
                      " bytes (truncated file?)"), path_);
    done += static_cast<uint64_t>(got);
  }
  // Reading past the end is what makes libzip compare the CRC-32.
  char extra = 0;
  const zip_int64_t tail = zip_fread(f.get(), &extra, 1);
  if (tail < 0)
    throw Error(str("zip entry '", entry.name, "' is corrupted (", zip_file_strerror(f.get()),
                    ")"), path_);
  if (tail > 0)
    throw Error(str("zip entry '", entry.name, "' holds more data than its declared size"), path_);
  if (zip_fclose(f.release()) != 0)
    throw Error(str("closing zip entry '", entry.name, "' reported an error"), path_);
}

}  // namespace vardp::io
