// edgeavs: base64 streams for the TVM runtime sources (src/support/base64.h, not shipped in the
// apache-tvm wheel); tensor.cc uses them for a tensor's JSON form. Standard alphabet, '='
// padding; the input stream skips whitespace.
#ifndef EDGEAVS_TVM_SUPPORT_BASE64_H_
#define EDGEAVS_TVM_SUPPORT_BASE64_H_

#include <tvm/ffi/error.h>
#include <tvm/support/io.h>

#include <cctype>
#include <cstdint>
#include <string>

namespace tvm {
namespace support {

namespace edgeavs_b64 {
inline const char* Alphabet() {
  return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}
inline int Value(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace edgeavs_b64

class Base64OutStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;
  explicit Base64OutStream(Stream* out) : out_(out) {}

  size_t Write(const void* ptr, size_t size) override {
    const unsigned char* p = static_cast<const unsigned char*>(ptr);
    for (size_t i = 0; i < size; ++i) {
      buf_[n_++] = p[i];
      if (n_ == 3) Emit();
    }
    return size;
  }
  size_t Read(void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "Base64OutStream is write-only";
    return 0;
  }
  /*! \brief Write the last partial group with its padding. */
  void Finish() {
    if (n_) Emit();
  }

 private:
  void Emit() {
    const char* a = edgeavs_b64::Alphabet();
    uint32_t v = (uint32_t(buf_[0]) << 16) | (n_ > 1 ? uint32_t(buf_[1]) << 8 : 0) |
                 (n_ > 2 ? uint32_t(buf_[2]) : 0);
    char q[4] = {a[(v >> 18) & 63], a[(v >> 12) & 63], n_ > 1 ? a[(v >> 6) & 63] : '=',
                 n_ > 2 ? a[v & 63] : '='};
    out_->Write(q, 4);
    n_ = 0;
  }
  Stream* out_;
  unsigned char buf_[3] = {0, 0, 0};
  int n_ = 0;
};

class Base64InStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;
  explicit Base64InStream(Stream* in) : in_(in) {}

  /*! \brief Start reading (nothing to skip: whitespace is skipped as it comes). */
  void InitPosition() {}

  size_t Read(void* ptr, size_t size) override {
    unsigned char* p = static_cast<unsigned char*>(ptr);
    size_t done = 0;
    while (done < size) {
      if (have_ == pos_ && !Refill()) break;
      p[done++] = out_[pos_++];
    }
    return done;
  }
  size_t Write(const void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "Base64InStream is read-only";
    return 0;
  }

 private:
  bool Refill() {
    if (ended_) return false;
    int vals[4], got = 0, pad = 0;
    while (got < 4) {
      char c;
      if (in_->Read(&c, 1) != 1) break;
      if (std::isspace(static_cast<unsigned char>(c))) continue;
      if (c == '=') {
        vals[got++] = 0;
        ++pad;
        continue;
      }
      int v = edgeavs_b64::Value(c);
      if (v < 0) TVM_FFI_THROW(ValueError) << "invalid base64 character";
      vals[got++] = v;
    }
    if (got == 0) return false;
    if (got != 4) TVM_FFI_THROW(ValueError) << "truncated base64 data";
    uint32_t v = (uint32_t(vals[0]) << 18) | (uint32_t(vals[1]) << 12) |
                 (uint32_t(vals[2]) << 6) | uint32_t(vals[3]);
    out_[0] = (v >> 16) & 255;
    out_[1] = (v >> 8) & 255;
    out_[2] = v & 255;
    have_ = 3 - pad;
    pos_ = 0;
    if (pad) ended_ = true;
    return have_ > 0;
  }
  Stream* in_;
  unsigned char out_[3] = {0, 0, 0};
  int have_ = 0, pos_ = 0;
  bool ended_ = false;
};

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_BASE64_H_
