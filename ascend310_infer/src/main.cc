// Pix2Pix inference on Ascend 310 (or Ascend 310P, Ascend, GPU, CPU) with MindSpore's C++ API:
// load the MINDIR export.py wrote, then run every .bin input preprocess.py wrote through it.
// Built only when the MindSpore C++ inference package is found (see build.sh).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/types.h"
#include "utils.h"

namespace {

std::shared_ptr<mindspore::DeviceInfoContext> DeviceInfo(const harness::Options &options) {
  if (options.device_type == "GPU") {
    auto gpu = std::make_shared<mindspore::GPUDeviceInfo>();
    gpu->SetDeviceID(options.device_id);
    return gpu;
  }
  if (options.device_type == "CPU") return std::make_shared<mindspore::CPUDeviceInfo>();
  auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();  // Ascend310, Ascend310P, Ascend
  ascend->SetDeviceID(options.device_id);
  return ascend;
}

void Check(const mindspore::Status &status, const std::string &what) {
  if (status != mindspore::kSuccess) throw harness::Error(what + ": " + status.ToString());
}

}  // namespace

int main(int argc, char **argv) {
  try {
    const harness::Options options = harness::ParseFlags(argc, argv);
    if (options.help) {
      std::cout << harness::UsageText("main");
      return 0;
    }
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
    harness::RunManifest(
        options,
        [&](const harness::ManifestEntry &entry, const std::vector<char> &input, std::vector<char> *output) {
          if (input.size() != slot.DataSize()) {
            throw harness::Error(harness::JoinPath(options.input0_path, entry.name) + ": " +
                                 std::to_string(input.size()) + " bytes, the model takes " +
                                 std::to_string(slot.DataSize()) + " (" + harness::ShapeText(slot.Shape()) + ")");
          }
          std::vector<mindspore::MSTensor> inputs{
              mindspore::MSTensor(slot.Name(), slot.DataType(), slot.Shape(), input.data(), input.size())};
          std::vector<mindspore::MSTensor> outputs;
          Check(model.Predict(inputs, &outputs), entry.name + ": Predict failed");
          const char *data = static_cast<const char *>(outputs[0].Data().get());
          output->assign(data, data + outputs[0].DataSize());
        },
        std::cout);
  } catch (const harness::Error &error) {
    std::cerr << "error: " << error.what() << std::endl;
    return 2;
  }
  return 0;
}
