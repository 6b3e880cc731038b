// Hostile-input cases: IDX files (through mnist_prepare), shards and manifests (through mnist_dist).
#include "hostile_scene.h"

namespace hostile {

void add_input_cases(std::vector<Case>& c) {
  // --- IDX files, through mnist_prepare over an existing prepared data set (--overwrite) ---
  c.push_back({"idx_bad_magic", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 0, "\x12\x34");
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte has a bad magic number"}});
  c.push_back({"idx_float_element_type", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 2, "\x0d");
                 return s.prepare(i);
               }, {"element type 0x0D (float32)", "only unsigned-byte"}});
  c.push_back({"idx_truncated_data", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::resize_file(i / kTrainImages, 5000);
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte is truncated", "declares 470400 data bytes"}});
  c.push_back({"idx_truncated_header", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::resize_file(i / kTestImages, 9);
                 return s.prepare(i);
               }, {"t10k-images-idx3-ubyte is truncated: it ends inside the IDX header"}});
  c.push_back({"idx_huge_claimed_size", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 4, be32(0xFFFFFFFFu));
                 return s.prepare(i);
               }, {"exceeds the limit of 2147483648 bytes"}});
  c.push_back({"idx_zero_dimension", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 8, be32(0));
                 return s.prepare(i);
               }, {"dimension 1 of the IDX header is 0"}});
  c.push_back({"idx_trailing_bytes", [](Scene& s) {
                 const fs::path i = s.idx();
                 write_bytes(i / kTestLabels, read_bytes(i / kTestLabels) + "extra");
                 return s.prepare(i);
               }, {"t10k-labels-idx1-ubyte has 5 trailing bytes"}});
  c.push_back({"idx_count_mismatch", [](Scene& s) {
                 const fs::path i = s.idx();
                 std::vector<uint8_t> labels(500, 1);
                 mnist_dist::testing::write_idx((i / kTrainLabels).string(), {500}, labels);
                 return s.prepare(i);
               }, {"has 600 images but", "has 500 labels; the counts must match"}});
  c.push_back({"idx_images_with_two_dims", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTrainImages).string(), {600, 784}, std::vector<uint8_t>(600 * 784));
                 return s.prepare(i);
               }, {"has 2 dimensions; expected 3 (count, rows, cols)"}});
  c.push_back({"idx_labels_with_two_dims", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTestLabels).string(), {100, 1}, std::vector<uint8_t>(100));
                 return s.prepare(i);
               }, {"has 2 dimensions; expected 1 (count)"}});
  c.push_back({"idx_empty_file", [](Scene& s) {
                 const fs::path i = s.idx();
                 write_bytes(i / kTestLabels, "");
                 return s.prepare(i);
               }, {"t10k-labels-idx1-ubyte is empty"}});
  c.push_back({"idx_corrupt_gzip", [](Scene& s) {
                 const fs::path i = s.idx();
                 gzip_file(i / kTrainImages, i / (std::string(kTrainImages) + ".gz"));
                 fs::remove(i / kTrainImages);
                 poke(i / (std::string(kTrainImages) + ".gz"), 200, std::string(32, '\xa5'));
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte.gz: corrupt gzip data"}});
  c.push_back({"idx_truncated_gzip", [](Scene& s) {
                 const fs::path i = s.idx();
                 const fs::path gz = i / (std::string(kTrainLabels) + ".gz");
                 gzip_file(i / kTrainLabels, gz);
                 fs::remove(i / kTrainLabels);
                 fs::resize_file(gz, fs::file_size(gz) - 12);
                 return s.prepare(i);
               }, {"train-labels-idx1-ubyte.gz", "truncated"}});
  c.push_back({"idx_gzip_header_claims_2GB", [](Scene& s) {  // a lying header, small stream
                 const fs::path i = s.idx();
                 write_bytes(i / "big", std::string("\0\0\x08\x03", 4) + be32(2700000) + be32(28) + be32(28) +
                                            std::string(4096, '\x01'));
                 gzip_file(i / "big", i / (std::string(kTrainImages) + ".gz"));
                 fs::remove(i / "big");
                 fs::remove(i / kTrainImages);
                 return s.prepare(i);
               }, {"is truncated", "(after gzip decompression)"}});
  c.push_back({"idx_label_out_of_range", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainLabels, 8 + 12, "\x0a");
                 return s.prepare(i);
               }, {"sample 12 has label 10, but labels must be 0..9"}});
  c.push_back({"idx_train_test_image_sizes_differ", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTestImages).string(), {100, 20, 20}, std::vector<uint8_t>(100 * 400));
                 return s.prepare(i);
               }, {"train and test must have the same image size"}});
  c.push_back({"idx_missing_file", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::remove(i / kTestLabels);
                 return s.prepare(i);
               }, {"has neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz"}});
  c.push_back({"prepare_existing_out_without_overwrite", [](Scene& s) {
                 return kPrepare + " --idx-dir " + s.idx().string() + " --out " + s.prepared_out().string();
               }, {"already holds a prepared data set"}});
  c.push_back({"prepare_zero_shards", [](Scene& s) { return s.prepare(s.idx(), "--shards 0"); },
               {"--shards 0 is out of range"}});

  // --- shards and manifest, through mnist_dist ------------------------------------------
  c.push_back({"shard_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::remove(shard(d, "train", 1));
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5 is missing (it is listed in"}});
  c.push_back({"shard_not_hdf5", [](Scene& s) {
                 const fs::path d = s.data();
                 write_bytes(shard(d, "val", 0), "not an HDF5 file\n");
                 refile(d, "val", 0);
                 return s.dist("", d);
               }, {"val-00000-of-00002.h5 is not a readable HDF5 file", "file signature not found"}});
  c.push_back({"shard_truncated", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::resize_file(shard(d, "train", 0), fs::file_size(shard(d, "train", 0)) / 2);
                 return s.dist("", d);
               }, {"train-00000-of-00002.h5: the file's SHA-256 does not match manifest.json"}});
  c.push_back({"shard_images_wrong_shape", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 0), [](hid_t f) { replace_dataset(f, "images", H5T_STD_U8LE, {210, 28, 27}); });
                 refile(d, "train", 0);
                 return s.dist("", d);
               }, {"dataset 'images' has shape (210, 28, 27) but the manifest implies (210, 28, 28)"}});
  c.push_back({"shard_images_wrong_dtype", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "test", 1), [](hid_t f) { replace_dataset(f, "images", H5T_IEEE_F32LE, {50, 28, 28}); });
                 refile(d, "test", 1);
                 return s.dist("", d);
               }, {"test-00001-of-00002.h5: dataset 'images' is not of type uint8"}});
  c.push_back({"shard_labels_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { MD_H5(H5Ldelete(f, "labels", H5P_DEFAULT)); });
                 refile(d, "train", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5 has no dataset 'labels'"}});
  c.push_back({"shard_of_another_split", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::copy_file(shard(d, "val", 0), shard(d, "train", 0), fs::copy_options::overwrite_existing);
                 refile(d, "train", 0);
                 return s.dist("", d);
               }, {"attribute 'split' is 'val' but manifest.json lists it under 'train'"}});
  c.push_back({"shard_label_out_of_range_val", [](Scene& s) {  // found when the split is loaded
                 const fs::path d = s.data();
                 edit_h5(shard(d, "val", 1), [](hid_t f) { set_byte(f, "labels", 7, 42); });
                 reseal(d, "val", 1);
                 return s.dist("", d);
               }, {"val-00001-of-00002.h5: sample 7", "has label 42 but num_classes is 10"}});
  c.push_back({"shard_label_out_of_range_train", [](Scene& s) {  // found while training
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { set_byte(f, "labels", 100, 200); });
                 reseal(d, "train", 1);
                 return s.dist("--max-steps 0 --epochs 1", d);
               }, {"train-00001-of-00002.h5: sample 100", "has label 200 but num_classes is 10"}});
  c.push_back({"shard_checksum_mismatch", [](Scene& s) {  // a pixel changed after mnist_prepare
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { set_byte(f, "images", 5000, 77); });
                 refile(d, "train", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5: content checksum mismatch"}});
  // A shard whose HDF5 metadata is damaged opens, then fails inside HDF5: that is bad input too.
  c.push_back({"shard_corrupt_string_heap", [](Scene& s) {
                 const fs::path d = s.data();
                 break_signature(shard(d, "train", 0), "GCOL", 0);
                 return s.dist("", d);
               }, {"train-00000-of-00002.h5", "corrupt"}});
  c.push_back({"shard_corrupt_group_btree", [](Scene& s) {
                 const fs::path d = s.data();
                 break_signature(shard(d, "val", 1), "TREE", 0);
                 return s.dist("", d);
               }, {"val-00001-of-00002.h5", "corrupt"}});
  c.push_back({"shard_corrupt_chunk_index", [](Scene& s) {  // found while training
                 const fs::path d = s.data();
                 break_signature(shard(d, "train", 1), "TREE", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5", "corrupt"}});
  c.push_back({"manifest_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::remove(d / "manifest.json");
                 return s.dist("", d);
               }, {"has no manifest.json: run mnist_prepare"}});
  c.push_back({"manifest_garbled", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::resize_file(d / "manifest.json", 300);
                 return s.dist("", d);
               }, {"manifest.json is not valid JSON"}});
  c.push_back({"manifest_empty", [](Scene& s) {
                 const fs::path d = s.data();
                 write_bytes(d / "manifest.json", "");
                 return s.dist("", d);
               }, {"manifest.json is not valid JSON"}});
  c.push_back({"manifest_count_is_a_string", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["splits"]["val"]["count"] = "180"; });
                 return s.dist("", d);
               }, {"field 'count' is missing or is not a non-negative integer"}});
  c.push_back({"manifest_disagrees_with_shard", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) {
                   j["splits"]["train"]["count"] = 421;
                   j["splits"]["train"]["shards"][1]["count"] = 211;
                 });
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5: attribute 'count' is 210 but manifest.json says 211"}});
  c.push_back({"manifest_shard_path_escapes", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) {
                   j["splits"]["test"]["shards"][0]["file"] = "../../../etc/passwd";
                 });
                 return s.dist("", d);
               }, {"must be a plain name inside the data directory"}});
  c.push_back({"manifest_bad_sha256", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["splits"]["train"]["shards"][0]["sha256"] = "xyz"; });
                 return s.dist("", d);
               }, {"sha256 is not 64 lower-case hex digits"}});
  c.push_back({"manifest_future_format", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["format_version"] = 2; });
                 return s.dist("", d);
               }, {"format_version is 2 but this build reads 1"}});
  c.push_back({"data_is_a_file", [](Scene& s) { return s.dist("", s.data() / "manifest.json"); },
               {"no such data directory"}});

}

}  // namespace hostile
