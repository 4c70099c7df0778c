#include "utils.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <sstream>

namespace fs = std::filesystem;

namespace harness {
namespace {

const char *const kDeviceTypes[] = {"Ascend310", "Ascend310P", "Ascend", "GPU", "CPU"};

bool StartsWith(const std::string &text, const std::string &prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> Split(const std::string &text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream stream(text);
  while (std::getline(stream, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

int ParseDeviceId(const std::string &value) {
  size_t used = 0;
  int id = -1;
  try {
    id = std::stoi(value, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used != value.size() || value.empty() || id < 0) {
    throw Error("--device_id must be an integer >= 0, got '" + value + "'");
  }
  return id;
}

void SetOption(Options *options, const std::string &name, const std::string &value) {
  if (name == "mindir_path") {
    options->mindir_path = value;
  } else if (name == "input0_path") {
    options->input0_path = value;
  } else if (name == "manifest_path") {
    options->manifest_path = value;
  } else if (name == "output_dir") {
    options->output_dir = value;
  } else if (name == "time_dir") {
    options->time_dir = value;
  } else if (name == "device_type") {
    if (std::find(std::begin(kDeviceTypes), std::end(kDeviceTypes), value) == std::end(kDeviceTypes)) {
      throw Error("--device_type must be one of Ascend310, Ascend310P, Ascend, GPU, CPU; got '" + value + "'");
    }
    options->device_type = value;
  } else if (name == "device_id") {
    options->device_id = ParseDeviceId(value);
  } else {
    throw Error("unknown flag --" + name + " (see --help)");
  }
}

}  // namespace

Options ParseFlags(int argc, const char *const argv[], bool require_mindir) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (!StartsWith(arg, "--") || arg.size() == 2) throw Error("unexpected argument '" + arg + "' (see --help)");
    std::string name = arg.substr(2);
    std::string value;
    size_t equals = name.find('=');
    if (equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    } else {
      if (i + 1 >= argc) throw Error("--" + name + " needs a value");
      value = argv[++i];
    }
    SetOption(&options, name, value);
  }
  if (require_mindir && options.mindir_path.empty()) throw Error("--mindir_path is required (see --help)");
  if (options.input0_path.empty()) throw Error("--input0_path is required (see --help)");
  if (options.manifest_path.empty()) options.manifest_path = JoinPath(options.input0_path, "manifest.tsv");
  return options;
}

std::string UsageText(const std::string &program) {
  return "usage: " + program +
         " --mindir_path FILE --input0_path DIR [flags]\n"
         "Run an exported Pix2Pix MINDIR over the .bin inputs preprocess.py wrote.\n"
         "  --mindir_path FILE    MINDIR written by export.py with --batch_size 1\n"
         "  --input0_path DIR     folder of <name>.bin inputs (float32 NCHW) and manifest.tsv\n"
         "  --manifest_path FILE  input list with shapes (default: <input0_path>/manifest.tsv)\n"
         "  --output_dir DIR      <name>_0.bin per input (default: result_Files)\n"
         "  --time_dir DIR        test_perform_static.txt, latency per image (default: time_Result)\n"
         "  --device_type TYPE    Ascend310, Ascend310P, Ascend, GPU or CPU (default: Ascend310)\n"
         "  --device_id N         device index (default: 0)\n"
         "  --help                this text\n";
}

std::string JoinPath(const std::string &dir, const std::string &name) {
  return (fs::path(dir) / name).string();
}

int64_t ElementCount(const std::vector<int64_t> &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

int64_t ExpectedBytes(const ManifestEntry &entry) {
  return ElementCount(entry.shape) * static_cast<int64_t>(sizeof(float));
}

std::string ShapeText(const std::vector<int64_t> &shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
  return text;
}

std::vector<ManifestEntry> ReadManifest(const std::string &path) {
  std::ifstream stream(path);
  if (!stream) throw Error(path + ": cannot open the manifest (preprocess.py writes it)");
  std::string line;
  if (!std::getline(stream, line) || line != "file\tdtype\tshape") {
    throw Error(path + ":1: expected the header 'file<TAB>dtype<TAB>shape'");
  }
  std::vector<ManifestEntry> entries;
  for (int number = 2; std::getline(stream, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::vector<std::string> fields = Split(line, '\t');
    if (fields.size() != 3) {
      throw Error(where + "expected 3 tab-separated fields, got " + std::to_string(fields.size()));
    }
    if (fields[1] != "float32") throw Error(where + "dtype '" + fields[1] + "' is not float32");
    ManifestEntry entry{fields[0], fields[1], {}};
    for (const std::string &dim : Split(fields[2], ',')) {
      size_t used = 0;
      long long value = 0;
      try {
        value = std::stoll(dim, &used);
      } catch (const std::exception &) {
        used = 0;
      }
      if (dim.empty() || used != dim.size() || value <= 0) throw Error(where + "bad dimension '" + dim + "' in shape");
      entry.shape.push_back(value);
    }
    entries.push_back(entry);
  }
  if (entries.empty()) throw Error(path + ": lists no inputs");
  return entries;
}

std::vector<std::string> ListBinFiles(const std::string &dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) throw Error(dir + ": no such folder");
  std::vector<std::string> files;
  for (const auto &entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".bin") files.push_back(entry.path().string());
  }
  if (files.empty()) throw Error(dir + ": no .bin files");
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// `suffix` follows the expected size in the mismatch message (the dtype and shape, when known).
std::vector<char> ReadBinFileChecked(const std::string &path, int64_t expected_bytes, const std::string &suffix) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) throw Error(path + ": no such file");
  std::ifstream stream(path, std::ios::binary | std::ios::ate);
  if (!stream) throw Error(path + ": cannot open for reading");
  const int64_t size = static_cast<int64_t>(stream.tellg());
  if (expected_bytes >= 0 && size != expected_bytes) {
    throw Error(path + ": " + std::to_string(size) + " bytes, expected " + std::to_string(expected_bytes) + suffix);
  }
  std::vector<char> data(static_cast<size_t>(size));
  stream.seekg(0);
  if (!stream.read(data.data(), size)) throw Error(path + ": read failed");
  return data;
}

}  // namespace

std::vector<char> ReadBinFile(const std::string &path, int64_t expected_bytes) {
  return ReadBinFileChecked(path, expected_bytes, "");
}

std::vector<char> ReadBinFile(const std::string &path, const ManifestEntry &entry) {
  return ReadBinFileChecked(path, ExpectedBytes(entry), " (" + entry.dtype + " " + ShapeText(entry.shape) + ")");
}

void WriteBinFile(const std::string &path, const void *data, size_t bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream stream(tmp, std::ios::binary | std::ios::trunc);
    if (stream) stream.write(static_cast<const char *>(data), static_cast<std::streamsize>(bytes));
    if (stream) stream.flush();
    if (!stream) {
      std::remove(tmp.c_str());
      throw Error(path + ": cannot write");
    }
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file (" + error.message() + ")");
  }
}

void EnsureDir(const std::string &dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error || !fs::is_directory(dir)) throw Error(dir + ": cannot create the folder (" + error.message() + ")");
}

std::string ResultFileName(const std::string &input_bin_path) {
  return fs::path(input_bin_path).stem().string() + "_0.bin";
}

double Percentile(std::vector<double> values, double percent) {
  std::sort(values.begin(), values.end());
  const double rank = percent / 100.0 * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(rank);
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (rank - static_cast<double>(below)) * (values[above] - values[below]);
}

LatencyStats ComputeLatencyStats(const std::vector<double> &per_image_ms) {
  if (per_image_ms.empty()) throw Error("no timings: no image was run");
  LatencyStats stats;
  stats.count = per_image_ms.size();
  stats.total_ms = std::accumulate(per_image_ms.begin(), per_image_ms.end(), 0.0);
  stats.mean_ms = stats.total_ms / static_cast<double>(stats.count);
  stats.p50_ms = Percentile(per_image_ms, 50);
  stats.p95_ms = Percentile(per_image_ms, 95);
  return stats;
}

std::string FormatPerformanceReport(const LatencyStats &stats) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(3) << "images: " << stats.count << "\n"
       << "mean_ms_per_image: " << stats.mean_ms << "\n"
       << "p50_ms_per_image: " << stats.p50_ms << "\n"
       << "p95_ms_per_image: " << stats.p95_ms << "\n"
       << "total_ms: " << stats.total_ms << "\n";
  return text.str();
}

LatencyStats RunManifest(const Options &options, const PredictFunction &predict, std::ostream &progress) {
  const std::vector<ManifestEntry> entries = ReadManifest(options.manifest_path);
  EnsureDir(options.output_dir);
  EnsureDir(options.time_dir);
  std::vector<double> timings;
  {  // untimed warm-up on the first input: the first call pays for allocation and kernel selection
    std::vector<char> discarded;
    const ManifestEntry &first = entries.front();
    predict(first, ReadBinFile(JoinPath(options.input0_path, first.name), first), &discarded);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const ManifestEntry &entry = entries[i];
    const std::string input_path = JoinPath(options.input0_path, entry.name);
    const std::vector<char> input = ReadBinFile(input_path, entry);
    std::vector<char> output;
    const auto start = std::chrono::steady_clock::now();
    predict(entry, input, &output);
    const auto stop = std::chrono::steady_clock::now();
    timings.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    WriteBinFile(JoinPath(options.output_dir, ResultFileName(entry.name)), output.data(), output.size());
    progress << "[" << (i + 1) << "/" << entries.size() << "] " << entry.name << " " << std::fixed
             << std::setprecision(3) << timings.back() << " ms" << std::endl;
  }
  const LatencyStats stats = ComputeLatencyStats(timings);
  const std::string report = FormatPerformanceReport(stats);
  WriteBinFile(JoinPath(options.time_dir, "test_perform_static.txt"), report.data(), report.size());
  progress << report;
  return stats;
}

}  // namespace harness
