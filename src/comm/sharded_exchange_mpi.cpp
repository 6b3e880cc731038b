// Sharded gradient exchange over MPI shared-memory windows (comm/sharded_exchange.h).
// Per node: one window holding each local rank's gradient buffer, one holding the node's
// parameters. Across nodes (equal rank counts per node): a communicator of the ranks with
// the same local rank, which own the same shard, all-reduces that shard.
//
// Ordering (why two node barriers per step suffice): a rank writes its gradient buffer during
// backward of step t+1 only after the barrier in all_gather of step t, which every rank passes
// only after finishing its reads of the gradient buffers in reduce_scatter of step t; the
// optimizer writes its shard of the parameters only after the barrier in reduce_scatter, which
// no rank reaches before its forward and backward passes (the readers) are done, and nobody
// reads them again before the barrier in all_gather.
// Per layer (one node): a rank stores step t into its flag for layer k (release) after its
// gradients of layer k are written; a rank waiting for layer k loads every rank's flag
// (acquire) until all read t. Layer k's parameters are only read by forward and by layer k's
// own backward, so once every rank has marked k its part of the shard may be updated; gradient
// buffers are rewritten only in step t+1, after the barrier in all_gather of step t.
#include <mpi.h>
#include <sched.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "comm/comm_mpi.h"
#include "comm/sharded_exchange.h"
#include "core/error.h"

namespace mnist_dist {
namespace {

constexpr size_t kAlignFloats = 16;  // 64 bytes: shards start on cache lines
constexpr size_t kAlignBytes = 64;

float* align_up(void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<float*>((a + kAlignBytes - 1) / kAlignBytes * kAlignBytes);
}

class MpiShardedExchange final : public ShardedExchange {
 public:
  MpiShardedExchange(MPI_Comm world, MPI_Comm node, bool multi_node, size_t count, bool exact) : count_(count) {
    MD_MPI(MPI_Comm_dup(node, &node_));
    MD_MPI(MPI_Comm_set_errhandler(node_, MPI_ERRORS_RETURN));
    MD_MPI(MPI_Comm_rank(node_, &local_rank_));
    MD_MPI(MPI_Comm_size(node_, &local_size_));
    const size_t per = (count + kAlignFloats * local_size_ - 1) / (kAlignFloats * local_size_) * kAlignFloats;
    for (int r = 0; r <= local_size_; ++r) bounds_.push_back(std::min(count, per * static_cast<size_t>(r)));
    MD_CHECK(count <= static_cast<size_t>(INT32_MAX), "arena too large for the sharded exchange");

    MPI_Info info;
    MD_MPI(MPI_Info_create(&info));
    MD_MPI(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    const MPI_Aint bytes = static_cast<MPI_Aint>(count * sizeof(float) + kAlignBytes);
    void* base = nullptr;
    MD_MPI(MPI_Win_allocate_shared(bytes, 1, info, node_, &base, &grad_win_));
    MD_MPI(MPI_Win_allocate_shared(local_rank_ == 0 ? bytes : 0, 1, info, node_, &base, &param_win_));
    const MPI_Aint flag_bytes = static_cast<MPI_Aint>(kReadySlots * sizeof(long long));
    MD_MPI(MPI_Win_allocate_shared(flag_bytes, 1, info, node_, &base, &flag_win_));
    const MPI_Aint exact_bytes = exact ? static_cast<MPI_Aint>(count * sizeof(int64_t) + kAlignBytes) : 0;
    MD_MPI(MPI_Win_allocate_shared(exact_bytes, 1, info, node_, &base, &exact_win_));
    MD_MPI(MPI_Info_free(&info));
    // Shared segments are mapped page-aligned in every process, so rounding each address up
    // to 64 bytes lands on the same byte of the segment everywhere.
    for (int r = 0; r < local_size_; ++r) slots_.push_back(align_up(query(grad_win_, r)));
    param_buf_ = align_up(query(param_win_, 0));
    for (int r = 0; r < local_size_; ++r) flags_.push_back(static_cast<long long*>(query(flag_win_, r)));
    if (exact)
      for (int r = 0; r < local_size_; ++r) exact_slots_.push_back(reinterpret_cast<int64_t*>(align_up(query(exact_win_, r))));
    MD_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, grad_win_));
    MD_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, param_win_));
    MD_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, flag_win_));
    MD_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, exact_win_));
    locked_ = true;
    std::memset(slots_[local_rank_], 0, count * sizeof(float));
    if (exact) std::memset(exact_slots_[local_rank_], 0, count * sizeof(int64_t));
    for (int k = 0; k < kReadySlots; ++k) __atomic_store_n(&flags_[local_rank_][k], 0LL, __ATOMIC_RELAXED);
    if (multi_node) {
      int world_rank = 0;
      MD_MPI(MPI_Comm_rank(world, &world_rank));
      MD_MPI(MPI_Comm_split(world, local_rank_, world_rank, &cross_));
      MD_MPI(MPI_Comm_set_errhandler(cross_, MPI_ERRORS_RETURN));
    }
    node_sync();
  }

  // Error paths: freeing the windows is collective and other ranks may never arrive; the
  // memory goes with the process (MPI_Abort / MPI_Finalize).
  ~MpiShardedExchange() override = default;

  float* grads() override { return slots_[local_rank_]; }
  float* params() override { return param_buf_; }
  size_t count() const override { return count_; }
  size_t shard_begin() const override { return bounds_[local_rank_]; }
  size_t shard_end() const override { return bounds_[local_rank_ + 1]; }

  void wait_grads() override { node_sync(); }

  const float* const* node_grads(int* n) override {
    if (cross_ != MPI_COMM_NULL) return nullptr;
    *n = local_size_;
    return slots_.data();
  }

  bool per_layer() const override { return cross_ == MPI_COMM_NULL; }

  void mark_ready(int slot, long long step) override {
    MD_CHECK(slot >= 0 && slot < kReadySlots && per_layer(), "ShardedExchange::mark_ready: bad slot");
    __atomic_store_n(&flags_[local_rank_][slot], step, __ATOMIC_RELEASE);
  }

  void wait_ready(int slot, long long step) override {
    MD_CHECK(slot >= 0 && slot < kReadySlots && per_layer(), "ShardedExchange::wait_ready: bad slot");
    for (int r = 0; r < local_size_; ++r) {
      // Spin briefly, then yield: ranks may share cores (mpirun --oversubscribe), and the one
      // being waited for needs the core to get here.
      for (int spins = 0; __atomic_load_n(&flags_[r][slot], __ATOMIC_ACQUIRE) < step; ++spins)
        if (spins >= 64) sched_yield();
    }
  }

  void reduce_shard() override {
    const long b = static_cast<long>(shard_begin()), e = static_cast<long>(shard_end());
    float* out = slots_[local_rank_];
    const float* const* in = slots_.data();
    const int n = local_size_;
    // Local-rank order, so the sum is the same whichever rank computes it; through a block
    // buffer because out aliases in[local_rank].
    constexpr long kBlock = 2048;
#pragma omp parallel for schedule(static)
    for (long blk = b; blk < e; blk += kBlock) {
      alignas(64) float acc[kBlock];
      const long len = std::min(kBlock, e - blk);
      const float* a0 = in[0] + blk;
      const float* a1 = in[n > 1 ? 1 : 0] + blk;
      if (n > 1) {
        for (long i = 0; i < len; ++i) acc[i] = a0[i] + a1[i];
      } else {
        for (long i = 0; i < len; ++i) acc[i] = a0[i];
      }
      for (int r = 2; r < n; ++r) {
        const float* ar = in[r] + blk;
        for (long i = 0; i < len; ++i) acc[i] += ar[i];
      }
      std::memcpy(out + blk, acc, static_cast<size_t>(len) * sizeof(float));
    }
    if (cross_ != MPI_COMM_NULL && e > b)
      MD_MPI(MPI_Allreduce(MPI_IN_PLACE, out + b, static_cast<int>(e - b), MPI_FLOAT, MPI_SUM, cross_));
  }

  int64_t* exact_grads() override { return exact_slots_.empty() ? nullptr : exact_slots_[local_rank_]; }

  const int64_t* const* node_exact_grads(int* n) override {
    if (cross_ != MPI_COMM_NULL || exact_slots_.empty()) return nullptr;
    *n = local_size_;
    return exact_slots_.data();
  }

  void reduce_shard_exact() override {
    MD_CHECK(!exact_slots_.empty(), "ShardedExchange::reduce_shard_exact: made without exact gradients");
    const size_t b = shard_begin(), e = shard_end();
    // Unsigned adds: integer sums wrap instead of overflowing, and are the same in any order.
    auto* out = reinterpret_cast<uint64_t*>(exact_slots_[local_rank_]);
    for (int r = 0; r < local_size_; ++r) {
      if (r == local_rank_) continue;
      const auto* in = reinterpret_cast<const uint64_t*>(exact_slots_[r]);
      for (size_t i = b; i < e; ++i) out[i] += in[i];
    }
    if (cross_ != MPI_COMM_NULL && e > b)
      MD_MPI(MPI_Allreduce(MPI_IN_PLACE, out + b, static_cast<int>(e - b), MPI_INT64_T, MPI_SUM, cross_));
  }

  void share_params(const float* initial) override {
    if (local_rank_ == 0) std::memcpy(param_buf_, initial, count_ * sizeof(float));
    node_sync();
  }

  void all_gather() override { node_sync(); }

  void gather_full(float* data) override {
    std::vector<int> counts(local_size_), displs(local_size_);
    for (int r = 0; r < local_size_; ++r) {
      displs[r] = static_cast<int>(bounds_[r]);
      counts[r] = static_cast<int>(bounds_[r + 1] - bounds_[r]);
    }
    MD_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(),
                          MPI_FLOAT, node_));
  }

  void gather_owned(float* data, const std::vector<std::pair<size_t, size_t>>& mine) override {
    // A bitwise OR of words that are zero wherever another rank owns them: an exact copy of
    // every float's bits (a floating-point sum would turn −0 into +0).
    std::vector<uint32_t> bits(count_, 0u);
    for (const auto& [b, e] : mine) {
      MD_CHECK(b <= e && e <= count_, "ShardedExchange::gather_owned: range outside the buffer");
      std::memcpy(bits.data() + b, data + b, (e - b) * sizeof(float));
    }
    MD_MPI(MPI_Allreduce(MPI_IN_PLACE, bits.data(), static_cast<int>(count_), MPI_UINT32_T, MPI_BOR, node_));
    std::memcpy(data, bits.data(), count_ * sizeof(float));
  }

  void close() override {
    if (!locked_) return;
    node_sync();
    MD_MPI(MPI_Win_unlock_all(grad_win_));
    MD_MPI(MPI_Win_unlock_all(param_win_));
    MD_MPI(MPI_Win_unlock_all(flag_win_));
    MD_MPI(MPI_Win_unlock_all(exact_win_));
    locked_ = false;
    MD_MPI(MPI_Win_free(&grad_win_));
    MD_MPI(MPI_Win_free(&param_win_));
    MD_MPI(MPI_Win_free(&flag_win_));
    MD_MPI(MPI_Win_free(&exact_win_));
    flags_.clear();
    exact_slots_.clear();
    if (cross_ != MPI_COMM_NULL) MD_MPI(MPI_Comm_free(&cross_));
    MD_MPI(MPI_Comm_free(&node_));
    slots_.clear();
    param_buf_ = nullptr;
  }

 private:
  static void* query(MPI_Win win, int rank) {
    MPI_Aint size = 0;
    int disp = 0;
    void* p = nullptr;
    MD_MPI(MPI_Win_shared_query(win, rank, &size, &disp, &p));
    return p;
  }
  // Memory barrier + node barrier (the MPI-3 unified-model pattern for shared windows).
  void node_sync() {
    MD_MPI(MPI_Win_sync(grad_win_));
    MD_MPI(MPI_Win_sync(param_win_));
    MD_MPI(MPI_Win_sync(exact_win_));
    MD_MPI(MPI_Barrier(node_));
    MD_MPI(MPI_Win_sync(grad_win_));
    MD_MPI(MPI_Win_sync(param_win_));
    MD_MPI(MPI_Win_sync(exact_win_));
  }

  size_t count_;
  MPI_Comm node_ = MPI_COMM_NULL, cross_ = MPI_COMM_NULL;
  int local_rank_ = 0, local_size_ = 1;
  std::vector<size_t> bounds_;  // shard r is [bounds_[r], bounds_[r + 1])
  MPI_Win grad_win_ = MPI_WIN_NULL, param_win_ = MPI_WIN_NULL, flag_win_ = MPI_WIN_NULL, exact_win_ = MPI_WIN_NULL;
  std::vector<int64_t*> exact_slots_;  // deterministic training: every local rank's fixed-point gradients
  std::vector<long long*> flags_;  // every local rank's per-layer step flags, mapped here
  std::vector<float*> slots_;   // every local rank's gradient buffer, mapped here
  float* param_buf_ = nullptr;
  bool locked_ = false;
};

}  // namespace

std::string shared_memory_shortfall(const char* dir, double need_bytes) {
  struct statvfs st {};
  if (statvfs(dir, &st) != 0) return "";  // no such file system here: nothing to check
  const double avail = static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
  if (avail >= need_bytes) return "";
  char msg[256];
  std::snprintf(msg, sizeof msg,
                "%s has %.0f MiB free, the shared gradient and parameter windows need %.0f MiB "
                "(in a container: a larger --shm-size)",
                dir, avail / 1048576.0, need_bytes / 1048576.0);
  return msg;
}

std::unique_ptr<ShardedExchange> make_mpi_sharded_exchange(MPI_Comm world, MPI_Comm node, size_t count,
                                                           std::string* why, bool exact) {
  int local = 0, lo = 0, hi = 0, leader = 0, nodes = 0;
  MD_MPI(MPI_Comm_size(node, &local));
  MD_MPI(MPI_Allreduce(&local, &lo, 1, MPI_INT, MPI_MIN, world));
  MD_MPI(MPI_Allreduce(&local, &hi, 1, MPI_INT, MPI_MAX, world));
  if (lo != hi) {
    if (why) *why = "the nodes run different numbers of ranks (" + std::to_string(lo) + " to " +
                    std::to_string(hi) + ")";
    return nullptr;
  }
  if (hi == 1) {
    if (why) *why = "every node runs one rank: no memory to share";
    return nullptr;
  }
  int node_rank = 0;
  MD_MPI(MPI_Comm_rank(node, &node_rank));
  // Open MPI backs shared windows with files in /dev/shm, and a full tmpfs shows up as SIGBUS
  // on the first write, not as an error: check the room first (every rank: the same answer on
  // a node, and each can say why), agree everywhere.
  const double per_rank = static_cast<double>(count) * (sizeof(float) + (exact ? sizeof(int64_t) : 0));
  const double need = (local + 1.0) * (per_rank + 8192.0) + 16.0 * 1048576.0;
  const std::string shortfall = shared_memory_shortfall("/dev/shm", need);
  int room = shortfall.empty() ? 1 : 0, all_room = 0;
  MD_MPI(MPI_Allreduce(&room, &all_room, 1, MPI_INT, MPI_MIN, world));
  if (!all_room) {
    if (why) *why = shortfall.empty() ? "another node's /dev/shm is too small for the shared windows" : shortfall;
    return nullptr;
  }
  leader = node_rank == 0 ? 1 : 0;
  MD_MPI(MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, world));
  return std::make_unique<MpiShardedExchange>(world, node, nodes > 1, count, exact);
}

}  // namespace mnist_dist
