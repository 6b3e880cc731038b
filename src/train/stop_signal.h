// Preemption: SIGTERM and SIGUSR1 (Slurm's preemption and --signal) set a flag; the trainer
// polls it after every step, all ranks agree on the step (max over ranks), write a checkpoint
// and exit with kExitPreempted.
#pragma once

namespace mnist_dist {

inline constexpr int kExitPreempted = 3;  // stopped by a signal, checkpoint written

void install_stop_signal_handlers();
bool stop_requested();
int stop_signal_number();   // the signal received (0 if none)
void clear_stop_request();  // for tests

}  // namespace mnist_dist
