// NCCL communicator: device all-reduces on a dedicated high-priority stream joined to the
// compute stream with events; host collectives, node-local ranks and the job abort over MPI.
#include "comm/comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <string>

#include "comm/comm_mpi.h"
#include "core/error.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {
namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, CudaContext& cuda)
      : host_(make_mpi_communicator(comm)), cuda_(cuda) {
    MD_CUDA(cudaSetDevice(cuda.device()));
    ncclUniqueId id{};
    if (host_->rank() == 0) MD_NCCL(ncclGetUniqueId(&id));
    host_->broadcast(&id, sizeof id, 0);
    int least = 0, greatest = 0;  // numerically: greatest priority is the smallest number
    MD_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    MD_CUDA(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
    MD_CUDA(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
    MD_CUDA(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
    MD_NCCL(ncclCommInitRank(&nccl_, host_->size(), id, host_->rank()));
  }

  ~NcclCommunicator() override {
    if (nccl_ != nullptr) {
      cudaStreamSynchronize(stream_);
      ncclCommFinalize(nccl_);
      ncclCommDestroy(nccl_);
    }
    if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
    if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  std::string name() const override { return "nccl"; }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  int local_size() const override { return host_->local_size(); }
  int num_nodes() const override { return host_->num_nodes(); }

  void allreduce_sum(float* data, size_t count) override {
    if (!is_device_pointer(data)) return host_->allreduce_sum(data, count);
    enqueue(data, count, ncclFloat32);
    join();
  }
  void allreduce_sum(double* data, size_t count) override {
    if (!is_device_pointer(data)) return host_->allreduce_sum(data, count);
    enqueue(data, count, ncclFloat64);
    join();
  }
  void allreduce_sum(int64_t* data, size_t count) override {
    if (!is_device_pointer(data)) return host_->allreduce_sum(data, count);
    enqueue(data, count, ncclInt64);
    join();
  }
  void start_allreduce_sum(float* data, size_t count) override {
    if (!is_device_pointer(data)) return host_->start_allreduce_sum(data, count);
    enqueue(data, count, ncclFloat32);
    pending_ = true;
  }
  void progress() override { host_->progress(); }  // NCCL progresses by itself
  void wait_all() override {
    if (pending_) join();
    pending_ = false;
    host_->wait_all();
  }

  void broadcast(void* data, size_t bytes, int root) override { host_->broadcast(data, bytes, root); }
  void broadcast_idle(void* data, size_t bytes, int root) override {
    host_->broadcast_idle(data, bytes, root);
  }
  void allgather_u64(uint64_t value, uint64_t* out) override { host_->allgather_u64(value, out); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int exit_code) override {
    if (nccl_ != nullptr) ncclCommAbort(nccl_);  // unblocks NCCL kernels waiting for peers
    nccl_ = nullptr;
    host_->abort(exit_code);
    std::_Exit(exit_code);  // not reached: MPI_Abort ends the process
  }

 private:
  // Work queued on the compute stream so far → the comm stream → the collective.
  void enqueue(void* data, size_t count, ncclDataType_t type) {
    if (count == 0) return;
    check_async_error();
    MD_CUDA(cudaEventRecord(compute_ready_, cuda_.stream()));
    MD_CUDA(cudaStreamWaitEvent(stream_, compute_ready_, 0));
    MD_NCCL(ncclAllReduce(data, data, count, type, ncclSum, nccl_, stream_));
  }
  // Later compute work waits for every collective queued so far (a GPU-side wait).
  void join() {
    MD_CUDA(cudaEventRecord(comm_done_, stream_));
    MD_CUDA(cudaStreamWaitEvent(cuda_.stream(), comm_done_, 0));
  }
  // A failure seen by NCCL's own threads (a peer gone, a network error) ends the job here.
  void check_async_error() {
    ncclResult_t state = ncclSuccess;
    MD_NCCL(ncclCommGetAsyncError(nccl_, &state));
    if (state != ncclSuccess && state != ncclInProgress)
      nccl_failed(state, "NCCL asynchronous error", __FILE__, __LINE__);
  }

  std::unique_ptr<Communicator> host_;  // MPI: host collectives, ranks, abort
  CudaContext& cuda_;
  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr, comm_done_ = nullptr;
  bool pending_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, CudaContext& cuda) {
  return std::make_unique<NcclCommunicator>(comm, cuda);
}

}  // namespace mnist_dist
