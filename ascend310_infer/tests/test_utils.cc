// Unit tests of the harness library (no test framework is installed offline: a CHECK macro).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "utils.h"

namespace fs = std::filesystem;

namespace {

int failures = 0;

#define CHECK(condition)                                                                   \
  do {                                                                                     \
    if (!(condition)) {                                                                    \
      ++failures;                                                                          \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #condition << std::endl; \
    }                                                                                      \
  } while (0)

// The Error's message, or "" when `call` does not throw harness::Error.
std::string ErrorOf(const std::function<void()> &call) {
  try {
    call();
  } catch (const harness::Error &error) {
    return error.what();
  }
  return "";
}

bool Contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

// Per process, so a ctest run and pytest's build of the harness can run at the same time.
fs::path TestRoot() { return fs::temp_directory_path() / ("pix2pix_harness_test_" + std::to_string(::getpid())); }

fs::path FreshDir(const std::string &name) {
  fs::path dir = TestRoot() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteText(const fs::path &path, const std::string &text) { std::ofstream(path) << text; }

harness::Options Parse(std::vector<const char *> args, bool require_mindir = true) {
  args.insert(args.begin(), "main");
  return harness::ParseFlags(static_cast<int>(args.size()), args.data(), require_mindir);
}

void TestParseFlags() {
  harness::Options options = Parse({"--mindir_path=g.mindir", "--input0_path", "in"});
  CHECK(options.mindir_path == "g.mindir" && options.input0_path == "in");
  CHECK(options.manifest_path == (fs::path("in") / "manifest.tsv").string());
  CHECK(options.output_dir == "result_Files" && options.time_dir == "time_Result");
  CHECK(options.device_type == "Ascend310" && options.device_id == 0);
  options = Parse({"--mindir_path", "g", "--input0_path=in", "--device_type=CPU", "--device_id", "3",
                   "--output_dir", "out", "--time_dir=t", "--manifest_path", "m.tsv"});
  CHECK(options.device_type == "CPU" && options.device_id == 3 && options.output_dir == "out");
  CHECK(options.time_dir == "t" && options.manifest_path == "m.tsv");
  CHECK(Parse({"--help"}).help);
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path=g", "--input0_path=i", "--device_type=TPU"}); }), "Ascend310P"));
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path=g", "--input0_path=i", "--device_id=-1"}); }), "--device_id"));
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path=g", "--input0_path=i", "--device_id=2x"}); }), "'2x'"));
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path=g", "--input0_path=i", "--batch=2"}); }), "unknown flag --batch"));
  CHECK(Contains(ErrorOf([] { Parse({"--input0_path=i"}); }), "--mindir_path is required"));
  CHECK(ErrorOf([] { Parse({"--input0_path=i"}, false); }).empty());
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path=g"}); }), "--input0_path is required"));
  CHECK(Contains(ErrorOf([] { Parse({"--mindir_path"}); }), "needs a value"));
  CHECK(Contains(ErrorOf([] { Parse({"stray"}); }), "unexpected argument 'stray'"));
  for (const char *flag : {"--mindir_path", "--input0_path", "--manifest_path", "--output_dir", "--time_dir",
                           "--device_type", "--device_id", "--help"}) {
    CHECK(Contains(harness::UsageText(), flag));
  }
}

void TestManifest() {
  const fs::path dir = FreshDir("manifest");
  const fs::path good = dir / "good.tsv";
  WriteText(good, "file\tdtype\tshape\na.bin\tfloat32\t1,3,32,32\nb.bin\tfloat32\t1,1,8,16\n");
  std::vector<harness::ManifestEntry> entries = harness::ReadManifest(good.string());
  CHECK(entries.size() == 2 && entries[0].name == "a.bin" && entries[1].shape[3] == 16);
  CHECK(harness::ExpectedBytes(entries[0]) == 1 * 3 * 32 * 32 * 4);
  CHECK(harness::ShapeText(entries[1].shape) == "1x1x8x16");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", ":1: expected the header"},
      {"name\tdtype\tshape\n", ":1: expected the header"},
      {"file\tdtype\tshape\n", "lists no inputs"},
      {"file\tdtype\tshape\na.bin\tfloat32\n", ":2: expected 3 tab-separated fields"},
      {"file\tdtype\tshape\na.bin\tfloat16\t1,3\n", ":2: dtype 'float16'"},
      {"file\tdtype\tshape\na.bin\tfloat32\t1,x,3\n", ":2: bad dimension 'x'"},
      {"file\tdtype\tshape\na.bin\tfloat32\t1,3,32,32\nb.bin\tfloat32\t1,0,4\n", ":3: bad dimension '0'"},
      {"file\tdtype\tshape\na.bin\tfloat32\t1,,4\n", ":2: bad dimension ''"},
  };
  for (const auto &[text, message] : bad) {
    const fs::path path = dir / "bad.tsv";
    WriteText(path, text);
    const std::string error = ErrorOf([&] { harness::ReadManifest(path.string()); });
    CHECK(Contains(error, path.string()) && Contains(error, message));
    if (!Contains(error, message)) std::cerr << "  got: " << error << std::endl;
  }
  CHECK(Contains(ErrorOf([&] { harness::ReadManifest((dir / "missing.tsv").string()); }), "missing.tsv"));
}

void TestBinFiles() {
  const fs::path dir = FreshDir("bin");
  std::vector<float> values = {0.0f, -1.0f, 1.0f, 3.14159f, -0.0f, 1e-38f, NAN, INFINITY};
  const std::string path = (dir / "b.bin").string();
  harness::WriteBinFile(path, values.data(), values.size() * sizeof(float));
  CHECK(!fs::exists(path + ".tmp"));
  std::vector<char> read = harness::ReadBinFile(path, static_cast<int64_t>(values.size() * sizeof(float)));
  CHECK(read.size() == values.size() * sizeof(float));
  CHECK(std::equal(read.begin(), read.end(), reinterpret_cast<const char *>(values.data())));
  CHECK(harness::ReadBinFile(path, -1).size() == read.size());
  const std::string error = ErrorOf([&] { harness::ReadBinFile(path, 1000); });
  CHECK(Contains(error, path) && Contains(error, "32 bytes, expected 1000"));
  const harness::ManifestEntry entry{"b.bin", "float32", {1, 2, 4}};
  CHECK(harness::ReadBinFile(path, entry).size() == 32);
  const harness::ManifestEntry other{"b.bin", "float32", {1, 3, 4, 4}};
  CHECK(ErrorOf([&] { harness::ReadBinFile(path, other); }) == path + ": 32 bytes, expected 192 (float32 1x3x4x4)");
  CHECK(ErrorOf([&] { harness::ReadBinFile((dir / "none.bin").string(), -1); }) ==
        (dir / "none.bin").string() + ": no such file");
  CHECK(Contains(ErrorOf([&] { harness::WriteBinFile((dir / "no" / "dir.bin").string(), "x", 1); }), "dir.bin"));
  // The rename fails onto a non-empty folder: an Error naming it, and no .tmp left behind.
  fs::create_directories(dir / "taken" / "inside");
  const std::string taken = (dir / "taken").string();
  CHECK(Contains(ErrorOf([&] { harness::WriteBinFile(taken, "x", 1); }), taken));
  CHECK(!fs::exists(taken + ".tmp"));

  WriteText(dir / "a.bin", "1");
  WriteText(dir / "c.txt", "1");
  fs::create_directories(dir / "d.bin");
  std::vector<std::string> listed = harness::ListBinFiles(dir.string());
  CHECK(listed.size() == 2 && fs::path(listed[0]).filename() == "a.bin" && fs::path(listed[1]).filename() == "b.bin");
  CHECK(Contains(ErrorOf([&] { harness::ListBinFiles((dir / "nope").string()); }), "no such folder"));
  const fs::path empty = FreshDir("bin_empty");
  CHECK(Contains(ErrorOf([&] { harness::ListBinFiles(empty.string()); }), "no .bin files"));
  CHECK(harness::ResultFileName("/a/b/img_01.bin") == "img_01_0.bin");
  CHECK(harness::ResultFileName("x.y.bin") == "x.y_0.bin");
}

void TestLatency() {
  harness::LatencyStats stats = harness::ComputeLatencyStats({4, 1, 3, 2});
  CHECK(stats.count == 4 && std::abs(stats.mean_ms - 2.5) < 1e-12 && std::abs(stats.total_ms - 10) < 1e-12);
  CHECK(std::abs(stats.p50_ms - 2.5) < 1e-12 && std::abs(stats.p95_ms - 3.85) < 1e-12);
  stats = harness::ComputeLatencyStats({7});
  CHECK(stats.p50_ms == 7 && stats.p95_ms == 7);
  CHECK(Contains(ErrorOf([] { harness::ComputeLatencyStats({}); }), "no timings"));
  const std::string report = harness::FormatPerformanceReport(harness::ComputeLatencyStats({1, 2, 3}));
  CHECK(report == "images: 3\nmean_ms_per_image: 2.000\np50_ms_per_image: 2.000\n"
                  "p95_ms_per_image: 2.900\ntotal_ms: 6.000\n");
}

void TestRunManifest() {
  const fs::path dir = FreshDir("run");
  std::vector<float> a(2 * 3, 0.5f), b(2 * 3, -2.0f);
  harness::WriteBinFile((dir / "a.bin").string(), a.data(), a.size() * 4);
  harness::WriteBinFile((dir / "b.bin").string(), b.data(), b.size() * 4);
  WriteText(dir / "manifest.tsv", "file\tdtype\tshape\na.bin\tfloat32\t1,1,2,3\nb.bin\tfloat32\t1,1,2,3\n");
  harness::Options options = Parse({"--input0_path", dir.c_str(), "--output_dir", (dir / "out").c_str(),
                                    "--time_dir", (dir / "time").c_str()}, false);
  std::ostringstream progress;
  const harness::LatencyStats stats = harness::RunManifest(
      options, [](const harness::ManifestEntry &, const std::vector<char> &input, std::vector<char> *output) {
        *output = input;
        for (size_t i = 0; i < output->size(); i += 4) (*output)[i + 3] ^= static_cast<char>(0x80);  // negate
      },
      progress);
  CHECK(stats.count == 2 && Contains(progress.str(), "[2/2] b.bin"));
  std::vector<char> out = harness::ReadBinFile((dir / "out" / "b_0.bin").string(), 24);
  CHECK(reinterpret_cast<const float *>(out.data())[5] == 2.0f);
  CHECK(fs::exists(dir / "time" / "test_perform_static.txt"));
  WriteText(dir / "manifest.tsv", "file\tdtype\tshape\na.bin\tfloat32\t1,1,4,3\n");
  const std::string error = ErrorOf([&] {
    harness::RunManifest(options, [](const auto &, const auto &, auto *) {}, progress);
  });
  CHECK(error == (dir / "a.bin").string() + ": 24 bytes, expected 48 (float32 1x1x4x3)");
  CHECK(!fs::exists(dir / "out" / "a_0.bin.tmp"));
}

}  // namespace

int main() {
  TestParseFlags();
  TestManifest();
  TestBinFiles();
  TestLatency();
  TestRunManifest();
  if (failures) {
    std::cerr << failures << " check(s) failed" << std::endl;
    return 1;
  }
  // Kept on failure for a look; removed once everything passed.
  fs::remove_all(TestRoot());
  std::cout << "all harness tests passed" << std::endl;
  return 0;
}
