// Verified synchronized replicas (DESIGN.md contract 4): a 64-bit hash of the parameter and
// state bytes is gathered from every rank and compared; a mismatch is a hard error naming the
// ranks that differ from rank 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "layers/param_arena.h"
#include "layers/param_hash.h"

namespace mnist_dist {

// Gathers every rank's hash; returns the ranks whose hash differs from rank 0's (same on all).
std::vector<int> diverged_ranks(Communicator& comm, const ParamArena& arena, bool with_state = true);

// Collective: rank 0's parameters and state to every rank (through the arena's host copies).
void broadcast_replica(Communicator& comm, ParamArena& arena);

// diverged_ranks, and a fatal error (whole job) on any mismatch. `when` names the step.
void verify_replicas(Communicator& comm, const ParamArena& arena, const std::string& when,
                     bool with_state = true);

}  // namespace mnist_dist
