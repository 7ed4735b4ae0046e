// edgeavs: Serializer<T> for the TVM runtime sources (<tvm/support/serializer.h>, not shipped in
// the apache-tvm wheel). The byte layout is the one TVM's executables are written in: numbers
// little-endian as in memory, strings and sequences as a uint64 count then the elements, maps
// as a sequence of (key, value), DLDataType as code/bits (uint8) + lanes (uint16), DLDevice as
// two int32. Only little-endian machines are supported (AArch64, x86-64).
#ifndef EDGEAVS_TVM_SUPPORT_SERIALIZER_H_
#define EDGEAVS_TVM_SUPPORT_SERIALIZER_H_

#include <dlpack/dlpack.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/map.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "edgeavs' TVM runtime build supports little-endian targets only"
#endif

namespace tvm {
namespace support {

namespace edgeavs_detail {
inline bool ReadCount(Stream* s, uint64_t* n) { return s->Read(n, sizeof(*n)) == sizeof(*n); }
inline void WriteCount(Stream* s, uint64_t n) { s->Write(&n, sizeof(n)); }
}  // namespace edgeavs_detail

template <typename T>
struct Serializer<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const T& v) { s->Write(&v, sizeof(T)); }
  static bool Read(Stream* s, T* v) { return s->Read(v, sizeof(T)) == sizeof(T); }
};

template <typename T>
struct Serializer<T, std::enable_if_t<std::is_enum_v<T>>> {
  static constexpr bool enabled = true;
  using U = std::underlying_type_t<T>;
  static void Write(Stream* s, const T& v) { Serializer<U>::Write(s, static_cast<U>(v)); }
  static bool Read(Stream* s, T* v) {
    U u;
    if (!Serializer<U>::Read(s, &u)) return false;
    *v = static_cast<T>(u);
    return true;
  }
};

template <>
struct Serializer<std::string> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const std::string& v) {
    edgeavs_detail::WriteCount(s, v.size());
    if (!v.empty()) s->Write(v.data(), v.size());
  }
  static bool Read(Stream* s, std::string* v) {
    uint64_t n;
    if (!edgeavs_detail::ReadCount(s, &n)) return false;
    v->resize(static_cast<size_t>(n));
    return n == 0 || s->Read(&(*v)[0], v->size()) == v->size();
  }
};

template <typename T>
struct Serializer<std::vector<T>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const std::vector<T>& v) {
    edgeavs_detail::WriteCount(s, v.size());
    if constexpr (std::is_arithmetic_v<T>) {
      if (!v.empty()) s->Write(v.data(), sizeof(T) * v.size());
    } else {
      for (const T& e : v) Serializer<T>::Write(s, e);
    }
  }
  static bool Read(Stream* s, std::vector<T>* v) {
    uint64_t n;
    if (!edgeavs_detail::ReadCount(s, &n)) return false;
    v->resize(static_cast<size_t>(n));
    if constexpr (std::is_arithmetic_v<T>) {
      size_t bytes = sizeof(T) * v->size();
      return bytes == 0 || s->Read(v->data(), bytes) == bytes;
    } else {
      for (T& e : *v)
        if (!Serializer<T>::Read(s, &e)) return false;
      return true;
    }
  }
};

template <typename A, typename B>
struct Serializer<std::pair<A, B>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const std::pair<A, B>& v) {
    Serializer<A>::Write(s, v.first);
    Serializer<B>::Write(s, v.second);
  }
  static bool Read(Stream* s, std::pair<A, B>* v) {
    return Serializer<A>::Read(s, &v->first) && Serializer<B>::Read(s, &v->second);
  }
};

template <typename K, typename V>
struct Serializer<std::unordered_map<K, V>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const std::unordered_map<K, V>& v) {
    Serializer<std::vector<std::pair<K, V>>>::Write(s, {v.begin(), v.end()});
  }
  static bool Read(Stream* s, std::unordered_map<K, V>* v) {
    std::vector<std::pair<K, V>> items;
    if (!Serializer<std::vector<std::pair<K, V>>>::Read(s, &items)) return false;
    v->clear();
    v->insert(items.begin(), items.end());
    return true;
  }
};

template <>
struct Serializer<ffi::String> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const ffi::String& v) {
    edgeavs_detail::WriteCount(s, v.size());
    if (v.size() != 0) s->Write(v.data(), v.size());
  }
  static bool Read(Stream* s, ffi::String* v) {
    std::string tmp;
    if (!Serializer<std::string>::Read(s, &tmp)) return false;
    *v = ffi::String(std::move(tmp));
    return true;
  }
};

template <typename T>
struct Serializer<ffi::Array<T>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const ffi::Array<T>& v) {
    edgeavs_detail::WriteCount(s, v.size());
    for (size_t i = 0; i < v.size(); ++i) Serializer<T>::Write(s, v[i]);
  }
  static bool Read(Stream* s, ffi::Array<T>* v) {
    uint64_t n;
    if (!edgeavs_detail::ReadCount(s, &n)) return false;
    ffi::Array<T> out;
    for (uint64_t i = 0; i < n; ++i) {
      T e;
      if (!Serializer<T>::Read(s, &e)) return false;
      out.push_back(std::move(e));
    }
    *v = std::move(out);
    return true;
  }
};

template <typename K, typename V>
struct Serializer<ffi::Map<K, V>> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const ffi::Map<K, V>& v) {
    edgeavs_detail::WriteCount(s, v.size());
    for (const auto& kv : v) {
      Serializer<K>::Write(s, kv.first);
      Serializer<V>::Write(s, kv.second);
    }
  }
  static bool Read(Stream* s, ffi::Map<K, V>* v) {
    uint64_t n;
    if (!edgeavs_detail::ReadCount(s, &n)) return false;
    ffi::Map<K, V> out;
    for (uint64_t i = 0; i < n; ++i) {
      K key;
      V value;
      if (!Serializer<K>::Read(s, &key) || !Serializer<V>::Read(s, &value)) return false;
      out.Set(std::move(key), std::move(value));
    }
    *v = std::move(out);
    return true;
  }
};

template <>
struct Serializer<DLDataType> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const DLDataType& t) {
    Serializer<uint8_t>::Write(s, t.code);
    Serializer<uint8_t>::Write(s, t.bits);
    Serializer<uint16_t>::Write(s, t.lanes);
  }
  static bool Read(Stream* s, DLDataType* t) {
    return Serializer<uint8_t>::Read(s, &t->code) && Serializer<uint8_t>::Read(s, &t->bits) &&
           Serializer<uint16_t>::Read(s, &t->lanes);
  }
};

template <>
struct Serializer<DLDevice> {
  static constexpr bool enabled = true;
  static void Write(Stream* s, const DLDevice& d) {
    Serializer<int32_t>::Write(s, static_cast<int32_t>(d.device_type));
    Serializer<int32_t>::Write(s, d.device_id);
  }
  static bool Read(Stream* s, DLDevice* d) {
    int32_t type = 0;
    if (!Serializer<int32_t>::Read(s, &type)) return false;
    d->device_type = static_cast<DLDeviceType>(type);
    return Serializer<int32_t>::Read(s, &d->device_id);
  }
};

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_SERIALIZER_H_
