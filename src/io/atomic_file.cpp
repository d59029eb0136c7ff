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

void write_text_atomic(const std::string& path, const std::string& content, unsigned mode) {
  std::string tmp = temp_name(path);
  {
    // O_EXCL after removing a stale temporary: a leftover file of wider mode is never reused,
    // so a private file (mode 0600) is private from its first byte.
    std::remove(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
    if (fd < 0) throw Error(str("cannot write: ", std::strerror(errno)), tmp);
    bool ok = true;
    size_t done = 0;
    while (ok && done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += static_cast<size_t>(n);
    }
    ok = ::fsync(fd) == 0 && ok;
    ok = ::close(fd) == 0 && ok;
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
