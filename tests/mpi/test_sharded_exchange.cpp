// Sharded gradient exchange (comm/sharded_exchange.h) under mpiexec -n 1/2/4, all ranks on this
// node: shards tile the buffer, the reduced shard equals the sum taken in local-rank order
// (exactly), the shared parameters hold every rank's updated shard, gathered moments are every
// rank's shards, the buffers can be reused step after step, and sizes smaller than one shard
// per rank work; the integer shards of deterministic training sum exactly, on one node and
// across (simulated) nodes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm_mpi.h"
#include "optim/adam.h"
#include "mpi_test_util.h"

namespace mnist_dist {
namespace {

using testing::all_ranks;
using testing::world_rank;
using testing::world_size;

// A value no two (rank, step, index) share in their low bits, non-integer so that float
// addition rounds.
float grad_value(int rank, int step, size_t i) {
  return 0.1f * static_cast<float>(rank + 1) + 1e-3f * static_cast<float>(i % 977) +
         0.37f * static_cast<float>(step) + 1.0f / static_cast<float>(3 + i % 11);
}

class ShardedExchangeTest : public ::testing::TestWithParam<size_t> {};

TEST_P(ShardedExchangeTest, ReducesGathersAndCanBeReused) {
  const size_t count = GetParam();
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  std::string why;
  auto ex = comm->make_sharded_exchange(count, &why);
  if (world_size() == 1) {  // one rank per node: nothing to share, and the reason says so
    EXPECT_EQ(ex, nullptr);
    EXPECT_NE(why.find("one rank"), std::string::npos) << why;
    return;
  }
  ASSERT_NE(ex, nullptr) << why;
  const int n = comm->size(), me = comm->rank();  // one node: local rank == rank
  bool ok = ex->count() == count && reinterpret_cast<uintptr_t>(ex->grads()) % 64 == 0 &&
            (ex->shard_begin() % 16 == 0 || ex->shard_begin() == count) &&
            ex->shard_begin() <= ex->shard_end() && ex->shard_end() <= count;
  for (size_t i = 0; i < count; ++i) ok &= ex->grads()[i] == 0.0f;
  // Shards tile [0, count) in rank order.
  std::vector<uint64_t> begins(n), ends(n);
  comm->allgather_u64(ex->shard_begin(), begins.data());
  comm->allgather_u64(ex->shard_end(), ends.data());
  ok &= begins[0] == 0 && ends[n - 1] == count;
  for (int r = 1; r < n; ++r) ok &= begins[r] == ends[r - 1];

  std::vector<float> initial(count);
  for (size_t i = 0; i < count; ++i) initial[i] = static_cast<float>(i) - 7.0f;
  ex->share_params(initial.data());
  for (size_t i = 0; i < count; ++i) ok &= ex->params()[i] == initial[i];
  ok &= reinterpret_cast<uintptr_t>(ex->params()) % 64 == 0;
  float* params = ex->params();
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < count; ++i) ex->grads()[i] = grad_value(me, step, i);
    ex->reduce_scatter();
    for (size_t i = ex->shard_begin(); i < ex->shard_end(); ++i) {
      float s = grad_value(0, step, i);
      for (int r = 1; r < n; ++r) s += grad_value(r, step, i);
      ok &= ex->grads()[i] == s;
      params[i] = static_cast<float>(me) + 0.5f * static_cast<float>(step);  // "the update"
    }
    ex->all_gather();
    for (int r = 0; r < n; ++r)
      for (size_t i = begins[r]; i < ends[r]; ++i) ok &= params[i] == static_cast<float>(r) + 0.5f * step;
  }
  // Moments valid on the own shard only → complete everywhere.
  std::vector<float> m(count, 0.0f);
  for (size_t i = ex->shard_begin(); i < ex->shard_end(); ++i) m[i] = static_cast<float>(i) * 0.25f;
  ex->gather_full(m.data());
  for (size_t i = 0; i < count; ++i) ok &= m[i] == static_cast<float>(i) * 0.25f;
  ex->close();
  EXPECT_TRUE(all_ranks(ok));
}

// An arena-like odd size, and sizes where some ranks get an empty shard.
INSTANTIATE_TEST_SUITE_P(Sizes, ShardedExchangeTest, ::testing::Values(size_t{100003}, size_t{40}, size_t{5}));

// One node, per-layer readiness (the trainer's path): each "layer" of a backward pass, last
// first, is written and marked; every rank then waits for the others' marks and updates the
// r-th 1/L of that layer with Adam (summing the node's buffers); all_gather ends the step, and
// gather_owned completes the moments. Three steps of that equal three steps of the barrier
// protocol (wait_grads, step_sum over the contiguous shard, all_gather, gather_full) bit for
// bit: parameters and both moments everywhere.
TEST(ShardedExchangePerLayer, UpdatesEqualTheBarrierProtocol) {
  if (world_size() < 2) GTEST_SKIP() << "needs mpiexec -n 2 or more";
  const size_t count = 10007;
  const std::vector<std::pair<size_t, size_t>> layers = {{0, 3000}, {3000, 3001}, {3008, 5003}, {5008, 10007}};
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  std::string why;
  auto layered = comm->make_sharded_exchange(count, &why);
  auto barrier = comm->make_sharded_exchange(count, &why);
  ASSERT_TRUE(layered && barrier) << why;
  const int me = world_rank();
  const size_t L = static_cast<size_t>(world_size()), r = static_cast<size_t>(me);
  bool ok = layered->per_layer();
  std::vector<std::pair<size_t, size_t>> parts, owned;
  for (const auto& [a, b] : layers) {
    const size_t per = (b - a + 16 * L - 1) / (16 * L) * 16;
    parts.emplace_back(std::min(b, a + per * r), std::min(b, a + per * (r + 1)));
    if (parts.back().second > parts.back().first) owned.push_back(parts.back());
  }
  std::vector<float> initial(count, 0.0f);
  for (const auto& [a, b] : layers)
    for (size_t i = a; i < b; ++i) initial[i] = 0.01f * static_cast<float>(i % 101) - 0.5f;
  layered->share_params(initial.data());
  barrier->share_params(initial.data());
  const size_t sb = barrier->shard_begin(), se = barrier->shard_end();
  Adam a(AdamConfig{}, count), b(AdamConfig{}, count);
  int n = 0;
  const float* const* node_a = layered->node_grads(&n);
  const float* const* node_b = barrier->node_grads(&n);
  auto grad = [](int rank, int step, size_t i) { return grad_value(rank, step, i); };
  for (int step = 1; step <= 3; ++step) {
    a.begin_step();
    for (size_t k = layers.size(); k-- > 0;) {
      for (size_t i = layers[k].first; i < layers[k].second; ++i) layered->grads()[i] = grad(me, step, i);
      layered->mark_ready(static_cast<int>(k), step);
      if (parts[k].first >= parts[k].second) continue;
      layered->wait_ready(static_cast<int>(k), step);
      a.update_sum(layered->params(), node_a, n, parts[k].first, parts[k].second);
    }
    layered->all_gather();
    for (const auto& [lo, hi] : layers)  // the gaps between layers stay zero (alignment padding)
      for (size_t i = lo; i < hi; ++i) barrier->grads()[i] = grad(me, step, i);
    barrier->wait_grads();
    b.step_sum(barrier->params(), node_b, n, sb, se);
    barrier->all_gather();
    for (size_t i = 0; i < count; ++i) ok &= layered->params()[i] == barrier->params()[i];
    ok &= layered->params()[4000] != initial[4000];  // updated at all
  }
  layered->gather_owned(a.m(), owned);
  layered->gather_owned(a.v(), owned);
  barrier->gather_full(b.m());
  barrier->gather_full(b.v());
  ok &= std::memcmp(a.m(), b.m(), count * sizeof(float)) == 0;
  ok &= std::memcmp(a.v(), b.v(), count * sizeof(float)) == 0;
  // gather_owned copies bits: −0.0 and a NaN payload arrive as written, unowned words as zero.
  std::vector<float> probe(count, 1.5f);
  for (const auto& [lo, hi] : owned)
    for (size_t i = lo; i < hi; ++i) probe[i] = (i % 3 == 0) ? -0.0f : static_cast<float>(i) * 0.5f;
  layered->gather_owned(probe.data(), owned);
  for (size_t i = 0; i < count; ++i) {
    const bool in_layer = std::any_of(layers.begin(), layers.end(), [i](auto l) { return i >= l.first && i < l.second; });
    if (!in_layer) {
      ok &= probe[i] == 0.0f && !std::signbit(probe[i]);
    } else if (i % 3 == 0) {
      ok &= probe[i] == 0.0f && std::signbit(probe[i]);
    } else {
      ok &= probe[i] == static_cast<float>(i) * 0.5f;
    }
  }
  layered->close();
  barrier->close();
  EXPECT_TRUE(all_ranks(ok));
}

// Several nodes, simulated by handing the factory a "node" communicator that splits this
// node's ranks into pairs (shared windows work within each pair): each shard is summed in the
// pair, then all-reduced across pairs; optimizer-side sums are not offered (node_grads null).
TEST(ShardedExchangeNodes, PairsOfRanksActAsTwoNodes) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpiexec -n 4";
  const int me = world_rank();
  MPI_Comm pair = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, me / 2, me, &pair);
  const size_t count = 1000;
  std::string why;
  auto ex = make_mpi_sharded_exchange(MPI_COMM_WORLD, pair, count, &why);
  ASSERT_NE(ex, nullptr) << why;
  int n = 0;
  bool ok = ex->node_grads(&n) == nullptr && !ex->per_layer();  // several nodes: one barrier per step
  const int local = me % 2;
  ok &= ex->shard_begin() == (local == 0 ? 0u : 512u) && ex->shard_end() == (local == 0 ? 512u : count);
  std::vector<float> initial(count, 1.0f);
  ex->share_params(initial.data());
  for (int step = 0; step < 2; ++step) {
    for (size_t i = 0; i < count; ++i) ex->grads()[i] = grad_value(me, step, i);
    ex->reduce_scatter();
    for (size_t i = ex->shard_begin(); i < ex->shard_end(); ++i) {
      // In-pair sum first (local-rank order), then across the two pairs: with two terms per
      // stage the result does not depend on MPI's reduction order.
      const float p0 = grad_value(0, step, i) + grad_value(1, step, i);
      const float p1 = grad_value(2, step, i) + grad_value(3, step, i);
      ok &= ex->grads()[i] == p0 + p1;
      ex->params()[i] = ex->grads()[i];
    }
    ex->all_gather();
    for (size_t i = 0; i < count; ++i) {  // every node's buffer now holds the full sum
      const float p0 = grad_value(0, step, i) + grad_value(1, step, i);
      const float p1 = grad_value(2, step, i) + grad_value(3, step, i);
      ok &= ex->params()[i] == p0 + p1;
    }
  }
  ex->close();
  MPI_Comm_free(&pair);
  EXPECT_TRUE(all_ranks(ok));
}

// Deterministic training's integer shards: one node (the buffers offered for summing as read)
// and pairs acting as two nodes (reduce_shard_exact: in the pair, then across pairs). The sums
// are the integers' exact totals, including values whose partial sums wrap past 2^63 and back.
int64_t exact_value(int rank, int step, size_t i) {
  const int64_t big = (int64_t{1} << 62) + 12345;  // two ranks' sum wraps; the total does not
  return (i % 5 == 0) ? (rank % 2 == 0 ? big : -big + rank) : static_cast<int64_t>(i) * 1000003 - rank * 77 + step;
}

TEST(ShardedExchangeExact, IntegerShardsSumExactlyOnOneNodeAndAcrossNodes) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpiexec -n 4";
  const int me = world_rank();
  const size_t count = 1000;
  bool ok = true;
  for (const bool pairs : {false, true}) {
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, pairs ? me / 2 : 0, me, &node);
    std::string why;
    auto ex = make_mpi_sharded_exchange(MPI_COMM_WORLD, node, count, &why, /*exact=*/true);
    ok &= ex != nullptr && ex->exact_grads() != nullptr &&
          reinterpret_cast<uintptr_t>(ex->exact_grads()) % 64 == 0;
    if (ex == nullptr) {
      std::printf("no exchange: %s\n", why.c_str());
      MPI_Comm_free(&node);
      break;
    }
    for (size_t i = 0; i < count; ++i) ok &= ex->exact_grads()[i] == 0;
    std::vector<float> initial(count, 1.0f);
    ex->share_params(initial.data());
    int n = 0;
    const int64_t* const* bufs = ex->node_exact_grads(&n);
    ok &= pairs ? bufs == nullptr : (bufs != nullptr && n == 4);
    for (int step = 0; step < 2; ++step) {
      for (size_t i = 0; i < count; ++i) ex->exact_grads()[i] = exact_value(me, step, i);
      ex->wait_grads();
      if (bufs == nullptr) ex->reduce_shard_exact();  // collective across the pairs
      for (size_t i = ex->shard_begin(); i < ex->shard_end(); ++i) {
        uint64_t want = 0;
        for (int r = 0; r < 4; ++r) want += static_cast<uint64_t>(exact_value(r, step, i));
        uint64_t got = 0;
        if (bufs != nullptr) {
          for (int r = 0; r < n; ++r) got += static_cast<uint64_t>(bufs[r][i]);
        } else {
          got = static_cast<uint64_t>(ex->exact_grads()[i]);
        }
        ok &= got == want;
      }
      ex->all_gather();
    }
    ex->close();
    MPI_Comm_free(&node);
  }
  EXPECT_TRUE(all_ranks(ok));
}

// Too little room in /dev/shm (an arena of 2^40 floats, 4 TiB per rank): no exchange instead of
// a SIGBUS on the first write, and the reason names the sizes; the check itself on a real
// file system.
TEST(ShardedExchangeNodes, TooLittleSharedMemoryGetsNoneWithTheSizes) {
  if (world_size() < 2) GTEST_SKIP() << "needs mpiexec -n 2 or more";
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  std::string why;
  auto ex = comm->make_sharded_exchange(size_t{1} << 40, &why);
  bool ok = ex == nullptr && why.find("/dev/shm has") != std::string::npos &&
            why.find("MiB free") != std::string::npos && why.find("--shm-size") != std::string::npos;
  if (!ok) std::printf("reason: %s\n", why.c_str());
  ok &= shared_memory_shortfall("/dev/shm", 1.0).empty();
  ok &= shared_memory_shortfall("/nonexistent-dir", 1e30).empty();  // cannot ask: no verdict
  EXPECT_TRUE(all_ranks(ok));
}

// Unequal nodes (3 + 1 ranks) and one rank per node: no exchange, and the reason says why.
TEST(ShardedExchangeNodes, UnequalOrSingleRankNodesGetNone) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpiexec -n 4";
  const int me = world_rank();
  bool ok = true;
  for (const int split : {0, 1}) {
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, split == 0 ? (me < 3 ? 0 : 1) : me, me, &node);
    std::string why;
    auto ex = make_mpi_sharded_exchange(MPI_COMM_WORLD, node, 100, &why);
    ok &= ex == nullptr;
    ok &= why.find(split == 0 ? "different numbers of ranks" : "one rank") != std::string::npos;
    MPI_Comm_free(&node);
  }
  EXPECT_TRUE(all_ranks(ok));
}

}  // namespace
}  // namespace mnist_dist
