// Communication between ranks. The interface is on raw buffers so that most code needs no
// LibTorch headers; tensor_comm.hpp adds tensor overloads (and NCCL for CUDA tensors).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vardp::dist {

enum class DType { f32, f64, i64, i32, u8, bf16, f16 };
enum class ReduceOp { sum, max, min };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;   // rank among the processes on this node
  virtual int local_size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" | "single"

  virtual void barrier() = 0;
  virtual void broadcast(void* data, size_t count, DType type, int root) = 0;
  // In place on every rank.
  virtual void all_reduce(void* data, size_t count, DType type, ReduceOp op) = 0;
  // recv holds size()*count elements, rank r's block at r*count.
  virtual void all_gather(const void* send, void* recv, size_t count, DType type) = 0;
  // Collective: splits the ranks by `color` (ordered by `key`, then by rank) into new
  // communicators, like MPI_Comm_split; e.g. the view groups of the training job.
  virtual std::unique_ptr<Comm> split(int color, int key) = 0;
  // Ends every process of the job now with `code` (MPI_Abort). Never returns.
  [[noreturn]] virtual void abort(int code) = 0;

  // Scalar conveniences.
  double all_reduce(double v, ReduceOp op);
  int64_t all_reduce(int64_t v, ReduceOp op);
  // True on every rank if `flag` is true on any rank (collective).
  bool any_flag(bool flag);
  std::vector<int64_t> all_gather(int64_t v);
  std::vector<double> all_gather(double v);
  // Rank `root`'s string on every rank.
  std::string broadcast(const std::string& s, int root);
  bool is_root() const { return rank() == 0; }
};

// A communicator for a single process (no MPI calls at all).
std::unique_ptr<Comm> make_single_comm();

// MPI_COMM_WORLD. MPI must have been initialised (MpiRuntime).
std::unique_ptr<Comm> make_world_comm();

// Initialises MPI (thread level FUNNELED) on construction and finalises it on destruction,
// unless MPI was already initialised by someone else.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  static bool initialized();
  static bool finalized();

 private:
  bool owner_ = false;
};

// Start-up checks of a job: world size equals SLURM_NTASKS when that is set (throws
// CollectiveError otherwise: every rank sees the same environment variable).
void check_world_size_against_slurm(const Comm& comm);
// Every rank resolved the same configuration: compares a hash of `resolved` across ranks and
// throws CollectiveError naming the ranks that differ.
void check_same_config(Comm& comm, const std::string& resolved);

uint64_t fnv1a64(const std::string& s);

}  // namespace vardp::dist
