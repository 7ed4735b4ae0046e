// edgeavs_model.cc: the C API of edgeavs_model.h over TVM's FFI and Relax VM.
//
// model.so is a Relax executable exported with export_library: loading it through tvm-ffi's
// library module gives a module whose "vm_load_executable" returns the VM (TVM 0.27,
// src/runtime/vm/executable.cc); "vm_initialization" takes (device type, device id, allocator)
// triples (vm.cc: 1 = CPU, 2 = the pooled allocator, as tvm.runtime.vm.VirtualMachine passes);
// then "main" takes the input tensors and returns the logits tensor.
#include "edgeavs_model.h"

#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

constexpr int kPooledAllocator = 2;

struct AlignedCPUAlloc {
  void AllocData(DLTensor* t) {
    size_t n = ffi::GetDataSize(*t);
    t->data = std::aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (t->data == nullptr) TVM_FFI_THROW(RuntimeError) << "out of memory (" << n << " bytes)";
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

DLDataType Float32() { return DLDataType{kDLFloat, 32, 1}; }

bool SameShape(const ffi::Tensor& t, const int64_t* shape, int ndim) {
  if (t.ndim() != ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (t.shape()[i] != shape[i]) return false;
  return true;
}

std::string OneLine(const std::exception& e) {
  std::string s;
  if (auto* fe = dynamic_cast<const ffi::Error*>(&e)) {
    s = fe->kind() + ": " + fe->message();
  } else {
    s = e.what();
  }
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

struct edgeavs_model {
  ffi::Optional<ffi::Module> library;
  ffi::Optional<ffi::Module> vm;
  ffi::Optional<ffi::Function> main;
  ffi::Optional<ffi::Tensor> inputs[2];
  std::string error;
};

extern "C" {

edgeavs_model* edgeavs_model_open(const char* library_path, int num_threads, char* err,
                                  size_t err_len) {
  auto fail = [&](const std::string& why) -> edgeavs_model* {
    if (err && err_len) std::snprintf(err, err_len, "%s", why.c_str());
    return nullptr;
  };
  if (library_path == nullptr) return fail("no library path given");
  if (num_threads > 0 && std::getenv("TVM_NUM_THREADS") == nullptr) {
    setenv("TVM_NUM_THREADS", std::to_string(num_threads).c_str(), 1);
  }
  auto* m = new edgeavs_model();
  try {
    m->library = ffi::Module::LoadFromFile(library_path);
    auto load = m->library.value()->GetFunction("vm_load_executable");
    if (!load.has_value()) {
      delete m;
      return fail(std::string(library_path) + " is not a Relax VM executable (no vm_load_executable)");
    }
    m->vm = (*load)().cast<ffi::Module>();
    auto init = m->vm.value()->GetFunction("vm_initialization");
    if (!init.has_value()) {
      delete m;
      return fail("the VM has no vm_initialization");
    }
    (*init)(static_cast<int>(kDLCPU), 0, kPooledAllocator);
    auto main = m->vm.value()->GetFunction("main");
    if (!main.has_value()) {
      delete m;
      return fail(std::string(library_path) + " has no function main");
    }
    m->main = *main;
  } catch (const std::exception& e) {
    delete m;
    return fail(std::string("cannot load ") + library_path + ": " + OneLine(e));
  }
  return m;
}

int edgeavs_model_run(edgeavs_model* m, const float* frames, const int64_t* frames_shape,
                      int frames_ndim, const float* waveform, const int64_t* waveform_shape,
                      int waveform_ndim, float* logits, size_t logits_capacity,
                      int64_t* out_shape, int* out_ndim) {
  if (m == nullptr) return -1;
  m->error.clear();
  try {
    const float* data[2] = {frames, waveform};
    const int64_t* shapes[2] = {frames_shape, waveform_shape};
    int ndims[2] = {frames_ndim, waveform_ndim};
    for (int i = 0; i < 2; ++i) {
      if (data[i] == nullptr || shapes[i] == nullptr || ndims[i] <= 0 || ndims[i] > 8) {
        m->error = "input " + std::to_string(i) + ": missing data or shape";
        return -1;
      }
      if (!m->inputs[i].has_value() || !SameShape(*m->inputs[i], shapes[i], ndims[i])) {
        m->inputs[i] = ffi::Tensor::FromNDAlloc(
            AlignedCPUAlloc(), ffi::ShapeView(shapes[i], ndims[i]), Float32(),
            DLDevice{kDLCPU, 0});
      }
      const ffi::Tensor& t = *m->inputs[i];
      std::memcpy(t.data_ptr(), data[i], size_t(t.numel()) * sizeof(float));
    }
    ffi::Any ret = (*m->main)(*m->inputs[0], *m->inputs[1]);
    ffi::Optional<ffi::Tensor> got = ret.as<ffi::Tensor>();
    if (!got.has_value()) {
      if (auto arr = ret.as<ffi::Array<ffi::Any>>()) {
        if (arr->empty()) {
          m->error = "main returned an empty tuple";
          return -1;
        }
        got = (*arr)[0].cast<ffi::Tensor>();
      }
    }
    if (!got.has_value()) {
      m->error = "main returned " + ret.GetTypeKey() + ", not a tensor";
      return -1;
    }
    const ffi::Tensor& out = *got;
    if (out.dtype().code != kDLFloat || out.dtype().bits != 32 || out.ndim() > 8 ||
        !out.IsContiguous()) {
      m->error = "the output is not a contiguous float32 tensor of at most 8 dimensions";
      return -1;
    }
    size_t count = size_t(out.numel());
    if (count > logits_capacity) {
      m->error = "the output has " + std::to_string(count) + " values, the buffer room for " +
                 std::to_string(logits_capacity);
      return -1;
    }
    std::memcpy(logits, static_cast<const char*>(out.data_ptr()) + out.byte_offset(),
                count * sizeof(float));
    if (out_ndim) *out_ndim = out.ndim();
    if (out_shape)
      for (int i = 0; i < out.ndim(); ++i) out_shape[i] = out.shape()[i];
  } catch (const std::exception& e) {
    m->error = OneLine(e);
    return -1;
  }
  return 0;
}

const char* edgeavs_model_error(const edgeavs_model* m) {
  return m == nullptr ? "no model" : m->error.c_str();
}

void edgeavs_model_close(edgeavs_model* m) { delete m; }

}  // extern "C"
