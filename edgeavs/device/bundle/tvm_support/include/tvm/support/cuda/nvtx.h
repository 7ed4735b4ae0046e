// edgeavs: <tvm/support/cuda/nvtx.h> for a CPU-only TVM runtime: NVTX ranges are no-ops.
#ifndef EDGEAVS_TVM_SUPPORT_CUDA_NVTX_H_
#define EDGEAVS_TVM_SUPPORT_CUDA_NVTX_H_

namespace tvm {
namespace support {

class NVTXScopedRange {
 public:
  template <typename Name>
  explicit NVTXScopedRange(const Name&) {}
  NVTXScopedRange(const NVTXScopedRange&) = delete;
  NVTXScopedRange& operator=(const NVTXScopedRange&) = delete;
};

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_CUDA_NVTX_H_
