// Atomic outputs (ARCHITECTURE invariant 7): write to "<path>.tmp-<pid>", flush, fsync, rename.
// A killed job never leaves a file under the final name that looks complete but is not.
#pragma once
#include <string>

#include "vardp/io/h5.hpp"

namespace vardp::io {

class AtomicH5File {
 public:
  explicit AtomicH5File(std::string final_path);
  ~AtomicH5File();  // without commit(): the temporary file is removed
  AtomicH5File(const AtomicH5File&) = delete;
  AtomicH5File& operator=(const AtomicH5File&) = delete;

  hid_t id() const { return file_.id(); }
  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }
  // Flushes and closes the HDF5 file, fsyncs it, renames it into place, fsyncs the directory.
  void commit();

 private:
  std::string final_path_;
  std::string temp_path_;
  H5File file_;
  bool committed_ = false;
};

// Writes a small text file atomically (markers such as `latest`). `mode` is the file's mode
// (less the umask), e.g. 0600 for private run state such as secret.key.
void write_text_atomic(const std::string& path, const std::string& content, unsigned mode = 0644);
// fsync of a path (file or directory); throws on failure.
void fsync_path(const std::string& path);

}  // namespace vardp::io
