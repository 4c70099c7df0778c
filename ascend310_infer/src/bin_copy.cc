// An identity "model" over the harness library: every input .bin of the manifest is read (size
// checked) and written unchanged as <name>_0.bin. It runs the same loop as main without
// MindSpore, so tests can check that the C++ reader and writer keep preprocess.py's bytes.
#include <iostream>

#include "utils.h"

int main(int argc, char **argv) {
  try {
    const harness::Options options = harness::ParseFlags(argc, argv, /*require_mindir=*/false);
    if (options.help) {
      std::cout << harness::UsageText("bin_copy") << "bin_copy ignores --mindir_path and the device flags.\n";
      return 0;
    }
    harness::RunManifest(
        options,
        [](const harness::ManifestEntry &, const std::vector<char> &input, std::vector<char> *output) {
          *output = input;
        },
        std::cout);
  } catch (const harness::Error &error) {
    std::cerr << "error: " << error.what() << std::endl;
    return 2;
  }
  return 0;
}
