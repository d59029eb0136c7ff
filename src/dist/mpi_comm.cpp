#include <mpi.h>

#include <cstdlib>

#include "vardp/dist/comm.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dist {
namespace {

MPI_Datatype to_mpi(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::bf16:
    case DType::f16: break;
  }
  throw Error(str("MPI has no reduction for ", dtype_name(t), "; convert to float32 first"), "dist");
}

MPI_Op to_mpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  return MPI_SUM;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string(what) + " failed: " + std::string(msg, static_cast<size_t>(len)), "mpi");
  }
}

// MPI counts are int: large buffers go in slices.
constexpr size_t kMaxCount = size_t(1) << 30;

class MpiComm final : public Comm {
 public:
  // owned: a communicator from split(), freed with this object.
  explicit MpiComm(MPI_Comm comm, bool owned = false) : comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }

  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  void broadcast(void* data, size_t count, DType type, int root) override {
    auto* p = static_cast<char*>(data);
    const size_t es = dtype_size(type);
    // Byte broadcasts work for every dtype, bf16 included.
    for (size_t off = 0; off < count; off += kMaxCount) {
      size_t n = std::min(kMaxCount, count - off);
      check(MPI_Bcast(p + off * es, static_cast<int>(n * es), MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }

  void all_reduce(void* data, size_t count, DType type, ReduceOp op) override {
    auto* p = static_cast<char*>(data);
    const size_t es = dtype_size(type);
    for (size_t off = 0; off < count; off += kMaxCount) {
      size_t n = std::min(kMaxCount, count - off);
      check(MPI_Allreduce(MPI_IN_PLACE, p + off * es, static_cast<int>(n), to_mpi(type), to_mpi(op), comm_),
            "MPI_Allreduce");
    }
  }

  void all_gather(const void* send, void* recv, size_t count, DType type) override {
    const size_t bytes = count * dtype_size(type);
    if (bytes > kMaxCount) throw Error("all_gather block too large for one MPI call", "mpi");
    check(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, comm_),
          "MPI_Allgather");
  }

  ~MpiComm() override {
    if (owned_ && !MpiRuntime::finalized()) MPI_Comm_free(&comm_);
  }

  std::unique_ptr<Comm> split(int color, int key) override {
    MPI_Comm sub = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    return std::make_unique<MpiComm>(sub, true);
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(comm_, code);
    std::_Exit(code);
  }

 private:
  MPI_Comm comm_;
  bool owned_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};
}  // namespace

std::unique_ptr<Comm> make_world_comm() {
  if (!MpiRuntime::initialized()) throw Error("MPI is not initialised", "dist");
  return std::make_unique<MpiComm>(MPI_COMM_WORLD);
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  if (initialized()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors are turned into exceptions; the job is then ended by main (collectively or by abort).
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  owner_ = true;
}

MpiRuntime::~MpiRuntime() {
  if (owner_ && !finalized()) MPI_Finalize();
}

bool MpiRuntime::initialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

bool MpiRuntime::finalized() {
  int flag = 0;
  MPI_Finalized(&flag);
  return flag != 0;
}

}  // namespace vardp::dist
