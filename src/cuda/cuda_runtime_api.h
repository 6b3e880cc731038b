// The CUDA runtime functions non-CUDA code needs (plain C++, no CUDA types): GPU discovery and
// selection, device/pinned memory, copies, staged batch uploads. CUDA builds implement them in
// cuda/runtime.cu; builds without CUDA in cuda/runtime_unavailable.cpp (no GPU; the rest are
// user errors).
//
// Ordering: copy_h2d/copy_d2h/device_memset0 run on the legacy default stream and return when
// done; CudaContext's compute stream is a blocking stream, so they are ordered after all work
// queued there (a download sees every kernel queued before it; an upload never races a kernel
// still reading the old contents).
#pragma once

#include <cstddef>
#include <string>

namespace mnist_dist {

struct CudaContext;

// GPUs this process can use; 0 with the reason in *why when none (no driver, no device, or
// built without CUDA). Never throws and never crashes.
int usable_gpu_count(std::string* why);

// The GPU for the process with `local_rank` of `local_size` on its node (local_rank modulo the
// visible GPUs); makes it current. UserError when the node's ranks outnumber its visible GPUs,
// unless shared_ok (--comm host-staged) or CUDA_VISIBLE_DEVICES is set (a launcher may bind one
// GPU per rank; comm/gpu_assignment.h then checks the job's choice by bus id).
int select_local_gpu(int local_rank, int local_size, bool shared_ok = false);

void* device_alloc(size_t bytes);  // out of memory: UserError naming the size
void device_free(void* p);
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void device_memset0(void* p, size_t bytes);
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);
void device_synchronize();

// Staged batch uploads, overlapped with compute, in CudaContext::kStagingSlots (2) slots; each
// slot is one device buffer (and one pinned host buffer) of the caller's:
//   upload_async(ctx, slot, dst, pinned_src, bytes)  copies on the copy stream once the compute
//       stream has released the slot (compute_release); returns at once.
//   wait_upload(ctx, slot)       the compute stream waits for the slot's copy (no host wait).
//   compute_release(ctx, slot)   records, on the compute stream, that the work queued so far is
//       the last to read the slot's device buffer (call after queuing the step that used it).
//   host_wait_upload(ctx, slot)  the host waits for the slot's copy: call before refilling the
//       slot's pinned host buffer.
void upload_async(CudaContext& ctx, int slot, void* dst, const void* pinned_src, size_t bytes);
void wait_upload(CudaContext& ctx, int slot);
void compute_release(CudaContext& ctx, int slot);
void host_wait_upload(CudaContext& ctx, int slot);
// The host waits until all work queued on the context's streams is done.
void synchronize(CudaContext& ctx);

// dst[i] = src[i] (copy) or dst[i] += src[i] (add) for device buffers, queued on the context's
// compute stream (gradient accumulation).
void device_copy_async(CudaContext& ctx, float* dst, const float* src, size_t n);
void device_add_async(CudaContext& ctx, float* dst, const float* src, size_t n);
// TF32 tensor-core math for the context's convolutions and GEMMs (CudaContext::set_allow_tf32).
void set_tf32(CudaContext& ctx, bool allow);
// True for device (or managed) memory; false for plain and pinned host memory.
bool is_device_pointer(const void* p);
// The PCI bus id of a device ("0000:3b:00.0"): with the host name it identifies one GPU.
std::string gpu_bus_id(int device);

// Builds without CUDA only (runtime_unavailable.cpp): throws the UserError that says how to get
// a CUDA build; the other folders' *_unavailable.cpp call it.
[[noreturn]] void no_cuda();

}  // namespace mnist_dist
