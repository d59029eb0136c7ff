// Built only with CUDA LibTorch and nccl.h present (see CMakeLists.txt: *_nccl.cpp).
#include "vardp/dist/nccl_comm.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "vardp/util/error.hpp"

namespace vardp::dist {
namespace {
void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) throw Error(std::string(what) + ": " + ncclGetErrorString(rc), "nccl");
}
ncclDataType_t to_nccl(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kInt64: return ncclInt64;
    case torch::kInt32: return ncclInt32;
    case torch::kUInt8: return ncclUint8;
    case torch::kFloat16: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    default: break;
  }
  throw Error("no NCCL type for this tensor", "nccl");
}
ncclRedOp_t to_nccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}
}  // namespace

NcclComm::NcclComm(Comm& host) {
  int devices = 0;
  cudaGetDeviceCount(&devices);
  if (devices <= 0) throw Error("no CUDA device for NCCL", "nccl");
  cudaSetDevice(host.local_rank() % devices);
  ncclUniqueId id;
  if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  host.broadcast(&id, sizeof(id), DType::u8, 0);
  check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "ncclCommInitRank");
}

NcclComm::~NcclComm() {
  if (comm_) ncclCommDestroy(comm_);
}

void NcclComm::all_reduce(torch::Tensor& t, ReduceOp op) {
  c10::cuda::CUDAGuard guard(t.device());
  auto stream = c10::cuda::getCurrentCUDAStream(t.device().index());
  check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), to_nccl(t), to_nccl(op), comm_,
                      stream.stream()),
        "ncclAllReduce");
}

void NcclComm::broadcast(torch::Tensor& t, int root) {
  c10::cuda::CUDAGuard guard(t.device());
  auto stream = c10::cuda::getCurrentCUDAStream(t.device().index());
  check(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), to_nccl(t), root, comm_,
                      stream.stream()),
        "ncclBroadcast");
}

void NcclComm::all_gather(const torch::Tensor& send, torch::Tensor& recv) {
  c10::cuda::CUDAGuard guard(send.device());
  auto stream = c10::cuda::getCurrentCUDAStream(send.device().index());
  check(ncclAllGather(send.data_ptr(), recv.data_ptr(), static_cast<size_t>(send.numel()), to_nccl(send), comm_,
                      stream.stream()),
        "ncclAllGather");
}

}  // namespace vardp::dist
