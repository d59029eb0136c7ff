#include "vardp/dist/comm.hpp"

#include <cstdlib>

#include "vardp/util/error.hpp"

namespace vardp::dist {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::i32: return 4;
    case DType::u8: return 1;
    case DType::bf16: return 2;
    case DType::f16: return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::i32: return "int32";
    case DType::u8: return "uint8";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
  }
  return "?";
}

double Comm::all_reduce(double v, ReduceOp op) {
  all_reduce(&v, 1, DType::f64, op);
  return v;
}

int64_t Comm::all_reduce(int64_t v, ReduceOp op) {
  all_reduce(&v, 1, DType::i64, op);
  return v;
}

bool Comm::any_flag(bool flag) { return all_reduce(static_cast<int64_t>(flag ? 1 : 0), ReduceOp::max) != 0; }

std::vector<int64_t> Comm::all_gather(int64_t v) {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  all_gather(&v, out.data(), 1, DType::i64);
  return out;
}

std::vector<double> Comm::all_gather(double v) {
  std::vector<double> out(static_cast<size_t>(size()));
  all_gather(&v, out.data(), 1, DType::f64);
  return out;
}

std::string Comm::broadcast(const std::string& s, int root) {
  int64_t n = static_cast<int64_t>(s.size());
  broadcast(&n, 1, DType::i64, root);
  std::string out = rank() == root ? s : std::string(static_cast<size_t>(n), '\0');
  if (n > 0) broadcast(out.data(), static_cast<size_t>(n), DType::u8, root);
  return out;
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void check_world_size_against_slurm(const Comm& comm) {
  const char* ntasks = std::getenv("SLURM_NTASKS");
  if (!ntasks || !*ntasks) return;
  char* end = nullptr;
  long n = std::strtol(ntasks, &end, 10);
  if (end == ntasks || *end != '\0') return;
  if (n != comm.size())
    throw CollectiveError(str("MPI world size is ", comm.size(), " but SLURM_NTASKS=", n,
                              ": launch with srun (or mpirun -np ", n, ") so every task joins one job"),
                          "start-up");
}

void check_same_config(Comm& comm, const std::string& resolved) {
  int64_t h = static_cast<int64_t>(fnv1a64(resolved));
  std::vector<int64_t> all = comm.all_gather(h);
  std::string differing;
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != all[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  if (!differing.empty())
    throw CollectiveError("ranks resolved different configurations (rank(s) " + differing +
                              " differ from rank 0): check that every node sees the same files and options",
                          "start-up");
}

}  // namespace vardp::dist
