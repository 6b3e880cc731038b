// Cross-rank parameter hash check.
#include "train/replica_check.h"

#include <string>
#include <vector>

#include "core/error.h"

namespace mnist_dist {

void broadcast_replica(Communicator& comm, ParamArena& arena) {
  arena.sync_to_host();
  comm.broadcast(arena.host_params(), arena.param_count() * sizeof(float), 0);
  comm.broadcast(arena.host_state(), arena.state_count() * sizeof(float), 0);
  arena.sync_to_device();
}

std::vector<int> diverged_ranks(Communicator& comm, const ParamArena& arena, bool with_state) {
  std::vector<int> bad;
  if (comm.size() == 1) return bad;
  std::vector<uint64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather_u64(hash_arena(arena, with_state), all.data());
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) bad.push_back(static_cast<int>(r));
  return bad;
}

void verify_replicas(Communicator& comm, const ParamArena& arena, const std::string& when,
                     bool with_state) {
  const std::vector<int> bad = diverged_ranks(comm, arena, with_state);
  if (bad.empty()) return;
  std::string list;
  for (int r : bad) list += (list.empty() ? "" : ", ") + std::to_string(r);
  fatal("replicas diverged " + when + ": the parameters of rank(s) " + list +
            " differ from rank 0's (synchronized Adam violated)",
        __FILE__, __LINE__);
}

}  // namespace mnist_dist
