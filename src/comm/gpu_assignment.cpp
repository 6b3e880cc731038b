// GPU-per-rank check (comm/gpu_assignment.h).
#include "comm/gpu_assignment.h"

namespace mnist_dist {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::vector<uint64_t> gather_gpu_keys(Communicator& comm, const std::string& host, const std::string& bus_id) {
  std::vector<uint64_t> keys(static_cast<size_t>(comm.size()));
  comm.allgather_u64(fnv1a(host + "/" + bus_id), keys.data());
  return keys;
}

std::string backend_disagreement(Communicator& comm, const std::string& choice) {
  std::vector<uint64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather_u64(fnv1a(choice), all.data());
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      return "rank " + std::to_string(r) + " would train differently from rank 0 (" +
             (comm.rank() == 0 || comm.rank() == static_cast<int>(r) ? "this rank: " + choice + "; " : std::string()) +
             "--device or --comm differ, or --device auto found GPUs on some nodes only): give every rank "
             "the same --device (cpu or cuda) and --comm";
  return {};
}

std::string gpu_sharing_problem(const std::vector<uint64_t>& keys, const char* visible_devices) {
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = i + 1; j < keys.size(); ++j) {
      if (keys[i] != keys[j]) continue;
      std::string why = "ranks " + std::to_string(i) + " and " + std::to_string(j) +
                        " would share one GPU (NCCL needs a GPU per rank)";
      if (visible_devices != nullptr)
        why += "; CUDA_VISIBLE_DEVICES=" + std::string(visible_devices) +
               " shows them the same device: unset it or give each rank its own (srun --gpus-per-task=1)";
      return why + ". Start at most as many ranks per node as it has GPUs, use --comm host-staged "
                   "(ranks share a GPU, sums through host memory: for testing), or --device cpu";
    }
  return {};
}

}  // namespace mnist_dist
