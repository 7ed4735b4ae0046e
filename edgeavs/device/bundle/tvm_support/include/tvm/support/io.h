// edgeavs: the binary stream interface the TVM runtime sources of the apache-tvm wheel include
// as <tvm/support/io.h> (the wheel ships src/runtime but not the support headers). Written for
// edgeavs from the way those sources use it: a Stream with raw Read/Write and typed
// Read/Write through Serializer<T> (specialised in <tvm/support/serializer.h>).
#ifndef EDGEAVS_TVM_SUPPORT_IO_H_
#define EDGEAVS_TVM_SUPPORT_IO_H_

#include <cstddef>
#include <cstdint>

namespace tvm {
namespace support {

template <typename T, typename Enable = void>
struct Serializer {
  static constexpr bool enabled = false;
};

class Stream {
 public:
  virtual ~Stream() = default;
  virtual size_t Read(void* ptr, size_t size) = 0;
  virtual size_t Write(const void* ptr, size_t size) = 0;

  template <typename T>
  void Write(const T& value) {
    static_assert(Serializer<T>::enabled, "no Serializer<T> for this type");
    Serializer<T>::Write(this, value);
  }
  template <typename T>
  bool Read(T* out) {
    static_assert(Serializer<T>::enabled, "no Serializer<T> for this type");
    return Serializer<T>::Read(this, out);
  }
  template <typename T>
  void WriteArray(const T* data, size_t n) {
    for (size_t i = 0; i < n; ++i) Write<T>(data[i]);
  }
  template <typename T>
  bool ReadArray(T* data, size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (!Read<T>(data + i)) return false;
    return true;
  }
};

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_IO_H_
