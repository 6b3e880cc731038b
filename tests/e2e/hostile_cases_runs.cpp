// Hostile-input cases: checkpoints, models given to predict and export, flag values, outputs
// that cannot be written.
#include "hostile_scene.h"

namespace hostile {

void add_run_cases(std::vector<Case>& c) {
  // --- checkpoints ------------------------------------------------------------------------
  c.push_back({"ckpt_of_another_model", [](Scene& s) {
                 const fs::path ck = s.checkpoints("lenet5");
                 s.guard(ck);
                 return s.dist("--model seed --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000002.h5").string());
               }, {"is a checkpoint of a 'lenet5' model, this run trains 'seed'"}});
  c.push_back({"ckpt_truncated", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 fs::resize_file(ck / "ckpt-0000000002.h5", 100000);
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "truncated"}, {"mnist_prepare"}});
  c.push_back({"ckpt_not_hdf5", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 write_bytes(ck / "ckpt-0000000002.h5", std::string(4096, 'x'));
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "not a readable HDF5 file"}, {"mnist_prepare"}});
  c.push_back({"ckpt_bit_flip_fails_its_sha256", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 const fs::path p = ck / "ckpt-0000000002.h5";
                 flip_middle_byte(p);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + p.string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch", "ckpt-0000000002.h5.sha256 says ",
                   ", the file's is ", "use another checkpoint (--resume auto falls back"}});
  c.push_back({"ckpt_bit_flip_behind_a_matching_sidecar", [](Scene& s) {  // the FNV checksum
                 const fs::path ck = s.checkpoints();
                 const fs::path p = ck / "ckpt-0000000002.h5";
                 flip_middle_byte(p);
                 resign(p);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + p.string());
               }, {"ckpt-0000000002.h5: checksum mismatch"}});
  c.push_back({"ckpt_that_hangs_hdf5", [](Scene& s) {  // never reaches HDF5: no hang, exit 2
                 const fs::path ck = s.checkpoints();
                 const std::string input = read_bytes(fs::path(MD_FUZZ_REGRESSIONS) / "fuzz_shards" / "string_heap_hangs_hdf5");
                 write_bytes(ck / "ckpt-0000000002.h5", input.substr(1));
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"ckpt_sidecar_of_another_checkpoint", [](Scene& s) {  // e.g. a rewrite cut short
                 const fs::path ck = s.checkpoints();
                 fs::copy_file(ck / "ckpt-0000000001.h5.sha256", ck / "ckpt-0000000002.h5.sha256",
                               fs::copy_options::overwrite_existing);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"ckpt_sidecar_garbled", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 write_bytes(ck / "ckpt-0000000002.h5.sha256", "d41d8cd98f00b204  ckpt-0000000002.h5\n");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5.sha256 is not a sha256sum line", "cannot be verified"}});
  c.push_back({"ckpt_corrupt_string_heap", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 break_signature(ck / "ckpt-0000000002.h5", "GCOL", 0);
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "corrupt"}, {"mnist_prepare"}});
  c.push_back({"ckpt_path_does_not_exist", [](Scene& s) {
                 return s.dist("--resume " + (s.dir() / "no-such-ckpt.h5").string());
               }, {"no-such-ckpt.h5 does not exist"}});
  c.push_back({"ckpt_path_is_a_directory", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--resume " + ck.string());
               }, {"is a directory"}, {"does not exist"}});
  c.push_back({"ckpt_is_a_model_file", [](Scene& s) {
                 const fs::path m = s.dir() / "trained.h5";
                 fs::copy_file(world().saved_model("seed"), m);
                 s.guard(m);
                 return s.dist("--resume " + m.string());
               }, {"is not an mnist_dist checkpoint (format 'mnist_dist-model')"}});
  c.push_back({"ckpt_other_global_batch", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--batch-size 64 --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000002.h5").string());
               }, {"was written with --batch-size 128; resume with the same global batch"}});
  c.push_back({"ckpt_other_seed", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--seed 7 --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000001.h5").string());
               }, {"was written with --seed 1; resume with the same seed"}});
  c.push_back({"ckpt_dir_is_a_file", [](Scene& s) {
                 const fs::path f = s.dir() / "not-a-dir";
                 write_bytes(f, "a file in the way\n");
                 s.guard(f);
                 return s.dist("--checkpoint-dir " + f.string());
               }, {"--checkpoint-dir", "cannot be created"}});
  // --- models and checkpoints given to predict and export --------------------------------
  c.push_back({"predict_model_bit_flip", [](Scene& s) {
                 const fs::path m = s.dir() / "model.h5";
                 fs::copy_file(world().saved_model("seed"), m);
                 fs::copy_file(world().saved_model("seed").string() + ".sha256", m.string() + ".sha256");
                 flip_middle_byte(m);
                 s.guard(m);
                 return kDist + " predict --checkpoint " + m.string() + " --data " + s.data().string();
               }, {"model.h5: SHA-256 mismatch", "use an intact copy of the file"}});
  c.push_back({"predict_checkpoint_bit_flip", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 flip_middle_byte(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return kDist + " predict --checkpoint " + (ck / "ckpt-0000000002.h5").string() + " --data " +
                        s.data().string();
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"export_checkpoint_bit_flip", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 flip_middle_byte(ck / "ckpt-0000000001.h5");
                 s.guard(ck);
                 s.guard(s.dir() / "m.onnx");
                 return kDist + " export --checkpoint " + (ck / "ckpt-0000000001.h5").string() + " --onnx " +
                        (s.dir() / "m.onnx").string();
               }, {"ckpt-0000000001.h5: SHA-256 mismatch"}});

  // --- CLI values ---------------------------------------------------------------------------
  c.push_back(bad_value("epochs_negative", "--epochs", "-1"));
  c.push_back(bad_value("epochs_zero", "--epochs", "0"));
  c.push_back(bad_value("epochs_not_a_number", "--epochs", "ten"));
  c.push_back(bad_value("batch_size_zero", "--batch-size", "0"));
  c.push_back(bad_value("batch_size_negative", "--batch-size", "-128"));
  c.push_back(bad_value("batch_size_not_a_number", "--batch-size", "big"));
  c.push_back(bad_value("lr_zero", "--lr", "0"));
  c.push_back(bad_value("lr_negative", "--lr", "-0.001"));
  c.push_back(bad_value("lr_not_a_number", "--lr", "fast"));
  c.push_back({"lr_nan", [](Scene& s) { return s.dist("--lr nan"); }, {"--lr"}});
  c.push_back(bad_value("threads_negative", "--threads", "-2"));
  c.push_back(bad_value("threads_not_a_number", "--threads", "many"));
  c.push_back(bad_value("keep_checkpoints_zero", "--keep-checkpoints", "0"));
  c.push_back({"checkpoint_every_zero", [](Scene& s) { return s.dist("--checkpoint-dir ck --checkpoint-every 0"); },
               {"--checkpoint-every must be a positive step count or 'epoch' (got '0')"}});
  c.push_back({"checkpoint_every_not_a_number", [](Scene& s) { return s.dist("--checkpoint-dir ck --checkpoint-every x"); },
               {"--checkpoint-every must be a positive step count or 'epoch' (got 'x')"}});
  c.push_back({"resume_auto_without_checkpoint_dir", [](Scene& s) { return s.dist("--resume auto"); },
               {"--resume auto needs --checkpoint-dir"}});
  c.push_back({"unknown_flag", [](Scene& s) { return s.dist("--learning-rate 0.1"); },
               {"--learning-rate"}});
  c.push_back({"save_into_missing_directory", [](Scene& s) {
                 return kDist + " --device cpu --data " + s.data().string() + " --threads 1 --max-steps 1 --run-dir " +
                        (s.dir() / "run").string() + " --save " + (s.dir() / "no/such/dir/m.h5").string();
               }, {"directory", "no/such/dir does not exist"}});
  c.push_back({"batch_larger_than_data_with_drop_last", [](Scene& s) { return s.dist("--batch-size 1000 --drop-last"); },
               {"--batch-size 1000 exceeds the 420 training samples", "use at most 420"}});
  c.push_back({"batch_larger_than_data", [](Scene& s) { return s.dist("--batch-size 1000"); },
               {"--batch-size 1000 exceeds the 420 training samples", "use at most 420"}});
  c.push_back({"batch_size_two_billion", [](Scene& s) { return s.dist("--batch-size 2000000000"); },  // was bad_alloc
               {"--batch-size 2000000000 exceeds the 420 training samples"}});
  c.push_back({"threads_beyond_four_per_core", [](Scene& s) { return s.dist("--threads 100000"); },
               {"--threads 100000 is more than 4 x the", "cores this process may use; use at most"}});
  c.push_back({"predict_threads_beyond_four_per_core", [](Scene& s) {
                 return kDist + " predict --threads 100000 --checkpoint " + world().saved_model("seed").string() +
                        " --data " + s.data().string();
               }, {"--threads 100000 is more than 4 x the"}});
  // --- outputs that cannot be written: refused at start-up, before any training -------------
  c.push_back({"save_is_a_directory", [](Scene& s) {  // was: trained, then lost the model
                 fs::create_directories(s.dir() / "models");
                 return s.dist("--save " + (s.dir() / "models").string());
               }, {"--save", "models is a directory; name a file, e.g.", "models/model.h5"}});
  c.push_back({"save_under_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 return s.dist("--save " + (s.dir() / "plain/m.h5").string());
               }, {"--save", "plain is not a directory"}});
  c.push_back({"run_dir_is_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 s.guard(s.dir() / "plain");
                 return s.dist("--run-dir " + (s.dir() / "plain").string());
               }, {"--run-dir", "cannot be created: a file of that name exists"}});
  c.push_back({"checkpoint_dir_under_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 return s.dist("--checkpoint-dir " + (s.dir() / "plain/ck").string());
               }, {"--checkpoint-dir", "cannot be created:", "plain is not a directory"}});
  c.push_back({"predict_report_is_a_directory", [](Scene& s) {
                 fs::create_directories(s.dir() / "out");
                 return kDist + " predict --checkpoint " + world().saved_model("seed").string() + " --data " +
                        s.data().string() + " --report " + (s.dir() / "out").string();
               }, {"--report", "out is a directory; name a file, e.g.", "out/report.json"}});
  c.push_back({"predict_predictions_in_missing_directory", [](Scene& s) {
                 return kDist + " predict --checkpoint " + world().saved_model("seed").string() + " --data " +
                        s.data().string() + " --predictions " + (s.dir() / "no/such/p.csv").string();
               }, {"--predictions", "no/such does not exist"}});
  c.push_back({"export_onnx_is_a_directory", [](Scene& s) {
                 fs::create_directories(s.dir() / "out");
                 return kDist + " export --checkpoint " + world().saved_model("seed").string() + " --onnx " +
                        (s.dir() / "out").string();
               }, {"--onnx", "out is a directory; name a file, e.g.", "out/model.onnx"}});
  c.push_back({"export_onnx_in_missing_directory", [](Scene& s) {
                 return kDist + " export --checkpoint " + world().saved_model("seed").string() + " --onnx " +
                        (s.dir() / "no/such/m.onnx").string();
               }, {"--onnx", "no/such does not exist"}});
  c.push_back({"batch_smaller_than_ranks", [](Scene& s) { return s.dist("--batch-size 1"); },
               {"--batch-size 1 is smaller than the 2 ranks"}, {}, 2});
}

}  // namespace hostile
