// NCCL communicator for CUDA tensors, bootstrapped over the MPI Comm (rank 0 creates the unique
// id and broadcasts it). Compiled only when VARDP_WITH_NCCL is defined.
#pragma once
#ifdef VARDP_WITH_NCCL
#include <nccl.h>
#include <torch/torch.h>

#include "vardp/dist/comm.hpp"

namespace vardp::dist {

class NcclComm {
 public:
  // Binds this process to GPU local_rank % device_count and creates the NCCL communicator.
  explicit NcclComm(Comm& host);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  void all_reduce(torch::Tensor& t, ReduceOp op);
  void broadcast(torch::Tensor& t, int root);
  void all_gather(const torch::Tensor& send, torch::Tensor& recv);

 private:
  ncclComm_t comm_ = nullptr;
};

}  // namespace vardp::dist
#else
namespace vardp::dist {
// Builds without NCCL never create one; TensorComm still holds a (null) pointer to it.
class NcclComm {};
}  // namespace vardp::dist
#endif
