// BatchStager (cuda/batch_stager.h) on a GPU, without kernels: batches of different sizes and
// contents staged in a row (slots reused) arrive byte-exact, as seen by the compute stream and
// by plain downloads; and staging the next batches while the compute stream is held (a host
// function standing in for a long kernel) still reading the current one neither waits for the
// compute stream nor overwrites the batch in use.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "cuda/batch_stager.h"
#include "cuda/cuda_runtime_api.h"
#include "gpu_test_util.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

constexpr int kCapacity = 64;
constexpr size_t kPerSample = 28 * 28;

struct HostBatch {
  std::vector<float> images;
  std::vector<uint8_t> labels;
  int n = 0;
};

HostBatch make_batch(int n, uint64_t seed) {
  HostBatch b;
  b.n = n;
  b.images = random_vector(static_cast<size_t>(n) * kPerSample, seed, 0.0, 1.0);
  b.labels.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) b.labels[static_cast<size_t>(i)] = static_cast<uint8_t>(i * 7 + seed);
  return b;
}

// Device bytes of a staged batch, downloaded with plain (legacy-stream) copies.
HostBatch download(const BatchStager::Staged& d, int n) {
  HostBatch b;
  b.n = n;
  b.images.resize(static_cast<size_t>(n) * kPerSample);
  b.labels.resize(static_cast<size_t>(n));
  copy_d2h(b.images.data(), d.images, b.images.size() * sizeof(float));
  copy_d2h(b.labels.data(), d.labels, b.labels.size());
  return b;
}

// A device snapshot of a staged batch, taken by a copy queued on the compute stream (where the
// step's kernels would read it).
struct Snapshot {
  Buffer<float> images{Backend::kCuda, static_cast<size_t>(kCapacity) * kPerSample};
  Buffer<uint8_t> labels{Backend::kCuda, static_cast<size_t>(kCapacity)};
  void take(CudaContext& cuda, const BatchStager::Staged& d, int n) {
    if (n == 0) return;
    ASSERT_EQ(cudaMemcpyAsync(images.data(), d.images, static_cast<size_t>(n) * kPerSample * sizeof(float),
                              cudaMemcpyDeviceToDevice, cuda.stream()),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(labels.data(), d.labels, static_cast<size_t>(n), cudaMemcpyDeviceToDevice,
                              cuda.stream()),
              cudaSuccess);
  }
  HostBatch host(int n) const { return download(BatchStager::Staged{images.data(), labels.data()}, n); }
};

void expect_same(const HostBatch& want, const HostBatch& got, const std::string& what) {
  ASSERT_EQ(want.n, got.n) << what;
  EXPECT_TRUE(want.images == got.images) << what << ": images differ";
  EXPECT_TRUE(want.labels == got.labels) << what << ": labels differ";
}

TEST(GpuBatchStager, BatchesInARowArriveIntactThroughReusedSlots) {
  MD_REQUIRE_GPU();
  CudaContext& cuda = *gpu_context(nullptr);
  const std::vector<int> sizes = {kCapacity, 37, kCapacity, 0, 5, kCapacity, 1};
  std::vector<HostBatch> batches;
  for (size_t i = 0; i < sizes.size(); ++i) batches.push_back(make_batch(sizes[i], 100 + i));
  std::vector<Snapshot> snaps(sizes.size());
  std::vector<BatchStager::Staged> staged;
  {
    BatchStager stager(cuda, kCapacity, kPerSample);
    EXPECT_EQ(stager.last_slot(), -1);
    for (size_t i = 0; i < batches.size(); ++i) {
      const HostBatch& b = batches[i];
      // No host synchronisation between the stages: the compute stream's snapshot must see this
      // batch, and the next-but-one stage must not overwrite the slot before the snapshot ran.
      staged.push_back(stager.stage(b.images.data(), b.labels.data(), b.n));
      EXPECT_EQ(stager.last_slot(), static_cast<int>(i % BatchStager::kSlots));
      snaps[i].take(cuda, staged.back(), b.n);
      if (i >= BatchStager::kSlots) {  // the same slot, the same device memory
        EXPECT_EQ(staged[i].images, staged[i - BatchStager::kSlots].images);
      }
    }
    synchronize(cuda);
    for (size_t i = 0; i < batches.size(); ++i)
      expect_same(batches[i], snaps[i].host(batches[i].n), "snapshot of batch " + std::to_string(i));
    // The slots hold the last two batches, downloaded directly.
    for (size_t i = batches.size() - BatchStager::kSlots; i < batches.size(); ++i)
      expect_same(batches[i], download(staged[i], batches[i].n), "slot of batch " + std::to_string(i));
  }
}

// Holds the compute stream (a host function on it) until opened, or for at most 30 s.
struct Gate {
  std::atomic<bool> open{false}, passed{false}, timed_out{false};
};

void CUDART_CB hold_stream(void* p) {
  auto* g = static_cast<Gate*>(p);
  const auto t0 = std::chrono::steady_clock::now();
  while (!g->open.load()) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(30)) {
      g->timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g->passed = true;
}

TEST(GpuBatchStager, StagingWhileTheBatchIsInUseNeitherWaitsNorOverwrites) {
  MD_REQUIRE_GPU();
  CudaContext& cuda = *gpu_context(nullptr);
  const HostBatch a = make_batch(kCapacity, 1), b = make_batch(kCapacity, 2), c = make_batch(33, 3);
  Gate gate;
  Snapshot snap;
  BatchStager stager(cuda, kCapacity, kPerSample);
  // Opens the gate and drains the streams however the test ends (the host function reads gate).
  struct Drain {
    Gate& g;
    CudaContext& cu;
    ~Drain() {
      g.open = true;
      synchronize(cu);
    }
  } drain{gate, cuda};

  const BatchStager::Staged da = stager.stage(a.images.data(), a.labels.data(), a.n);  // slot 0
  // The "long kernel" of step A: the compute stream is held, then reads slot 0.
  ASSERT_EQ(cudaLaunchHostFunc(cuda.stream(), hold_stream, &gate), cudaSuccess);
  snap.take(cuda, da, a.n);
  // Step B's batch (slot 1) uploads while A's compute is still held: a copy-stream wait only.
  const BatchStager::Staged db = stager.stage(b.images.data(), b.labels.data(), b.n);
  host_wait_upload(cuda, 1);
  // Step C's batch goes into slot 0 again: stage() returns at once, its copy waits on the GPU.
  const BatchStager::Staged dc = stager.stage(c.images.data(), c.labels.data(), c.n);
  EXPECT_EQ(dc.images, da.images);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(gate.passed.load()) << "staging waited for the compute stream";
  EXPECT_EQ(cudaEventQuery(cuda.copy_done(0)), cudaErrorNotReady)
      << "slot 0 was overwritten while the compute stream still had to read it";
  gate.open = true;
  synchronize(cuda);
  EXPECT_FALSE(gate.timed_out.load()) << "the stager blocked on the held compute stream";
  expect_same(a, snap.host(a.n), "batch A as its step read it");
  expect_same(b, download(db, b.n), "batch B in slot 1");
  expect_same(c, download(dc, c.n), "batch C in slot 0");
}

}  // namespace
}  // namespace mnist_dist::test
