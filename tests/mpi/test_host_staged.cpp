// The host-staged communicator (comm/comm_host_staged.h) under mpiexec -n 1/2 with pretend
// device memory: buffers registered as "device" must be downloaded, summed over MPI and
// uploaded (the sums checked in closed form, the copies counted), host buffers must go to MPI
// untouched, and a non-blocking device all-reduce must be complete when it returns. The real
// device copies run in the GPU tests; this checks the staging logic on any machine.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "comm/comm_host_staged.h"
#include "comm/comm_mpi.h"
#include "mpi_test_util.h"

namespace mnist_dist {
namespace {

using testing::all_ranks;

// The pretend device: one registered host range; copies counted.
struct PretendDevice {
  static inline const char* begin = nullptr;
  static inline size_t bytes = 0;
  static inline int downloads = 0, uploads = 0;
  static bool is_device(const void* p) {
    const char* c = static_cast<const char*>(p);
    return begin != nullptr && c >= begin && c < begin + bytes;
  }
  static void to_host(void* dst, const void* src, size_t n) {
    EXPECT_TRUE(is_device(src) && !is_device(dst));
    std::memcpy(dst, src, n);
    ++downloads;
  }
  static void to_device(void* dst, const void* src, size_t n) {
    EXPECT_TRUE(is_device(dst) && !is_device(src));
    std::memcpy(dst, src, n);
    ++uploads;
  }
  static DeviceMemory memory() { return DeviceMemory{is_device, to_host, to_device}; }
};

TEST(HostStagedCommunicator, DeviceBuffersAreStagedHostBuffersAreNot) {
  auto comm = make_host_staged_communicator(make_mpi_communicator(MPI_COMM_WORLD), PretendDevice::memory());
  const int n = comm->size(), r = comm->rank();
  EXPECT_EQ(comm->name().rfind("host-staged ", 0), 0u) << comm->name();
  std::vector<float> device_f(1000, static_cast<float>(r + 1));
  std::vector<double> device_d(24, 0.5 * r);
  std::vector<float> host_f(77, static_cast<float>(2 * r));
  // One "device" allocation holding both device buffers is enough: register the float one,
  // then the double one.
  PretendDevice::begin = reinterpret_cast<const char*>(device_f.data());
  PretendDevice::bytes = device_f.size() * sizeof(float);
  comm->allreduce_sum(device_f.data(), device_f.size());
  comm->start_allreduce_sum(device_f.data() + 10, 5);  // complete on return
  const bool started_done = device_f[10] == static_cast<float>(n * n * (n + 1) / 2);
  comm->allreduce_sum(host_f.data(), host_f.size());
  EXPECT_EQ(PretendDevice::downloads, 2);
  EXPECT_EQ(PretendDevice::uploads, 2);
  PretendDevice::begin = reinterpret_cast<const char*>(device_d.data());
  PretendDevice::bytes = device_d.size() * sizeof(double);
  comm->allreduce_sum(device_d.data(), device_d.size());
  comm->wait_all();
  EXPECT_EQ(PretendDevice::downloads, 3);
  EXPECT_EQ(PretendDevice::uploads, 3);
  PretendDevice::begin = nullptr;

  const float sum_f = static_cast<float>(n * (n + 1) / 2);
  bool ok = started_done;
  for (size_t i = 0; i < device_f.size(); ++i)
    ok &= device_f[i] == (i >= 10 && i < 15 ? sum_f * static_cast<float>(n) : sum_f);
  for (float v : host_f) ok &= v == static_cast<float>(n * (n - 1));
  for (double v : device_d) ok &= v == 0.25 * n * (n - 1);
  EXPECT_TRUE(all_ranks(ok));
}

TEST(HostStagedCommunicator, NonBlockingHostAllReduceCompletesAtWaitAll) {
  auto comm = make_host_staged_communicator(make_mpi_communicator(MPI_COMM_WORLD), PretendDevice::memory());
  const int n = comm->size();
  std::vector<float> g(300, 1.0f);
  comm->start_allreduce_sum(g.data(), 100);
  comm->start_allreduce_sum(g.data() + 100, 200);
  comm->progress();
  comm->wait_all();
  bool ok = PretendDevice::begin == nullptr;
  for (float v : g) ok &= v == static_cast<float>(n);
  EXPECT_TRUE(all_ranks(ok));
}

}  // namespace
}  // namespace mnist_dist
