#include "vardp/dist/tensor_comm.hpp"

#include "vardp/dist/nccl_comm.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::dist {

DType to_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return DType::f32;
    case torch::kFloat64: return DType::f64;
    case torch::kInt64: return DType::i64;
    case torch::kInt32: return DType::i32;
    case torch::kUInt8: return DType::u8;
    case torch::kBFloat16: return DType::bf16;
    case torch::kFloat16: return DType::f16;
    default: break;
  }
  throw Error(str("no collective for tensors of type ", t.scalar_type()), "dist");
}

TensorComm::TensorComm(Comm& host, bool use_nccl) : host_(host) {
#ifdef VARDP_WITH_NCCL
  if (use_nccl && host.size() > 1 && torch::cuda::is_available()) {
    // NCCL needs one GPU per rank: where ranks of a node would share a device, every rank (the
    // decision is collective) moves CUDA tensors through host memory and MPI instead.
    const int64_t own_gpu = host.local_size() <= static_cast<int>(torch::cuda::device_count()) ? 1 : 0;
    if (host.all_reduce(own_gpu, ReduceOp::min) == 1)
      nccl_ = std::make_unique<NcclComm>(host);
    else
      log::warn("more ranks than GPUs on a node: CUDA collectives go through MPI, not NCCL");
  }
#else
  (void)use_nccl;
#endif
}

TensorComm::~TensorComm() = default;

void TensorComm::all_reduce(torch::Tensor& t, ReduceOp op) {
  VARDP_CHECK(t.is_contiguous(), "all_reduce needs a contiguous tensor");
  if (host_.size() == 1) return;
#ifdef VARDP_WITH_NCCL
  if (t.is_cuda() && nccl_) return nccl_->all_reduce(t, op);
#endif
  if (t.is_cuda()) {
    torch::Tensor h = t.to(torch::kCPU);
    host_.all_reduce(h.data_ptr(), static_cast<size_t>(h.numel()), to_dtype(h), op);
    t.copy_(h);
    return;
  }
  host_.all_reduce(t.data_ptr(), static_cast<size_t>(t.numel()), to_dtype(t), op);
}

void TensorComm::broadcast(torch::Tensor& t, int root) {
  VARDP_CHECK(t.is_contiguous(), "broadcast needs a contiguous tensor");
  if (host_.size() == 1) return;
#ifdef VARDP_WITH_NCCL
  if (t.is_cuda() && nccl_) return nccl_->broadcast(t, root);
#endif
  if (t.is_cuda()) {
    torch::Tensor h = t.to(torch::kCPU);
    host_.broadcast(h.data_ptr(), static_cast<size_t>(h.numel()), to_dtype(h), root);
    t.copy_(h);
    return;
  }
  host_.broadcast(t.data_ptr(), static_cast<size_t>(t.numel()), to_dtype(t), root);
}

torch::Tensor TensorComm::all_gather(const torch::Tensor& t) {
  torch::Tensor src = t.contiguous();
  std::vector<int64_t> shape{host_.size()};
  for (auto d : src.sizes()) shape.push_back(d);
  torch::Tensor out = torch::empty(shape, src.options());
#ifdef VARDP_WITH_NCCL
  if (src.is_cuda() && nccl_) {
    nccl_->all_gather(src, out);
    return out;
  }
#endif
  if (src.is_cuda()) {
    torch::Tensor h = src.to(torch::kCPU);
    torch::Tensor ho = torch::empty(shape, h.options());
    host_.all_gather(h.data_ptr(), ho.data_ptr(), static_cast<size_t>(h.numel()), to_dtype(h));
    return ho.to(src.device());
  }
  host_.all_gather(src.data_ptr(), out.data_ptr(), static_cast<size_t>(src.numel()), to_dtype(src));
  return out;
}

}  // namespace vardp::dist
