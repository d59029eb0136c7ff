// Collectives on tensors. CPU tensors go through the host Comm (MPI); CUDA tensors go through
// NCCL when vardp was built with it (communicator bootstrapped over MPI), otherwise through
// host memory and MPI.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "vardp/dist/comm.hpp"

namespace vardp::dist {

class NcclComm;  // defined only in CUDA+NCCL builds

DType to_dtype(const torch::Tensor& t);

class TensorComm {
 public:
  // use_nccl: bootstrap NCCL for CUDA tensors (ignored in builds without NCCL).
  explicit TensorComm(Comm& host, bool use_nccl = true);
  ~TensorComm();
  Comm& host() { return host_; }
  bool has_nccl() const { return nccl_ != nullptr; }

  // In place; `t` must be contiguous.
  void all_reduce(torch::Tensor& t, ReduceOp op = ReduceOp::sum);
  void broadcast(torch::Tensor& t, int root);
  // Returns a tensor of shape [size, *t.shape] holding every rank's `t`.
  torch::Tensor all_gather(const torch::Tensor& t);

 private:
  Comm& host_;
  std::unique_ptr<NcclComm> nccl_;
};

}  // namespace vardp::dist
