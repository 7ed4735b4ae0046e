// edgeavs: in-memory streams for the TVM runtime sources (src/support/bytes_io.h, not shipped
// in the apache-tvm wheel): BytesInStream reads a fixed buffer, BytesOutStream appends to a
// std::string.
#ifndef EDGEAVS_TVM_SUPPORT_BYTES_IO_H_
#define EDGEAVS_TVM_SUPPORT_BYTES_IO_H_

#include <tvm/ffi/error.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace tvm {
namespace support {

class BytesInStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;
  BytesInStream(const void* data, size_t size)
      : begin_(static_cast<const char*>(data)), size_(size) {}
  explicit BytesInStream(const ffi::Bytes& b) : BytesInStream(b.data(), b.size()) {}
  explicit BytesInStream(const std::string& s) : BytesInStream(s.data(), s.size()) {}

  size_t Read(void* ptr, size_t size) override {
    size_t n = std::min(size, size_ - pos_);
    if (n) std::memcpy(ptr, begin_ + pos_, n);
    pos_ += n;
    return n;
  }
  size_t Write(const void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "BytesInStream is read-only";
    return 0;
  }

 private:
  const char* begin_;
  size_t size_;
  size_t pos_ = 0;
};

class BytesOutStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;
  explicit BytesOutStream(std::string* out) : out_(out) {}

  size_t Write(const void* ptr, size_t size) override {
    out_->append(static_cast<const char*>(ptr), size);
    return size;
  }
  size_t Read(void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "BytesOutStream is write-only";
    return 0;
  }

 private:
  std::string* out_;
};

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_BYTES_IO_H_
