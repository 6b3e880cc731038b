// Verified synchronized replicas (DESIGN.md contract 4): a 64-bit hash of the parameter and
// state bytes is gathered from every rank and compared; a mismatch is a hard error naming the
// ranks that differ from rank 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "model/param_arena.h"

namespace mnist_dist {

// Hashes read the arena's host copies: call arena.sync_to_host() first on a GPU backend.
// FNV-1a over the bytes (order-sensitive, so bitwise equality is what it checks).
uint64_t hash_bytes(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull);
// Parameters, and the non-trainable state (BatchNorm running statistics) when with_state:
// with --bn local each replica keeps its own running statistics (rank 0's are used, as in DDP).
uint64_t hash_arena(const ParamArena& arena, bool with_state = true);

// Gathers every rank's hash; returns the ranks whose hash differs from rank 0's (same on all).
std::vector<int> diverged_ranks(Communicator& comm, const ParamArena& arena, bool with_state = true);

// Collective: rank 0's parameters and state to every rank (through the arena's host copies).
void broadcast_replica(Communicator& comm, ParamArena& arena);

// diverged_ranks, and a fatal error (whole job) on any mismatch. `when` names the step.
void verify_replicas(Communicator& comm, const ParamArena& arena, const std::string& when,
                     bool with_state = true);

}  // namespace mnist_dist
