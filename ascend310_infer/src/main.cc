// Pix2Pix inference on Ascend 310 (or Ascend 310P, Ascend, GPU, CPU) with MindSpore's C++ API:
// load the MINDIR export.py wrote, then run every .bin input preprocess.py wrote through it.
// Built only when the MindSpore C++ inference package is found (see build.sh).
// Exit codes: 0 done; 1 MindSpore failed (load, build, predict); 2 bad flags or input files.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/types.h"
#include "utils.h"

namespace {

// A MindSpore call that returned a failed Status: exit 1, unlike the user errors (harness::Error, exit 2).
class MindSporeError : public std::runtime_error {
 public:
  explicit MindSporeError(const std::string &message) : std::runtime_error(message) {}
};

void Check(const mindspore::Status &status, const std::string &what) {
  if (status != mindspore::kSuccess) throw MindSporeError(what + ": " + status.ToString());
}

std::shared_ptr<mindspore::DeviceInfoContext> DeviceInfo(const harness::Options &options) {
  // ParseFlags has checked device_type and that device_id >= 0.
  const auto device_id = static_cast<uint32_t>(options.device_id);
  if (options.device_type == "GPU") {
    auto gpu = std::make_shared<mindspore::GPUDeviceInfo>();
    gpu->SetDeviceID(device_id);
    return gpu;
  }
  if (options.device_type == "CPU") return std::make_shared<mindspore::CPUDeviceInfo>();
  auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();  // Ascend310, Ascend310P, Ascend
  ascend->SetDeviceID(device_id);
  return ascend;
}

void Run(const harness::Options &options) {
  auto context = std::make_shared<mindspore::Context>();
  context->MutableDeviceInfo().push_back(DeviceInfo(options));

  mindspore::Graph graph;
  Check(mindspore::Serialization::Load(options.mindir_path, mindspore::ModelType::kMindIR, &graph),
        options.mindir_path + ": cannot load the MINDIR");
  mindspore::Model model;
  Check(model.Build(mindspore::GraphCell(graph), context),
        options.mindir_path + ": cannot build the model on " + options.device_type + " " +
            std::to_string(options.device_id));

  const std::vector<mindspore::MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != 1) {
    throw harness::Error(options.mindir_path + ": the generator has one input, this graph has " +
                         std::to_string(model_inputs.size()));
  }
  const mindspore::MSTensor &slot = model_inputs[0];

  // RunManifest reads each .bin (size checked against the manifest), times only this call and
  // writes <output_dir>/<name>_0.bin and <time_dir>/test_perform_static.txt.
  harness::RunManifest(
      options,
      [&](const harness::ManifestEntry &entry, const std::vector<char> &input, std::vector<char> *output) {
        const std::string input_path = harness::JoinPath(options.input0_path, entry.name);
        // The manifest can agree with its .bin and still not fit the graph (e.g. another export).
        if (input.size() != slot.DataSize()) {
          throw harness::Error(input_path + ": " + std::to_string(input.size()) + " bytes, the model takes " +
                               std::to_string(slot.DataSize()) + " (" + harness::ShapeText(slot.Shape()) + ")");
        }
        // Same bytes, other layout (e.g. 1x3x4x16 for 1x3x8x8) is still the wrong input; a graph
        // with dynamic dims (-1) is left to the byte check above.
        const std::vector<int64_t> &graph_shape = slot.Shape();
        const bool is_static = std::all_of(graph_shape.begin(), graph_shape.end(), [](int64_t d) { return d > 0; });
        if (is_static && graph_shape != entry.shape) {
          throw harness::Error(input_path + ": shape " + harness::ShapeText(entry.shape) +
                               " in the manifest, the model takes " + harness::ShapeText(graph_shape));
        }
        std::vector<mindspore::MSTensor> inputs{
            mindspore::MSTensor(slot.Name(), slot.DataType(), slot.Shape(), input.data(), input.size())};
        std::vector<mindspore::MSTensor> outputs;
        Check(model.Predict(inputs, &outputs), input_path + ": Predict failed");
        if (outputs.empty() || outputs[0].Data() == nullptr) {
          throw MindSporeError(input_path + ": Predict returned no output data");
        }
        const char *data = static_cast<const char *>(outputs[0].Data().get());
        output->assign(data, data + outputs[0].DataSize());
      },
      std::cout);
}

}  // namespace

int main(int argc, char **argv) {
  harness::Options options;
  try {
    options = harness::ParseFlags(argc, argv);
  } catch (const harness::Error &error) {
    std::cerr << "error: " << error.what() << std::endl;
    return 2;
  }
  if (options.help) {
    std::cout << harness::UsageText("main");
    return 0;
  }
  try {
    Run(options);
  } catch (const harness::Error &error) {
    std::cerr << "error: " << error.what() << std::endl;
    return 2;
  } catch (const std::exception &error) {  // MindSporeError, and anything MindSpore itself throws
    std::cerr << "error: " << error.what() << std::endl;
    return 1;
  }
  return 0;
}
