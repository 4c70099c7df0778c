// The parts of the 310 inference harness that do not need MindSpore: flags, the manifest that
// preprocess.py writes, .bin files with size checks, and latency statistics. They are built and
// unit-tested everywhere; main.cc adds the MindSpore C++ API on top.
#ifndef PIX2PIX_ASCEND310_INFER_UTILS_H_
#define PIX2PIX_ASCEND310_INFER_UTILS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace harness {

// Every failure the harness reports: a one-line message that names the file concerned.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

struct Options {
  std::string mindir_path;
  std::string input0_path;
  std::string manifest_path;  // default: <input0_path>/manifest.tsv
  std::string output_dir = "result_Files";
  std::string time_dir = "time_Result";
  std::string device_type = "Ascend310";
  int device_id = 0;
  bool help = false;
};

// Accepts --name=value and --name value. `require_mindir` is false for tools without a model.
Options ParseFlags(int argc, const char *const argv[], bool require_mindir = true);
std::string UsageText(const std::string &program = "main");

// One line of manifest.tsv: "<file>\tfloat32\t<N,C,H,W>".
struct ManifestEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

std::vector<ManifestEntry> ReadManifest(const std::string &path);
int64_t ElementCount(const std::vector<int64_t> &shape);
int64_t ExpectedBytes(const ManifestEntry &entry);
std::string ShapeText(const std::vector<int64_t> &shape);  // "1x3x256x256"

// Regular files ending in .bin, sorted by name.
std::vector<std::string> ListBinFiles(const std::string &dir);

// The whole file; with expected_bytes >= 0 a different size is an Error naming the file.
std::vector<char> ReadBinFile(const std::string &path, int64_t expected_bytes);
// The input a manifest entry describes; a wrong size also names the dtype and shape, as
// src/infer310.py's read_bin does: "<path>: 1000 bytes, expected 786432 (float32 1x3x256x256)".
std::vector<char> ReadBinFile(const std::string &path, const ManifestEntry &entry);
// Written to <path>.tmp and renamed, so a reader never sees half a file.
void WriteBinFile(const std::string &path, const void *data, size_t bytes);
void EnsureDir(const std::string &dir);
std::string JoinPath(const std::string &dir, const std::string &name);

// "<dir>/img_01.bin" -> "img_01_0.bin": output 0 of the graph for that input.
std::string ResultFileName(const std::string &input_bin_path);

struct LatencyStats {
  size_t count = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, total_ms = 0;
};

// Percentiles interpolate linearly between closest ranks (numpy's default), so the C++ and the
// Python stand-in report the same numbers for the same timings.
LatencyStats ComputeLatencyStats(const std::vector<double> &per_image_ms);
double Percentile(std::vector<double> values, double percent);
std::string FormatPerformanceReport(const LatencyStats &stats);

// The loop main and bin_copy share: for each manifest entry, read its .bin (size checked against
// the manifest), let `predict` fill the output bytes (only this call is timed, after one untimed
// warm-up call on the first input), write <output_dir>/<name>_0.bin; at the end write the latency
// report to <time_dir>/test_perform_static.txt.
using PredictFunction = std::function<void(const ManifestEntry &entry, const std::vector<char> &input,
                                           std::vector<char> *output)>;
LatencyStats RunManifest(const Options &options, const PredictFunction &predict, std::ostream &progress);

}  // namespace harness

#endif  // PIX2PIX_ASCEND310_INFER_UTILS_H_
