// MPI communicator: blocking and non-blocking sums, broadcasts that wait without spinning,
// node-local ranks from a shared-memory split, MPI_Abort as the job-wide fatal path.
#include "comm/comm_mpi.h"

#include <time.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"

namespace mnist_dist {

void check_mpi(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fatal(std::string(call) + " failed: " + msg, file, line);
}

namespace {

void sleep_us(long us) {
  timespec ts{0, us * 1000};
  nanosleep(&ts, nullptr);
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) {
    MD_MPI(MPI_Comm_dup(comm, &comm_));
    MD_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MD_MPI(MPI_Comm_rank(comm_, &rank_));
    MD_MPI(MPI_Comm_size(comm_, &size_));
    MD_MPI(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_));
    MD_MPI(MPI_Comm_rank(node_, &local_rank_));
    MD_MPI(MPI_Comm_size(node_, &local_size_));
    int leader = local_rank_ == 0 ? 1 : 0;
    MD_MPI(MPI_Allreduce(&leader, &nodes_, 1, MPI_INT, MPI_SUM, comm_));
  }
  ~MpiCommunicator() override {
    MPI_Comm_free(&node_);
    MPI_Comm_free(&comm_);
  }

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  int num_nodes() const override { return nodes_; }

  void allreduce_sum(float* data, size_t count) override {
    for (size_t off = 0; off < count; off += kMaxCount)
      MD_MPI(MPI_Allreduce(MPI_IN_PLACE, data + off, piece(count - off), MPI_FLOAT, MPI_SUM, comm_));
  }
  void allreduce_sum(double* data, size_t count) override {
    for (size_t off = 0; off < count; off += kMaxCount)
      MD_MPI(MPI_Allreduce(MPI_IN_PLACE, data + off, piece(count - off), MPI_DOUBLE, MPI_SUM, comm_));
  }
  void allreduce_sum(int64_t* data, size_t count) override {
    for (size_t off = 0; off < count; off += kMaxCount)
      MD_MPI(MPI_Allreduce(MPI_IN_PLACE, data + off, piece(count - off), MPI_INT64_T, MPI_SUM, comm_));
  }
  void start_allreduce_sum(float* data, size_t count) override {
    for (size_t off = 0; off < count; off += kMaxCount) {
      MPI_Request req;
      MD_MPI(MPI_Iallreduce(MPI_IN_PLACE, data + off, piece(count - off), MPI_FLOAT, MPI_SUM, comm_, &req));
      pending_.push_back(req);
    }
  }
  void progress() override {
    if (pending_.empty()) return;
    int done = 0;
    MD_MPI(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE));
    if (done) pending_.clear();
  }
  void wait_all() override {
    if (pending_.empty()) return;
    MD_MPI(MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE));
    pending_.clear();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    MD_MPI(MPI_Bcast(data, checked_int(bytes), MPI_BYTE, root, comm_));
  }
  void broadcast_idle(void* data, size_t bytes, int root) override {
    MPI_Request req;
    MD_MPI(MPI_Ibcast(data, checked_int(bytes), MPI_BYTE, root, comm_, &req));
    for (int done = 0;;) {
      MD_MPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
      if (done) return;
      sleep_us(500);  // a waiting rank sleeps instead of spinning a core
    }
  }
  void allgather_u64(uint64_t value, uint64_t* out) override {
    MD_MPI(MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, comm_));
  }
  void barrier() override { MD_MPI(MPI_Barrier(comm_)); }
  std::unique_ptr<ShardedExchange> make_sharded_exchange(size_t count, std::string* why,
                                                         bool exact = false) override {
    return make_mpi_sharded_exchange(comm_, node_, count, why, exact);
  }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

 private:
  static constexpr size_t kMaxCount = INT_MAX / 2;
  static int piece(size_t left) { return static_cast<int>(left < kMaxCount ? left : kMaxCount); }
  static int checked_int(size_t n) {
    MD_CHECK(n <= static_cast<size_t>(INT_MAX), "message too large for one MPI call");
    return static_cast<int>(n);
  }

  MPI_Comm comm_ = MPI_COMM_NULL, node_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, nodes_ = 1;
  std::vector<MPI_Request> pending_;
};

void abort_world(int exit_code) { MPI_Abort(MPI_COMM_WORLD, exit_code); }

struct MpiSession {
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

void prepare_mpi_environment() {
#ifdef OPEN_MPI
  // Open MPI's non-blocking all-reduce (coll/libnbc, our gradient buckets) takes a binomial tree
  // for fewer than 4 ranks or an in-place buffer, that is always for us: a reduce to rank 0, then
  // a broadcast, the whole bucket twice and one direction at a time. The ring (reduce-scatter +
  // all-gather) sends each rank's share both ways at once: 1.6-1.8x faster between hosts
  // (docs/performance.md). A value the user set is kept (0 gives Open MPI its own choice back).
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
#endif
}

std::unique_ptr<Communicator> make_mpi_world_communicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    prepare_mpi_environment();
    int provided = 0;
    MD_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    static MpiSession session;  // MPI_Finalize at exit, after every communicator is gone
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  set_fatal_context(rank, size, abort_world);
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
}

}  // namespace mnist_dist
