#include "vardp/train/run_secret.hpp"

#include <sys/stat.h>

#include <array>
#include <fstream>
#include <sstream>

#include "vardp/io/atomic_file.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::train {

dp::RunSecret read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read the run secret file", path);
  std::ostringstream text;
  text << in.rdbuf();
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    log::warn(path, " is readable by other users (mode ", std::oct, (st.st_mode & 0777), std::dec,
              "): whoever reads the run secret can regenerate the DP noise; chmod 600 it");
  return dp::RunSecret::from_hex(text.str(), path);
}

RunSecretInfo establish_run_secret(dist::Comm& comm, const std::string& secret_file, const std::string& run_dir,
                                   bool may_create) {
  RunSecretInfo info;
  std::string error;
  if (comm.is_root()) {
    try {
      if (!secret_file.empty()) {
        info = {read_secret_file(secret_file), "supplied", secret_file};
      } else {
        const std::string path = run_dir + "/" + kSecretFileName;
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0) {
          info = {read_secret_file(path), "generated", path};
        } else if (may_create) {
          ::mkdir(run_dir.c_str(), 0755);
          info = {dp::RunSecret::generate(), "generated", path};
          io::write_text_atomic(path, info.secret.to_hex() + "\n", 0600);
        } else {
          throw UsageError("the run has checkpoints but no " + std::string(kSecretFileName) +
                               ": the noise and lots of its steps cannot be reproduced, so resuming would draw "
                               "different coins for replayed steps; start a new run directory",
                           path);
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  error = comm.broadcast(error, 0);
  if (!error.empty()) throw CollectiveError(error, "run secret", /*usage=*/true);
  // The secret travels to the other ranks only through the communicator, never through a file
  // they would share, so node-local run directories work too.
  std::array<uint8_t, dp::RunSecret::kBytes> bytes = info.secret.bytes();
  comm.broadcast(bytes.data(), bytes.size(), dist::DType::u8, 0);
  info.secret = dp::RunSecret::from_bytes(bytes);
  info.source = comm.broadcast(info.source, 0);
  info.path = comm.broadcast(info.path, 0);
  return info;
}

}  // namespace vardp::train
