// ConsoleObserver: plain lines, flushed at once (terminals, pipes and Slurm logs alike).
#include "report/console.h"

#include <cstdio>

namespace mnist_dist {

void ConsoleObserver::on_epoch_end(const EpochMetrics& m) {
  if (quiet_) return;
  std::printf("Epoch %d/%d - %.2fs - %.0f samples/s - loss: %.4f - accuracy: %.4f - val_loss: %.4f"
              " - val_accuracy: %.4f - data wait %.3fs, comm %.3fs\n",
              m.epoch, epochs_, m.seconds, m.samples_per_second, m.loss, m.accuracy, m.val_loss,
              m.val_accuracy, m.data_wait_seconds, m.comm_seconds);
  std::fflush(stdout);
}

void ConsoleObserver::on_train_end(const TrainResult& r) {
  if (r.test.count == 0) return;
  std::printf("Test loss: %.4f\nTest accuracy: %.4f\n", r.test.loss, r.test.accuracy);
  std::fflush(stdout);
}

}  // namespace mnist_dist
