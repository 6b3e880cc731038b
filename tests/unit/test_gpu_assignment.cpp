// The GPU-per-rank rule (comm/gpu_assignment.h) on scripted identities, as a job would gather
// them: distinct GPUs pass; two ranks on one GPU fail with the ranks named — also when
// CUDA_VISIBLE_DEVICES is set (which once switched the check off).
#include <gtest/gtest.h>

#include <memory>

#include "comm/gpu_assignment.h"
#include "fake_communicator.h"

namespace mnist_dist {
namespace {

std::vector<uint64_t> keys_of(const std::vector<std::pair<std::string, std::string>>& host_bus) {
  std::vector<uint64_t> keys;
  for (const auto& [host, bus] : host_bus) {
    auto one = make_single_process_communicator();
    keys.push_back(gather_gpu_keys(*one, host, bus).at(0));
  }
  return keys;
}

TEST(GpuAssignment, DistinctGpusPass) {
  EXPECT_EQ(gpu_sharing_problem(keys_of({{"n1", "0000:3b:00.0"}, {"n1", "0000:5e:00.0"},
                                         {"n2", "0000:3b:00.0"}}), nullptr), "");
  // A launcher binding one GPU per rank: each rank sees "device 0", a different bus id.
  EXPECT_EQ(gpu_sharing_problem(keys_of({{"n1", "0000:3b:00.0"}, {"n1", "0000:5e:00.0"}}), "0"), "");
}

TEST(GpuAssignment, SharedGpuFailsEvenWithCudaVisibleDevicesSet) {
  const auto shared = keys_of({{"n1", "0000:3b:00.0"}, {"n2", "0000:3b:00.0"}, {"n2", "0000:3b:00.0"}});
  const std::string plain = gpu_sharing_problem(shared, nullptr);
  EXPECT_NE(plain.find("ranks 1 and 2 would share one GPU"), std::string::npos) << plain;
  EXPECT_NE(plain.find("--comm host-staged"), std::string::npos) << plain;
  const std::string site_wide = gpu_sharing_problem(shared, "0");
  EXPECT_NE(site_wide.find("ranks 1 and 2"), std::string::npos) << site_wide;
  EXPECT_NE(site_wide.find("CUDA_VISIBLE_DEVICES=0 shows them the same device"), std::string::npos) << site_wide;
}

// A communicator of `size` ranks whose all-gather shows rank `odd` with another value.
class OddOneOut final : public FakeCommunicator {
 public:
  OddOneOut(int size, int odd) : FakeCommunicator(size), odd_(odd) {}
  void allgather_u64(uint64_t value, uint64_t* out) override {
    for (int r = 0; r < size_; ++r) out[r] = r == odd_ ? value + 1 : value;
  }

 private:
  int odd_;
};

TEST(GpuAssignment, RanksOnDifferentBackendsAreNamedBeforeAnyGpuWork) {
  OddOneOut agree(4, -1), cpu_rank(4, 2);
  EXPECT_EQ(backend_disagreement(agree, "cuda/nccl"), "");
  const std::string why = backend_disagreement(cpu_rank, "cuda/nccl");
  EXPECT_NE(why.find("rank 2 would train differently from rank 0 (this rank: cuda/nccl"), std::string::npos) << why;
  EXPECT_NE(why.find("give every rank the same --device"), std::string::npos) << why;
}

}  // namespace
}  // namespace mnist_dist
