// load_split_data: ShardReader::read_range over the whole split, uint8 → float / 255.
#include "train/split_loader.h"

#include <cstdint>
#include <vector>

#include "data_pipeline/shard_reader.h"

namespace mnist_dist {

LoadedSplit load_split_data(const std::string& data_dir, const std::string& split) {
  data::ShardReader reader = data::ShardReader::open(data_dir, split);
  reader.verify_checksums();  // contents as mnist_prepare wrote them (SHA-256 in manifest.json)
  LoadedSplit s;
  s.rows = static_cast<int>(reader.rows());
  s.cols = static_cast<int>(reader.cols());
  s.num_classes = reader.num_classes();
  s.data.n = reader.size();
  const size_t pixels = static_cast<size_t>(s.rows) * s.cols;
  std::vector<uint8_t> raw(s.data.n * pixels);
  s.data.labels.resize(s.data.n);
  if (s.data.n > 0) reader.read_range(0, s.data.n, raw.data(), s.data.labels.data());
  s.data.images.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) s.data.images[i] = raw[i] * (1.0f / 255.0f);
  return s;
}

}  // namespace mnist_dist
