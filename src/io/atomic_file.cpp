#include "vardp/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "vardp/util/error.hpp"

namespace vardp::io {
namespace {
std::string temp_name(const std::string& final_path) {
  return final_path + ".tmp-" + std::to_string(::getpid());
}
std::string dir_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
}  // namespace

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(str("cannot open for fsync: ", std::strerror(errno)), path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); that is not a data-loss risk.
  if (rc != 0 && err != EINVAL) throw Error(str("fsync failed: ", std::strerror(err)), path);
}

AtomicH5File::AtomicH5File(std::string final_path)
    : final_path_(std::move(final_path)), temp_path_(temp_name(final_path_)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_of(final_path_), ec);
  file_ = H5File::create(temp_path_);
}

AtomicH5File::~AtomicH5File() {
  if (!committed_) {
    file_.close();
    std::remove(temp_path_.c_str());
  }
}

void AtomicH5File::commit() {
  if (committed_) return;
  file_.flush();
  file_.close();
  fsync_path(temp_path_);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    throw Error(str("cannot rename ", temp_path_, " into place: ", std::strerror(errno)), final_path_);
  committed_ = true;
  fsync_path(dir_of(final_path_));
}

void write_text_atomic(const std::string& path, const std::string& content) {
  std::string tmp = temp_name(path);
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(str("cannot write: ", std::strerror(errno)), tmp);
    bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    ok = std::fflush(f) == 0 && ok;
    ok = ::fsync(::fileno(f)) == 0 && ok;
    std::fclose(f);
    if (!ok) {
      std::remove(tmp.c_str());
      throw Error("write failed", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(str("cannot rename into place: ", std::strerror(errno)), path);
  }
  fsync_path(dir_of(path));
}

}  // namespace vardp::io
