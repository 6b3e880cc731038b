// MPI communicator and gradient buckets under mpiexec -n 1/2/4: closed-form sums, bucketed
// all-reduce equal to one plain MPI_Allreduce, replica hash check, idle broadcast.
#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>
#include <vector>

#include "comm/comm_mpi.h"
#include "comm/grad_buckets.h"
#include "core/rng.h"
#include "model/model.h"
#include "mpi_test_util.h"
#include "train/replica_check.h"

namespace mnist_dist {
namespace {

using testing::all_ranks;
using testing::world_rank;
using testing::world_size;

TEST(MpiCommunicator, RankFilledBuffersSumToTriangularNumber) {
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size();
  EXPECT_EQ(n, world_size());
  EXPECT_EQ(comm->rank(), world_rank());
  EXPECT_GE(comm->local_size(), 1);
  std::vector<float> f(1001, static_cast<float>(comm->rank()));
  std::vector<double> d(17, static_cast<double>(comm->rank()));
  comm->allreduce_sum(f.data(), f.size());
  comm->allreduce_sum(d.data(), d.size());
  const double expect = n * (n - 1) / 2.0;
  bool ok = true;
  for (float v : f) ok &= v == static_cast<float>(expect);
  for (double v : d) ok &= v == expect;
  std::vector<float> g(333, static_cast<float>(comm->rank() + 1));
  comm->start_allreduce_sum(g.data(), 100);
  comm->start_allreduce_sum(g.data() + 100, 233);
  comm->progress();
  comm->wait_all();
  for (float v : g) ok &= v == static_cast<float>(n * (n + 1) / 2);
  EXPECT_TRUE(all_ranks(ok));
}

TEST(MpiCommunicator, IdleBroadcastAndAllgather) {
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  double v[2] = {0.0, 0.0};
  if (comm->rank() == 0) v[0] = 3.5, v[1] = -1.25;
  comm->broadcast_idle(v, sizeof v, 0);
  std::vector<uint64_t> all(static_cast<size_t>(comm->size()));
  comm->allgather_u64(100 + static_cast<uint64_t>(comm->rank()), all.data());
  bool ok = v[0] == 3.5 && v[1] == -1.25;
  for (int r = 0; r < comm->size(); ++r) ok &= all[static_cast<size_t>(r)] == 100u + static_cast<uint64_t>(r);
  EXPECT_TRUE(all_ranks(ok));
}

// Layer ranges like an arena's: ascending, with alignment gaps, some empty.
std::vector<std::pair<size_t, size_t>> fake_layers(uint64_t seed, size_t layers, size_t max_len = 5000) {
  Rng rng(seed, 3);
  std::vector<std::pair<size_t, size_t>> r;
  size_t at = 0;
  for (size_t i = 0; i < layers; ++i) {
    const size_t len = rng.below(4) == 0 ? 0 : 1 + rng.below(max_len);
    r.emplace_back(at, at + len);
    at += len + rng.below(16);
  }
  return r;
}

TEST(GradientBuckets, TileTheBufferLastFirstWithinTheCap) {
  for (uint64_t seed = 1; seed <= 30; ++seed)
    for (size_t cap : {size_t{1}, size_t{7}, size_t{1000}, size_t{4096}, size_t{1} << 30}) {
      const auto layers = fake_layers(seed, 1 + seed % 9);
      const auto buckets = make_buckets(layers, cap);
      size_t lo = SIZE_MAX, hi = 0;
      for (const auto& l : layers)
        if (l.second > l.first) lo = std::min(lo, l.first), hi = std::max(hi, l.second);
      if (lo == SIZE_MAX) {
        EXPECT_TRUE(buckets.empty());
        continue;
      }
      ASSERT_FALSE(buckets.empty());
      EXPECT_EQ(buckets.front().end, hi);
      EXPECT_EQ(buckets.back().begin, lo);
      for (size_t b = 0; b < buckets.size(); ++b) {
        EXPECT_LT(buckets[b].begin, buckets[b].end);
        EXPECT_LE(buckets[b].end - buckets[b].begin, cap);
        if (b > 0) {
          EXPECT_EQ(buckets[b].end, buckets[b - 1].begin);
        }
      }
    }
}

TEST(GradientBuckets, BucketedSumEqualsOnePlainAllreduce) {
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  bool ok = true;
  for (uint64_t seed : {2u, 5u, 11u})
    for (size_t cap : {size_t{1}, size_t{3}, size_t{997}, size_t{65537}, size_t{1} << 30}) {
      // Short layers for the tiny caps: thousands of one-float requests in flight make Open
      // MPI's progress loop quadratic (84 s at 4 ranks under ASan) and test nothing more.
      const auto layers = fake_layers(seed, 7, cap < 100 ? 60 : 5000);
      const size_t total = layers.back().second + 5;
      // Small integers: every summation order gives the same exact result.
      std::vector<float> grads(total), plain(total);
      Rng rng(seed, 100 + static_cast<uint64_t>(comm->rank()));
      for (size_t i = 0; i < total; ++i) grads[i] = plain[i] = static_cast<float>(rng.below(200)) - 100.0f;
      MPI_Allreduce(MPI_IN_PLACE, plain.data(), static_cast<int>(total), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      GradientReducer reducer(*comm, make_buckets(layers, cap), grads.data());
      for (size_t i = layers.size(); i-- > 0;)
        if (layers[i].second > layers[i].first) reducer.ready_from(layers[i].first);
      reducer.finish();
      size_t lo = SIZE_MAX, hi = 0;
      for (const auto& l : layers)
        if (l.second > l.first) lo = std::min(lo, l.first), hi = std::max(hi, l.second);
      for (size_t i = lo; i < hi; ++i) ok &= grads[i] == plain[i];
    }
  EXPECT_TRUE(all_ranks(ok));
}

// prepare_mpi_environment (run before MPI_Init, as in mnist_dist) hands Open MPI's non-blocking
// all-reduce the ring: read back through the MPI tool interface, the value MPI_Init took.
TEST(MpiEnvironment, NonBlockingAllreduceUsesTheRing) {
#ifndef OPEN_MPI
  GTEST_SKIP() << "the libnbc algorithm is Open MPI's";
#else
  int provided = 0;
  ASSERT_EQ(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
  int index = -1;
  if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) {
    MPI_T_finalize();
    GTEST_SKIP() << "this Open MPI has no coll_libnbc_iallreduce_algorithm";
  }
  MPI_T_cvar_handle handle;
  int count = 0, value = -1;
  ASSERT_EQ(MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count), MPI_SUCCESS);
  ASSERT_EQ(MPI_T_cvar_read(handle, &value), MPI_SUCCESS);
  MPI_T_cvar_handle_free(&handle);
  MPI_T_finalize();
  const char* user = std::getenv("MD_TEST_USER_NBC_ALGORITHM");  // set only by a run that overrides it
  EXPECT_EQ(value, user ? std::atoi(user) : 1) << "1 is the ring (0: Open MPI's own choice, a binomial tree)";
#endif
}

TEST(ReplicaCheck, IdenticalReplicasPassAndAPerturbedOneIsNamed) {
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  Model model("lenet5", Backend::kCpu, {1, 1, 28, 28}, 10, 2);
  model.init(3);
  EXPECT_TRUE(all_ranks(diverged_ranks(*comm, model.arena()).empty()));
  if (comm->size() < 2) return;
  if (comm->rank() == comm->size() - 1) model.arena().params()[5] += 1e-7f;  // one ulp-ish change
  const std::vector<int> bad = diverged_ranks(*comm, model.arena());
  EXPECT_TRUE(all_ranks(bad == std::vector<int>{comm->size() - 1}));
}

}  // namespace
}  // namespace mnist_dist
