// et_runner: an ExecuTorch program (.pte, XNNPACK-delegated) run for edgeavs' cycle projection.
//
// Built for AArch64 Linux by edgeavs.device.peers against the shared libraries and headers of
// the executorch wheel; run in the emulator's guest under the blockcount plugin. The marker
// protocol is the one of edgeavs/device/projection_guest.py: name the code ranges (the
// libraries given with --region, relative to their load base), warm up, start counting, run
// the counted inferences, stop counting, write this process's /proc/self/maps in the report.
//
//   et_runner PROGRAM.pte --input FILE:1x3x224x224 [--input ...] --output OUT.bin
//             --report REPORT.json --runs N --marker-nr NR [--region LIB:LO:HI ...]
//
// Inputs and the output are raw little-endian float32; the report is JSON (runs, the output's
// shape, the process's thread count at start and during the counted runs, seconds, maps).
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include <unistd.h>
#include <sys/syscall.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using executorch::extension::from_blob;
using executorch::extension::TensorPtr;
using executorch::extension::module::Module;
using executorch::runtime::EValue;

namespace {

constexpr uint64_t kMagic = 0xED6EA75C0FFEE001ULL;
constexpr uint64_t kAddRange = 1, kStart = 2, kStop = 3;

long g_marker_nr = 0x45A0;

void marker(uint64_t cmd, uint64_t a = 0, uint64_t b = 0) {
  syscall(g_marker_nr, kMagic, cmd, a, b);  // ENOSYS; seen by the plugin only
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "et_runner: %s\n", why.c_str());
  std::exit(1);
}

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string real_path(const std::string& path) {
  char buf[4096];
  if (!realpath(path.c_str(), buf))
    die("cannot resolve " + path);
  return buf;
}

// The load base of `path` (its mapping at file offset 0) in /proc/self/maps.
uint64_t load_base(const std::string& maps, const std::string& path) {
  std::istringstream in(maps);
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long lo, hi, off;
    char perms[8], dev[16];
    unsigned long inode;
    int n = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %lu %n", &lo, &hi, perms, &off, dev,
                    &inode, &n) < 6)
      continue;
    std::string name = line.substr(n);
    if (off == 0 && name == path)
      return lo;
  }
  die(path + " is not mapped in this process");
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

int thread_count() {
  std::istringstream in(read_text("/proc/self/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0)
      return std::atoi(line.c_str() + 8);
  return -1;
}

struct Input {
  std::vector<float> data;
  std::vector<executorch::aten::SizesType> shape;
};

Input read_input(const std::string& spec) {
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos)
    die("--input wants FILE:DIMS, got " + spec);
  Input in;
  size_t numel = 1;
  std::stringstream dims(spec.substr(colon + 1));
  std::string d;
  while (std::getline(dims, d, 'x')) {
    in.shape.push_back(std::atoi(d.c_str()));
    numel *= in.shape.back();
  }
  in.data.resize(numel);
  FILE* f = std::fopen(spec.substr(0, colon).c_str(), "rb");
  if (!f || std::fread(in.data.data(), sizeof(float), numel, f) != numel)
    die("cannot read " + std::to_string(numel) + " floats from " + spec.substr(0, colon));
  std::fclose(f);
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    die("usage: et_runner PROGRAM.pte --input FILE:DIMS ... --output OUT.bin --report R.json "
        "--runs N --marker-nr NR [--region LIB:LO:HI ...]");
  std::string program = argv[1], output, report;
  std::vector<std::string> input_specs, regions;
  int runs = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string opt = argv[i], val = argv[i + 1];
    if (opt == "--input") input_specs.push_back(val);
    else if (opt == "--output") output = val;
    else if (opt == "--report") report = val;
    else if (opt == "--runs") runs = std::atoi(val.c_str());
    else if (opt == "--marker-nr") g_marker_nr = std::strtol(val.c_str(), nullptr, 0);
    else if (opt == "--region") regions.push_back(val);
    else die("unknown option " + opt);
  }
  if (output.empty() || report.empty() || input_specs.empty())
    die("--input, --output and --report are required");

  auto t0 = std::chrono::steady_clock::now();
  int threads_at_start = thread_count();  // qemu's own helper thread shows here too
  std::vector<Input> inputs;
  for (const auto& s : input_specs)
    inputs.push_back(read_input(s));
  std::vector<TensorPtr> tensors;
  std::vector<EValue> values;
  for (auto& in : inputs) {
    tensors.push_back(from_blob(in.data.data(), in.shape, executorch::aten::ScalarType::Float));
    values.emplace_back(tensors.back());
  }
  Module module(program, Module::LoadMode::File);
  if (module.load_method("forward") != executorch::runtime::Error::Ok)
    die("cannot load method forward of " + program);
  auto warm = module.forward(values);  // warm-up: first-call work stays out of the counts
  if (!warm.ok())
    die("forward failed (error " + std::to_string(static_cast<int>(warm.error())) + ")");
  auto t_load = std::chrono::steady_clock::now();

  std::string maps = read_text("/proc/self/maps");
  for (const auto& r : regions) {
    size_t b = r.rfind(':'), a = r.rfind(':', b - 1);
    if (a == std::string::npos || b == std::string::npos)
      die("--region wants LIB:LO:HI, got " + r);
    uint64_t base = load_base(maps, real_path(r.substr(0, a)));
    uint64_t lo = std::strtoull(r.substr(a + 1, b - a - 1).c_str(), nullptr, 0);
    uint64_t hi = std::strtoull(r.substr(b + 1).c_str(), nullptr, 0);
    marker(kAddRange, base + lo, base + hi);
  }
  int threads = thread_count();
  bool ok = true;
  marker(kStart);
  for (int i = 0; i < runs && ok; i++)
    ok = module.forward(values).ok();
  marker(kStop);
  auto t_runs = std::chrono::steady_clock::now();
  if (!ok)
    die("forward failed in the counted runs");

  // the output of the last run, from the method's planned memory (valid while `module` lives)
  auto last = module.forward(values);
  if (!last.ok())
    die("forward failed after the counted runs");
  const auto& tensor = last.get()[0].toTensor();
  FILE* f = std::fopen(output.c_str(), "wb");
  if (!f)
    die("cannot write " + output);
  std::fwrite(tensor.const_data_ptr<float>(), sizeof(float), tensor.numel(), f);
  std::fclose(f);

  std::ostringstream js;
  js << "{\"runs\": " << runs << ", \"threads\": " << threads << ", \"threads_at_start\": "
     << threads_at_start << ", \"output\": {\"shape\": [";
  for (size_t i = 0; i < tensor.sizes().size(); i++)
    js << (i ? ", " : "") << tensor.sizes()[i];
  js << "]}, \"seconds\": {\"load\": "
     << std::chrono::duration<double>(t_load - t0).count() << ", \"counted_runs\": "
     << std::chrono::duration<double>(t_runs - t_load).count() << "}, \"maps\": \""
     << json_escape(read_text("/proc/self/maps")) << "\"}\n";
  std::string tmp = report + ".tmp";
  std::ofstream(tmp) << js.str();
  std::rename(tmp.c_str(), report.c_str());
  return 0;
}
