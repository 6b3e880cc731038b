// Which GPU each rank uses, checked across the job before any GPU work: NCCL needs one GPU per
// rank and fails obscurely ("Duplicate GPU detected") when two share one. The check compares
// (host name, PCI bus id) of every rank's chosen GPU, so it holds whatever CUDA_VISIBLE_DEVICES
// says: a launcher that binds one GPU per rank passes, a site-wide setting that shows every
// rank the same GPU does not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace mnist_dist {

// Collective: every rank's GPU identity (a hash of host and bus id), in rank order.
std::vector<uint64_t> gather_gpu_keys(Communicator& comm, const std::string& host, const std::string& bus_id);

// Empty when every rank has a GPU of its own; else the error for the first two ranks that share
// one, with what to do (visible_devices: the value of CUDA_VISIBLE_DEVICES, or null).
std::string gpu_sharing_problem(const std::vector<uint64_t>& keys, const char* visible_devices);

// Collective, made by every rank whatever its flags (in a build with CUDA, before the GPU check
// above, which only GPU ranks reach): empty when every rank chose the same backend and GPU
// communicator as rank 0 (`choice`: "cpu", or "cuda/nccl", "cuda/host-staged"), else the error.
std::string backend_disagreement(Communicator& comm, const std::string& choice);

}  // namespace mnist_dist
